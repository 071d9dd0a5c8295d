#include "stability.h"

#include <cmath>

namespace torii::perf {
namespace {

// Every value within `percentage`% of the mean of `values`.
bool WithinOfMean(const std::vector<double>& values, double percentage) {
  double mean = 0;
  for (double v : values) mean += v;
  mean /= static_cast<double>(values.size());
  double tolerance = std::fabs(mean) * percentage / 100.0;
  for (double v : values) {
    if (std::fabs(v - mean) > tolerance) return false;
  }
  return true;
}

}  // namespace

bool IsStable(const std::vector<WindowFigures>& windows, double percentage,
              int window_count) {
  if (window_count < 1 ||
      windows.size() < static_cast<size_t>(window_count)) {
    return false;
  }
  std::vector<double> throughput, latency;
  for (size_t i = windows.size() - window_count; i < windows.size(); ++i) {
    throughput.push_back(windows[i].throughput);
    latency.push_back(windows[i].latency_us);
  }
  bool any_zero = false;
  for (double t : throughput) any_zero = any_zero || t <= 0;
  if (any_zero) return false;
  return WithinOfMean(throughput, percentage) &&
         WithinOfMean(latency, percentage);
}

}  // namespace torii::perf
