#include "latency_stats.h"

#include <algorithm>
#include <cmath>

namespace torii::perf {

int64_t PercentileNs(const std::vector<int64_t>& sorted_ns, double p) {
  if (sorted_ns.empty()) return 0;
  p = std::clamp(p, 0.0, 100.0);
  // Nearest rank: rank = ceil(p/100 * n), 1-based; p = 0 gives the minimum.
  auto n = static_cast<double>(sorted_ns.size());
  auto rank = static_cast<size_t>(std::ceil(p / 100.0 * n - 1e-9));
  if (rank < 1) rank = 1;
  if (rank > sorted_ns.size()) rank = sorted_ns.size();
  return sorted_ns[rank - 1];
}

LatencySummary Summarize(std::vector<int64_t>& latencies_ns) {
  LatencySummary s;
  if (latencies_ns.empty()) return s;
  std::sort(latencies_ns.begin(), latencies_ns.end());
  s.count = latencies_ns.size();
  double sum = 0;
  for (int64_t v : latencies_ns) sum += static_cast<double>(v);
  double mean = sum / static_cast<double>(s.count);
  double sq = 0;
  for (int64_t v : latencies_ns) {
    double d = static_cast<double>(v) - mean;
    sq += d * d;
  }
  constexpr double kUs = 1e-3;
  s.mean_us = mean * kUs;
  s.stddev_us = std::sqrt(sq / static_cast<double>(s.count)) * kUs;
  s.min_us = static_cast<double>(latencies_ns.front()) * kUs;
  s.max_us = static_cast<double>(latencies_ns.back()) * kUs;
  s.p50_us = static_cast<double>(PercentileNs(latencies_ns, 50)) * kUs;
  s.p90_us = static_cast<double>(PercentileNs(latencies_ns, 90)) * kUs;
  s.p95_us = static_cast<double>(PercentileNs(latencies_ns, 95)) * kUs;
  s.p99_us = static_cast<double>(PercentileNs(latencies_ns, 99)) * kUs;
  s.p99_9_us = static_cast<double>(PercentileNs(latencies_ns, 99.9)) * kUs;
  return s;
}

}  // namespace torii::perf
