// System (POSIX) shared memory that clients register with the server:
// Triton's system shared-memory extension, frontend-neutral. The gRPC and
// HTTP frontends register, list and unregister regions here, and resolve the
// `shared_memory_region` / `shared_memory_offset` / `shared_memory_byte_size`
// parameters of a request's inputs and outputs into views of the mapped
// memory, so inputs are read and outputs written in place, with no copy
// through the wire.
//
// How a frontend uses it (the gRPC frontend does exactly this):
//
//   SharedMemoryBinding binding;                       // one per request,
//                                                      // kept alive with it
//   // an input: its parameters name a region?
//   TORII_ASSIGN_OR_RETURN(auto ref, SharedMemoryRefFromParameters(
//                                        params, "input", name));
//   if (ref) {
//     TORII_ASSIGN_OR_RETURN(SharedMemoryView v, binding.Bind(registry, *ref));
//     input.data = v.data; input.byte_size = v.byte_size;   // no copy
//   }
//   // a requested output: the same, then
//   binding.AddOutput(name, view);
//   // in the response's AllocateBuffer(index):
//   TORII_ASSIGN_OR_RETURN(char* p, binding.OutputBuffer(name, byte_size));
//   if (p != nullptr) return p;            // the runner writes into the region
//   // ... else allocate in the wire message / body as usual
//   // when the final response is delivered:
//   status = binding.CheckIntact();        // error if a region was truncated
//
// Lifetime and safety. A region is mapped once, at registration, and stays
// mapped while anything holds it (std::shared_ptr): unregistering removes
// the name at once, and the memory goes when the last request using the
// region lets go. The client owns the object and may truncate it at any time;
// touching a page past the end of a truncated file raises SIGBUS. So:
//  - every Bind() checks the object's current size (fstat) first, and refuses
//    a region truncated before the request (FAILED_PRECONDITION);
//  - a process-wide SIGBUS handler, installed with the first registration,
//    recognises faults inside registered regions: it replaces that region's
//    mapping with zero-filled private memory, so the faulting access (a
//    runner reading an input, the server writing an output) completes, and
//    marks the region damaged. Requests that were using it fail
//    (CheckIntact), and the region refuses new ones until it is unregistered
//    and registered again. A fault at any other address goes to the handler
//    installed before (by default the process dies, as it would have).
//
// Thread-safety: every method may be called from any thread.
#ifndef TORII_SERVER_MANAGER_SYSTEM_SHARED_MEMORY_H_
#define TORII_SERVER_MANAGER_SYSTEM_SHARED_MEMORY_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/core/parameters.h"

namespace torii {

/// One registered region, mapped into the server. Immutable after
/// registration except for the damaged flag.
class SharedMemoryRegion {
 public:
  ~SharedMemoryRegion();  // unmaps and closes
  SharedMemoryRegion(const SharedMemoryRegion&) = delete;
  SharedMemoryRegion& operator=(const SharedMemoryRegion&) = delete;

  const std::string& name() const { return name_; }
  /// The POSIX shared-memory object (shm_open name, e.g. "/input_simple").
  const std::string& key() const { return key_; }
  /// Where the region starts in the object, and its size, in bytes.
  uint64_t offset() const { return offset_; }
  uint64_t byte_size() const { return byte_size_; }
  /// The region's first byte in this process.
  char* data() const { return data_; }
  /// True once the object was truncated under a use of the region: its
  /// contents were replaced by zeros and writes no longer reach the client.
  bool damaged() const;
  /// OK while the object still holds the region's first `end` bytes (fstat
  /// now); FAILED_PRECONDITION naming both sizes when its owner truncated it.
  absl::Status CheckObjectHolds(uint64_t end) const;

 private:
  friend class SystemSharedMemory;
  SharedMemoryRegion() = default;

