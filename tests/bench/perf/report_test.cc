#include "report.h"

#include <sstream>

#include <catch2/catch.hpp>

namespace torii::perf {
namespace {

PointResult Sample() {
  PointResult r;
  r.mode = "concurrency";
  r.concurrency = 16;
  r.stable = true;
  r.trials = 3;
  r.duration_s = 2;
  r.success = 2000;
  r.throughput = 1000;
  r.latency.count = 2000;
  r.latency.p50_us = 120;
  r.latency.p90_us = 150;
  r.latency.p99_us = 400;
  r.latency.p99_9_us = 1234.5;
  r.errors["UNAVAILABLE"] = 2;
  r.first_error = "UNAVAILABLE: \"gone\"\n";
  r.client_cpu_s = 0.5;
  r.windows = {{1000, 120}, {990, 121}, {1010, 119}};
  return r;
}

TEST_CASE("CSV has one header and one row per point", "[bench][report]") {
  std::string csv = CsvReport({Sample(), Sample()});
  std::istringstream in(csv);
  std::string header, row;
  std::getline(in, header);
  std::getline(in, row);
  CHECK_THAT(header, Catch::StartsWith("Mode,Concurrency"));
  CHECK_THAT(row, Catch::StartsWith("concurrency,16,"));
  CHECK_THAT(header, Catch::Contains(",p99 latency,p99.9 latency,"));
  CHECK_THAT(row, Catch::Contains(",400.000,1234.500,"));
  CHECK_THAT(row, Catch::Contains(",2000,2,true,3,"));
  CHECK(std::count(csv.begin(), csv.end(), '\n') == 3);
}

TEST_CASE("JSON escapes strings and keeps the figures", "[bench][report]") {
  RunInfo info;
  info.label = "torii";
  info.command_line = "torii-perf -m \"x\"";
  std::string json = JsonReport(info, {Sample()});
  CHECK_THAT(json, Catch::Contains("\"label\": \"torii\""));
  CHECK_THAT(json, Catch::Contains("\"throughput\": 1000.000"));
  CHECK_THAT(json, Catch::Contains("\"errors\": {\"UNAVAILABLE\": 2}"));
  CHECK_THAT(json, Catch::Contains(R"(UNAVAILABLE: \"gone\"\n)"));
  CHECK_THAT(json, Catch::Contains("\"server_cpu\": null"));
  CHECK_THAT(json, Catch::Contains("\"p90\": 150.000"));
  CHECK_THAT(json, Catch::Contains("\"p99\": 400.000, \"p99.9\": 1234.500"));
  CHECK(JsonString(std::string("a\x01", 2)) == "\"a\\u0001\"");
}

TEST_CASE("console block names the errors", "[bench][report]") {
  std::ostringstream out;
  PrintPoint(out, Sample(), -1);
  CHECK_THAT(out.str(), Catch::Contains("Errors: 2 (UNAVAILABLE=2)"));
  CHECK_THAT(out.str(), Catch::Contains("Throughput: 1000.0 infer/sec"));
  CHECK_THAT(out.str(), Catch::Contains("p90 latency: 150 usec\n"));
  CHECK_THAT(out.str(), Catch::Contains("p99 latency: 400 usec\n"));
  // 2000 samples: a real p99.9, no caveat.
  CHECK_THAT(out.str(), Catch::Contains("p99.9 latency: 1234 usec\n"));
}

TEST_CASE("p99.9 of fewer than 1000 samples is labelled the maximum",
          "[bench][report]") {
  PointResult r = Sample();
  r.latency.count = 500;
  std::ostringstream out;
  PrintPoint(out, r, -1);
  CHECK_THAT(out.str(), Catch::Contains(
                            "p99.9 latency: 1234 usec (the maximum: 500 "
                            "samples < 1000)"));
}

TEST_CASE("the sweep summary gives p50, p90, p99 and p99.9",
          "[bench][report]") {
  std::ostringstream out;
  PrintSweep(out, {Sample()});
  CHECK_THAT(out.str(),
             Catch::Contains("latency p50 120 p90 150 p99 400 p99.9 1234 usec"));
}

}  // namespace
}  // namespace torii::perf
