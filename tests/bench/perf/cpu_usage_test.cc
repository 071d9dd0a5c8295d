#include "cpu_usage.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

namespace torii::perf {
namespace {

TEST_CASE("proc stat parsing survives odd process names", "[bench][cpu]") {
  // Fields 14 and 15 (utime, stime) are 250 and 50 ticks.
  const char* stat =
      "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 "
      "20 0 5 0 100 1000 100";
  auto seconds = ParseProcStatCpuSeconds(stat, 100);
  REQUIRE(seconds.ok());
  CHECK(*seconds == Approx(3.0));
  auto times = ParseProcStat(stat, 100);
  REQUIRE(times.ok());
  CHECK(times->user_s == Approx(2.5));
  CHECK(times->system_s == Approx(0.5));
  CHECK_FALSE(ParseProcStatCpuSeconds("garbage", 100).ok());
  CHECK_FALSE(ParseProcStatCpuSeconds("1 (x) S 1 2", 100).ok());
}

TEST_CASE("this process's CPU time is readable both ways", "[bench][cpu]") {
  volatile double sink = 0;
  for (int i = 0; i < 20000000; ++i) sink = sink + i * 0.5;
  CHECK(SelfCpuSeconds() > 0);
  auto mine = ProcessCpuSeconds(getpid());
  REQUIRE(mine.ok());
  CHECK(*mine >= 0);
  CHECK_FALSE(ProcessCpuSeconds(-5).ok());
}

TEST_CASE("voluntary context switches, summed over threads", "[bench][cpu]") {
  CHECK(ParseContextSwitches("Name:\tx\nvoluntary_ctxt_switches:\t12\n"
                             "nonvoluntary_ctxt_switches:\t3\n") == Approx(12));
  CHECK(ParseContextSwitches("Name:\tx\n") == Approx(0));
  auto before = ProcessContextSwitches(getpid());
  REQUIRE(before.ok());
  // A thread that sleeps is switched out at least once.
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  auto after = ProcessContextSwitches(getpid());
  REQUIRE(after.ok());
  CHECK(*after > *before);
  CHECK_FALSE(ProcessContextSwitches(-5).ok());
}

}  // namespace
}  // namespace torii::perf
