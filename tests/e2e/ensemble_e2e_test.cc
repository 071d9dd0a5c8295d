// Ensembles end to end, with the real server binary: Triton-format ensembles
// (Python pre-processing, a network, Python post-processing; the example
// pipeline), a branching graph of C++ runners, every broken graph refused at
// load with its reason, explicit-mode lifecycle, deadlines and step errors,
// statistics, and a composing model reloaded under load.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "tests/e2e/e2e_util.h"
#include "tests/util/e2e_client.h"
#include "tests/util/server_process.h"

namespace torii {
namespace testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using Stub = inference::GRPCInferenceService::Stub;

// Python models start an interpreter per instance: a longer start timeout.
std::unique_ptr<ServerProcess> Start(const TempRepository& repo,
                                     std::vector<std::string> args = {}) {
  return StartServer(repo, std::move(args), /*wait_ready=*/true, std::chrono::seconds(90));
}

// Calls through Python models: a longer deadline than Infer's default.
constexpr milliseconds kInferDeadline(30000);

void AddFp32(inference::ModelInferRequest& r, const std::string& name, std::vector<int64_t> shape,
             const std::vector<float>& values) {
  auto* in = r.add_inputs();
  in->set_name(name);
  in->set_datatype("FP32");
  for (int64_t d : shape) in->add_shape(d);
  r.add_raw_input_contents(Fp32Raw(values));
}

[[maybe_unused]] void AddBytes(inference::ModelInferRequest& r, const std::string& name,
                               const std::vector<std::string>& rows) {
  auto* in = r.add_inputs();
  in->set_name(name);
  in->set_datatype("BYTES");
  in->add_shape(static_cast<int64_t>(rows.size()));
  in->add_shape(1);
  std::string raw;
  for (const auto& s : rows) {
    const uint32_t n = static_cast<uint32_t>(s.size());
    raw.append(reinterpret_cast<const char*>(&n), 4);
    raw += s;
  }
  r.add_raw_input_contents(raw);
}

// The raw contents of output `name`, or "" when absent.
std::string Raw(const inference::ModelInferResponse& r, const std::string& name) {
  for (int i = 0; i < r.outputs_size(); ++i) {
    if (r.outputs(i).name() == name && i < r.raw_output_contents_size()) {
      return r.raw_output_contents(i);
    }
  }
  FAIL("the response has no output '" << name << "'");
  return "";
}

[[maybe_unused]] std::vector<std::string> BytesValues(const std::string& raw) {
  std::vector<std::string> out;
  for (size_t p = 0; p + 4 <= raw.size();) {
    uint32_t n;
    std::memcpy(&n, raw.data() + p, 4);
    out.push_back(raw.substr(p + 4, n));
    p += 4 + n;
  }
  return out;
}

[[maybe_unused]] std::vector<int64_t> Int64Values(const std::string& raw) {
  std::vector<int64_t> v(raw.size() / 8);
  std::memcpy(v.data(), raw.data(), v.size() * 8);
  return v;
}

std::map<std::string, inference::RepositoryIndexResponse::ModelIndex> Index(Stub& stub) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, milliseconds(5000));
  inference::RepositoryIndexResponse r;
  REQUIRE(stub.RepositoryIndex(&ctx, {}, &r).ok());
  std::map<std::string, inference::RepositoryIndexResponse::ModelIndex> out;
  for (const auto& m : r.models()) out[m.name()] = m;
  return out;
}

// Success count of `model` (every version) from ModelStatistics.
uint64_t Successes(Stub& stub, const std::string& model, uint64_t* failures = nullptr) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, milliseconds(5000));
  inference::ModelStatisticsRequest q;
  q.set_name(model);
  inference::ModelStatisticsResponse r;
  REQUIRE(stub.ModelStatistics(&ctx, q, &r).ok());
  uint64_t ok = 0, failed = 0;
  for (const auto& s : r.model_stats()) {
    ok += s.inference_stats().success().count();
    failed += s.inference_stats().fail().count();
  }
  if (failures != nullptr) *failures = failed;
  return ok;
}

// --- C++ runners only -------------------------------------------------------

constexpr const char* kIdentity = R"(name: "identity" backend: "identity" max_batch_size: 64
input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
dynamic_batching { max_queue_delay_microseconds: 100 })";

