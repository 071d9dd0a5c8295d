// Measuring one load point: warm up, then fixed-length windows until the
// stability rule holds (or --max-trials), then merge the stable windows.
#ifndef TORII_BENCH_PERF_MEASUREMENT_H_
#define TORII_BENCH_PERF_MEASUREMENT_H_

#include <cstdint>
#include <functional>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "latency_stats.h"
#include "load_generator.h"
#include "recorder.h"
#include "stability.h"

namespace torii::perf {

struct MeasureOptions {
  int64_t measurement_interval_ms = 5000;
  double stability_percentage = 10;
  int max_trials = 10;
  int64_t warmup_ms = 500;  ///< load before the first window, not counted
  /// Latency the stability rule and the headline use: < 0 = average
  /// (perf_analyzer's default), else that percentile.
  double percentile = -1;
  /// > 0: fixed-count mode (concurrency only): send exactly this many
  /// requests as one window, no warm-up, no stability rule.
  uint64_t request_count = 0;
  /// Fixed-count mode: requests sent first, at the same concurrency and on
  /// the same channels (so the connection is warm), and not recorded.
  uint64_t warmup_count = 0;
  /// Fixed-count mode: called after the warm-up, just before the first
  /// counted request, and again after the last counted response; both times
  /// no request is in flight and the channels stay open, so what runs in
  /// between is exactly `request_count` requests on warm connections (with
  /// --streaming also opening and closing one stream per slot).
  /// bench/perf_gate.py zeroes and dumps callgrind's counters here. A
  /// non-OK status ends the point: see PointResult::setup_error.
  std::function<absl::Status()> on_count_start, on_count_end;
  /// Server process whose CPU time to sample per window; 0 = none.
  int server_pid = 0;
  bool verbose = false;  ///< print each window
};

/// Everything measured at one load point.
struct PointResult {
  std::string mode;  ///< "concurrency" or "request_rate"
  int concurrency = 0;
  double request_rate = 0;
  bool stable = false;
  int trials = 0;                     ///< windows measured
  std::vector<WindowFigures> windows;  ///< every window, in order
  // Merged over the reported (last three, or fewer) windows:
  double duration_s = 0;
  double throughput = 0;  ///< successful inferences per second
  LatencySummary latency;
  uint64_t success = 0;
  std::map<std::string, uint64_t> errors;
  std::string first_error;
  uint64_t skipped = 0;  ///< rate mode: sends skipped at max_inflight
  size_t peak_inflight = 0;
  double client_cpu_s = 0;  ///< this process, over the reported windows
  double server_cpu_s = -1;  ///< --server-pid, over the reported windows
  double server_sys_s = -1;  ///< the kernel-mode part of server_cpu_s
  /// --server-pid: the server's context switches (all threads) over the
  /// reported windows; -1 when unknown.
  double server_context_switches = -1;
  /// Non-empty when the point could not be measured (a failed
  /// on_count_start/on_count_end hook); the figures are then incomplete.
  std::string setup_error;

  uint64_t error_count() const;
  /// CPU cores used on average (cpu seconds / wall seconds).
  double client_cores() const;
  double server_cores() const;
  /// CPU microseconds per completed request (successes + errors).
  double client_cpu_us_per_request() const;
  double server_cpu_us_per_request() const;
  /// Server context switches per request, -1 when unknown.
  double server_context_switches_per_request() const;
};

/// Measures one closed-loop point at `concurrency`.
PointResult MeasureConcurrency(LoadGenerator& gen, int concurrency,
                               const MeasureOptions& options,
                               std::ostream& log);
/// Measures one open-loop point at `rate` requests per second.
PointResult MeasureRequestRate(LoadGenerator& gen, double rate,
                               const MeasureOptions& options,
                               std::ostream& log);

}  // namespace torii::perf

#endif  // TORII_BENCH_PERF_MEASUREMENT_H_
