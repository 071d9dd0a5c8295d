// Python models through the real server (issue 12): each instance in its
// own process, so killing an instance, an endless loop and a leak cost only
// that model's in-flight requests while other models see no failure; and
// repeated loads and unloads leave no process or shared memory behind.
#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>
#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "tests/e2e/e2e_util.h"
#include "tests/util/e2e_client.h"
#include "tests/util/server_process.h"

namespace torii {
namespace testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

inference::ModelInferRequest Fault(float mode) {
  inference::ModelInferRequest r;
  r.set_model_name("py_fault");
  auto* in = r.add_inputs();
  in->set_name("INPUT0");
  in->set_datatype("FP32");
  in->add_shape(2);
  r.add_raw_input_contents(Fp32Raw({mode, 7}));
  return r;
}

inference::ModelInferRequest AddSub(float a, float b) {
  inference::ModelInferRequest r;
  r.set_model_name("py_add_sub");
  for (const char* name : {"INPUT0", "INPUT1"}) {
    auto* in = r.add_inputs();
    in->set_name(name);
    in->set_datatype("FP32");
    in->add_shape(1);
    in->add_shape(2);
  }
  r.add_raw_input_contents(Fp32Raw({a, a}));
  r.add_raw_input_contents(Fp32Raw({b, b}));
  return r;
}

// Children of `pid` whose command line mentions `needle`.
std::vector<pid_t> Children(pid_t pid, const std::string& needle = "") {
  std::vector<pid_t> out;
  DIR* d = opendir("/proc");
  while (dirent* e = d != nullptr ? readdir(d) : nullptr) {
    const pid_t p = static_cast<pid_t>(std::atoi(e->d_name));
    if (p <= 0) continue;
    std::ifstream stat("/proc/" + std::to_string(p) + "/stat");
    std::string text;
    std::getline(stat, text);
    const size_t close = text.rfind(')');
    if (close == std::string::npos) continue;
    char state;
    pid_t ppid = 0;
    if (std::sscanf(text.c_str() + close + 2, "%c %d", &state, &ppid) != 2 || ppid != pid) continue;
    std::ifstream cmd("/proc/" + std::to_string(p) + "/cmdline");
    std::string cmdline((std::istreambuf_iterator<char>(cmd)), {});
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    if (needle.empty() || cmdline.find(needle) != std::string::npos) out.push_back(p);
  }
  if (d != nullptr) closedir(d);
  return out;
}

size_t MemfdCount(pid_t pid) {
  size_t n = 0;
  const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    std::error_code ec;
    const auto target = std::filesystem::read_symlink(e.path(), ec);
    if (!ec && target.string().rfind("/memfd:torii", 0) == 0) ++n;
  }
  return n;
}

// Calls `model` in a loop and counts what went wrong.
class Traffic {
 public:
  Traffic(const ServerProcess& server, const std::string& model) {
    thread_ = std::thread([this, &server, model] {
      auto stub = server.Stub();
      for (int i = 0; !stop_; ++i) {
        inference::ModelInferResponse r;
        if (model == "identity") {
          const std::vector<float> v = {float(i), 1.5f};
          const grpc::Status s = Infer(*stub, IdentityRequest(v), &r, milliseconds(10000));
          if (!s.ok() || Fp32Values(r.raw_output_contents(0)) != v) Fail(s);
        } else {
          const grpc::Status s = Infer(*stub, AddSub(float(i), 1), &r, milliseconds(10000));
          if (!s.ok() || Fp32Values(r.raw_output_contents(0)) != std::vector<float>{i + 1.f, i + 1.f}) Fail(s);
        }
        ++served_;
      }
    });
  }
  ~Traffic() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int failures() const { return failures_; }
  int served() const { return served_; }
  std::string last_error() const { return last_error_; }

 private:
  void Fail(const grpc::Status& s) {
    ++failures_;
    last_error_ = s.error_message();
  }
  std::atomic<bool> stop_{false};
  std::atomic<int> failures_{0}, served_{0};
  std::string last_error_;
  std::thread thread_;
};

