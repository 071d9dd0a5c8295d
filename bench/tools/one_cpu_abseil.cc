// libtorii_bench_one_cpu_abseil.so: an LD_PRELOAD shim for counting
// instructions under valgrind (bench/perf_gate.py), not a product feature.
// It makes Abseil believe the machine has one CPU, so absl::Mutex (which
// gRPC's locks are built on) and absl's SpinLock sleep at once instead of
// spinning first.
//
// Why: valgrind runs one thread at a time. A thread that finds a lock held
// by another thread spins its whole budget (1500 rounds, ~5-10k
// instructions) without any chance of seeing it released, and how often
// that happens depends on when valgrind switches threads, i.e. on timing.
// It made the identity server's count vary by ±1.2 % from run to run; with
// this shim the spread is ±0.1 % (docs/performance.md, "Regression gate").
// On real hardware spinning is what makes short critical sections cheap, so
// never preload this outside an instruction count.
//
// It works because libabsl_synchronization calls NumCPUs() in libabsl_base
// through the PLT, where a preloaded definition comes first.
#include "absl/base/config.h"

namespace absl {
ABSL_NAMESPACE_BEGIN
namespace base_internal {

int NumCPUs() { return 1; }

}  // namespace base_internal
ABSL_NAMESPACE_END
}  // namespace absl
