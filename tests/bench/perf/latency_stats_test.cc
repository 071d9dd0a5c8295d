#include "latency_stats.h"

#include <catch2/catch.hpp>

namespace torii::perf {
namespace {

TEST_CASE("nearest-rank percentiles", "[bench][stats]") {
  std::vector<int64_t> v;
  for (int i = 1; i <= 100; ++i) v.push_back(i);
  CHECK(PercentileNs(v, 50) == 50);
  CHECK(PercentileNs(v, 90) == 90);
  CHECK(PercentileNs(v, 99) == 99);
  CHECK(PercentileNs(v, 100) == 100);
  CHECK(PercentileNs(v, 0) == 1);
  std::vector<int64_t> four{10, 20, 30, 40};
  CHECK(PercentileNs(four, 50) == 20);  // rank ceil(2.0) = 2
  CHECK(PercentileNs(four, 51) == 30);  // rank ceil(2.04) = 3
  CHECK(PercentileNs(four, 99) == 40);
  CHECK(PercentileNs({}, 50) == 0);
  CHECK(PercentileNs({7}, 99) == 7);
}

TEST_CASE("summary sorts and converts to microseconds", "[bench][stats]") {
  std::vector<int64_t> ns{4000, 1000, 3000, 2000};
  LatencySummary s = Summarize(ns);
  CHECK(s.count == 4);
  CHECK(s.min_us == Approx(1));
  CHECK(s.max_us == Approx(4));
  CHECK(s.mean_us == Approx(2.5));
  CHECK(s.p50_us == Approx(2));
  CHECK(s.p99_us == Approx(4));
  CHECK(s.stddev_us == Approx(1.118034).epsilon(1e-4));
  std::vector<int64_t> none;
  CHECK(Summarize(none).count == 0);
}

}  // namespace
}  // namespace torii::perf
