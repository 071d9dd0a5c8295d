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

TEST_CASE("--help needs no repository and lists every flag") {
  auto f = Parse({"--help"});
  REQUIRE(f.ok());
  CHECK(f->help);
  const std::string help = ServerFlagsHelp();
  for (const char* name : {"--model-repository", "--grpc-port", "--grpc-address", "--backend-directory",
                           "--log-verbose", "--model-control-mode", "--exit-timeout-secs"}) {
    CHECK(help.find(name) != std::string::npos);
  }
}

}  // namespace
}  // namespace torii