constexpr const char* kAddSub = R"(name: "add_sub" backend: "add_sub" max_batch_size: 64
input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 16 ] },
        { name: "INPUT1" data_type: TYPE_FP32 dims: [ 16 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 16 ] },
         { name: "OUTPUT1" data_type: TYPE_FP32 dims: [ 16 ] } ])";

// Two branches that meet: identity(IN) -> a; add_sub(IN, IN) -> s = 2 IN
// (and d = 0, unused... so not mapped); add_sub(a, s) -> SUM = 3 IN,
// DIFF = -IN.
constexpr const char* kBranches = R"(name: "branches" platform: "ensemble" max_batch_size: 8
input [ { name: "IN" data_type: TYPE_FP32 dims: [ 16 ] } ]
output [ { name: "SUM" data_type: TYPE_FP32 dims: [ 16 ] },
         { name: "DIFF" data_type: TYPE_FP32 dims: [ 16 ] } ]
ensemble_scheduling { step [
  { model_name: "identity" model_version: -1
    input_map { key: "INPUT0" value: "IN" } output_map { key: "OUTPUT0" value: "a" } },
  { model_name: "add_sub" model_version: -1
    input_map [ { key: "INPUT0" value: "IN" }, { key: "INPUT1" value: "IN" } ]
    output_map { key: "OUTPUT0" value: "s" } },
  { model_name: "add_sub" model_version: 1
    input_map [ { key: "INPUT0" value: "a" }, { key: "INPUT1" value: "s" } ]
    output_map [ { key: "OUTPUT0" value: "SUM" }, { key: "OUTPUT1" value: "DIFF" } ] } ] })";

void AddCppModels(const TempRepository& repo) {
  repo.Write("identity/config.pbtxt", kIdentity);
  repo.Write("identity/1/.keep", "");
  repo.Write("add_sub/config.pbtxt", kAddSub);
  repo.Write("add_sub/1/.keep", "");
  repo.Write("branches/config.pbtxt", kBranches);
  repo.Write("branches/1/.keep", "");
}

inference::ModelInferRequest BranchesRequest(float first, int rows = 1) {
  inference::ModelInferRequest r;
  r.set_model_name("branches");
  std::vector<float> v(static_cast<size_t>(16 * rows));
  for (size_t i = 0; i < v.size(); ++i) v[i] = first + static_cast<float>(i);
  AddFp32(r, "IN", {rows, 16}, v);
  return r;
}

void CheckBranches(const inference::ModelInferResponse& resp, float first, int rows = 1) {
  const auto sum = Fp32Values(Raw(resp, "SUM"));
  const auto diff = Fp32Values(Raw(resp, "DIFF"));
  REQUIRE(sum.size() == static_cast<size_t>(16 * rows));
  REQUIRE(diff.size() == sum.size());
  for (size_t i = 0; i < sum.size(); ++i) {
    const float x = first + static_cast<float>(i);
    CHECK(sum[i] == 3 * x);
    CHECK(diff[i] == -x);
  }
}

TEST_CASE("a branching graph of C++ runners answers unary and streamed requests") {
  TempRepository repo(TempRepository::Contents::kEmpty);
  AddCppModels(repo);
  auto server = Start(repo);
  auto stub = server->Stub();
  inference::ModelInferResponse resp;
  grpc::Status st = Infer(*stub, BranchesRequest(1, 3), &resp, kInferDeadline);
  INFO(st.error_message());
  REQUIRE(st.ok());
  CHECK(resp.model_name() == "branches");
  CHECK(resp.model_version() == "1");
  CheckBranches(resp, 1, 3);

  // Metadata describes the ensemble like any model.
  {
    grpc::ClientContext ctx;
    SetDeadline(ctx, milliseconds(5000));
    inference::ModelMetadataRequest q;
    q.set_name("branches");
    inference::ModelMetadataResponse md;
    REQUIRE(stub->ModelMetadata(&ctx, q, &md).ok());
    CHECK(md.platform() == "ensemble");
    REQUIRE(md.inputs_size() == 1);
    CHECK(md.inputs(0).name() == "IN");
    CHECK(std::vector<int64_t>(md.inputs(0).shape().begin(), md.inputs(0).shape().end()) ==
          std::vector<int64_t>{-1, 16});
  }

  // ModelStreamInfer: several requests on one stream, each answered.
  grpc::ClientContext ctx;
  SetDeadline(ctx, milliseconds(30000));
  auto stream = stub->ModelStreamInfer(&ctx);
  for (int i = 0; i < 5; ++i) {
    auto r = BranchesRequest(static_cast<float>(100 * i));
    r.set_id("s" + std::to_string(i));
    REQUIRE(stream->Write(r));
  }
  auto bad = BranchesRequest(0);
  bad.set_id("bad");
  bad.mutable_inputs(0)->set_datatype("FP64");
  REQUIRE(stream->Write(bad));
  stream->WritesDone();
  std::map<std::string, inference::ModelStreamInferResponse> got;
  inference::ModelStreamInferResponse sr;
  while (stream->Read(&sr)) got[sr.infer_response().id()] = sr;
  REQUIRE(stream->Finish().ok());
  REQUIRE(got.size() == 6);
  for (int i = 0; i < 5; ++i) {
    const auto& g = got["s" + std::to_string(i)];
    INFO(g.error_message());
    REQUIRE(g.error_message().empty());
    CheckBranches(g.infer_response(), static_cast<float>(100 * i));
  }
  CHECK(got["bad"].error_message().find("model 'branches'") != std::string::npos);
}

