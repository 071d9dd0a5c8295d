#include "server/manager/system_shared_memory.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"

namespace torii {
namespace {

// --- The SIGBUS guard --------------------------------------------------------
//
// A fixed table of the address ranges of every mapped client region, read by
// the signal handler without locks (only atomics: async-signal-safe). Slots
// are claimed and released under g_guard_mu by registration and unmapping.

constexpr size_t kGuardSlots = 4096;

struct GuardSlot {
  std::atomic<uintptr_t> begin{0};  // 0: free
  std::atomic<uintptr_t> end{0};
  // 0 intact; 1 a handler is replacing the mapping; 2 replaced (damaged).
  std::atomic<int> state{0};
};

GuardSlot g_slots[kGuardSlots];
std::mutex g_guard_mu;
bool g_installed = false;           // under g_guard_mu
struct sigaction g_previous;        // written once, before the handler runs

// Hands a fault that is not ours to whoever handled SIGBUS before.
void ForwardSigbus(int sig, siginfo_t* info, void* context) {
  if ((g_previous.sa_flags & SA_SIGINFO) != 0 && g_previous.sa_sigaction != nullptr) {
    g_previous.sa_sigaction(sig, info, context);
    return;
  }
  if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN &&
      g_previous.sa_handler != nullptr) {
    g_previous.sa_handler(sig);
    return;
  }
  // The default action: restore it and return, so the access faults again
  // and the process dies as it would have without this handler. (Ignoring
  // a fault would only repeat it forever.)
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof(dfl));
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(SIGBUS, &dfl, nullptr);
}

void OnSigbus(int sig, siginfo_t* info, void* context) {
  // Only a memory access beyond the end of a mapped file (BUS_ADRERR) can be
  // a truncated region; anything else (alignment, hardware, kill -BUS) is
  // not ours.
  if (info != nullptr && info->si_code == BUS_ADRERR) {
    const uintptr_t addr = reinterpret_cast<uintptr_t>(info->si_addr);
    for (GuardSlot& slot : g_slots) {
      const uintptr_t begin = slot.begin.load(std::memory_order_acquire);
      if (begin == 0 || addr < begin) continue;
      const uintptr_t end = slot.end.load(std::memory_order_acquire);
      if (addr >= end) continue;
      int expected = 0;
      if (slot.state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
        // Zero-filled private pages in place of the file's lost pages: the
        // faulting access, and every later one, completes. The mapping's
        // address and length stay, so unmapping it later is unchanged.
        void* p = mmap(reinterpret_cast<void*>(begin), end - begin, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        if (p == MAP_FAILED) {
          slot.state.store(0, std::memory_order_release);
          break;  // cannot repair it: let the default action happen
        }
        slot.state.store(2, std::memory_order_release);
      }
      // State 1: another thread is replacing the mapping right now; returning
      // retries the access, which succeeds once it is done.
      return;
    }
  }
  ForwardSigbus(sig, info, context);
}

// Claims a slot for [begin, end) and installs the handler on first use.
// -1 when the table is full.
int ClaimGuardSlot(uintptr_t begin, uintptr_t end) {
  std::lock_guard<std::mutex> lock(g_guard_mu);
  if (!g_installed) {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = OnSigbus;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGBUS, &sa, &g_previous) != 0) return -1;
    g_installed = true;
  }
  for (size_t i = 0; i < kGuardSlots; ++i) {
    GuardSlot& slot = g_slots[i];
    if (slot.begin.load(std::memory_order_relaxed) != 0) continue;
    slot.state.store(0, std::memory_order_relaxed);
    slot.end.store(end, std::memory_order_release);
    slot.begin.store(begin, std::memory_order_release);
    return static_cast<int>(i);
  }
  return -1;
}

void ReleaseGuardSlot(int i) {
  if (i < 0) return;
  std::lock_guard<std::mutex> lock(g_guard_mu);
  g_slots[i].begin.store(0, std::memory_order_release);
  g_slots[i].end.store(0, std::memory_order_release);
}

size_t PageSize() {
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return page;
}

