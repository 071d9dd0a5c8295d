#include "server/isolation/shared_memory.h"

#include <errno.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace torii {
namespace isolation {
namespace {

constexpr size_t kMinRegion = size_t{1} << 20;

absl::Status Errno(absl::string_view what) {
  const int e = errno;
  const std::string m = absl::StrCat(what, ": ", std::strerror(e));
  return e == ENOMEM || e == ENOSPC ? absl::ResourceExhaustedError(m) : absl::InternalError(m);
}

size_t RoundUp(size_t n) {
  size_t r = kMinRegion;
  while (r < n) r <<= 1;
  return r;
}

}  // namespace

absl::StatusOr<SharedRegion> SharedRegion::Create(const std::string& name, size_t size) {
  SharedRegion r;
  r.fd_ = memfd_create(name.c_str(), MFD_CLOEXEC);
  if (r.fd_ < 0) return Errno("memfd_create");
  if (ftruncate(r.fd_, static_cast<off_t>(RoundUp(size))) != 0) return Errno("ftruncate");
  absl::Status s = r.MapFileSize();
  if (!s.ok()) return s;
  return r;
}

absl::StatusOr<SharedRegion> SharedRegion::Adopt(int fd) {
  SharedRegion r;
  r.fd_ = fd;
  absl::Status s = r.MapFileSize();
  if (!s.ok()) return s;
  return r;
}

SharedRegion& SharedRegion::operator=(SharedRegion&& other) noexcept {
  if (this != &other) {
    this->~SharedRegion();
    fd_ = other.fd_;
    data_ = other.data_;
    size_ = other.size_;
    other.fd_ = -1;
    other.data_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

SharedRegion::~SharedRegion() {
  if (data_ != nullptr) munmap(data_, size_);
  if (fd_ >= 0) close(fd_);
  data_ = nullptr;
  fd_ = -1;
  size_ = 0;
}

absl::Status SharedRegion::MapFileSize() {
  struct stat st;
  if (fstat(fd_, &st) != 0) return Errno("fstat of the shared region");
  const size_t file_size = static_cast<size_t>(st.st_size);
  if (file_size == size_ && data_ != nullptr) return absl::OkStatus();
  if (file_size == 0) return absl::InternalError("the shared region is empty");
  void* p;
  if (data_ == nullptr) {
    p = mmap(nullptr, file_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
  } else {
    p = mremap(data_, size_, file_size, MREMAP_MAYMOVE);
  }
  if (p == MAP_FAILED) return Errno("mapping the shared region");
  data_ = static_cast<char*>(p);
  size_ = file_size;
  return absl::OkStatus();
}

absl::Status SharedRegion::Reserve(size_t size) {
  if (size <= size_) return absl::OkStatus();
  struct stat st;
  if (fstat(fd_, &st) != 0) return Errno("fstat of the shared region");
  if (static_cast<size_t>(st.st_size) < size &&
      ftruncate(fd_, static_cast<off_t>(RoundUp(size))) != 0) {
    return Errno(absl::StrCat("growing the shared region to ", RoundUp(size), " bytes"));
  }
  return MapFileSize();
}

absl::Status SharedRegion::Follow(size_t size) {
  if (size <= size_) return absl::OkStatus();
  absl::Status s = MapFileSize();
  if (!s.ok()) return s;
  if (size_ < size) {
    return absl::InternalError(absl::StrCat("the shared region has ", size_,
                                            " bytes, the peer announced ", size));
  }
  return absl::OkStatus();
}

}  // namespace isolation
}  // namespace torii
