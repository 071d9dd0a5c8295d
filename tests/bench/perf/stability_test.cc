#include "stability.h"

#include <catch2/catch.hpp>

namespace torii::perf {
namespace {

TEST_CASE("three windows within the percentage are stable",
          "[bench][stability]") {
  CHECK(IsStable({{1000, 100}, {1050, 104}, {980, 97}}, 10));
  // Only the last three count.
  CHECK(IsStable({{10, 900}, {1000, 100}, {1050, 104}, {980, 97}}, 10));
}

TEST_CASE("fewer than three windows are never stable", "[bench][stability]") {
  CHECK_FALSE(IsStable({}, 10));
  CHECK_FALSE(IsStable({{1000, 100}, {1000, 100}}, 10));
}

TEST_CASE("throughput or latency outside the percentage is unstable",
          "[bench][stability]") {
  // Mean 1100: 1300 is 18% off.
  CHECK_FALSE(IsStable({{1000, 100}, {1000, 100}, {1300, 100}}, 10));
  CHECK_FALSE(IsStable({{1000, 100}, {1000, 100}, {1000, 130}}, 10));
  // The same figures pass a looser rule.
  CHECK(IsStable({{1000, 100}, {1000, 100}, {1300, 100}}, 20));
  // Zero percent: only identical windows.
  CHECK(IsStable({{5, 1}, {5, 1}, {5, 1}}, 0));
}

TEST_CASE("a window that completed nothing is unstable", "[bench][stability]") {
  CHECK_FALSE(IsStable({{0, 0}, {0, 0}, {0, 0}}, 10));
  CHECK_FALSE(IsStable({{1000, 100}, {1000, 100}, {0, 0}}, 10));
}

}  // namespace
}  // namespace torii::perf
