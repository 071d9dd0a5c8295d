// torii-perf's HTTP client against Torii's own HTTP listener (in process, a
// free loopback port) with a handler that answers every request: successes
// counted, keep-alive connections reused, errors by status.
#include <atomic>
#include <sstream>

#include <catch2/catch.hpp>

#include "http_payload.h"
#include "load_generator.h"
#include "measurement.h"
#include "server/http/http_server.h"

namespace torii::perf {
namespace {

// 200 with a small body for /v2/models/ok/infer, 503 for anything else;
// counts requests (the liveness probe included).
class Handler final : public http::HttpHandler {
 public:
  void Handle(std::unique_ptr<http::HttpRequest> request,
              std::shared_ptr<http::HttpResponder> responder) override {
    ++requests;
    http::HttpResponse r;
    if (request->path == "/v2/models/ok/infer" && request->body.size() == expected_body) {
      r.body = R"({"model_name":"ok","outputs":[]})";
    } else if (request->path == "/v2/health/live") {
      r.status = 200;
    } else {
      r.status = 503;
      r.body = R"({"error":"no"})";
    }
    responder->Send(std::move(r));
  }
  std::atomic<int> requests{0};
  size_t expected_body = 0;
};

LoadOptions Options(int port, const std::string& model, size_t* body_size) {
  auto sample = MakeSyntheticSample({{"INPUT0", "FP32", {1, 256}}}, DataMode::kRandom, 1);
  REQUIRE(sample.ok());
  HttpRequestOptions ho;
  ho.host = "127.0.0.1:" + std::to_string(port);
  ho.model_name = model;
  auto request = BuildHttpRequest(*sample, ho);
  REQUIRE(request.ok());
  *body_size = request->size() - request->find("\r\n\r\n") - 4;
  LoadOptions o;
  o.url = ho.host;
  o.protocol = Protocol::kHttp;
  o.http_requests = {*request};
  o.connect_timeout_ms = 5000;
  return o;
}

struct Listener {
  Handler handler;
  std::unique_ptr<http::HttpServer> server;
  Listener() {
    http::HttpServer::Options so;
    so.address = "127.0.0.1";
    so.port = 0;
    so.threads = 2;
    auto s = http::HttpServer::Start(so, &handler);
    REQUIRE(s.ok());
    server = *std::move(s);
  }
};

TEST_CASE("HTTP load: fixed count over keep-alive connections", "[bench][perf][http]") {
  Listener l;
  LoadOptions o = Options(l.server->port(), "ok", &l.handler.expected_body);
  auto gen = LoadGenerator::Create(std::move(o));
  REQUIRE(gen.ok());
  const int probes = l.handler.requests.load();
  MeasureOptions m;
  m.request_count = 300;
  std::ostringstream log;
  PointResult r = MeasureConcurrency(**gen, 4, m, log);
  CHECK(r.success == 300);
  CHECK(r.error_count() == 0);
  CHECK(l.handler.requests.load() - probes == 300);
  // One connection per slot, reused: 4 connections for 300 requests.
  CHECK(l.server->open_connections() <= 4);
}

TEST_CASE("HTTP load: answers other than 200 are errors by status", "[bench][perf][http]") {
  Listener l;
  LoadOptions o = Options(l.server->port(), "busy", &l.handler.expected_body);
  auto gen = LoadGenerator::Create(std::move(o));
  REQUIRE(gen.ok());
  MeasureOptions m;
  m.request_count = 20;
  std::ostringstream log;
  PointResult r = MeasureConcurrency(**gen, 2, m, log);
  CHECK(r.success == 0);
  CHECK(r.errors["HTTP 503"] == 20);
  CHECK_THAT(r.first_error, Catch::Contains("no"));
}

TEST_CASE("HTTP load: a server that is not there fails at setup", "[bench][perf][http]") {
  size_t ignored;
  LoadOptions o = Options(1, "ok", &ignored);
  o.connect_timeout_ms = 1000;
  auto gen = LoadGenerator::Create(std::move(o));
  CHECK(gen.status().code() == absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace torii::perf
