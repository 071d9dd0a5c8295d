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

// The value of the sample line `series` ("name{labels}") on the page, or -1.
double Sample(const std::string& page, const std::string& series) {
  const std::string key = "\n" + series + " ";
  const size_t at = page.find(key);
  if (at == std::string::npos) return -1;
  return std::stod(page.substr(at + key.size()));
}

// Metric operations reach the server's registry through the child's events
// channel, independently of the reply: wait (bounded) for `want`.
double AwaitSample(const ServerProcess& server, const std::string& series, double want) {
  double got = -1;
  const auto until = Clock::now() + milliseconds(10000);
  do {
    got = Sample(HttpGet(server.metrics_port(), "/metrics"), series);
    if (got == want) break;
    std::this_thread::sleep_for(milliseconds(20));
  } while (Clock::now() < until);
  return got;
}

inference::ModelInferRequest MetricsRequest(const std::vector<float>& x) {
  inference::ModelInferRequest r;
  r.set_model_name("py_metrics");
  auto* in = r.add_inputs();
  in->set_name("X");
  in->set_datatype("FP32");
  in->add_shape(static_cast<int64_t>(x.size()));
  r.add_raw_input_contents(Fp32Raw(x));
  return r;
}

TEST_CASE("a Python model's pb_utils metrics are on /metrics and survive a restart and go at unload") {
  TempRepository repo;
  repo.CopyModel(TORII_PYTHON_E2E_MODELS, "py_metrics");
  std::filesystem::create_directories(repo.path() + "/py_metrics/1");
  std::filesystem::copy_file(TORII_PYTHON_METRICS_MODEL, repo.path() + "/py_metrics/1/model.py");
  ServerProcess::Options o;
  o.repository = repo.path();
  o.extra_args = {"--model-control-mode=explicit", "--load-model=py_metrics"};
  auto server = ServerProcess::Start(o);
  auto stub = server->Stub();
  REQUIRE(Children(server->pid(), "--model=py_metrics").size() == 2);

  // Six requests over the two instances' processes: one series, summed.
  const std::vector<std::vector<float>> xs = {{0.25f}, {1.5f, 3.0f}, {0.5f}, {0.75f},
                                              {2.0f}, {9.0f, 0.1f}};
  for (const auto& x : xs) {
    inference::ModelInferResponse r;
    REQUIRE(Infer(*stub, MetricsRequest(x), &r).ok());
  }
  const std::string counter = "test_requests_total{kind=\"ok\",model=\"py_metrics\"}";
  CHECK(AwaitSample(*server, counter, double(xs.size())) == double(xs.size()));
  const std::string page = HttpGet(server->metrics_port(), "/metrics");
  CHECK(page.find("# HELP test_requests_total Requests the test model answered\n") !=
        std::string::npos);
  CHECK(page.find("# TYPE test_requests_total counter\n") != std::string::npos);
  CHECK(page.find("# TYPE test_rows_in_flight gauge\n") != std::string::npos);
  CHECK(page.find("# TYPE test_observed_values histogram\n") != std::string::npos);
  // le 0.5: 0.25, 0.5, 0.1; le 1: + 0.75; le 2: + 1.5, 2.0; +Inf: + 3.0, 9.0
  const std::string h = "test_observed_values_bucket{model=\"py_metrics\",le=";
  CHECK(Sample(page, h + "\"0.5\"}") == 3);
  CHECK(Sample(page, h + "\"1\"}") == 4);
  CHECK(Sample(page, h + "\"2\"}") == 6);
  CHECK(Sample(page, h + "\"+Inf\"}") == 8);
  CHECK(Sample(page, "test_observed_values_count{model=\"py_metrics\"}") == 8);
  CHECK(Sample(page, "test_rows_in_flight{model=\"py_metrics\"}") == 2);
  if (access("/usr/bin/promtool", X_OK) == 0) {
    TempDir dir("torii_metrics_page");
    const std::string file = dir.path() + "/metrics.txt";
    std::ofstream(file) << page;
    FILE* p = popen(("/usr/bin/promtool check metrics < " + file + " 2>&1").c_str(), "r");
    REQUIRE(p != nullptr);
    std::string out;
    char buf[512];
    while (fgets(buf, sizeof(buf), p) != nullptr) out += buf;
    INFO(out);
    CHECK(pclose(p) == 0);
  }

  SECTION("a restarted instance keeps the counter, and adds to it") {
    const std::vector<pid_t> before = Children(server->pid(), "--model=py_metrics");
    REQUIRE(kill(before[0], SIGKILL) == 0);
    const auto until = Clock::now() + milliseconds(30000);
    while (Children(server->pid(), "--model=py_metrics").size() < 2 && Clock::now() < until) {
      std::this_thread::sleep_for(milliseconds(50));
    }
    REQUIRE(WaitModelReady(*stub, "py_metrics", milliseconds(30000)));
    CHECK(Sample(HttpGet(server->metrics_port(), "/metrics"), counter) == double(xs.size()));
    for (int i = 0; i < 4; ++i) {  // some reach the new process
      inference::ModelInferResponse r;
      grpc::Status s = Infer(*stub, MetricsRequest({1.0f}), &r);
      for (int k = 0; k < 50 && !s.ok(); ++k) {  // it may still be starting
        std::this_thread::sleep_for(milliseconds(100));
        s = Infer(*stub, MetricsRequest({1.0f}), &r);
      }
      REQUIRE(s.ok());
    }
    CHECK(AwaitSample(*server, counter, double(xs.size() + 4)) == double(xs.size() + 4));
  }
  SECTION("unloading the model removes its families") {
    grpc::ClientContext ctx;
    SetDeadline(ctx, milliseconds(60000));
    inference::RepositoryModelUnloadRequest q;
    q.set_model_name("py_metrics");
    inference::RepositoryModelUnloadResponse resp;
    REQUIRE(stub->RepositoryModelUnload(&ctx, q, &resp).ok());
    const std::string after = HttpGet(server->metrics_port(), "/metrics");
    CHECK(after.find("test_requests_total") == std::string::npos);
    CHECK(after.find("test_observed_values") == std::string::npos);
    CHECK(after.find("test_rows_in_flight") == std::string::npos);
  }
}

}  // namespace
}  // namespace testing
}  // namespace torii