// A POSIX shared-memory name: "/" then a plain file name (glibc's shm_open
// skips any number of leading slashes; Python's multiprocessing adds one).
bool IsShmKey(const std::string& key) {
  size_t i = 0;
  while (i < key.size() && key[i] == '/') ++i;
  if (i == 0 || i == key.size()) return false;
  const std::string rest = key.substr(i);
  return rest != "." && rest != ".." && rest.size() <= NAME_MAX &&
         rest.find_first_of(std::string("/\0", 2)) == std::string::npos;
}

absl::Status ErrnoStatus(int err, const std::string& what) {
  const std::string msg = absl::StrCat(what, ": ", std::strerror(err));
  switch (err) {
    case ENOENT: return absl::NotFoundError(msg);
    case EACCES:
    case EPERM: return absl::PermissionDeniedError(msg);
    case ENOMEM:
    case EMFILE:
    case ENFILE: return absl::ResourceExhaustedError(msg);
    default: return absl::InvalidArgumentError(msg);
  }
}

absl::Status ReadOffsetOrSize(const Parameter& p, const std::string& key, const std::string& kind,
                              const std::string& name, uint64_t* out) {
  int64_t v = 0;
  if (p.is_uint64()) {
    *out = p.as_uint64();
    return absl::OkStatus();
  }
  if (!p.AsInteger(&v)) {
    return absl::InvalidArgumentError(absl::StrCat(
        kind, " '", name, "': parameter '", key, "' must be an integer (int64_param)"));
  }
  if (v < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(kind, " '", name, "': parameter '", key, "' is ", v, "; it must be >= 0"));
  }
  *out = static_cast<uint64_t>(v);
  return absl::OkStatus();
}

}  // namespace

// --- SharedMemoryRegion --------------------------------------------------------

SharedMemoryRegion::~SharedMemoryRegion() {
  // Out of the guard's table before the range can be reused by another
  // mapping.
  ReleaseGuardSlot(guard_slot_);
  if (map_ != nullptr) munmap(map_, map_length_);
  if (fd_ >= 0) close(fd_);
}

bool SharedMemoryRegion::damaged() const {
  return guard_slot_ >= 0 && g_slots[guard_slot_].state.load(std::memory_order_acquire) != 0;
}

absl::Status SharedMemoryRegion::CheckObjectHolds(uint64_t end) const {
  struct stat st;
  if (fstat(fd_, &st) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "shared memory region '", name_, "': cannot check its object '", key_,
        "': ", std::strerror(errno)));
  }
  const uint64_t needed = offset_ + end;
  if (st.st_size < 0 || static_cast<uint64_t>(st.st_size) < needed) {
    return absl::FailedPreconditionError(absl::StrCat(
        "shared memory region '", name_, "': its object '", key_, "' is now ", st.st_size,
        " bytes, but this use needs ", needed,
        " (the owner truncated it); unregister the region and register it again"));
  }
  return absl::OkStatus();
}

// --- Parameters ----------------------------------------------------------------

bool IsSharedMemoryParameter(const std::string& name) {
  return name == "shared_memory_region" || name == "shared_memory_offset" ||
         name == "shared_memory_byte_size";
}

absl::StatusOr<std::optional<SharedMemoryRef>> SharedMemoryRefFromParameters(
    const Parameters& params, const std::string& kind, const std::string& name) {
  const Parameter* region = params.Find("shared_memory_region");
  const Parameter* offset = params.Find("shared_memory_offset");
  const Parameter* size = params.Find("shared_memory_byte_size");
  if (region == nullptr) {
    if (offset != nullptr || size != nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          kind, " '", name, "': '",
          offset != nullptr ? "shared_memory_offset" : "shared_memory_byte_size",
          "' is set without 'shared_memory_region'"));
    }
    return std::optional<SharedMemoryRef>();
  }
  if (!region->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(
        kind, " '", name, "': parameter 'shared_memory_region' must be a string (string_param)"));
  }
  if (size == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        kind, " '", name, "': 'shared_memory_region' is set without 'shared_memory_byte_size'"));
  }
  SharedMemoryRef ref;
  ref.region = region->as_string();
  absl::Status s = ReadOffsetOrSize(*size, "shared_memory_byte_size", kind, name, &ref.byte_size);
  if (!s.ok()) return s;
  if (offset != nullptr) {
    s = ReadOffsetOrSize(*offset, "shared_memory_offset", kind, name, &ref.offset);
    if (!s.ok()) return s;
  }
  return std::optional<SharedMemoryRef>(std::move(ref));
}

