// CPU time of this process and of another (the server), so a benchmark can
// show that the load generator is not the bottleneck and what each request
// costs on both sides.
#ifndef TORII_BENCH_PERF_CPU_USAGE_H_
#define TORII_BENCH_PERF_CPU_USAGE_H_

#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

namespace torii::perf {

/// User + system CPU seconds used by this process so far (all threads).
double SelfCpuSeconds();

struct CpuTimes {
  double user_s = 0;
  double system_s = 0;
  /// Context switches of all threads (voluntary: a thread slept, e.g. to
  /// wait for another; involuntary: it was preempted); -1 when unknown.
  double context_switches = -1;
  double total() const { return user_s + system_s; }
};

/// User and system CPU seconds used so far by process `pid` (all threads),
/// from /proc/<pid>/stat (resolution: one clock tick, usually 10 ms).
absl::StatusOr<CpuTimes> ProcessCpuTimes(int pid);
/// ProcessCpuTimes(pid).total().
absl::StatusOr<double> ProcessCpuSeconds(int pid);

/// Voluntary plus involuntary context switches so far of every thread of
/// process `pid` (the sum over /proc/<pid>/task/*/status). A thread wake-up
/// per request shows here, where instruction counts cannot see it.
absl::StatusOr<double> ProcessContextSwitches(int pid);
/// The voluntary + nonvoluntary context switches in the text of a
/// /proc/<pid>/status file (0 when absent); exposed for tests.
double ParseContextSwitches(absl::string_view status);

/// Parses the text of a /proc/<pid>/stat file; exposed for tests.
absl::StatusOr<CpuTimes> ParseProcStat(absl::string_view stat,
                                       long ticks_per_second);
/// ParseProcStat(...).total().
absl::StatusOr<double> ParseProcStatCpuSeconds(absl::string_view stat,
                                               long ticks_per_second);

}  // namespace torii::perf

#endif  // TORII_BENCH_PERF_CPU_USAGE_H_
