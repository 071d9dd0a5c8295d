#include "cli.h"

#include <string>
#include <vector>

#include <catch2/catch.hpp>

namespace torii::perf {
namespace {

absl::StatusOr<PerfConfig> Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "torii-perf");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  return ParseCommandLine(static_cast<int>(args.size()), argv.data());
}

TEST_CASE("HTTP: -i http, tensor formats, default port 8000", "[bench][cli]") {
  auto c = Parse({"-m", "identity", "-i", "http"});
  REQUIRE(c.ok());
  CHECK(c->protocol == Protocol::kHttp);
  CHECK(c->url == "127.0.0.1:8000");
  CHECK(c->http_binary_inputs);
  CHECK(c->http_binary_outputs);
  c = Parse({"-m", "identity", "-i", "HTTP", "-u", "h:9", "--input-tensor-format", "json",
             "--output-tensor-format=json", "--http-threads", "3"});
  REQUIRE(c.ok());
  CHECK(c->url == "h:9");
  CHECK_FALSE(c->http_binary_inputs);
  CHECK_FALSE(c->http_binary_outputs);
  CHECK(c->http_threads == 3);
  CHECK(Parse({"-m", "m"})->protocol == Protocol::kGrpc);
  CHECK(Parse({"-m", "m"})->url == "127.0.0.1:8001");
  for (std::vector<std::string> bad :
       {std::vector<std::string>{"-m", "m", "-i", "ftp"},
        {"-m", "m", "-i", "http", "--streaming"},
        {"-m", "m", "-i", "http", "--typed"},
        {"-m", "m", "--input-tensor-format", "json"},
        {"-m", "m", "-i", "http", "--output-tensor-format", "xml"}}) {
    INFO(bad[bad.size() - 1]);
    CHECK_FALSE(Parse(bad).ok());
  }
}

TEST_CASE("perf_analyzer-style flags parse", "[bench][cli]") {
  auto c = Parse({"-m", "identity", "-u", "127.0.0.1:9000",
                  "--concurrency-range", "1:64:2", "-p", "2000", "-s", "5",
                  "--max-trials", "4", "--input", "INPUT0:FP32:1,256",
                  "--streaming", "--typed", "-f", "out.csv", "--output-json",
                  "out.json", "--channels", "2", "--percentile=95"});
  REQUIRE(c.ok());
  CHECK(c->model_name == "identity");
  CHECK(c->url == "127.0.0.1:9000");
  CHECK(c->concurrency.size() == 32);
  CHECK(c->concurrency.back() == 63);
  CHECK(c->measure.measurement_interval_ms == 2000);
  CHECK(c->measure.stability_percentage == 5);
  CHECK(c->measure.max_trials == 4);
  CHECK(c->measure.percentile == 95);
  REQUIRE(c->inputs.size() == 1);
  CHECK(c->streaming);
  CHECK(c->typed);
  CHECK(c->csv_path == "out.csv");
  CHECK(c->json_path == "out.json");
  CHECK(c->channels == 2);
  CHECK_FALSE(c->rate_mode);
}

TEST_CASE("defaults match perf_analyzer's", "[bench][cli]") {
  auto c = Parse({"--model-name", "m"});
  REQUIRE(c.ok());
  CHECK(c->url == "127.0.0.1:8001");
  CHECK(c->concurrency == std::vector<int>{1});
  CHECK(c->measure.measurement_interval_ms == 5000);
  CHECK(c->measure.stability_percentage == 10);
  CHECK(c->measure.max_trials == 10);
  CHECK(c->measure.percentile < 0);
  CHECK_FALSE(c->typed);
  CHECK(c->channels == 1);
}

TEST_CASE("request-rate mode", "[bench][cli]") {
  auto c = Parse({"-m", "m", "--request-rate-range", "100:300:100",
                  "--request-distribution", "poisson"});
  REQUIRE(c.ok());
  CHECK(c->rate_mode);
  CHECK(c->request_rates.size() == 3);
  CHECK(c->distribution == Distribution::kPoisson);
}

TEST_CASE("bad command lines are rejected with a reason", "[bench][cli]") {
  CHECK_FALSE(Parse({}).ok());  // no model
  CHECK_FALSE(Parse({"-m", "m", "--concurrency-range", "0"}).ok());
  CHECK_FALSE(Parse({"-m", "m", "-i", "ftp"}).ok());
  CHECK_FALSE(Parse({"-m", "m", "--no-such-flag"}).ok());
  CHECK_FALSE(Parse({"-m", "m", "-p"}).ok());
  CHECK_FALSE(Parse({"-m", "m", "-p", "abc"}).ok());
  CHECK_FALSE(Parse({"-m", "m", "stray"}).ok());
  CHECK_FALSE(Parse({"-m", "m", "--request-rate-range", "10",
                     "--request-count", "5"}).ok());
  CHECK_FALSE(Parse({"-m", "m", "--warmup-count", "5"}).ok());
  CHECK_FALSE(Parse({"-m", "m", "--on-count-start", "true"}).ok());
  CHECK_FALSE(Parse({"-m", "m", "--request-count", "5", "--warmup-count",
                     "-1"}).ok());
  auto help = Parse({"--help"});
  REQUIRE(help.ok());
  CHECK(help->help);
  CHECK_THAT(Usage(), Catch::Contains("--concurrency-range"));
}

TEST_CASE("fixed count with a warm-up and hooks", "[bench][cli]") {
  auto c = Parse({"-m", "m", "--request-count", "2000", "--warmup-count",
                  "200", "--on-count-start", "callgrind_control -z 42",
                  "--on-count-end", "callgrind_control --dump 42"});
  REQUIRE(c.ok());
  CHECK(c->measure.request_count == 2000);
  CHECK(c->measure.warmup_count == 200);
  CHECK(c->on_count_start_cmd == "callgrind_control -z 42");
  CHECK(c->on_count_end_cmd == "callgrind_control --dump 42");
}

TEST_CASE("shell hooks succeed on status 0 and name the failure otherwise",
          "[bench][cli]") {
  CHECK(ShellCommandHook("on-count-start", "") == nullptr);
  auto ok = ShellCommandHook("on-count-start", "true");
  REQUIRE(ok);
  CHECK(ok().ok());
  auto fails = ShellCommandHook("on-count-end", "exit 3");
  REQUIRE(fails);
  absl::Status s = fails();
  CHECK_FALSE(s.ok());
  CHECK_THAT(std::string(s.message()),
             Catch::Contains("--on-count-end 'exit 3' exited with status 3"));
  auto killed = ShellCommandHook("on-count-end", "kill -9 $$");
  CHECK_THAT(std::string(killed().message()),
             Catch::Contains("killed by signal 9"));
}

}  // namespace
}  // namespace torii::perf
