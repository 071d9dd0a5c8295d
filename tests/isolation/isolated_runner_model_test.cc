// IsolatedRunnerModel against the real torii-runner-host and the
// fault-injection runner: results equal in-process ones, crashes cost only
// the batch in flight and the child comes back, load errors come back to the
// load, the execution timeout kills a hung child.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <thread>

#include "server/isolation/isolated_runner_model.h"
#include "tests/util/runner_fixture.h"

namespace torii {
namespace testing {
namespace {

using std::chrono::milliseconds;

std::string FaultConfig(const std::string& parameters = "", int max_batch_size = 8) {
  return R"(name: "faulty" backend: "fault" max_batch_size: )" + std::to_string(max_batch_size) + R"(
    input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
    output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1 ] },
             { name: "PID" data_type: TYPE_INT64 dims: [ 1 ] } ]
    parameters { key: "isolation" value { string_value: "process" } }
  )" + parameters;
}

std::string Param(const std::string& key, const std::string& value) {
  return "parameters { key: \"" + key + "\" value { string_value: \"" + value + "\" } }\n";
}

/// An isolated model: config and signature (in LoadedModel, without an
/// in-process model) plus the backend.
struct Isolated {
  LoadedModel m;
  std::unique_ptr<IsolatedRunnerModel> backend;
};

absl::StatusOr<std::unique_ptr<Isolated>> StartIsolated(const std::string& library,
                                                        const std::string& config_text,
                                                        uint32_t instances = 1) {
  auto iso = std::make_unique<Isolated>();
  if (!google::protobuf::TextFormat::ParseFromString(config_text, &iso->m.config)) {
    return absl::InvalidArgumentError("bad test config");
  }
  iso->m.signature = std::make_unique<ModelSignature>(iso->m.config);
  RunnerModel::Options ro;
  ro.name = iso->m.config.name();
  ro.version = 1;
  ro.directory = "/nonexistent";
  ro.version_directory = "/nonexistent/1";
  ro.config = &iso->m.config;
  ro.signature = iso->m.signature.get();
  ro.instance_count = instances;
  auto options = IsolatedRunnerModel::OptionsFromConfig(iso->m.config, ro, library);
  if (!options.ok()) return options.status();
  options->host_path = TORII_RUNNER_HOST_BINARY;
  auto backend = IsolatedRunnerModel::Create(std::move(*options));
  if (!backend.ok()) return backend.status();
  iso->backend = std::move(*backend);
  return iso;
}

std::vector<absl::Status> Run(ExecutionBackend& b, size_t instance,
                              const std::vector<std::unique_ptr<TestRequest>>& reqs) {
  std::vector<InferenceRequest*> ptrs;
  for (auto& r : reqs) ptrs.push_back(&r->request);
  return b.Execute(instance, ptrs, nullptr);
}

absl::Status RunOne(ExecutionBackend& b, TestRequest& r, size_t instance = 0) {
  std::vector<InferenceRequest*> ptrs = {&r.request};
  return b.Execute(instance, ptrs, nullptr)[0];
}

bool WaitHealthy(const IsolatedRunnerModel& b, std::chrono::seconds limit = std::chrono::seconds(15)) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!b.healthy()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return true;
}

