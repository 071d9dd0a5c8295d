// torii-perf's load engine against the echo server (in-process, free
// loopback port): short windows, zero errors; and error accounting against
// a server that fails every request.
#include "load_generator.h"

#include <atomic>
#include <sstream>

#include <catch2/catch.hpp>

#include "../bench_server.h"
#include "echo_service.h"
#include "measurement.h"
#include "payload.h"

namespace torii::perf {
namespace {

using torii::bench::testing::InProcessServer;

// Fails every ModelInfer with NOT_FOUND; streams answer with error_message.
class FailingService final
    : public inference::GRPCInferenceService::CallbackService {
  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* ctx,
                                       const inference::ModelInferRequest*,
                                       inference::ModelInferResponse*) override {
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND, "no such model"));
    return reactor;
  }
  grpc::ServerBidiReactor<inference::ModelInferRequest,
                          inference::ModelStreamInferResponse>*
  ModelStreamInfer(grpc::CallbackServerContext*) override {
    class Stream final
        : public grpc::ServerBidiReactor<inference::ModelInferRequest,
                                         inference::ModelStreamInferResponse> {
     public:
      Stream() { StartRead(&request_); }
      void OnReadDone(bool ok) override {
        if (!ok) return Finish(grpc::Status::OK);
        response_.set_error_message("bad request");
        StartWrite(&response_);
      }
      void OnWriteDone(bool) override { StartRead(&request_); }
      void OnDone() override { delete this; }

     private:
      inference::ModelInferRequest request_;
      inference::ModelStreamInferResponse response_;
    };
    return new Stream();
  }
};

