// libtorii_bench_no_deadlock_detection.so: an LD_PRELOAD experiment, not a
// product feature. Its constructor turns Abseil's Mutex deadlock detection
// off before main() runs, so a benchmark can show what a server would gain by
// doing the same (Debian's Abseil is built without NDEBUG, which leaves the
// detection on and makes every absl::Mutex lock update a lock graph).
//
//   LD_PRELOAD=build/lib/libtorii_bench_no_deadlock_detection.so torii-server ...
#include "absl/synchronization/mutex.h"

namespace {

__attribute__((constructor)) void DisableDeadlockDetection() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

}  // namespace
