// End to end: process isolation in the real torii-server. A temp repository
// holds an isolated fault-injection model, the in-process identity model and
// an isolated identity model; faults in the isolated runner must cost only
// its own in-flight requests while the server, its health and the other
// models keep serving, and the runner must come back by itself.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <future>
#include <sstream>
#include <thread>

#include "tests/e2e/e2e_util.h"
#include "tests/util/e2e_client.h"
#include "tests/util/server_process.h"

namespace torii {
namespace testing {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

const std::string kIsolated = ConfigParameter("isolation", "process");

// The example repository plus the isolated models.
void FillRepository(const TempRepository* r) {
  {
    r->Write("identity_iso/config.pbtxt", std::string(R"(
name: "identity_iso"
backend: "identity"
max_batch_size: 64
input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
instance_group [ { count: 2 kind: KIND_CPU } ]
dynamic_batching { max_queue_delay_microseconds: 2000 }
)") + kIsolated);
    r->Write("identity_iso/1/.keep", "");
    const std::string fault_model = R"(
backend: "fault"
max_batch_size: 8
input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1 ] },
         { name: "PID" data_type: TYPE_INT64 dims: [ 1 ] } ]
instance_group [ { count: 2 kind: KIND_CPU } ]
)";
    r->Write("fault_iso/config.pbtxt", "name: \"fault_iso\"" + fault_model + kIsolated + R"(
parameters { key: "execution_timeout_ms" value { string_value: "3000" } }
)");
    std::vector<std::string> models = {"fault_iso"};
#if !defined(__SANITIZE_ADDRESS__)  // ASan's shadow memory does not fit an RLIMIT_AS
    r->Write("fault_mem/config.pbtxt", "name: \"fault_mem\"" + fault_model + kIsolated + R"(
parameters { key: "memory_limit_mb" value { string_value: "512" } }
)");
    models.push_back("fault_mem");
#endif
    for (const auto& m : models) {
      r->Write(m + "/1/.keep", "");
      // The runner travels with the model: <repo>/<model>/libtorii_fault.so.
      std::filesystem::copy_file(TORII_FAULT_RUNNER, r->path() + "/" + m + "/libtorii_fault.so");
    }
  }
}

const TempRepository& Repository() {
  // A function-local object: removed when the test process exits.
  static const TempRepository repo;
  static const bool filled = (FillRepository(&repo), true);
  (void)filled;
  return repo;
}

inference::ModelInferRequest FaultRequest(const std::vector<float>& values, const std::string& fault = "",
                                          int64_t sleep_ms = 0, const std::string& model = "fault_iso") {
  auto r = IdentityRequest(values, model);
  if (!fault.empty()) (*r.mutable_parameters())["fault"].set_string_param(fault);
  if (sleep_ms > 0) (*r.mutable_parameters())["sleep_ms"].set_int64_param(sleep_ms);
  return r;
}

int64_t Pid(const inference::ModelInferResponse& r) {
  int64_t pid = 0;
  std::memcpy(&pid, r.raw_output_contents(1).data(), sizeof(pid));
  return pid;
}

bool Has(const grpc::Status& s, const std::string& needle) {
  return s.error_message().find(needle) != std::string::npos;
}

// Keeps other models busy in the background and counts what went wrong:
// they must not notice a fault in another model.
class BackgroundTraffic {
 public:
  BackgroundTraffic(const ServerProcess& server, std::vector<std::string> models) {
    for (const auto& m : models) {
      threads_.emplace_back([this, &server, m] {
        auto stub = server.Stub();
        for (int i = 0; !stop_; ++i) {
          const std::vector<float> v = {float(i), float(i) + 0.5f, -float(i)};
          inference::ModelInferResponse r;
          const grpc::Status s = Infer(*stub, IdentityRequest(v, m), &r, milliseconds(5000));
          if (!s.ok() || Fp32Values(r.raw_output_contents(0)) != v) {
            ++failures_;
            last_error_ = m + ": " + s.error_message();
          }
          ++served_;
        }
      });
    }
    threads_.emplace_back([this, &server] {
      auto stub = server.Stub();
      while (!stop_) {
        if (!ServerLive(*stub)) ++not_live_;
        std::this_thread::sleep_for(milliseconds(20));
      }
    });
  }
  ~BackgroundTraffic() { Stop(); }
  void Stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  int failures() const { return failures_; }
  int served() const { return served_; }
  int not_live() const { return not_live_; }
  std::string last_error() const { return last_error_; }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> failures_{0}, served_{0}, not_live_{0};
  std::string last_error_;
  std::vector<std::thread> threads_;
};