// --- SystemSharedMemory ----------------------------------------------------------

SystemSharedMemory::SystemSharedMemory(Options options) : options_(options) {}

SystemSharedMemory::~SystemSharedMemory() { Unregister("").IgnoreError(); }

size_t SystemSharedMemory::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return regions_.size();
}

absl::Status SystemSharedMemory::Register(const std::string& name, const std::string& key,
                                          uint64_t offset, uint64_t byte_size) {
  const std::string what = absl::StrCat("shared memory region '", name, "'");
  if (name.empty()) {
    return absl::InvalidArgumentError("a shared memory region needs a name");
  }
  if (!IsShmKey(key)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot register shared memory region '", name, "' - invalid shm key '", key,
        "': expected a POSIX shared-memory name, '/' followed by a file name of at most ",
        NAME_MAX, " bytes without '/' (as shm_open takes)"));
  }
  if (byte_size == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("failed to register ", what, ": invalid args: byte_size must be > 0"));
  }
  if (offset > std::numeric_limits<uint64_t>::max() - byte_size ||
      offset + byte_size > static_cast<uint64_t>(std::numeric_limits<off_t>::max())) {
    return absl::InvalidArgumentError(absl::StrCat("failed to register ", what,
                                                   ": invalid args: offset ", offset,
                                                   " + byte_size ", byte_size,
                                                   " is out of range"));
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto existing = regions_.find(name);
  if (existing != regions_.end()) {
    return absl::AlreadyExistsError(absl::StrCat(what, " already in manager (key '",
                                                 existing->second->key(),
                                                 "'); unregister it first"));
  }
  if (regions_.size() >= options_.max_regions) {
    return absl::ResourceExhaustedError(absl::StrCat(
        what, ": ", regions_.size(), " regions are registered, the most the server allows; "
        "unregister one first"));
  }
  // The region object frees whatever is set so far on every early return.
  std::shared_ptr<SharedMemoryRegion> region(new SharedMemoryRegion());
  region->name_ = name;
  region->key_ = key;
  region->offset_ = offset;
  region->byte_size_ = byte_size;
  // shm_open is open(O_NOFOLLOW | O_CLOEXEC) under /dev/shm: the descriptor
  // does not leak into runner processes.
  region->fd_ = shm_open(key.c_str(), O_RDWR, 0);
  if (region->fd_ < 0) {
    return ErrnoStatus(errno, absl::StrCat(what, ": cannot open the shared-memory object '",
                                           key, "' (shm_open)"));
  }
  struct stat st;
  if (fstat(region->fd_, &st) != 0) {
    return ErrnoStatus(errno, absl::StrCat(what, ": cannot stat '", key, "'"));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": '", key, "' is not a shared-memory object"));
  }
  if (static_cast<uint64_t>(st.st_size) < offset + byte_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "failed to register ", what, ": invalid args: offset ", offset, " + byte_size ",
        byte_size, " = ", offset + byte_size, " bytes, but the object '", key, "' holds ",
        st.st_size, " bytes"));
  }
  // mmap takes a page-aligned file offset; the region starts inside the
  // first page.
  const size_t page = PageSize();
  const uint64_t map_offset = offset - offset % page;
  region->map_length_ = static_cast<size_t>(byte_size + offset % page);
  void* map = mmap(nullptr, region->map_length_, PROT_READ | PROT_WRITE, MAP_SHARED, region->fd_,
                   static_cast<off_t>(map_offset));
  if (map == MAP_FAILED) {
    return ErrnoStatus(errno, absl::StrCat(what, ": cannot map ", byte_size, " bytes of '", key,
                                           "'"));
  }
  region->map_ = map;
  region->data_ = static_cast<char*>(map) + offset % page;
  const uintptr_t begin = reinterpret_cast<uintptr_t>(map);
  const uintptr_t end = begin + (region->map_length_ + page - 1) / page * page;
  region->guard_slot_ = ClaimGuardSlot(begin, end);
  if (region->guard_slot_ < 0) {
    return absl::ResourceExhaustedError(absl::StrCat(
        what, ": no room left to guard another mapping (", kGuardSlots,
        " regions in the process)"));
  }
  regions_.emplace(name, std::move(region));
  return absl::OkStatus();
}