TEST_CASE("a Python instance killed, looping or leaking costs only its own requests") {
  TempRepository repo;
  repo.CopyModel(TORII_PYTHON_E2E_MODELS, "py_fault");
  repo.CopyModel(TORII_PYTHON_E2E_MODELS, "py_add_sub");
  auto server = StartServer(repo);
  auto stub = server->Stub();
  {
    inference::ModelInferResponse r;
    REQUIRE(Infer(*stub, Fault(0), &r).ok());
    CHECK(Fp32Values(r.raw_output_contents(0)) == std::vector<float>{0, 7});
  }
  // Two instances, two processes.
  REQUIRE(Children(server->pid(), "--model=py_fault").size() == 2);

  Traffic identity(*server, "identity"), python(*server, "py_add_sub");

  SECTION("an instance's process killed from outside") {
    const std::vector<pid_t> before = Children(server->pid(), "--model=py_fault");
    REQUIRE(kill(before[0], SIGKILL) == 0);
    REQUIRE(WaitModelReady(*stub, "py_fault", milliseconds(30000)));
    const auto until = Clock::now() + milliseconds(20000);
    while (Children(server->pid(), "--model=py_fault").size() < 2 && Clock::now() < until) {
      std::this_thread::sleep_for(milliseconds(50));
    }
    CHECK(Children(server->pid(), "--model=py_fault").size() == 2);
  }
  SECTION("the instance kills itself mid-request") {
    inference::ModelInferResponse r;
    const grpc::Status s = Infer(*stub, Fault(1), &r);
    CHECK(s.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK(s.error_message().find("SIGKILL") != std::string::npos);
  }
  SECTION("an endless loop is killed at execution_timeout_ms") {
    inference::ModelInferResponse r;
    const auto t0 = Clock::now();
    const grpc::Status s = Infer(*stub, Fault(2), &r);
    CHECK(s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED);
    CHECK(s.error_message().find("execution_timeout_ms") != std::string::npos);
    CHECK(Clock::now() - t0 < milliseconds(10000));
  }
  SECTION("a leak ends at memory_limit_mb") {
    inference::ModelInferResponse r;
    const grpc::Status s = Infer(*stub, Fault(3), &r, milliseconds(60000));
    INFO(s.error_message());
    CHECK_FALSE(s.ok());
  }
  // The model comes back and serves; the others never noticed.
  REQUIRE(WaitModelReady(*stub, "py_fault", milliseconds(30000)));
  inference::ModelInferResponse r;
  grpc::Status after;
  for (int i = 0; i < 50; ++i) {  // a restarted instance may still be starting
    after = Infer(*stub, Fault(0), &r);
    if (after.ok()) break;
    std::this_thread::sleep_for(milliseconds(100));
  }
  CHECK(after.ok());
  std::this_thread::sleep_for(milliseconds(300));
  identity.Stop();
  python.Stop();
  INFO("identity: " << identity.last_error() << " / python: " << python.last_error());
  CHECK(identity.failures() == 0);
  CHECK(python.failures() == 0);
  CHECK(identity.served() > 0);
  CHECK(python.served() > 0);
}

TEST_CASE("20 load/unload cycles of a Python model leave no process or shared memory behind") {
  TempRepository repo;
  repo.CopyModel(TORII_PYTHON_E2E_MODELS, "py_add_sub");
  auto server = StartServer(repo, {"--model-control-mode=explicit", "--load-model=identity"});
  auto stub = server->Stub();
  const size_t memfds_before = MemfdCount(server->pid());
  for (int cycle = 0; cycle < 20; ++cycle) {
    INFO("cycle " << cycle);
    REQUIRE(LoadModel(*stub, "py_add_sub").ok());
    inference::ModelInferResponse r;
    REQUIRE(Infer(*stub, AddSub(2, 3), &r).ok());
    CHECK(Fp32Values(r.raw_output_contents(1)) == std::vector<float>{-1, -1});
    REQUIRE(UnloadModel(*stub, "py_add_sub").ok());
  }
  // Children exit after the unload; give the last one a moment.
  const auto until = Clock::now() + milliseconds(10000);
  while (!Children(server->pid(), "torii-runner-host").empty() && Clock::now() < until) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  CHECK(Children(server->pid(), "torii-runner-host").empty());
  CHECK(MemfdCount(server->pid()) == memfds_before);
  // No files in /dev/shm either (regions are anonymous memfds).
  for (const auto& e : std::filesystem::directory_iterator("/dev/shm")) {
    CHECK(e.path().filename().string().rfind("torii", 0) != 0);
  }
}

}  // namespace
}  // namespace testing
}  // namespace torii
