// Lifecycle promises of the server, end to end with the real binary: ports,
// loads and unloads that stay bounded and independent, reloads, signals.
// Each case is a regression test for a defect found in review (issues 11 and
// 18): it failed before the fix.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/e2e/e2e_util.h"
#include "tests/util/e2e_client.h"
#include "tests/util/server_process.h"

namespace torii {
namespace testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

const std::string kIsolated = ConfigParameter("isolation", "process");

inference::ModelInferRequest Hang(const std::string& model, int64_t sleep_ms = 600000) {
  auto r = IdentityRequest({1}, model);
  (*r.mutable_parameters())["fault"].set_string_param("sleep");
  (*r.mutable_parameters())["sleep_ms"].set_int64_param(sleep_ms);
  return r;
}

std::string ModelProperty(inference::GRPCInferenceService::Stub& stub, const std::string& model,
                          const std::string& key) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, milliseconds(2000));
  inference::ModelMetadataRequest q;
  q.set_name(model);
  inference::ModelMetadataResponse r;
  if (!stub.ModelMetadata(&ctx, q, &r).ok()) return "";
  auto it = r.properties().find(key);
  return it == r.properties().end() ? "" : it->second;
}

int ThreadCount(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  }
  return -1;
}

// Runs the server binary to its end and returns (exit status, output).
std::pair<int, std::string> RunToExit(const std::vector<std::string>& args) {
  std::string cmd = "timeout 30 '" + ServerBinary() + "'";
  for (const auto& a : args) cmd += " '" + a + "'";
  cmd += " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[512];
  while (fgets(buf, sizeof(buf), p) != nullptr) out += buf;
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

TEST_CASE("a gRPC port already in use stops the second server with a clear error") {
  TempRepository repo;
  auto first = StartServer(repo);
  auto [code, out] =
      RunToExit({"--model-repository=" + repo.path(), "--grpc-address=127.0.0.1",
                 "--grpc-port=" + std::to_string(first->port()), "--allow-metrics=false",
                 "--allow-http=false"});
  INFO(out);
  CHECK(code == 2);
  CHECK(out.find("port is in use") != std::string::npos);
  // The first server was not disturbed.
  auto stub = first->Stub();
  inference::ModelInferResponse r;
  CHECK(Infer(*stub, IdentityRequest({1, 2}), &r).ok());
}

TEST_CASE("an isolated runner whose static initialiser aborts costs only its own load") {
  TempRepository repo;
  repo.AddRunnerModel("abort_init", TORII_ABORT_AT_LOAD_RUNNER, "abort_at_load", kIsolated);
  auto server = StartServer(repo, {"--strict-readiness=false"});
  auto stub = server->Stub();
  inference::ModelInferResponse r;
  REQUIRE(Infer(*stub, IdentityRequest({3}), &r).ok());
  CHECK_FALSE(ModelReady(*stub, "abort_init"));
  grpc::ClientContext ctx;
  inference::RepositoryIndexResponse index;
  REQUIRE(stub->RepositoryIndex(&ctx, {}, &index).ok());
  std::string reason;
  for (const auto& m : index.models()) {
    if (m.name() == "abort_init") reason = m.reason();
  }
  CHECK(reason.find("died while loading the model (SIGABRT") != std::string::npos);
}

TEST_CASE("poll mode: a runner library replaced in place in a model folder is reloaded") {
  TempRepository repo;
  repo.AddRunnerModel("custom", TORII_IDENTITY_RUNNER, "custom");
  auto server = StartServer(repo, {"--model-control-mode=poll", "--repository-poll-secs=1"});
  auto stub = server->Stub();
  REQUIRE(ModelProperty(*stub, "custom", "runner") == "identity");
  // Same path, new contents (a copy over the old file, as a deploy does).
  std::this_thread::sleep_for(milliseconds(20));
  {
    std::ifstream in(TORII_PROBE_RUNNER, std::ios::binary);
    std::ofstream out(repo.path() + "/custom/libtorii_custom.so",
                      std::ios::binary | std::ios::trunc);
    out << in.rdbuf();
  }
  const auto until = Clock::now() + milliseconds(15000);
  while (ModelProperty(*stub, "custom", "runner") != "probe" && Clock::now() < until) {
    std::this_thread::sleep_for(milliseconds(100));
  }
  CHECK(ModelProperty(*stub, "custom", "runner") == "probe");
  inference::ModelInferResponse r;
  CHECK(Infer(*stub, IdentityRequest({5, 6}, "custom"), &r).ok());
}

TEST_CASE("repository loads and unloads run on a bounded pool, not one thread per call") {
  TempRepository repo;
  // A model whose load takes 2 s.
  repo.AddRunnerModel("slow_load", TORII_FAULT_RUNNER, "fault",
                      ConfigParameter("load_fault", "sleep") + ConfigParameter("sleep_ms", "2000"));
  auto server = StartServer(repo, {"--model-control-mode=explicit", "--load-model=identity",
                                   "--model-load-thread-count=2"});
  const int before = ThreadCount(server->pid());
  REQUIRE(before > 0);
  std::vector<std::thread> callers;
  std::atomic<int> ok{0}, refused{0};
  for (int i = 0; i < 40; ++i) {
    callers.emplace_back([&] {
      auto stub = server->Stub();
      (LoadModel(*stub, "slow_load", {}, milliseconds(120000)).ok() ? ok : refused)++;
    });
  }
  int peak = 0;
  for (int i = 0; i < 30; ++i) {
    peak = std::max(peak, ThreadCount(server->pid()));
    std::this_thread::sleep_for(milliseconds(50));
  }
  for (auto& t : callers) t.join();
  INFO("threads before " << before << ", peak " << peak);
  // The pool's two threads (plus gRPC's own), not forty.
  CHECK(peak < before + 20);
  CHECK(ok + refused == 40);
  CHECK(ok > 0);
}

TEST_CASE("unloading a hung isolated model is bounded and never blocks another model's load") {
  TempRepository repo;
  repo.AddRunnerModel("hung", TORII_FAULT_RUNNER, "fault",
                      kIsolated + ConfigParameter("execution_timeout_ms", "0"));
  auto server = StartServer(repo, {"--model-control-mode=explicit", "--load-model=hung",
                                   "--load-model=identity"});
  auto stub = server->Stub();
  std::thread stuck([&] {
    auto s2 = server->Stub();
    inference::ModelInferResponse r;
    Infer(*s2, Hang("hung"), &r, milliseconds(60000));
  });
  REQUIRE(WaitLog(*server, "model ready model=identity"));
  std::this_thread::sleep_for(milliseconds(300));  // the hung batch is running
  std::atomic<bool> unloaded{false};
  const auto t0 = Clock::now();
  std::thread unload([&] {
    auto s2 = server->Stub();
    CHECK(UnloadModel(*s2, "hung").ok());
    unloaded = true;
  });
  std::this_thread::sleep_for(milliseconds(200));
  // Meanwhile another model loads at once.
  {
    const auto l0 = Clock::now();
    CHECK(LoadModel(*stub, "add_sub", {}, milliseconds(20000)).ok());
    CHECK(Clock::now() - l0 < milliseconds(3000));
  }
  unload.join();
  stuck.join();
  CHECK(unloaded);
  CHECK(Clock::now() - t0 < milliseconds(15000));
  CHECK_FALSE(ModelReady(*stub, "hung"));
  inference::ModelInferResponse r;
  CHECK(Infer(*stub, IdentityRequest({1}), &r).ok());
}

TEST_CASE("SIGTERM still stops the server after a poll-mode reload of a hung model") {
  TempRepository repo;
  repo.AddRunnerModel("hung", TORII_FAULT_RUNNER, "fault",
                      ConfigParameter("execution_timeout_ms", "0"));
  auto server = StartServer(repo, {"--model-control-mode=poll", "--repository-poll-secs=1",
                                   "--exit-timeout-secs=2"});
  std::thread stuck([&] {
    auto s2 = server->Stub();
    inference::ModelInferResponse r;
    Infer(*s2, Hang("hung", 600000), &r, milliseconds(60000));
  });
  std::this_thread::sleep_for(milliseconds(300));
  // Change the config: the reload drains the version whose batch is stuck.
  repo.Write("hung/config.pbtxt", R"(name: "hung"
backend: "fault"
max_batch_size: 4
input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
parameters { key: "execution_timeout_ms" value { string_value: "0" } }
)");
  REQUIRE(WaitLog(*server, "model load started model=hung", milliseconds(10000)));
  const auto t0 = Clock::now();
  const int status = server->Signal(SIGTERM, std::chrono::seconds(20));
  INFO(server->Log());
  CHECK(status != -1);  // it exited
  CHECK(Clock::now() - t0 < milliseconds(15000));
  stuck.detach();  // its call ends with the server
}

TEST_CASE("a second SIGTERM does not cut the drain short") {
  TempRepository repo;
  repo.AddRunnerModel("slow", TORII_FAULT_RUNNER, "fault");
  auto server = StartServer(repo, {"--exit-timeout-secs=20"});
  grpc::Status result;
  inference::ModelInferResponse r;
  std::thread call([&] {
    auto s2 = server->Stub();
    result = Infer(*s2, Hang("slow", 1500), &r);
  });
  std::this_thread::sleep_for(milliseconds(300));
  kill(server->pid(), SIGTERM);
  std::this_thread::sleep_for(milliseconds(100));
  const int status = server->Signal(SIGTERM, std::chrono::seconds(20));
  call.join();
  INFO(server->Log());
  CHECK(result.ok());  // the accepted request was answered
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(server->Log().find("stop signal received again") != std::string::npos);
}

}  // namespace
}  // namespace testing
}  // namespace torii