// Echoes ModelInfer and counts the calls it answered.
class CountingEcho final
    : public inference::GRPCInferenceService::CallbackService {
 public:
  grpc::ServerUnaryReactor* ModelInfer(
      grpc::CallbackServerContext* ctx,
      const inference::ModelInferRequest* request,
      inference::ModelInferResponse* response) override {
    torii::bench::Echo(*request, response);
    ++calls;
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  std::atomic<int> calls{0};
};

LoadOptions Options(const std::string& address, bool streaming) {
  auto sample =
      MakeSyntheticSample({{"INPUT0", "FP32", {1, 256}}}, DataMode::kRandom, 1);
  REQUIRE(sample.ok());
  auto request = BuildRequest(*sample, {"identity", "", false, {}});
  REQUIRE(request.ok());
  LoadOptions o;
  o.url = address;
  o.streaming = streaming;
  o.requests = {*request};
  o.connect_timeout_ms = 5000;
  return o;
}

MeasureOptions ShortWindows() {
  MeasureOptions m;
  m.measurement_interval_ms = 200;
  m.max_trials = 3;
  m.warmup_ms = 50;
  m.stability_percentage = 10;
  return m;
}

TEST_CASE("a short window against echo completes with zero errors",
          "[bench][perf][e2e]") {
  torii::bench::EchoService echo;
  InProcessServer server(&echo);
  for (bool streaming : {false, true}) {
    INFO((streaming ? "streaming" : "unary"));
    auto gen = LoadGenerator::Create(Options(server.address(), streaming));
    REQUIRE(gen.ok());
    std::ostringstream log;
    PointResult r = MeasureConcurrency(**gen, 4, ShortWindows(), log);
    CHECK(r.error_count() == 0);
    CHECK(r.success > 0);
    CHECK(r.throughput > 0);
    CHECK(r.latency.p50_us > 0);
    CHECK(r.latency.p99_us >= r.latency.p50_us);
    CHECK(r.trials >= 1);
    CHECK(r.trials <= 3);
    CHECK(r.peak_inflight == 4);
  }
}

TEST_CASE("fixed-count mode sends exactly N requests", "[bench][perf][e2e]") {
  torii::bench::EchoService echo;
  InProcessServer server(&echo);
  for (bool streaming : {false, true}) {
    INFO((streaming ? "streaming" : "unary"));
    auto gen = LoadGenerator::Create(Options(server.address(), streaming));
    REQUIRE(gen.ok());
    MeasureOptions m;
    m.request_count = 250;
    std::ostringstream log;
    PointResult r = MeasureConcurrency(**gen, 3, m, log);
    CHECK(r.success == 250);
    CHECK(r.error_count() == 0);
    CHECK(r.latency.count == 250);
  }
}

TEST_CASE("fixed count: warm-up requests are not counted, hooks bracket the "
          "counted ones", "[bench][perf][e2e]") {
  CountingEcho echo;
  InProcessServer server(&echo);
  auto gen = LoadGenerator::Create(Options(server.address(), false));
  REQUIRE(gen.ok());
  MeasureOptions m;
  m.warmup_count = 30;
  m.request_count = 50;
  int at_start = -1, at_end = -1;
  m.on_count_start = [&] {
    at_start = echo.calls.load();
    return absl::OkStatus();
  };
  m.on_count_end = [&] {
    at_end = echo.calls.load();
    return absl::OkStatus();
  };
  std::ostringstream log;
  PointResult r = MeasureConcurrency(**gen, 2, m, log);
  CHECK(at_start == 30);
  CHECK(at_end == 80);
  CHECK(r.success == 50);
  CHECK(r.latency.count == 50);
  CHECK(r.error_count() == 0);
  CHECK(r.setup_error.empty());
}

TEST_CASE("fixed count: a failing start hook stops the point before the "
          "counted requests", "[bench][perf][e2e]") {
  CountingEcho echo;
  InProcessServer server(&echo);
  auto gen = LoadGenerator::Create(Options(server.address(), false));
  REQUIRE(gen.ok());
  MeasureOptions m;
  m.warmup_count = 5;
  m.request_count = 50;
  bool end_called = false;
  m.on_count_start = [] { return absl::InternalError("no profiler"); };
  m.on_count_end = [&] {
    end_called = true;
    return absl::OkStatus();
  };
  std::ostringstream log;
  PointResult r = MeasureConcurrency(**gen, 1, m, log);
  CHECK(echo.calls.load() == 5);
  CHECK(r.success == 0);
  CHECK_FALSE(end_called);
  CHECK_THAT(r.setup_error, Catch::Contains("on_count_start: no profiler"));
}

TEST_CASE("request-rate mode against echo", "[bench][perf][e2e]") {
  torii::bench::EchoService echo;
  InProcessServer server(&echo);
  for (bool streaming : {false, true}) {
    INFO((streaming ? "streaming" : "unary"));
    LoadOptions o = Options(server.address(), streaming);
    o.distribution = Distribution::kPoisson;
    o.channels = 2;
    auto gen = LoadGenerator::Create(std::move(o));
    REQUIRE(gen.ok());
    std::ostringstream log;
    PointResult r = MeasureRequestRate(**gen, 500, ShortWindows(), log);
    CHECK(r.error_count() == 0);
    CHECK(r.success > 0);
    CHECK(r.skipped == 0);
  }
}

TEST_CASE("failures are counted by gRPC code", "[bench][perf][e2e]") {
  FailingService failing;
  InProcessServer server(&failing);
  MeasureOptions m;
  m.request_count = 20;
  std::ostringstream log;

  auto unary = LoadGenerator::Create(Options(server.address(), false));
  REQUIRE(unary.ok());
  PointResult r = MeasureConcurrency(**unary, 2, m, log);
  CHECK(r.success == 0);
  CHECK(r.errors["NOT_FOUND"] == 20);
  CHECK_THAT(r.first_error, Catch::Contains("no such model"));

  auto stream = LoadGenerator::Create(Options(server.address(), true));
  REQUIRE(stream.ok());
  r = MeasureConcurrency(**stream, 2, m, log);
  CHECK(r.errors["STREAM_ERROR"] == 20);
}

TEST_CASE("an unreachable server is a clear setup error", "[bench][perf]") {
  std::string address;
  {
    torii::bench::EchoService echo;
    InProcessServer server(&echo);
    address = server.address();
  }  // now closed
  LoadOptions o = Options(address, false);
  o.connect_timeout_ms = 300;
  auto gen = LoadGenerator::Create(std::move(o));
  REQUIRE_FALSE(gen.ok());
  CHECK(gen.status().code() == absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace torii::perf
