#include "range.h"

#include <catch2/catch.hpp>

namespace torii::perf {
namespace {

TEST_CASE("concurrency range follows perf_analyzer", "[bench][range]") {
  CHECK(*ParseConcurrencyRange("4") == std::vector<int>{4});
  CHECK(*ParseConcurrencyRange("1:4") == std::vector<int>{1, 2, 3, 4});
  // The step is additive, not a multiplier.
  CHECK(*ParseConcurrencyRange("1:8:2") == std::vector<int>{1, 3, 5, 7});
  CHECK(*ParseConcurrencyRange("16:64:48") == std::vector<int>{16, 64});
}

TEST_CASE("bad concurrency ranges are rejected", "[bench][range]") {
  for (const char* bad : {"", "0", "4:2", "1:4:0", "a", "1:2:3:4", "1::2",
                          "-1:4", "1:100000000"}) {
    INFO(bad);
    CHECK_FALSE(ParseConcurrencyRange(bad).ok());
  }
}

TEST_CASE("request-rate range takes fractional steps", "[bench][range]") {
  CHECK(*ParseRequestRateRange("100") == std::vector<double>{100});
  CHECK(*ParseRequestRateRange("100:300:100") ==
        std::vector<double>{100, 200, 300});
  auto tenths = *ParseRequestRateRange("0.1:0.3:0.1");
  REQUIRE(tenths.size() == 3);  // no rounding drift past the end
  CHECK(tenths[2] == Approx(0.3));
  CHECK_FALSE(ParseRequestRateRange("0").ok());
  CHECK_FALSE(ParseRequestRateRange("10:5").ok());
  CHECK_FALSE(ParseRequestRateRange("10:20:0").ok());
  CHECK_FALSE(ParseRequestRateRange("nan").ok());
}

}  // namespace
}  // namespace torii::perf