TEST_CASE("every broken graph is refused at load with its reason, and the server keeps serving") {
  TempRepository repo(TempRepository::Contents::kEmpty);
  AddCppModels(repo);
  auto ensemble = [&](const std::string& name, const std::string& in_type,
                      const std::string& out_dims, const std::string& steps) {
    repo.Write(name + "/config.pbtxt", R"(name: ")" + name + R"(" platform: "ensemble"
max_batch_size: 8
input [ { name: "IN" data_type: )" + in_type + R"( dims: [ 16 ] } ]
output [ { name: "OUT" data_type: TYPE_FP32 dims: )" + out_dims + R"( } ]
ensemble_scheduling { step [ )" + steps + " ] }");
    repo.Write(name + "/1/.keep", "");
  };
  auto step = [](const std::string& model, const std::string& in, const std::string& out) {
    return R"({ model_name: ")" + model + R"(" input_map { key: "INPUT0" value: ")" + in +
           R"(" } output_map { key: "OUTPUT0" value: ")" + out + R"(" } })";
  };
  ensemble("unknown_model", "TYPE_FP32", "[ -1 ]", step("nowhere", "IN", "OUT"));
  ensemble("unproduced", "TYPE_FP32", "[ -1 ]",
           step("identity", "IN", "t") + "," + step("identity", "ghost", "OUT"));
  ensemble("produced_twice", "TYPE_FP32", "[ -1 ]",
           step("identity", "IN", "OUT") + "," + step("identity", "IN", "OUT"));
  ensemble("cycle", "TYPE_FP32", "[ -1 ]",
           step("identity", "IN", "x") + "," + step("identity", "z", "y") + "," +
               step("identity", "y", "z") + "," + step("identity", "y", "OUT"));
  ensemble("dtype_mismatch", "TYPE_INT32", "[ -1 ]", step("identity", "IN", "OUT"));
  ensemble("shape_mismatch", "TYPE_FP32", "[ 4, 4 ]", step("identity", "IN", "OUT"));
  ensemble("unmapped_output", "TYPE_FP32", "[ -1 ]",
           step("identity", "IN", "t") + "," + step("identity", "t", "u"));
  auto server = Start(repo, {"--strict-readiness=false"});
  auto stub = server->Stub();
  const std::map<std::string, std::vector<std::string>> expect = {
      {"unknown_model", {"step 0 (model 'nowhere') cannot run", "no model directory 'nowhere'"}},
      {"unproduced", {"step 1 (model 'identity')", "input 'INPUT0' reads ensemble tensor 'ghost'",
                      "nothing produces"}},
      {"produced_twice", {"ensemble tensor 'OUT' is produced twice", "step 0 (model 'identity')",
                          "step 1 (model 'identity')"}},
      {"cycle", {"the steps form a cycle", "step 1 (model 'identity') reads 'z' from step 2"}},
      {"dtype_mismatch", {"ensemble tensor 'IN'", "ensemble input 'IN' is INT32",
                          "input 'INPUT0' of step 0 (model 'identity') is FP32",
                          "datatypes differ"}},
      {"shape_mismatch", {"ensemble tensor 'OUT'", "output 'OUTPUT0' of step 0 (model 'identity') "
                          "is FP32 [-1,-1]", "ensemble output 'OUT' is FP32 [-1,4,4]",
                          "shapes differ"}},
      {"unmapped_output", {"ensemble output 'OUT' is not mapped"}},
  };
  auto index = Index(*stub);
  for (const auto& [name, fragments] : expect) {
    INFO(name);
    REQUIRE(index.count(name) == 1);
    const auto& m = index[name];
    INFO(m.reason());
    CHECK(m.state() == "UNAVAILABLE");
    CHECK(m.reason().find("model '" + name + "'") != std::string::npos);
    for (const auto& f : fragments) CHECK(m.reason().find(f) != std::string::npos);
    CHECK_FALSE(ModelReady(*stub, name));
    // A request names the reason too.
    inference::ModelInferResponse resp;
    auto r = BranchesRequest(0);
    r.set_model_name(name);
    CHECK(Infer(*stub, r, &resp, kInferDeadline).error_code() == grpc::UNAVAILABLE);
  }
  // The rest serves.
  CHECK(index["branches"].state() == "READY");
  inference::ModelInferResponse resp;
  REQUIRE(Infer(*stub, BranchesRequest(2), &resp, kInferDeadline).ok());
  CheckBranches(resp, 2);
}