TEST_CASE("isolated identity answers exactly like in-process, with dynamic batching") {
  auto server = StartServer(Repository());
  auto stub = server->Stub();
  REQUIRE(ModelReady(*stub, "identity_iso"));
  // Sizes from 1 value to 64 KiB.
  for (size_t n : {1, 7, 256, 16384}) {
    std::vector<float> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = static_cast<float>(i) * 0.5f - 3.0f;
    inference::ModelInferResponse in, iso;
    REQUIRE(Infer(*stub, IdentityRequest(v, "identity"), &in).ok());
    REQUIRE(Infer(*stub, IdentityRequest(v, "identity_iso"), &iso).ok());
    CHECK(iso.model_name() == "identity_iso");
    CHECK(iso.outputs(0).name() == in.outputs(0).name());
    CHECK(iso.outputs(0).datatype() == in.outputs(0).datatype());
    CHECK(std::vector<int64_t>(iso.outputs(0).shape().begin(), iso.outputs(0).shape().end()) ==
          std::vector<int64_t>(in.outputs(0).shape().begin(), in.outputs(0).shape().end()));
    CHECK(iso.raw_output_contents(0) == in.raw_output_contents(0));
  }
  // 16 concurrent clients: requests are batched (2 ms delay), each gets its
  // own rows back.
  std::atomic<int> wrong{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 16; ++c) {
    clients.emplace_back([&, c] {
      auto s = server->Stub();
      for (int i = 0; i < 25; ++i) {
        const std::vector<float> v = {float(c), float(i), float(c * 1000 + i), 0.25f};
        inference::ModelInferResponse a, b;
        if (!Infer(*s, IdentityRequest(v, "identity_iso"), &a).ok() ||
            !Infer(*s, IdentityRequest(v, "identity"), &b).ok() ||
            a.raw_output_contents(0) != b.raw_output_contents(0) || Fp32Values(a.raw_output_contents(0)) != v) {
          ++wrong;
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  CHECK(wrong == 0);
  grpc::ClientContext ctx;
  inference::ModelStatisticsRequest q;
  q.set_name("identity_iso");
  inference::ModelStatisticsResponse stats;
  REQUIRE(stub->ModelStatistics(&ctx, q, &stats).ok());
  const auto& st = stats.model_stats(0);
  CHECK(st.inference_count() >= 400);
  CHECK(st.execution_count() < st.inference_count());  // batches of several requests ran
}

TEST_CASE("a segfault, abort or exit costs only the crashing model's in-flight requests") {
  auto server = StartServer(Repository());
  auto stub = server->Stub();
  inference::ModelInferResponse r;
  REQUIRE(Infer(*stub, FaultRequest({1, 2}), &r).ok());
  int64_t pid = Pid(r);
  CHECK(pid != server->pid());

  BackgroundTraffic traffic(*server, {"identity", "identity_iso"});
#if defined(__SANITIZE_ADDRESS__)
  const std::vector<std::pair<std::string, std::string>> faults = {
      {"segv", ""}, {"abort", "SIGABRT"}, {"exit", "exit status 3"}};  // ASan reports the SEGV and exits
#else
  const std::vector<std::pair<std::string, std::string>> faults = {
      {"segv", "SIGSEGV"}, {"abort", "SIGABRT"}, {"exit", "exit status 3"}};
#endif
  for (const auto& [fault, reason] : faults) {
    INFO(fault);
    // A slow request on one instance, in flight when the other crashes the
    // child: it is lost too (same process), and says so.
    auto slow = std::async(std::launch::async, [&] {
      inference::ModelInferResponse resp;
      return Infer(*server->Stub(), FaultRequest({1}, "sleep", 2000), &resp);
    });
    std::this_thread::sleep_for(milliseconds(300));
    const grpc::Status crash = Infer(*stub, FaultRequest({1}, fault), &r);
    CHECK(crash.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK(Has(crash, "model 'fault_iso' runner process died (" + reason));
    const grpc::Status lost = slow.get();
    CHECK(lost.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK(Has(lost, "fault_iso"));
    CHECK(Has(lost, reason));
    CHECK(ServerLive(*stub));
    // Back by itself, in a new process.
    REQUIRE(WaitModelReady(*stub, "fault_iso"));
    REQUIRE(Infer(*stub, FaultRequest({3, 4}), &r).ok());
    CHECK(Fp32Values(r.raw_output_contents(0)) == std::vector<float>{3, 4});
    CHECK(Pid(r) != pid);
    pid = Pid(r);
  }
  traffic.Stop();
  INFO(traffic.last_error());
  CHECK(traffic.failures() == 0);
  CHECK(traffic.served() > 20);
  CHECK(traffic.not_live() == 0);
  CHECK(ModelReady(*stub, "identity"));
  CHECK(ModelReady(*stub, "identity_iso"));
  const std::string log = server->Log();
  CHECK(log.find("runner process died") != std::string::npos);
  CHECK(log.find("runner process restarted") != std::string::npos);
}

TEST_CASE("runner errors and exceptions map to statuses without a restart") {
  auto server = StartServer(Repository());
  auto stub = server->Stub();
  inference::ModelInferResponse r;
  REQUIRE(Infer(*stub, FaultRequest({1}), &r).ok());
  const int64_t pid = Pid(r);
  const grpc::Status e = Infer(*stub, FaultRequest({1}, "error"), &r);
  CHECK(e.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK(Has(e, "model 'fault_iso'"));
  CHECK(Has(e, "fault: error requested"));
  const grpc::Status t = Infer(*stub, FaultRequest({1}, "throw"), &r);
  CHECK(t.error_code() == grpc::StatusCode::INTERNAL);
  CHECK(Has(t, "fault: throw requested"));
  CHECK(ModelReady(*stub, "fault_iso"));
  // The same processes serve on (two instances: check both).
  for (int i = 0; i < 4; ++i) {
    REQUIRE(Infer(*stub, FaultRequest({2}), &r).ok());
    CHECK(Pid(r) == pid);
  }
  CHECK(server->Log().find("runner process died") == std::string::npos);
}

TEST_CASE("a hung runner: the client's deadline holds, other models serve, the child is replaced") {
  auto server = StartServer(Repository());
  auto stub = server->Stub();
  inference::ModelInferResponse r;
  REQUIRE(Infer(*stub, FaultRequest({1}), &r).ok());
  const int64_t pid = Pid(r);
  BackgroundTraffic traffic(*server, {"identity", "identity_iso"});

  const auto t0 = Clock::now();
  const grpc::Status s = Infer(*stub, FaultRequest({1}, "sleep", 20000), &r, milliseconds(300));
  CHECK(s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED);
  CHECK(Clock::now() - t0 < milliseconds(1500));
  // The model's other instance still serves while one hangs.
  REQUIRE(Infer(*stub, FaultRequest({5}), &r, milliseconds(2000)).ok());
  CHECK(Pid(r) == pid);
  // execution_timeout_ms (3 s after the batch started) kills the hung
  // child; it comes back.
  REQUIRE(WaitLog(*server, "runner process restarted"));
  CHECK(Clock::now() - t0 >= milliseconds(3000));
  REQUIRE(WaitModelReady(*stub, "fault_iso"));
  REQUIRE(Infer(*stub, FaultRequest({6}), &r).ok());
  CHECK(Pid(r) != pid);
  traffic.Stop();
  INFO(traffic.last_error());
  CHECK(traffic.failures() == 0);
  CHECK(traffic.not_live() == 0);
  CHECK(server->Log().find("execution timed out") != std::string::npos);
}

#if !defined(__SANITIZE_ADDRESS__)  // ASan's shadow memory does not fit an RLIMIT_AS
TEST_CASE("unbounded allocation under memory_limit_mb ends in an error, never a server crash") {
  auto server = StartServer(Repository());
  auto stub = server->Stub();
  inference::ModelInferResponse r;
  const grpc::Status s = Infer(*stub, FaultRequest({1}, "alloc", 0, "fault_mem"), &r);
  INFO(s.error_message());
  CHECK_FALSE(s.ok());
  CHECK((Has(s, "bad_alloc") || s.error_code() == grpc::StatusCode::UNAVAILABLE));
  CHECK(ServerLive(*stub));
  REQUIRE(WaitModelReady(*stub, "fault_mem"));
  REQUIRE(Infer(*stub, FaultRequest({1, 2}, "", 0, "fault_mem"), &r).ok());
  REQUIRE(Infer(*stub, IdentityRequest({1, 2}), &r).ok());
}
#endif

TEST_CASE("a runner that crashes while loading is a load error, not a crash loop") {
  TempRepository repo;
  repo.AddRunnerModel("fault_load", TORII_FAULT_RUNNER, "fault",
                      ConfigParameter("load_fault", "abort") + kIsolated);
  auto server = StartServer(repo, {}, /*wait_ready=*/false);
  auto stub = server->Stub();
  // Wait until the startup loads are over (identity serves).
  inference::ModelInferResponse r;
  WaitModelReady(*stub, "identity");
  REQUIRE(Infer(*stub, IdentityRequest({1}), &r).ok());
  CHECK_FALSE(ModelReady(*stub, "fault_load"));
  // Its failed load is recorded once the child's end was seen (which may
  // take longer than identity's load on a busy machine).
  std::string reason;
  for (const auto until_failed = Clock::now() + milliseconds(20000);
       reason.empty() && Clock::now() < until_failed;) {
    grpc::ClientContext ctx;
    inference::RepositoryIndexResponse index;
    REQUIRE(stub->RepositoryIndex(&ctx, {}, &index).ok());
    for (const auto& m : index.models()) {
      if (m.name() == "fault_load") reason = m.reason();
    }
    if (reason.empty()) std::this_thread::sleep_for(milliseconds(20));
  }
  INFO("reason: " << reason);
  CHECK(reason.find("runner process died while loading the model (SIGABRT)") != std::string::npos);
  const grpc::Status s = Infer(*stub, FaultRequest({1}, "", 0, "fault_load"), &r);
  CHECK(s.error_code() == grpc::StatusCode::UNAVAILABLE);
  // Tried once, not again and again.
  std::this_thread::sleep_for(milliseconds(500));
  const std::string log = server->Log();
  // One failed load (the startup table repeats its reason, once more).
  size_t failures = 0;
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("model load failed") != std::string::npos &&
        line.find("died while loading") != std::string::npos) {
      ++failures;
    }
  }
  CHECK(failures == 1);
}

TEST_CASE("stopping the server stops its runner processes") {
  auto server = StartServer(Repository());
  auto stub = server->Stub();
  inference::ModelInferResponse r;
  REQUIRE(Infer(*stub, FaultRequest({1}), &r).ok());
  const pid_t child = static_cast<pid_t>(Pid(r));
  REQUIRE(child > 0);
  CHECK(kill(child, 0) == 0);
  const int status = server->Signal(SIGTERM, std::chrono::seconds(20));
  REQUIRE(status != -1);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  // The server unloaded the model: the child was told to exit and reaped.
  // (If the server had died instead, PR_SET_PDEATHSIG would kill it.)
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {
    gone = kill(child, 0) != 0 && errno == ESRCH;
    if (!gone) std::this_thread::sleep_for(milliseconds(10));
  }
  CHECK(gone);
}

TEST_CASE("a SIGKILLed server takes its runner processes with it") {
  auto server = StartServer(Repository());
  auto stub = server->Stub();
  inference::ModelInferResponse r;
  REQUIRE(Infer(*stub, FaultRequest({1}), &r).ok());
  const pid_t child = static_cast<pid_t>(Pid(r));
  REQUIRE(server->Signal(SIGKILL, std::chrono::seconds(10)) != -1);
  // The orphan is killed by PR_SET_PDEATHSIG and reaped by init; a zombie
  // still answers kill(pid, 0), so look at its state.
  bool gone = false;
  for (int i = 0; i < 300 && !gone; ++i) {
    std::ifstream stat("/proc/" + std::to_string(child) + "/stat");
    std::string line;
    std::getline(stat, line);
    gone = !stat.good() || line.find(") Z ") != std::string::npos;
    if (!gone) std::this_thread::sleep_for(milliseconds(10));
  }
  CHECK(gone);
}

}  // namespace
}  // namespace testing
}  // namespace torii
