#include "server/isolation/shared_memory.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace torii {
namespace isolation {
namespace {

constexpr size_t kMinRegion = size_t{1} << 20;
// Address space is reserved per region (max_size_), so that growing it never
// moves the mapping: pointers into it (inputs a runner still views, outputs
// being written) stay valid. Reserving costs no memory, but it does count
// against RLIMIT_AS, so a memory-limited child reserves less.

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

// The file size, which only ever grows (sealed against shrinking).
absl::StatusOr<size_t> FileSize(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) return Errno("fstat of the shared region");
  return static_cast<size_t>(st.st_size);
}

}  // namespace

absl::StatusOr<SharedRegion> SharedRegion::Create(const std::string& name, size_t size,
                                                  size_t max_size) {
  SharedRegion r;
  r.max_size_ = max_size;
  r.fd_ = memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (r.fd_ < 0) return Errno("memfd_create");
  if (size > max_size) {
    return absl::ResourceExhaustedError(absl::StrCat("a shared region is at most ", max_size,
                                                     " bytes; ", size, " were asked for"));
  }
  if (ftruncate(r.fd_, static_cast<off_t>(RoundUp(size))) != 0) return Errno("ftruncate");
  // Neither side may shrink the file: a peer that did would make the other
  // one's next access to the lost pages a SIGBUS.
  if (fcntl(r.fd_, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_SEAL) != 0) return Errno("sealing");
  absl::Status s = r.MapFileSize();
  if (!s.ok()) return s;
  return r;
}

absl::StatusOr<SharedRegion> SharedRegion::Adopt(int fd, size_t max_size) {
  SharedRegion r;
  r.fd_ = fd;
  r.max_size_ = max_size;
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
    max_size_ = other.max_size_;
    other.fd_ = -1;
    other.data_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

SharedRegion::~SharedRegion() {
  if (data_ != nullptr) munmap(data_, max_size_);
  if (fd_ >= 0) close(fd_);
  data_ = nullptr;
  fd_ = -1;
  size_ = 0;
}

absl::Status SharedRegion::MapFileSize() {
  auto file_size = FileSize(fd_);
  if (!file_size.ok()) return file_size.status();
  if (*file_size == 0) return absl::InternalError("the shared region is empty");
  if (*file_size > max_size_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the shared region grew to ", *file_size, " bytes, past the ", max_size_,
        " this process can map (memory_limit_mb leaves that much for tensors)"));
  }
  if (data_ == nullptr) {
    void* p = mmap(nullptr, max_size_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED) return Errno("reserving address space for the shared region");
    data_ = static_cast<char*>(p);
  }
  if (*file_size <= size_) return absl::OkStatus();
  // Map the file over the reservation, in place: what was mapped stays put.
  void* p = mmap(data_, *file_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd_, 0);
  if (p == MAP_FAILED) return Errno("mapping the shared region");
  size_ = *file_size;
  return absl::OkStatus();
}

absl::Status SharedRegion::Reserve(size_t size) {
  if (size <= size_) return absl::OkStatus();
  if (size > max_size_) {
    return absl::ResourceExhaustedError(absl::StrCat("a shared region is at most ", max_size_,
                                                     " bytes here; ", size, " were asked for"));
  }
  auto file_size = FileSize(fd_);
  if (!file_size.ok()) return file_size.status();
  if (*file_size < size && ftruncate(fd_, static_cast<off_t>(RoundUp(size))) != 0) {
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

absl::StatusOr<uint64_t> RegionHeap::Allocate(size_t n) {
  const uint64_t want = Align64(n == 0 ? 1 : n);
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = free_.begin(); it != free_.end(); ++it) {
    if (it->second < want) continue;
    const uint64_t at = it->first;
    const uint64_t left = it->second - want;
    free_.erase(it);
    if (left > 0) free_[at + want] = left;
    used_[at] = want;
    in_use_ += want;
    return at;
  }
  absl::Status s = region_->Reserve(end_ + want);
  if (!s.ok()) return s;
  const uint64_t at = end_;
  end_ += want;
  used_[at] = want;
  in_use_ += want;
  return at;
}

bool RegionHeap::Free(uint64_t offset) {
  std::lock_guard<std::mutex> lock(mu_);
  auto u = used_.find(offset);
  if (u == used_.end()) return false;
  uint64_t at = u->first;
  uint64_t size = u->second;
  used_.erase(u);
  in_use_ -= size;
  // Coalesce with the free neighbours.
  auto next = free_.lower_bound(at);
  if (next != free_.end() && at + size == next->first) {
    size += next->second;
    next = free_.erase(next);
  }
  if (next != free_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == at) {
      at = prev->first;
      size += prev->second;
      free_.erase(prev);
    }
  }
  if (at + size == end_) {
    end_ = at;
  } else {
    free_[at] = size;
  }
  return true;
}

uint64_t RegionHeap::region_size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return region_->size();
}

uint64_t RegionHeap::in_use() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_use_;
}

}  // namespace isolation
}  // namespace torii
