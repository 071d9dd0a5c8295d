// A growable shared-memory region backed by a memfd, mapped by the server and
// by a runner host process. Tensors of isolated models cross in it; control
// messages go over a socket (server/isolation/protocol.h).
//
// Both sides hold the same file: either side may grow it (ftruncate) and the
// other maps the size named in the next message. It never shrinks: the file
// is sealed against it (F_SEAL_SHRINK), so a misbehaving peer cannot make the
// other side's next access a SIGBUS. Each side maps the file into an address
// range reserved up front, so growing never moves the mapping and pointers
// into it stay valid. Only one side touches a region at a time (request, then
// reply), so there is no locking; the few bytes written concurrently (cancel
// flags) use atomics.
#ifndef TORII_SERVER_ISOLATION_SHARED_MEMORY_H_
#define TORII_SERVER_ISOLATION_SHARED_MEMORY_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"

namespace torii {
namespace isolation {

class SharedRegion {
 public:
  /// The address space reserved per region when nothing limits it.
  static constexpr size_t kDefaultMaxSize = size_t{16} << 30;

  /// Creates a sealed memfd (close-on-exec) of `size` bytes and maps it. The
  /// region may grow up to `max_size` bytes (the address range reserved).
  static absl::StatusOr<SharedRegion> Create(const std::string& name, size_t size,
                                             size_t max_size = kDefaultMaxSize);
  /// Maps an existing memfd (taking ownership of `fd`) at its current size.
  static absl::StatusOr<SharedRegion> Adopt(int fd, size_t max_size = kDefaultMaxSize);

  SharedRegion() = default;
  SharedRegion(SharedRegion&& other) noexcept { *this = std::move(other); }
  SharedRegion& operator=(SharedRegion&& other) noexcept;
  SharedRegion(const SharedRegion&) = delete;
  SharedRegion& operator=(const SharedRegion&) = delete;
  ~SharedRegion();

  char* data() const { return data_; }
  size_t size() const { return size_; }
  int fd() const { return fd_; }

  /// Makes the region at least `size` bytes: grows the file (to a power of
  /// two, at least 1 MiB) if it is smaller, then maps the file's size.
  absl::Status Reserve(size_t size);
  /// Maps at least `size` bytes of a file the other side may have grown.
  absl::Status Follow(size_t size);

 private:
  absl::Status MapFileSize();
  int fd_ = -1;
  size_t max_size_ = kDefaultMaxSize;
  char* data_ = nullptr;
  size_t size_ = 0;
};

/// An allocator over a SharedRegion owned by one side (the other side only
/// reads and writes the blocks named in frames). First fit with coalescing,
/// 64-byte aligned blocks; grows the region (which never moves) when nothing
/// fits, up to the region's maximum. Thread-safe.
class RegionHeap {
 public:
  explicit RegionHeap(SharedRegion* region) : region_(region) {}
  /// A block of at least `n` bytes: its offset in the region.
  /// RESOURCE_EXHAUSTED when the region cannot grow that far.
  absl::StatusOr<uint64_t> Allocate(size_t n);
  /// Releases a block Allocate() returned; false for an unknown offset.
  bool Free(uint64_t offset);
  /// The region's size now (to announce in frames).
  uint64_t region_size() const;
  /// Bytes in blocks not yet freed.
  uint64_t in_use() const;
  char* data() const { return region_->data(); }

 private:
  SharedRegion* region_;
  mutable std::mutex mu_;
  std::map<uint64_t, uint64_t> free_;  // offset -> size, below end_
  std::map<uint64_t, uint64_t> used_;  // offset -> size
  uint64_t end_ = 0;                   // everything from here on is free
  uint64_t in_use_ = 0;
};

/// Rounds up to a multiple of 64 (one cache line).
inline size_t Align64(size_t n) { return (n + 63) & ~size_t{63}; }

}  // namespace isolation
}  // namespace torii

#endif  // TORII_SERVER_ISOLATION_SHARED_MEMORY_H_