absl::Status SystemSharedMemory::Unregister(const std::string& name) {
  // Destroyed outside the lock: the last reference unmaps.
  std::vector<std::shared_ptr<const SharedMemoryRegion>> gone;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (name.empty()) {
      for (auto& [n, r] : regions_) gone.push_back(std::move(r));
      regions_.clear();
    } else {
      auto it = regions_.find(name);
      if (it != regions_.end()) {
        gone.push_back(std::move(it->second));
        regions_.erase(it);
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<SystemSharedMemory::RegionStatus>> SystemSharedMemory::Status(
    const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<RegionStatus> out;
  auto add = [&out](const SharedMemoryRegion& r) {
    out.push_back({r.name(), r.key(), r.offset(), r.byte_size()});
  };
  if (name.empty()) {
    for (const auto& [n, r] : regions_) add(*r);
    return out;
  }
  auto it = regions_.find(name);
  if (it == regions_.end()) {
    return absl::NotFoundError(
        absl::StrCat("no system shared memory region '", name, "' is registered"));
  }
  add(*it->second);
  return out;
}

absl::StatusOr<SharedMemoryView> SystemSharedMemory::View(const SharedMemoryRef& ref) const {
  std::shared_ptr<const SharedMemoryRegion> region;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = regions_.find(ref.region);
    if (it == regions_.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "shared memory region '", ref.region,
          "' is not registered (register it with SystemSharedMemoryRegister first)"));
    }
    region = it->second;
  }
  // Triton's words first (its clients' tests look for them).
  if (ref.offset >= region->byte_size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Invalid offset for shared memory region: '", ref.region, "': shared_memory_offset ",
        ref.offset, " is not inside the region's ", region->byte_size(), " bytes"));
  }
  if (ref.byte_size > region->byte_size() - ref.offset) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Invalid offset + byte size for shared memory region: '", ref.region,
        "': shared_memory_offset ", ref.offset, " + shared_memory_byte_size ", ref.byte_size,
        " does not fit in the region's ", region->byte_size(), " bytes"));
  }
  if (region->damaged()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "shared memory region '", ref.region, "': its object '", region->key(),
        "' was truncated while in use and the region is no longer shared with its owner; "
        "unregister it and register it again"));
  }
  // The window only: a region whose object shrank past it still serves.
  absl::Status holds = region->CheckObjectHolds(ref.offset + ref.byte_size);
  if (!holds.ok()) return holds;
  SharedMemoryView view;
  view.data = region->data() + ref.offset;
  view.byte_size = static_cast<size_t>(ref.byte_size);
  view.region = std::move(region);
  return view;
}

// --- SharedMemoryBinding ----------------------------------------------------------

absl::StatusOr<SharedMemoryView> SharedMemoryBinding::Bind(const SystemSharedMemory& registry,
                                                           const SharedMemoryRef& ref) {
  auto view = registry.View(ref);
  if (!view.ok()) return view.status();
  bool held = false;
  for (const auto& r : held_) held = held || r == view->region;
  if (!held) held_.push_back(view->region);
  return view;
}

void SharedMemoryBinding::AddOutput(const std::string& name, const SharedMemoryView& view) {
  outputs_[name] = view;
}

absl::StatusOr<char*> SharedMemoryBinding::OutputBuffer(const std::string& name,
                                                        size_t byte_size) const {
  auto it = outputs_.find(name);
  if (it == outputs_.end()) return nullptr;
  if (byte_size > it->second.byte_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "output '", name, "' is ", byte_size, " bytes, but its shared memory window in region '",
        it->second.region->name(), "' is ", it->second.byte_size,
        " bytes (shared_memory_byte_size); give a window large enough for the result"));
  }
  return it->second.data;
}

absl::Status SharedMemoryBinding::CheckIntact() const {
  for (const auto& r : held_) {
    if (r->damaged()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "shared memory region '", r->name(), "': its object '", r->key(),
          "' was truncated by its owner while this request used it; the request's inputs "
          "or outputs in it are lost (unregister the region and register it again)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace torii