TEST_CASE("explicit mode: an ensemble loads what it needs and is ready only with its steps") {
  TempRepository repo(TempRepository::Contents::kEmpty);
  AddCppModels(repo);
  auto server = Start(repo, {"--model-control-mode=explicit", "--load-model=branches"});
  auto stub = server->Stub();
  auto index = Index(*stub);
  CHECK(index["identity"].state() == "READY");
  CHECK(index["add_sub"].state() == "READY");
  CHECK(index["branches"].state() == "READY");
  CHECK(ModelReady(*stub, "branches"));

  // Unloading a composing model makes the ensemble not ready, with the reason.
  REQUIRE(UnloadModel(*stub, "add_sub").ok());
  CHECK_FALSE(ModelReady(*stub, "branches"));
  index = Index(*stub);
  CHECK(index["branches"].state() == "UNAVAILABLE");
  CHECK(index["branches"].reason().find("step 1 (model 'add_sub') cannot run") != std::string::npos);
  CHECK(index["branches"].reason().find("unloaded") != std::string::npos);
  const std::string metrics = HttpGet(server->metrics_port(), "/metrics");
  CHECK(metrics.find("torii_model_ready{model=\"branches\",version=\"1\"} 0") != std::string::npos);
  inference::ModelInferResponse resp;
  grpc::Status st = Infer(*stub, BranchesRequest(0), &resp, kInferDeadline);
  CHECK(st.error_code() == grpc::UNAVAILABLE);
  CHECK(st.error_message().find("ensemble 'branches' step 1 (model 'add_sub')") != std::string::npos);

  // Loading it again makes the ensemble ready, without reloading it.
  REQUIRE(LoadModel(*stub, "add_sub").ok());
  CHECK(ModelReady(*stub, "branches"));
  REQUIRE(Infer(*stub, BranchesRequest(5), &resp, kInferDeadline).ok());
  CheckBranches(resp, 5);

  // Unloading the ensemble leaves its composing models serving.
  REQUIRE(UnloadModel(*stub, "branches").ok());
  CHECK(ModelReady(*stub, "identity"));
  CHECK(ModelReady(*stub, "add_sub"));
}

// identity -> broken (the fault runner: its fault comes from the request's
// parameters) -> after
void AddFaultyEnsemble(const TempRepository& repo) {
  repo.Write("broken/config.pbtxt", R"(name: "broken" backend: "fault" max_batch_size: 8
input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ])");
  repo.Write("broken/1/.keep", "");
  repo.CopyFile(TORII_FAULT_RUNNER, "broken/libtorii_fault.so");
  repo.Write("after/config.pbtxt", R"(name: "after" backend: "identity" max_batch_size: 8
input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ])");
  repo.Write("after/1/.keep", "");
  // identity -> broken (its fault comes from the request's parameters) -> after
  repo.Write("faulty/config.pbtxt", R"(name: "faulty" platform: "ensemble" max_batch_size: 8
input [ { name: "IN" data_type: TYPE_FP32 dims: [ -1 ] } ]
output [ { name: "OUT" data_type: TYPE_FP32 dims: [ -1 ] } ]
ensemble_scheduling { step [
  { model_name: "identity" input_map { key: "INPUT0" value: "IN" } output_map { key: "OUTPUT0" value: "a" } },
  { model_name: "broken" input_map { key: "INPUT0" value: "a" } output_map { key: "OUTPUT0" value: "b" } },
  { model_name: "after" input_map { key: "INPUT0" value: "b" } output_map { key: "OUTPUT0" value: "OUT" } } ] })");
  repo.Write("faulty/1/.keep", "");
}