bool ProcessGone(pid_t pid) {
  // The backend reaps its children: a pid that is gone fails kill(pid, 0).
  for (int i = 0; i < 200; ++i) {
    if (kill(pid, 0) != 0 && errno == ESRCH) return true;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return false;
}

bool Contains(const std::string& s, const std::string& needle) {
  return s.find(needle) != std::string::npos;
}
bool Contains(const absl::Status& s, const std::string& needle) {
  return Contains(std::string(s.message()), needle);
}

TEST_CASE("isolated results equal in-process results, alone and batched") {
  auto in = LoadRunnerModel(TORII_FAULT_RUNNER, FaultConfig(), 2);
  REQUIRE(in.ok());
  auto iso = StartIsolated(TORII_FAULT_RUNNER, FaultConfig(), 2);
  REQUIRE(iso.ok());
  IsolatedRunnerModel& b = *(*iso)->backend;
  CHECK(b.instance_count() == 2);
  CHECK(b.healthy());
  CHECK(b.pid() > 0);
  CHECK(b.pid() != getpid());
  {
    // The OOM killer takes the runner process before the server.
    std::ifstream adj("/proc/" + std::to_string(b.pid()) + "/oom_score_adj");
    int score = 0;
    adj >> score;
    CHECK(score == 1000);
  }

  for (size_t instance : {0, 1}) {
    for (int64_t cols : {1, 3, 256, 16384}) {  // 4 B .. 64 KiB per row
      auto a = Fp32Request(**in, 1, cols, 1.5f);
      auto c = Fp32Request((*iso)->m, 1, cols, 1.5f);
      REQUIRE(RunOne(*(*in)->model, *a, instance).ok());
      REQUIRE(RunOne(b, *c, instance).ok());
      REQUIRE(c->response.outputs_size() == 2);
      CHECK(c->response.outputs(0).name() == "OUTPUT0");
      CHECK(c->response.outputs(0).datatype() == "FP32");
      CHECK(c->response.outputs(0).shape(0) == 1);
      CHECK(c->response.outputs(0).shape(1) == cols);
      CHECK(c->response.raw_output_contents(0) == a->response.raw_output_contents(0));
      // PID: the runner ran in the child, not here.
      CHECK(OutputInts(c->response, 1)[0] == b.pid());
      CHECK(OutputInts(a->response, 1)[0] == getpid());
    }
  }

  // A merged batch of three requests with different row counts.
  std::vector<std::unique_ptr<TestRequest>> ra, rc;
  for (int64_t rows : {1, 3, 2}) {
    ra.push_back(Fp32Request(**in, rows, 5, static_cast<float>(rows * 100)));
    rc.push_back(Fp32Request((*iso)->m, rows, 5, static_cast<float>(rows * 100)));
  }
  auto sa = Run(*(*in)->model, 0, ra);
  auto sc = Run(b, 1, rc);
  for (size_t r = 0; r < 3; ++r) {
    INFO("request " << r);
    REQUIRE(sa[r].ok());
    REQUIRE(sc[r].ok());
    CHECK(rc[r]->response.outputs(0).shape(0) == ra[r]->response.outputs(0).shape(0));
    CHECK(rc[r]->response.raw_output_contents(0) == ra[r]->response.raw_output_contents(0));
  }
}

TEST_CASE("tensors larger than the region grow it on both sides") {
  auto iso = StartIsolated(TORII_FAULT_RUNNER, FaultConfig());
  REQUIRE(iso.ok());
  // 3 MiB in: the server grows the region to 4 MiB; 3 MiB out does not fit
  // after the input, so the host grows it again.
  for (int64_t cols : {786432, 1000, 2000000}) {
    auto r = Fp32Request((*iso)->m, 1, cols, 0.25f);
    REQUIRE(RunOne(*(*iso)->backend, *r).ok());
    CHECK(r->response.raw_output_contents(0) == r->wire.raw_input_contents(0));
  }
}

TEST_CASE("only the requested outputs come back") {
  auto iso = StartIsolated(TORII_FAULT_RUNNER, FaultConfig());
  REQUIRE(iso.ok());
  auto r = Fp32Request((*iso)->m, 2, 3, 1.0f);
  r->request.output_requested = {false, true};  // PID only
  REQUIRE(RunOne(*(*iso)->backend, *r).ok());
  REQUIRE(r->response.outputs_size() == 1);
  CHECK(r->response.outputs(0).name() == "PID");
  CHECK(r->response.outputs(0).datatype() == "INT64");
  CHECK(OutputInts(r->response, 0) == std::vector<int64_t>(2, (*iso)->backend->pid()));
}

TEST_CASE("runner errors and exceptions become statuses, with no restart") {
  auto iso = StartIsolated(TORII_FAULT_RUNNER, FaultConfig());
  REQUIRE(iso.ok());
  IsolatedRunnerModel& b = *(*iso)->backend;
  const pid_t pid = b.pid();

  auto e = Fp32Request((*iso)->m, 1, 2, 1.0f, {{"fault", "error"}});
  const absl::Status se = RunOne(b, *e);
  CHECK(se.code() == absl::StatusCode::kFailedPrecondition);
  CHECK(Contains(se, "model 'faulty'"));
  CHECK(Contains(se, "fault: error requested"));

  auto t = Fp32Request((*iso)->m, 1, 2, 1.0f, {{"fault", "throw"}});
  const absl::Status st = RunOne(b, *t);
  CHECK(st.code() == absl::StatusCode::kInternal);
  CHECK(Contains(st, "fault: throw requested"));

  auto ok = Fp32Request((*iso)->m, 1, 2, 1.0f);
  CHECK(RunOne(b, *ok).ok());
  CHECK(b.pid() == pid);
  CHECK(b.restarts() == 0);
  CHECK(b.healthy());
}

TEST_CASE("a crash fails the batch in flight with UNAVAILABLE and the child comes back") {
  auto iso = StartIsolated(TORII_FAULT_RUNNER, FaultConfig(Param("restart_backoff_ms", "300")));
  REQUIRE(iso.ok());
  IsolatedRunnerModel& b = *(*iso)->backend;
  struct Case {
    const char* fault;
    const char* reason;
  };
#if defined(__SANITIZE_ADDRESS__)
  // ASan catches the segfault, reports it and exits (status 1, or SIGABRT
  // with abort_on_error).
  const std::vector<Case> cases = {{"segv", ""}, {"abort", "SIGABRT"}, {"exit", "exit status 3"}};
#else
  const std::vector<Case> cases = {{"segv", "SIGSEGV"}, {"abort", "SIGABRT"}, {"exit", "exit status 3"}};
#endif
  uint64_t restarts = 0;
  for (const auto& c : cases) {
    INFO(c.fault);
    const pid_t old_pid = b.pid();
    REQUIRE(old_pid > 0);
    // Two requests in one batch: both were in flight, both fail.
    std::vector<std::unique_ptr<TestRequest>> reqs;
    reqs.push_back(Fp32Request((*iso)->m, 1, 2, 1.0f, {{"fault", c.fault}}));
    reqs.push_back(Fp32Request((*iso)->m, 1, 2, 2.0f));
    const auto statuses = Run(b, 0, reqs);
    for (const auto& s : statuses) {
      CHECK(s.code() == absl::StatusCode::kUnavailable);
      CHECK(Contains(s, "model 'faulty' runner process died ("));
      CHECK(Contains(s, c.reason));
      CHECK(Contains(s, "restarting"));
    }
    // Down during the backoff: requests are refused at once.
    CHECK_FALSE(b.healthy());
    auto early = Fp32Request((*iso)->m, 1, 2, 1.0f);
    const auto t0 = std::chrono::steady_clock::now();
    const absl::Status se = RunOne(b, *early);
    CHECK(std::chrono::steady_clock::now() - t0 < milliseconds(100));
    CHECK(se.code() == absl::StatusCode::kUnavailable);
    CHECK(Contains(se, "restarting"));
    CHECK(Contains(b.last_exit_reason(), c.reason));

    REQUIRE(WaitHealthy(b));
    CHECK(b.restarts() == ++restarts);
    CHECK(b.pid() != old_pid);
    CHECK(ProcessGone(old_pid));
    auto after = Fp32Request((*iso)->m, 1, 2, 7.0f);
    REQUIRE(RunOne(b, *after).ok());
    CHECK(OutputFloats(after->response, 0) == std::vector<float>{7, 8});
  }
}

TEST_CASE("a crash fails the other instances' batches of the same child too") {
  auto iso = StartIsolated(TORII_FAULT_RUNNER, FaultConfig(Param("restart_backoff_ms", "50")), 2);
  REQUIRE(iso.ok());
  IsolatedRunnerModel& b = *(*iso)->backend;
  auto slow = Fp32Request((*iso)->m, 1, 2, 1.0f, {{"fault", "sleep"}, {"sleep_ms", "3000"}});
  absl::Status slow_status;
  std::thread t([&] { slow_status = RunOne(b, *slow, 1); });
  std::this_thread::sleep_for(milliseconds(200));
  auto crash = Fp32Request((*iso)->m, 1, 2, 1.0f, {{"fault", "abort"}});
  CHECK(RunOne(b, *crash, 0).code() == absl::StatusCode::kUnavailable);
  t.join();
  CHECK(slow_status.code() == absl::StatusCode::kUnavailable);
  CHECK(Contains(slow_status, "SIGABRT"));
  REQUIRE(WaitHealthy(b));
  auto ok = Fp32Request((*iso)->m, 1, 2, 1.0f);
  CHECK(RunOne(b, *ok, 1).ok());
}

TEST_CASE("execution_timeout_ms kills a hung child and its batch gets DEADLINE_EXCEEDED") {
  auto iso = StartIsolated(TORII_FAULT_RUNNER,
                           FaultConfig(Param("execution_timeout_ms", "300") + Param("restart_backoff_ms", "50")));
  REQUIRE(iso.ok());
  IsolatedRunnerModel& b = *(*iso)->backend;
  auto r = Fp32Request((*iso)->m, 1, 2, 1.0f, {{"fault", "sleep"}, {"sleep_ms", "20000"}});
  const auto t0 = std::chrono::steady_clock::now();
  const absl::Status s = RunOne(b, *r);
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK(s.code() == absl::StatusCode::kDeadlineExceeded);
  CHECK(Contains(s, "execution_timeout_ms (300 ms)"));
  CHECK(took >= milliseconds(300));
  CHECK(took < milliseconds(2000));
  REQUIRE(WaitHealthy(b));
  CHECK(Contains(b.last_exit_reason(), "SIGKILL, sent by the server"));
  CHECK(b.restarts() == 1);
  auto ok = Fp32Request((*iso)->m, 1, 2, 1.0f);
  CHECK(RunOne(b, *ok).ok());
}

TEST_CASE("load failures in the child come back to the load, with no restart loop") {
  SECTION("the runner refuses") {
    auto iso = StartIsolated(TORII_FAULT_RUNNER, FaultConfig(Param("load_fault", "error")));
    REQUIRE_FALSE(iso.ok());
    CHECK(iso.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(Contains(iso.status(), "model 'faulty' version 1: load failed"));
    CHECK(Contains(iso.status(), "load_fault error requested"));
  }
  SECTION("the runner crashes while loading") {
    auto iso = StartIsolated(TORII_FAULT_RUNNER, FaultConfig(Param("load_fault", "abort")));
    REQUIRE_FALSE(iso.ok());
    CHECK(iso.status().code() == absl::StatusCode::kUnavailable);
    CHECK(Contains(iso.status(), "model 'faulty': the runner process died while loading the model (SIGABRT)"));
  }
  SECTION("the runner library is missing") {
    auto iso = StartIsolated("/nonexistent/libtorii_fault.so", FaultConfig());
    REQUIRE_FALSE(iso.ok());
    CHECK(Contains(iso.status(), "/nonexistent/libtorii_fault.so"));
  }
  SECTION("a bad parameter") {
    auto iso = StartIsolated(TORII_FAULT_RUNNER, FaultConfig(Param("memory_limit_mb", "lots")));
    REQUIRE_FALSE(iso.ok());
    CHECK(iso.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(Contains(iso.status(), "memory_limit_mb"));
  }
}

TEST_CASE("a missing torii-runner-host is a clear load error") {
  inference::ModelConfig config;
  REQUIRE(google::protobuf::TextFormat::ParseFromString(FaultConfig(), &config));
  ModelSignature sig(config);
  RunnerModel::Options ro;
  ro.name = "faulty";
  ro.config = &config;
  ro.signature = &sig;
  auto options = IsolatedRunnerModel::OptionsFromConfig(config, ro, TORII_FAULT_RUNNER);
  REQUIRE(options.ok());
  options->host_path = "/nonexistent/torii-runner-host";
  auto b = IsolatedRunnerModel::Create(std::move(*options));
  REQUIRE_FALSE(b.ok());
  CHECK(b.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(Contains(b.status(), "TORII_RUNNER_HOST"));
}

TEST_CASE("destroying the backend stops the child") {
  pid_t pid;
  {
    auto iso = StartIsolated(TORII_IDENTITY_RUNNER, R"(
      name: "ident" backend: "identity" max_batch_size: 4
      input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
      output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
    )", 3);
    REQUIRE(iso.ok());
    pid = (*iso)->backend->pid();
    REQUIRE(pid > 0);
    for (size_t i = 0; i < 3; ++i) {
      auto r = Fp32Request((*iso)->m, 1, 4, 1.0f);
      REQUIRE(RunOne(*(*iso)->backend, *r, i).ok());
    }
  }
  CHECK(ProcessGone(pid));
}

#if !defined(__SANITIZE_ADDRESS__)  // ASan's shadow memory does not fit an RLIMIT_AS
TEST_CASE("unbounded allocation under memory_limit_mb ends in an error, not a crash") {
  auto iso = StartIsolated(TORII_FAULT_RUNNER,
                           FaultConfig(Param("memory_limit_mb", "512") + Param("restart_backoff_ms", "50")));
  REQUIRE(iso.ok());
  IsolatedRunnerModel& b = *(*iso)->backend;
  auto r = Fp32Request((*iso)->m, 1, 2, 1.0f, {{"fault", "alloc"}});
  const absl::Status s = RunOne(b, *r);
  CHECK_FALSE(s.ok());
  // The runner's std::bad_alloc becomes an error (no restart), or the child
  // dies and restarts: either way the next request is served.
  INFO(s.ToString());
  CHECK((Contains(s, "bad_alloc") || s.code() == absl::StatusCode::kUnavailable));
  REQUIRE(WaitHealthy(b));
  auto ok = Fp32Request((*iso)->m, 1, 2, 1.0f);
  CHECK(RunOne(b, *ok).ok());
}
#endif

}  // namespace
}  // namespace testing
}  // namespace torii
