// The stability rule that decides when torii-perf stops measuring a point.
#ifndef TORII_BENCH_PERF_STABILITY_H_
#define TORII_BENCH_PERF_STABILITY_H_

#include <vector>

namespace torii::perf {

/// What the stability rule looks at in one measurement window.
struct WindowFigures {
  double throughput = 0;  ///< successful inferences per second
  double latency_us = 0;  ///< average latency, or the --percentile latency
};

/// perf_analyzer's rule: the last `window_count` windows are stable when each
/// one's throughput and each one's latency lie within `percentage`% of the
/// mean of those windows. Fewer than `window_count` windows are never
/// stable, and neither is a set with a window that completed nothing.
bool IsStable(const std::vector<WindowFigures>& windows, double percentage,
              int window_count = 3);

}  // namespace torii::perf

#endif  // TORII_BENCH_PERF_STABILITY_H_