inference::ModelInferRequest FaultyRequest(const std::string& fault, int64_t sleep_ms = 0) {
  inference::ModelInferRequest r;
  r.set_model_name("faulty");
  AddFp32(r, "IN", {1, 3}, {1, 2, 3});
  if (!fault.empty()) (*r.mutable_parameters())["fault"].set_string_param(fault);
  if (sleep_ms > 0) (*r.mutable_parameters())["sleep_ms"].set_int64_param(sleep_ms);
  return r;
}

TEST_CASE("a step's error fails the ensemble request, naming the step and model") {
  TempRepository repo(TempRepository::Contents::kEmpty);
  AddCppModels(repo);
  AddFaultyEnsemble(repo);
  auto server = Start(repo);
  auto stub = server->Stub();
  inference::ModelInferResponse resp;
  REQUIRE(Infer(*stub, FaultyRequest(""), &resp, kInferDeadline).ok());
  CHECK(Fp32Values(Raw(resp, "OUT")) == std::vector<float>{1, 2, 3});

  SECTION("an error") {
    grpc::Status st = Infer(*stub, FaultyRequest("error"), &resp, kInferDeadline);
    INFO(st.error_message());
    CHECK(st.error_code() == grpc::FAILED_PRECONDITION);
    CHECK(st.error_message().find("ensemble 'faulty' step 1 (model 'broken'): ") != std::string::npos);
    CHECK(Successes(*stub, "after") == 1);  // only the good request reached the last step
    uint64_t failed = 0;
    CHECK(Successes(*stub, "faulty", &failed) == 1);
    CHECK(failed == 1);
  }
  SECTION("the client's deadline stops the ensemble between steps") {
    // broken sleeps 1500 ms past the 500 ms deadline; the last step must not start.
    grpc::Status st = Infer(*stub, FaultyRequest("sleep", 1500), &resp, milliseconds(500));
    CHECK(st.error_code() == grpc::DEADLINE_EXCEEDED);
    uint64_t failed = 0;
    for (int i = 0; i < 100 && failed == 0; ++i) {
      std::this_thread::sleep_for(milliseconds(50));
      Successes(*stub, "faulty", &failed);
    }
    CHECK(failed == 1);
    // Counted as the client's deadline passing.
    bool expired = false;
    std::string faulty_lines;
    const std::string metrics = HttpGet(server->metrics_port(), "/metrics");
    for (size_t p = 0; (p = metrics.find("torii_inference_request_failure_total{", p)) !=
                       std::string::npos;
         ++p) {
      const std::string line = metrics.substr(p, metrics.find('\n', p) - p);
      if (line.find("model=\"faulty\"") != std::string::npos) faulty_lines += line + "\n";
      if (line.find("model=\"faulty\"") != std::string::npos &&
          line.find("reason=\"expired\"") != std::string::npos) {
        expired = line.size() >= 2 && line.compare(line.size() - 2, 2, " 1") == 0;
      }
    }
    INFO(faulty_lines);
    CHECK(expired);
    CHECK(Successes(*stub, "after") == 1);
    uint64_t after_failed = 0;
    Successes(*stub, "after", &after_failed);
    CHECK(after_failed == 0);  // not started at all, not failed in its queue
  }
}

TEST_CASE("a draining server finishes the ensemble requests it accepted") {
  TempRepository repo(TempRepository::Contents::kEmpty);
  AddCppModels(repo);
  AddFaultyEnsemble(repo);
  auto server = Start(repo);
  auto stub = server->Stub();
  // The middle step sleeps 1500 ms; SIGTERM comes while it runs, and the
  // last step must still be taken.
  grpc::Status st;
  inference::ModelInferResponse resp;
  std::thread client(
      [&] { st = Infer(*stub, FaultyRequest("sleep", 1500), &resp, kInferDeadline); });
  std::this_thread::sleep_for(milliseconds(500));
  const int exit_status = server->Signal(SIGTERM, std::chrono::seconds(30));
  client.join();
  INFO(st.error_message());
  REQUIRE(st.ok());
  CHECK(Fp32Values(Raw(resp, "OUT")) == std::vector<float>{1, 2, 3});
  CHECK(WIFEXITED(exit_status));
  CHECK(WEXITSTATUS(exit_status) == 0);
}

