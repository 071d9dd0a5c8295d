// Latency summaries for torii-perf: percentiles by the nearest-rank rule.
#ifndef TORII_BENCH_PERF_LATENCY_STATS_H_
#define TORII_BENCH_PERF_LATENCY_STATS_H_

#include <cstdint>
#include <vector>

namespace torii::perf {

/// Summary of a set of request latencies, all in microseconds.
struct LatencySummary {
  uint64_t count = 0;
  double min_us = 0, max_us = 0, mean_us = 0, stddev_us = 0;
  double p50_us = 0, p90_us = 0, p95_us = 0, p99_us = 0;
  /// Nearest rank too: with fewer than 1000 samples this is the maximum.
  double p99_9_us = 0;
};

/// The fewest samples for which p99.9 is not simply the maximum.
inline constexpr uint64_t kSamplesForP99_9 = 1000;

/// Nearest-rank percentile of `sorted_ns` (ascending, nanoseconds), in
/// nanoseconds: the smallest value such that at least p% of the samples are
/// ≤ it. p is in [0, 100]; an empty input gives 0.
int64_t PercentileNs(const std::vector<int64_t>& sorted_ns, double p);

/// Sorts `latencies_ns` in place and summarises it.
LatencySummary Summarize(std::vector<int64_t>& latencies_ns);

}  // namespace torii::perf

#endif  // TORII_BENCH_PERF_LATENCY_STATS_H_
