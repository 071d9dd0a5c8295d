// Sweep ranges for torii-perf: "start[:end[:step]]", as perf_analyzer takes
// them for --concurrency-range and --request-rate-range.
#ifndef TORII_BENCH_PERF_RANGE_H_
#define TORII_BENCH_PERF_RANGE_H_

#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/statusor.h"

namespace torii::perf {

/// Parses a concurrency range "start[:end[:step]]" into the list of values
/// to measure. Follows perf_analyzer: `end` defaults to `start`, `step`
/// defaults to 1 and is additive (1:8:2 → 1,3,5,7). Values must be ≥ 1 and
/// end ≥ start; the list is capped at 10000 entries.
absl::StatusOr<std::vector<int>> ParseConcurrencyRange(absl::string_view text);

/// Same grammar for --request-rate-range (requests per second, may be
/// fractional: "100:500:100" → 100,200,...,500). Values must be > 0.
absl::StatusOr<std::vector<double>> ParseRequestRateRange(
    absl::string_view text);

}  // namespace torii::perf

#endif  // TORII_BENCH_PERF_RANGE_H_
