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
#include "server/core/datatype.h"
#include "server/repository/model_spec_builder.h"
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

/// An isolated model: its spec (in LoadedModel, without an in-process model)
/// plus the backend.
struct Isolated {
  LoadedModel m;
  std::unique_ptr<IsolatedRunnerModel> backend;
};

absl::StatusOr<std::unique_ptr<Isolated>> StartIsolated(const std::string& library,
                                                        const std::string& config_text,
                                                        uint32_t instances = 1,
                                                        const std::string& host = TORII_RUNNER_HOST_BINARY) {
  auto iso = std::make_unique<Isolated>();
  inference::ModelConfig config;
  if (!google::protobuf::TextFormat::ParseFromString(config_text, &config)) {
    return absl::InvalidArgumentError("bad test config");
  }
  if (instances > 1) config.add_instance_group()->set_count(static_cast<int>(instances));
  RunnerManifest runner;
  runner.runner = config.backend();
  auto spec = BuildModelSpec(config, runner, SpecDefaults{});
  if (!spec.ok()) return spec.status();
  iso->m.spec = std::make_shared<const ModelSpec>(std::move(*spec));
  IsolatedRunnerModel::Options o;
  o.name = config.name();
  o.version = 1;
  o.directory = "/nonexistent";
  o.version_directory = "/nonexistent/1";
  o.spec = iso->m.spec;
  config.SerializeToString(&o.config);
  o.library_path = library;
  o.runner = config.backend();
  o.host_path = host;
  auto backend = IsolatedRunnerModel::Create(std::move(o));
  if (!backend.ok()) return backend.status();
  iso->backend = std::move(*backend);
  return iso;
}

std::vector<absl::Status> Run(ExecutionBackend& b, size_t instance,
                              const std::vector<std::unique_ptr<TestRequest>>& reqs) {
  std::vector<TestRequest*> ptrs;
  for (auto& r : reqs) ptrs.push_back(r.get());
  RunBatch(b, ptrs, instance);
  std::vector<absl::Status> out;
  for (auto& r : reqs) out.push_back(r->status());
  return out;
}

absl::Status RunOne(ExecutionBackend& b, TestRequest& r, size_t instance = 0) {
  RunBatch(b, {&r}, instance);
  return r.status();
}

std::string Bytes(const InferenceResponse& r, const std::string& name) {
  const OutputTensor& o = Output(r, name);
  return std::string(o.data, o.byte_size);
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
  // Gone: no such process, or a zombie nobody has reaped yet (an orphan
  // waits for whatever reaps orphans here).
  for (int i = 0; i < 300; ++i) {
    if (kill(pid, 0) != 0 && errno == ESRCH) return true;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string pid_field, comm, state;
    if (stat >> pid_field >> comm >> state && state == "Z") return true;
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
      REQUIRE(c->response().outputs().size() == 2);
      const OutputTensor& o = Output(c->response(), "OUTPUT0");
      CHECK(o.datatype == TORII_TYPE_FP32);
      CHECK(o.shape[0] == 1);
      CHECK(o.shape[1] == cols);
      CHECK(Bytes(c->response(), "OUTPUT0") == Bytes(a->response(), "OUTPUT0"));
      // PID: the runner ran in the child, not here.
      CHECK(OutputValues<int64_t>(c->response(), "PID")[0] == b.pid());
      CHECK(OutputValues<int64_t>(a->response(), "PID")[0] == getpid());
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
    CHECK(Output(rc[r]->response(), "OUTPUT0").shape[0] ==
          Output(ra[r]->response(), "OUTPUT0").shape[0]);
    CHECK(Bytes(rc[r]->response(), "OUTPUT0") == Bytes(ra[r]->response(), "OUTPUT0"));
  }
}

TEST_CASE("tensors larger than the region grow it on both sides") {
  auto iso = StartIsolated(TORII_FAULT_RUNNER, FaultConfig());
  REQUIRE(iso.ok());
  // 3 MiB in: the server grows the region to 4 MiB; 3 MiB out does not fit
  // after the input, so the host grows it again.
  for (int64_t cols : {786432, 1000, 2000000}) {
    auto r = Fp32Request((*iso)->m, 1, cols, 0.25f);
    const std::string input = r->storage[0];
    REQUIRE(RunOne(*(*iso)->backend, *r).ok());
    CHECK(Bytes(r->response(), "OUTPUT0") == input);
  }
}

TEST_CASE("only the requested outputs come back") {
  auto iso = StartIsolated(TORII_FAULT_RUNNER, FaultConfig());
  REQUIRE(iso.ok());
  auto r = Fp32Request((*iso)->m, 2, 3, 1.0f);
  r->request->output_requested = {0, 1};  // PID only
  REQUIRE(RunOne(*(*iso)->backend, *r).ok());
  REQUIRE(r->response().outputs().size() == 1);
  CHECK(r->response().outputs()[0].name == "PID");
  CHECK(r->response().outputs()[0].datatype == TORII_TYPE_INT64);
  CHECK(OutputValues<int64_t>(r->response(), "PID") == std::vector<int64_t>(2, (*iso)->backend->pid()));
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
    CHECK(OutputValues<float>(after->response(), "OUTPUT0") == std::vector<float>{7, 8});
  }
}

