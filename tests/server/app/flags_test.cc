#include "server/app/flags.h"

#include <catch2/catch.hpp>

namespace torii {
namespace {

absl::StatusOr<ServerFlags> Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "torii-server");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return ParseServerFlags(static_cast<int>(argv.size()), argv.data());
}

TEST_CASE("Triton's flag names parse, with = or a separate value") {
  auto f = Parse({"--model-repository=/m", "--grpc-port", "9000", "--grpc-address=127.0.0.1",
                  "--backend-directory=/b", "--log-verbose=1", "--load-model=a",
                  "--load-model", "b", "--model-control-mode=explicit", "--strict-readiness=false"});
  REQUIRE(f.ok());
  CHECK(f->model_repository == "/m");
  CHECK(f->grpc_port == 9000);
  CHECK(f->grpc_address == "127.0.0.1");
  CHECK(f->backend_directories == std::vector<std::string>{"/b"});
  CHECK(f->load_models == std::vector<std::string>{"a", "b"});
  CHECK(f->model_control_mode == "explicit");
  CHECK_FALSE(f->strict_readiness);
}

TEST_CASE("defaults match Triton's") {
  auto f = Parse({"--model-repository=/m"});
  REQUIRE(f.ok());
  CHECK(f->grpc_port == 8001);
  CHECK(f->grpc_address == "0.0.0.0");
  CHECK(f->exit_timeout_secs == 30);
  CHECK(f->strict_readiness);
}

TEST_CASE("unknown flags and bad values are refused with the flag's name") {
  struct Case {
    std::vector<std::string> args;
    const char* expect;
  };
  const Case cases[] = {
      {{"--model-repository=/m", "--grpc_port=1"}, "unknown flag --grpc_port"},
      {{"--model-repository=/m", "--grpc-port=70000"}, "--grpc-port=70000 is invalid"},
      {{"--model-repository=/m", "--grpc-port=abc"}, "--grpc-port=abc"},
      {{"--model-repository=/m", "--model-control-mode=sometimes"}, "none, poll or explicit"},
      {{"--model-repository=/m", "--log-format=xml"}, "default or json"},
      {{"--model-repository=/m", "--strict-readiness=maybe"}, "true or false"},
      {{"--model-repository=/m", "--grpc-port"}, "needs a value"},
      {{"--model-repository=/m", "stray"}, "unexpected argument 'stray'"},
      {{}, "--model-repository=DIR is required"},
  };
  for (const auto& c : cases) {
    auto f = Parse(c.args);
    REQUIRE_FALSE(f.ok());
    INFO(f.status().message());
    CHECK(std::string(f.status().message()).find(c.expect) != std::string::npos);
  }
}

TEST_CASE("HTTP flags: Triton's names and defaults") {
  auto d = Parse({"--model-repository=/m"});
  REQUIRE(d.ok());
  CHECK(d->allow_http);
  CHECK(d->http_port == 8000);
  CHECK(d->http_address == "0.0.0.0");
  CHECK(d->http_thread_count == 8);
  CHECK(d->http_restrictions.empty());
  CHECK(d->http_idle_timeout_secs == 60);
  CHECK(d->http_io_timeout_secs == 120);

  auto f = Parse({"--model-repository=/m", "--allow-http=false", "--http-port=9000",
                  "--http-address=127.0.0.1", "--http-thread-count", "3",
                  "--http-restricted-api=model-repository,statistics:Admin-Key=s3cret",
                  "--http-restricted-api=inference,infer-key=k",
                  "--grpc-restricted-protocol=health:h=v",
                  "--grpc-restricted-protocol=shared-memory,trace,logging:ops=1"});
  REQUIRE(f.ok());
  CHECK_FALSE(f->allow_http);
  CHECK(f->http_port == 9000);
  CHECK(f->http_address == "127.0.0.1");
  CHECK(f->http_thread_count == 3);
  REQUIRE(f->http_restrictions.size() == 2);
  CHECK(f->http_restrictions[0].protocols == std::vector<std::string>{"model-repository", "statistics"});
  CHECK(f->http_restrictions[0].header == "admin-key");  // matched in lower case
  CHECK(f->http_restrictions[0].value == "s3cret");
  CHECK(f->http_restrictions[1].protocols == std::vector<std::string>{"inference"});
  CHECK(f->http_restrictions[1].header == "infer-key");
  // The two restriction flags fill their own lists.
  REQUIRE(f->restrictions.size() == 2);
  CHECK(f->restrictions[0].protocols == std::vector<std::string>{"health"});
  CHECK(f->restrictions[1].protocols ==
        std::vector<std::string>{"shared-memory", "trace", "logging"});

  CHECK(Parse({"--model-repository=/m", "--http-port=0"})->http_port == 0);
  auto t = Parse({"--model-repository=/m", "--http-idle-timeout-secs=2", "--http-io-timeout-secs", "3"});
  REQUIRE(t.ok());
  CHECK(t->http_idle_timeout_secs == 2);
  CHECK(t->http_io_timeout_secs == 3);
  CHECK(Parse({"--model-repository=/m", "--allow-http=false", "--http-port=8001"}).ok());
}

TEST_CASE("bad HTTP flags are refused with the flag's name") {
  struct Case {
    std::vector<std::string> args;
    const char* expect;
  };
  const Case cases[] = {
      {{"--model-repository=/m", "--http-port=65536"}, "--http-port=65536 is invalid"},
      {{"--model-repository=/m", "--http-thread-count=0"}, "--http-thread-count=0 is invalid"},
      {{"--model-repository=/m", "--http-idle-timeout-secs=0"}, "--http-idle-timeout-secs=0 is invalid"},
      {{"--model-repository=/m", "--http-io-timeout-secs=x"}, "--http-io-timeout-secs=x is invalid"},
      {{"--model-repository=/m", "--allow-http=yes"}, "true or false"},
      {{"--model-repository=/m", "--http-address="}, "--http-address= is invalid"},
      {{"--model-repository=/m", "--http-restricted-api=admin:k=v"}, "--http-restricted-api=admin:k=v is invalid"},
      {{"--model-repository=/m", "--http-restricted-api=health"}, "PROTOCOL[,PROTOCOL...]:HEADER=VALUE"},
      {{"--model-repository=/m", "--http-port=8001"}, "--http-port and --grpc-port are both 8001"},
      {{"--model-repository=/m", "--http-port=8002"}, "--http-port and --metrics-port are both 8002"},
  };
  for (const auto& c : cases) {
    auto f = Parse(c.args);
    REQUIRE_FALSE(f.ok());
    INFO(f.status().message());
    CHECK(std::string(f.status().message()).find(c.expect) != std::string::npos);
  }
}

TEST_CASE("--help needs no repository and lists every flag") {
  auto f = Parse({"--help"});
  REQUIRE(f.ok());
  CHECK(f->help);
  const std::string help = ServerFlagsHelp();
  for (const char* name : {"--model-repository", "--grpc-port", "--grpc-address", "--backend-directory",
                           "--log-verbose", "--model-control-mode", "--exit-timeout-secs",
                           "--allow-http", "--http-port", "--http-address", "--http-thread-count",
                           "--http-restricted-api"}) {
    CHECK(help.find(name) != std::string::npos);
  }
}

}  // namespace
}  // namespace torii