TEST_CASE("statistics count the ensemble's requests and each composing model's steps") {
  TempRepository repo(TempRepository::Contents::kEmpty);
  AddCppModels(repo);
  auto server = Start(repo);
  auto stub = server->Stub();
  const int n = 7;
  for (int i = 0; i < n; ++i) {
    inference::ModelInferResponse resp;
    REQUIRE(Infer(*stub, BranchesRequest(static_cast<float>(i), 2), &resp, kInferDeadline).ok());
  }
  CHECK(Successes(*stub, "branches") == n);
  CHECK(Successes(*stub, "identity") == n);
  CHECK(Successes(*stub, "add_sub") == 2 * n);  // two steps call add_sub
  grpc::ClientContext ctx;
  SetDeadline(ctx, milliseconds(5000));
  inference::ModelStatisticsRequest q;
  q.set_name("branches");
  inference::ModelStatisticsResponse r;
  REQUIRE(stub->ModelStatistics(&ctx, q, &r).ok());
  REQUIRE(r.model_stats_size() == 1);
  const auto& s = r.model_stats(0);
  CHECK(s.inference_count() == 2 * n);  // rows
  CHECK(s.execution_count() >= 1);
  CHECK(s.inference_stats().success().ns() > 0);
  const std::string metrics = HttpGet(server->metrics_port(), "/metrics");
  CHECK(metrics.find("torii_inference_request_success_total{model=\"branches\",version=\"1\"} 7") !=
        std::string::npos);
  CHECK(metrics.find("torii_inference_request_success_total{model=\"add_sub\",version=\"1\"} 14") !=
        std::string::npos);
}

TEST_CASE("reloading composing models under load fails no ensemble request") {
  TempRepository repo(TempRepository::Contents::kEmpty);
  AddCppModels(repo);
  auto server = Start(repo, {"--model-control-mode=explicit", "--load-model=branches"});
  auto stub = server->Stub();
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::mutex mu;
  std::string first_error;
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&, c] {
      auto own = server->Stub();
      for (int i = 0; !stop; ++i) {
        const float first = static_cast<float>(c * 100000 + i);
        inference::ModelInferResponse resp;
        grpc::Status st = Infer(*own, BranchesRequest(first), &resp, kInferDeadline);
        bool right = st.ok();
        if (right) {
          const auto sum = Fp32Values(Raw(resp, "SUM"));
          right = sum.size() == 16 && sum[0] == 3 * first;
        }
        if (right) {
          ++ok;
          continue;
        }
        ++failed;
        std::lock_guard<std::mutex> lock(mu);
        if (first_error.empty()) first_error = st.ok() ? "wrong values" : st.error_message();
      }
    });
  }
  // Each reload sees a changed version folder, so a new version is built and
  // the serving one drains while requests keep coming.
  int reloads = 0;
  for (int r = 0; r < 5; ++r) {
    std::this_thread::sleep_for(milliseconds(150));
    for (const std::string m : {"add_sub", "identity"}) {
      repo.Write(m + "/1/reload-" + std::to_string(r), "x");
      REQUIRE(LoadModel(*stub, m).ok());
      ++reloads;
    }
  }
  std::this_thread::sleep_for(milliseconds(150));
  stop = true;
  for (auto& t : clients) t.join();
  INFO(first_error);
  CHECK(failed == 0);
  CHECK(ok > 50);
  CHECK(reloads == 10);
  CHECK(server->Log().find("model version unloaded model=add_sub") != std::string::npos);
}

// --- With the Python runner ------------------------------------------------
#if defined(TORII_TEST_PYTHON_RUNNER)