TEST_CASE("a runner that starts a helper process cannot hide its crash") {
  // execution_timeout_ms 0: nothing but the child's death can end the wait.
  auto iso = StartIsolated(TORII_FAULT_RUNNER,
                           FaultConfig(Param("execution_timeout_ms", "0") + Param("restart_backoff_ms", "50")));
  REQUIRE(iso.ok());
  IsolatedRunnerModel& b = *(*iso)->backend;
  const char* tmp = std::getenv("TMPDIR");
  const std::string pid_file = std::string(tmp != nullptr && *tmp ? tmp : "/tmp") + "/torii-helper-" +
                               std::to_string(getpid()) + ".pid";
  for (const char* how : {"fork", "exec"}) {
    INFO(how);
    std::remove(pid_file.c_str());
    auto r = Fp32Request((*iso)->m, 1, 2, 1.0f,
                         {{"fault", "helper_segv"}, {"helper", how}, {"pid_file", pid_file}});
    const auto t0 = std::chrono::steady_clock::now();
    const absl::Status s = RunOne(b, *r);
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
    CHECK(s.code() == absl::StatusCode::kUnavailable);
#if !defined(__SANITIZE_ADDRESS__)
    CHECK(Contains(s, "SIGSEGV"));
#endif
    pid_t helper = 0;
    std::ifstream(pid_file) >> helper;
    REQUIRE(helper > 0);
    // The helper was in the child's process group: it goes with the child.
    CHECK(ProcessGone(helper));
    REQUIRE(WaitHealthy(b));
    auto ok = Fp32Request((*iso)->m, 1, 2, 3.0f);
    CHECK(RunOne(b, *ok).ok());
  }
  std::remove(pid_file.c_str());
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

std::string LiarConfig(const std::string& lie, const std::string& type = "TYPE_FP32") {
  return "name: \"" + lie + "\" backend: \"liar\" max_batch_size: 8\n" +
         "input [ { name: \"INPUT0\" data_type: " + type + " dims: [ -1 ] } ]\n" +
         "output [ { name: \"OUTPUT0\" data_type: " + type + " dims: [ -1 ] } ]\n" +
         Param("isolation", "process");
}

TEST_CASE("the server checks everything an isolated child hands back") {
  SECTION("an output shape the config does not allow is INTERNAL") {
    auto iso = StartIsolated("/unused", LiarConfig("lie_shape"), 1, TORII_LYING_HOST);
    REQUIRE(iso.ok());
    auto r = Fp32Request((*iso)->m, 2, 4, 1.0f);
    const absl::Status s = RunOne(*(*iso)->backend, *r);
    CHECK(s.code() == absl::StatusCode::kInternal);
    CHECK(Contains(s, "expected shape [2,-1]"));
  }
  SECTION("an output outside the shared region is a protocol error; the child is killed") {
    auto iso = StartIsolated("/unused", LiarConfig("lie_bounds"), 1, TORII_LYING_HOST);
    REQUIRE(iso.ok());
    auto r = Fp32Request((*iso)->m, 1, 4, 1.0f);
    const absl::Status s = RunOne(*(*iso)->backend, *r);
    CHECK(s.code() == absl::StatusCode::kUnavailable);
    CHECK(Contains(s, "broke the protocol"));
  }
  SECTION("malformed BYTES from a child are the server's fault: INTERNAL") {
    auto iso = StartIsolated("/unused", LiarConfig("lie_bytes", "TYPE_STRING"), 1, TORII_LYING_HOST);
    REQUIRE(iso.ok());
    auto t = std::make_unique<TestRequest>();
    t->request->model_name = "lie_bytes";
    t->request->sink = t->sink;
    std::string bytes;
    AppendBytesElement(bytes, "x");
    t->AddInput("INPUT0", TORII_TYPE_BYTES, {1, 1}, bytes);
    REQUIRE(ValidateRequest(*(*iso)->m.spec, {}, t->request.get()).ok());
    const absl::Status s = RunOne(*(*iso)->backend, *t);
    CHECK(s.code() == absl::StatusCode::kInternal);
    CHECK(Contains(s, "BYTES element 0 declares 1000000 bytes"));
  }
  SECTION("a child cannot shrink the shared region under the server") {
    auto iso = StartIsolated("/unused", LiarConfig("lie_shrink"), 1, TORII_LYING_HOST);
    REQUIRE(iso.ok());
    auto r = Fp32Request((*iso)->m, 1, 4, 1.0f);
    // Without the seal the shrink succeeds and this read is a SIGBUS.
    const absl::Status s = RunOne(*(*iso)->backend, *r);
    CHECK(s.code() == absl::StatusCode::kFailedPrecondition);
    CHECK(Contains(s, "shrinking the region was refused"));
  }
}

TEST_CASE("a missing torii-runner-host is a clear load error") {
  auto b = StartIsolated(TORII_FAULT_RUNNER, FaultConfig(), 1, "/nonexistent/torii-runner-host");
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
