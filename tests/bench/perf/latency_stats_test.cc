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

TEST_CASE("p99.9 by nearest rank, and the maximum below 1000 samples",
          "[bench][stats]") {
  // 1..2000 shuffled: p99.9 is rank ceil(0.999 * 2000) = 1998.
  std::vector<int64_t> ns;
  for (int64_t i = 2000; i >= 1; --i) ns.push_back(i * 1000);
  std::swap(ns[3], ns[1500]);
  LatencySummary s = Summarize(ns);
  CHECK(s.p99_us == Approx(1980));
  CHECK(s.p99_9_us == Approx(1998));
  CHECK(s.max_us == Approx(2000));

  // Exactly 1000: rank 999, no longer the maximum.
  std::vector<int64_t> thousand;
  for (int64_t i = 1; i <= 1000; ++i) thousand.push_back(i * 1000);
  CHECK(Summarize(thousand).p99_9_us == Approx(999));

  // 999 samples: rank ceil(998.001) = 999, the maximum.
  std::vector<int64_t> fewer;
  for (int64_t i = 1; i <= 999; ++i) fewer.push_back(i * 1000);
  LatencySummary f = Summarize(fewer);
  CHECK(f.p99_9_us == Approx(f.max_us));
  CHECK(f.p99_us == Approx(990));  // rank ceil(989.01) = 990
  CHECK(f.count < kSamplesForP99_9);
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
  CHECK(s.p99_9_us == Approx(4));
  CHECK(s.stddev_us == Approx(1.118034).epsilon(1e-4));
  std::vector<int64_t> none;
  CHECK(Summarize(none).count == 0);
}

}  // namespace
}  // namespace torii::perf