TEST_CASE("the example pipeline ensemble (Python, add_sub, identity) answers correctly") {
  TempRepository repo(TempRepository::Contents::kEmpty);
  for (const char* m : {"identity", "add_sub", "pipeline", "pipeline_preprocess",
                        "pipeline_postprocess"}) {
    repo.CopyModel(TORII_EXAMPLE_REPOSITORY, m);
  }
  auto server = Start(repo);
  auto stub = server->Stub();
  // Row 0 above its reference, row 1 below it.
  std::vector<float> raw(32), reference(32);
  for (int i = 0; i < 16; ++i) {
    raw[i] = static_cast<float>(i);
    reference[i] = -1;
    raw[16 + i] = static_cast<float>(20 - i);
    reference[16 + i] = 10;
  }
  auto request = [&] {
    inference::ModelInferRequest r;
    r.set_model_name("pipeline");
    AddFp32(r, "RAW", {2, 16}, raw);
    AddFp32(r, "REFERENCE", {2, 16}, reference);
    return r;
  };
  auto check = [&](const inference::ModelInferResponse& resp) {
    // The config's mean 8 and std 4.
    const auto scores = Fp32Values(Raw(resp, "SCORES"));
    REQUIRE(scores.size() == 32);
    std::vector<int64_t> top(2, 0);
    std::vector<std::string> label(2);
    for (int row = 0; row < 2; ++row) {
      float delta = 0;
      for (int i = 0; i < 16; ++i) {
        const int k = row * 16 + i;
        const float standardised = (raw[k] - 8) / 4;
        CHECK(scores[k] == Approx(standardised + reference[k]));
        if (scores[k] > scores[row * 16 + top[row]]) top[row] = i;
        delta += standardised - reference[k];
      }
      label[row] = delta > 0 ? "above" : "below";
    }
    CHECK(Int64Values(Raw(resp, "TOP")) == top);
    CHECK(BytesValues(Raw(resp, "LABEL")) == label);
  };
  inference::ModelInferResponse resp;
  grpc::Status st = Infer(*stub, request(), &resp, kInferDeadline);
  INFO(st.error_message());
  REQUIRE(st.ok());
  check(resp);
  CHECK(BytesValues(Raw(resp, "LABEL")) == std::vector<std::string>{"above", "below"});

  // Streamed, several at once.
  grpc::ClientContext ctx;
  SetDeadline(ctx, milliseconds(30000));
  auto stream = stub->ModelStreamInfer(&ctx);
  for (int i = 0; i < 4; ++i) {
    auto r = request();
    r.set_id(std::to_string(i));
    REQUIRE(stream->Write(r));
  }
  stream->WritesDone();
  int answered = 0;
  inference::ModelStreamInferResponse sr;
  while (stream->Read(&sr)) {
    INFO(sr.error_message());
    REQUIRE(sr.error_message().empty());
    check(sr.infer_response());
    ++answered;
  }
  REQUIRE(stream->Finish().ok());
  CHECK(answered == 4);
  CHECK(Successes(*stub, "pipeline") == 5);
  CHECK(Successes(*stub, "pipeline_preprocess") == 5);
  CHECK(Successes(*stub, "pipeline_postprocess") == 5);
}

// The scores the identity network passes through: the tokenizer's histogram.
std::vector<float> Histogram(const std::string& text) {
  std::vector<float> h(64, 0);
  for (unsigned char c : text) h[c % 64] += 1;
  for (float& x : h) x /= static_cast<float>(text.size());
  return h;
}