  std::string name_;
  std::string key_;
  uint64_t offset_ = 0;
  uint64_t byte_size_ = 0;
  int fd_ = -1;
  void* map_ = nullptr;     // page-aligned start of the mapping
  size_t map_length_ = 0;
  char* data_ = nullptr;    // map_ + (offset_ % page size)
  int guard_slot_ = -1;     // in the SIGBUS guard's table
};

/// A checked window [offset, offset + byte_size) of a region; holds the
/// region (and so the mapping) alive.
struct SharedMemoryView {
  std::shared_ptr<const SharedMemoryRegion> region;
  char* data = nullptr;
  size_t byte_size = 0;
};

/// The shared-memory parameters of one tensor, as a request carries them.
struct SharedMemoryRef {
  std::string region;
  uint64_t offset = 0;
  uint64_t byte_size = 0;
};

/// Reads `shared_memory_region` (string), `shared_memory_offset` and
/// `shared_memory_byte_size` (integers, int64 or uint64) from the parameters
/// of a tensor (`kind` "input" or "output", `name` its name, for messages).
/// nullopt when the tensor names no region. INVALID_ARGUMENT for a value of
/// the wrong type, a negative value, a region without a byte size, or an
/// offset or byte size without a region (Triton's rules).
absl::StatusOr<std::optional<SharedMemoryRef>> SharedMemoryRefFromParameters(
    const Parameters& params, const std::string& kind, const std::string& name);

/// True when `name` is one of the three shared-memory parameter names.
bool IsSharedMemoryParameter(const std::string& name);

class SystemSharedMemory {
 public:
  struct Options {
    /// Register refuses more than this many regions at once.
    size_t max_regions = 1024;
  };

  SystemSharedMemory() : SystemSharedMemory(Options{}) {}
  explicit SystemSharedMemory(Options options);
  /// Unregisters everything (mappings held by requests stay until they end).
  ~SystemSharedMemory();
  SystemSharedMemory(const SystemSharedMemory&) = delete;
  SystemSharedMemory& operator=(const SystemSharedMemory&) = delete;

  /// Maps `byte_size` bytes at `offset` of the POSIX shared-memory object
  /// `key` (opened read-write, as shm_open) under `name`.
  /// INVALID_ARGUMENT: empty name, a key that is not "/<name>", a zero size,
  /// or a window past the object's end (both sizes named); NOT_FOUND: no
  /// such object; ALREADY_EXISTS: the name is taken; RESOURCE_EXHAUSTED:
  /// Options::max_regions reached; PERMISSION_DENIED when the server may not
  /// open the object.
  absl::Status Register(const std::string& name, const std::string& key, uint64_t offset,
                        uint64_t byte_size);

  /// Removes `name` (empty: every region). Unknown names are not an error
  /// (Triton). Requests using a region keep it mapped until they end.
  absl::Status Unregister(const std::string& name);

  struct RegionStatus {
    std::string name;
    std::string key;
    uint64_t offset = 0;
    uint64_t byte_size = 0;
  };
  /// The region `name`, or every region when `name` is empty (sorted by
  /// name). NOT_FOUND for an unknown name.
  absl::StatusOr<std::vector<RegionStatus>> Status(const std::string& name) const;

  /// The window `ref` names, checked: the region is registered and
  /// offset + byte_size fit in it without overflow (else INVALID_ARGUMENT
  /// naming the region and the sizes), the region is not damaged and its
  /// object still holds it (else FAILED_PRECONDITION).
  absl::StatusOr<SharedMemoryView> View(const SharedMemoryRef& ref) const;

  size_t size() const;

 private:
  const Options options_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<const SharedMemoryRegion>> regions_;
};

/// The regions one request reads and writes, kept mapped for its life.
/// Frontends keep it with the request's wire storage (until the final
/// response is delivered). Not thread-safe: Bind/AddOutput while the request
/// is built, OutputBuffer from the response's AllocateBuffer (calls for one
/// request never overlap), CheckIntact at delivery.
class SharedMemoryBinding {
 public:
  /// Views `ref` through `registry` and keeps the region alive.
  absl::StatusOr<SharedMemoryView> Bind(const SystemSharedMemory& registry,
                                        const SharedMemoryRef& ref);
  /// Output `name` goes to `view` (from Bind).
  void AddOutput(const std::string& name, const SharedMemoryView& view);
  bool has_outputs() const { return !outputs_.empty(); }
  bool empty() const { return held_.empty(); }

  /// Where output `name` of `byte_size` bytes goes: the region's memory;
  /// nullptr when the output is not bound to a region; INVALID_ARGUMENT when
  /// the window is smaller than the output (both sizes named).
  absl::StatusOr<char*> OutputBuffer(const std::string& name, size_t byte_size) const;

  /// OK unless a region this request used was truncated by its owner while
  /// in use: then the request's inputs were read as zeros or its outputs
  /// never reached the client, and the answer is FAILED_PRECONDITION naming
  /// the region.
  absl::Status CheckIntact() const;

 private:
  std::vector<std::shared_ptr<const SharedMemoryRegion>> held_;
  std::map<std::string, SharedMemoryView> outputs_;
};

}  // namespace torii

#endif  // TORII_SERVER_MANAGER_SYSTEM_SHARED_MEMORY_H_
