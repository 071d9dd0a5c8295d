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
  /// Voluntary context switches of all threads (a thread blocked: waited for
  /// another thread, a lock, or I/O); -1 when unknown.
  double context_switches = -1;
  double total() const { return user_s + system_s; }
};

/// User and system CPU seconds used so far by process `pid` (all threads),
/// from /proc/<pid>/stat (resolution: one clock tick, usually 10 ms).
absl::StatusOr<CpuTimes> ProcessCpuTimes(int pid);
/// ProcessCpuTimes(pid).total().
absl::StatusOr<double> ProcessCpuSeconds(int pid);

/// Voluntary context switches so far of every thread of process `pid` (the
/// sum over /proc/<pid>/task/*/status): each time a thread blocked. A thread
/// hand-off per request shows here (the receiving thread sleeps and is
/// woken), where instruction counts cannot see it. Involuntary switches
/// (preemption) are left out: on a shared machine they measure the
/// neighbours.
absl::StatusOr<double> ProcessContextSwitches(int pid);
/// The voluntary context switches in the text of a /proc/<pid>/status file
/// (0 when absent); exposed for tests.
double ParseContextSwitches(absl::string_view status);

/// Parses the text of a /proc/<pid>/stat file; exposed for tests.
absl::StatusOr<CpuTimes> ParseProcStat(absl::string_view stat,
                                       long ticks_per_second);
/// ParseProcStat(...).total().
absl::StatusOr<double> ParseProcStatCpuSeconds(absl::string_view stat,
                                               long ticks_per_second);

}  // namespace torii::perf

#endif  // TORII_BENCH_PERF_CPU_USAGE_H_