TEST_CASE("a Triton-format ensemble: Python tokenizer -> network -> Python labeler") {
  TempRepository repo(TempRepository::Contents::kEmpty);
  const std::string triton = TORII_TRITON_ENSEMBLE_DIR;
  for (const char* m : {"text_classifier", "tokenizer", "labeler"}) repo.CopyModel(triton, m);
  // identity stands in for the network in CI (the TorchScript runner needs
  // LibTorch, slow to build). TORII_TEST_TORCHSCRIPT_NET=1 puts the example
  // TorchScript MLP (64 -> 10) there instead; TORII_TEST_BACKEND_DIRECTORIES
  // then names a directory holding libtorii_torchscript.so.
  const char* torch = std::getenv("TORII_TEST_TORCHSCRIPT_NET");
  const bool identity_net = torch == nullptr || std::string(torch) != "1";
  if (identity_net) {
    repo.Write("classifier_net/config.pbtxt", R"(name: "classifier_net"
backend: "identity"
max_batch_size: 64
input [ { name: "INPUT__0" data_type: TYPE_FP32 dims: [ 64 ] } ]
output [ { name: "OUTPUT__0" data_type: TYPE_FP32 dims: [ 64 ] } ]
dynamic_batching { max_queue_delay_microseconds: 100 })");
    repo.Write("classifier_net/1/.keep", "");
  } else {
    repo.CopyModel(TORII_EXAMPLE_REPOSITORY, "mlp");
    std::filesystem::rename(repo.path() + "/mlp", repo.path() + "/classifier_net");
    repo.Write("classifier_net/config.pbtxt", R"(name: "classifier_net"
platform: "pytorch_libtorch"
max_batch_size: 128
input [ { name: "INPUT__0" data_type: TYPE_FP32 dims: [ 64 ] } ]
output [ { name: "OUTPUT__0" data_type: TYPE_FP32 dims: [ 10 ] } ]
dynamic_batching { max_queue_delay_microseconds: 100 })");
  }
  std::vector<std::string> extra;
  if (const char* dir = std::getenv("TORII_TEST_BACKEND_DIRECTORIES")) {
    // e.g. a build that has the TorchScript runner; ':'-separated. It replaces
    // the default directory, so name the one with the other runners too.
    std::string dirs = dir;
    for (size_t p = 0; p <= dirs.size();) {
      size_t q = dirs.find(':', p);
      if (q == std::string::npos) q = dirs.size();
      if (q > p) extra.push_back("--backend-directory=" + dirs.substr(p, q - p));
      p = q + 1;
    }
  }
  auto server = Start(repo, extra);
  auto stub = server->Stub();
  const std::vector<std::string> texts = {"Ensembles in Triton's format", "zzzz", "a",
                                          "the quick brown fox"};
  inference::ModelInferRequest r;
  r.set_model_name("text_classifier");
  AddBytes(r, "TEXT", texts);
  inference::ModelInferResponse resp;
  grpc::Status st = Infer(*stub, r, &resp, kInferDeadline);
  INFO(st.error_message());
  REQUIRE(st.ok());
  const auto labels = BytesValues(Raw(resp, "LABEL"));
  const auto confidence = Fp32Values(Raw(resp, "CONFIDENCE"));
  REQUIRE(labels.size() == texts.size());
  REQUIRE(confidence.size() == texts.size());

  // The same answer as calling the steps one after the other.
  inference::ModelInferRequest tq;
  tq.set_model_name("tokenizer");
  AddBytes(tq, "TEXT", texts);
  inference::ModelInferResponse tr;
  REQUIRE(Infer(*stub, tq, &tr, kInferDeadline).ok());
  const auto features = Fp32Values(Raw(tr, "FEATURES"));
  inference::ModelInferRequest nq;
  nq.set_model_name("classifier_net");
  AddFp32(nq, "INPUT__0", {static_cast<int64_t>(texts.size()), 64}, features);
  inference::ModelInferResponse nr;
  REQUIRE(Infer(*stub, nq, &nr, kInferDeadline).ok());
  const auto scores = Fp32Values(Raw(nr, "OUTPUT__0"));
  const size_t width = scores.size() / texts.size();
  CHECK(width == (identity_net ? 64u : 10u));
  inference::ModelInferRequest lq;
  lq.set_model_name("labeler");
  AddFp32(lq, "SCORES", {static_cast<int64_t>(texts.size()), static_cast<int64_t>(width)}, scores);
  inference::ModelInferResponse lr;
  REQUIRE(Infer(*stub, lq, &lr, kInferDeadline).ok());
  CHECK(BytesValues(Raw(lr, "LABEL")) == labels);
  CHECK(Fp32Values(Raw(lr, "CONFIDENCE")) == confidence);

  if (identity_net) {
    // And what the steps compute, worked out here.
    for (size_t row = 0; row < texts.size(); ++row) {
      const auto h = Histogram(texts[row]);
      for (size_t j = 0; j < 64; ++j) CHECK(features[row * 64 + j] == Approx(h[j]));
      const size_t top = static_cast<size_t>(std::max_element(h.begin(), h.end()) - h.begin());
      CHECK(labels[row] == "class_" + std::to_string(top));
      double sum = 0;
      for (float x : h) sum += std::exp(static_cast<double>(x - h[top]));
      CHECK(confidence[row] == Approx(1.0 / sum).epsilon(1e-5));
    }
  }
}

#endif  // TORII_TEST_PYTHON_RUNNER

}  // namespace
}  // namespace testing
}  // namespace torii
