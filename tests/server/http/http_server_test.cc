// The real listener on 127.0.0.1 (a free port picked by the kernel), with the
// endpoints over fakes, driven by Python's http.client and raw sockets.
#include "server/http/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <catch2/catch.hpp>

#include "server/http/http_api.h"
#include "tests/server/http/fakes.h"

namespace torii {
namespace http {
namespace {

struct Served {
  testing::FakeModelService models;
  testing::FakeDispatcher dispatcher;
  std::unique_ptr<HttpApi> api;
  std::unique_ptr<HttpServer> server;

  explicit Served(HttpServer::Options options = Test()) {
    HttpApi::Options o;
    o.models = &models;
    o.dispatcher = &dispatcher;
    o.max_request_bytes = options.max_body_bytes;
    o.restricted["statistics"] = {"stats-key", "abc"};
    api = std::make_unique<HttpApi>(o);
    auto s = HttpServer::Start(options, api.get());
    REQUIRE(s.ok());
    server = *std::move(s);
  }
  ~Served() { server->Stop(); }

  // What http_client_check.py expects.
  static HttpServer::Options Test() {
    HttpServer::Options o;
    o.address = "127.0.0.1";
    o.port = 0;
    o.threads = 2;
    o.max_body_bytes = 64 * 1024;
    o.idle_timeout = std::chrono::milliseconds(500);
    o.body_timeout = std::chrono::milliseconds(1000);
    return o;
  }
};

// Runs a command, returning its exit code and output.
int Run(const std::string& command, std::string* output) {
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) output->append(buf, n);
  const int rc = pclose(p);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

TEST_CASE("Python http.client: every endpoint, bad input, limits and timeouts", "[http][server]") {
  Served s;
  std::string output;
  const int rc = Run(std::string("/usr/bin/python3 ") + TORII_HTTP_CLIENT_CHECK + " " +
                         std::to_string(s.server->port()),
                     &output);
  INFO(output);
  CHECK(rc == 0);
  // The script's last stream was left by its client mid-way: the model was
  // told to stop long before its 100000 responses.
  for (int i = 0; i < 500 && !s.dispatcher.decoupled_done; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(s.dispatcher.decoupled_done);
  CHECK(s.dispatcher.decoupled_sent < 100000);
  CHECK(s.api->InFlight() == 0);
}

TEST_CASE("a port that is taken is a clear startup error", "[http][server]") {
  Served first;
  HttpServer::Options o = Served::Test();
  o.port = first.server->port();
  testing::FakeModelService models;
  testing::FakeDispatcher dispatcher;
  HttpApi::Options ao;
  ao.models = &models;
  ao.dispatcher = &dispatcher;
  HttpApi api(ao);
  auto second = HttpServer::Start(o, &api);
  REQUIRE_FALSE(second.ok());
  CHECK(second.status().code() == absl::StatusCode::kUnavailable);
  CHECK_THAT(std::string(second.status().message()),
             Catch::Contains("cannot serve HTTP on 127.0.0.1:" + std::to_string(o.port)) &&
                 Catch::Contains("in use") && Catch::Contains("--http-port"));
}

TEST_CASE("bad addresses and thread counts are refused at start", "[http][server]") {
  testing::FakeModelService models;
  testing::FakeDispatcher dispatcher;
  HttpApi::Options ao;
  ao.models = &models;
  ao.dispatcher = &dispatcher;
  HttpApi api(ao);
  HttpServer::Options o = Served::Test();
  o.address = "not-an-address.invalid";
  auto bad = HttpServer::Start(o, &api);
  CHECK_THAT(std::string(bad.status().message()), Catch::Contains("does not resolve"));
  o = Served::Test();
  o.threads = 0;
  CHECK(HttpServer::Start(o, &api).status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("stopping with a request still at the model returns promptly", "[http][server]") {
  auto s = std::make_unique<Served>();
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(s->server->port()));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  const std::string body =
      R"({"inputs":[{"name":"I","datatype":"FP32","shape":[1],"data":[1]}]})";
  const std::string req = "POST /v2/models/slow/infer HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\n\r\n" + body;
  REQUIRE(send(fd, req.data(), req.size(), 0) == static_cast<ssize_t>(req.size()));
  // Let the request reach the (slow) model, then stop under it.
  for (int i = 0; i < 100 && s->dispatcher.last_model.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const auto t0 = std::chrono::steady_clock::now();
  s->server->Stop();
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2));
  char c;
  CHECK(recv(fd, &c, 1, 0) <= 0);  // closed without an answer
  close(fd);
  s.reset();
  // The fake answers 200 ms later into a stopped server: nothing may break.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
}

}  // namespace
}  // namespace http
}  // namespace torii
