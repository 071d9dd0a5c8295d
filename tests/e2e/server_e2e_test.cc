// End-to-end: the real torii-server binary on a free loopback port, called
// through generated C++ stubs.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <unistd.h>
#include <sys/wait.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include "health.grpc.pb.h"
#include "tests/e2e/e2e_util.h"
#include "tests/util/e2e_client.h"
#include "tests/util/server_process.h"

namespace torii {
namespace testing {
namespace {

using std::chrono::milliseconds;

// The example repository without models whose runner this build may lack.
const TempRepository& ExampleRepository() {
  // A function-local object: removed when the test process exits.
  static const TempRepository repo;
  return repo;
}

std::unique_ptr<ServerProcess> StartExampleServer(const std::vector<std::string>& extra = {}) {
  ServerProcess::Options o;
  o.repository = ExampleRepository().path();
  o.extra_args = extra;
  return ServerProcess::Start(o);
}

TEST_CASE("core RPCs answer per the v2 protocol") {
  auto server = StartExampleServer();
  auto stub = server->Stub();
  {
    grpc::ClientContext ctx;
    inference::ServerLiveResponse r;
    REQUIRE(stub->ServerLive(&ctx, {}, &r).ok());
    CHECK(r.live());
  }
  {
    grpc::ClientContext ctx;
    inference::ServerMetadataResponse r;
    REQUIRE(stub->ServerMetadata(&ctx, {}, &r).ok());
    CHECK(r.name() == "torii");
    CHECK(r.extensions_size() > 0);
  }
  {
    grpc::ClientContext ctx;
    inference::ModelReadyRequest q;
    q.set_name("add_sub");
    inference::ModelReadyResponse r;
    REQUIRE(stub->ModelReady(&ctx, q, &r).ok());
    CHECK(r.ready());
  }
  {
    grpc::ClientContext ctx;
    inference::ModelMetadataRequest q;
    q.set_name("identity");
    inference::ModelMetadataResponse r;
    REQUIRE(stub->ModelMetadata(&ctx, q, &r).ok());
    CHECK(r.versions(0) == "1");
    CHECK(r.platform() == "identity");
    CHECK(r.inputs(0).datatype() == "FP32");
    CHECK(std::vector<int64_t>(r.inputs(0).shape().begin(), r.inputs(0).shape().end()) ==
          std::vector<int64_t>{-1, -1});
    for (const char* key : {"runner", "runner_version", "runner_build", "runner_abi"}) {
      CHECK(r.properties().count(key) == 1);
    }
  }
  {
    auto req = IdentityRequest({1, 2, 3});
    req.set_id("req-7");
    inference::ModelInferResponse r;
    REQUIRE(Infer(*stub, req, &r).ok());
    CHECK(r.id() == "req-7");
    CHECK(r.model_version() == "1");
    CHECK(Fp32Values(r.raw_output_contents(0)) == std::vector<float>{1, 2, 3});
  }
  {
    grpc::ClientContext ctx;
    inference::ModelConfigRequest q;
    q.set_name("add_sub");
    inference::ModelConfigResponse r;
    REQUIRE(stub->ModelConfig(&ctx, q, &r).ok());
    CHECK(r.config().max_batch_size() == 64);
    CHECK(r.config().input(0).dims(0) == 16);
  }
  {
    grpc::ClientContext ctx;
    inference::RepositoryIndexResponse r;
    REQUIRE(stub->RepositoryIndex(&ctx, {}, &r).ok());
    CHECK(r.models_size() >= 3);
  }
  {
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest q;
    grpc::health::v1::HealthCheckResponse r;
    auto health = grpc::health::v1::Health::NewStub(
        grpc::CreateChannel(server->address(), grpc::InsecureChannelCredentials()));
    REQUIRE(health->Check(&ctx, q, &r).ok());
    CHECK(r.status() == grpc::health::v1::HealthCheckResponse::SERVING);
  }
}

TEST_CASE("bad inputs get clear statuses and the server keeps serving") {
  auto server = StartExampleServer();
  auto stub = server->Stub();
  struct Case {
    const char* what;
    std::function<void(inference::ModelInferRequest&)> mutate;
    grpc::StatusCode code;
    const char* needle;
  };
  const std::vector<Case> cases = {
      {"unknown model", [](auto& r) { r.set_model_name("nope"); }, grpc::NOT_FOUND, "nope"},
      {"unknown version", [](auto& r) { r.set_model_version("9"); }, grpc::NOT_FOUND, "'9'"},
      {"wrong datatype", [](auto& r) { r.mutable_inputs(0)->set_datatype("INT32"); },
       grpc::INVALID_ARGUMENT, "INPUT0"},
      {"unknown input", [](auto& r) { r.mutable_inputs(0)->set_name("X"); }, grpc::INVALID_ARGUMENT, "'X'"},
      {"byte size", [](auto& r) { r.set_raw_input_contents(0, "abc"); }, grpc::INVALID_ARGUMENT, "bytes"},
      {"batch too big", [](auto& r) { r.mutable_inputs(0)->set_shape(0, 65); }, grpc::INVALID_ARGUMENT,
       "max_batch_size"},
      {"unknown output", [](auto& r) { r.add_outputs()->set_name("Z"); }, grpc::INVALID_ARGUMENT, "'Z'"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    auto req = IdentityRequest({1, 2});
    c.mutate(req);
    inference::ModelInferResponse r;
    const grpc::Status s = Infer(*stub, req, &r);
    CHECK(s.error_code() == c.code);
    CHECK(s.error_message().find(c.needle) != std::string::npos);
  }
  inference::ModelInferResponse r;
  REQUIRE(Infer(*stub, IdentityRequest({4}), &r).ok());
  CHECK(Fp32Values(r.raw_output_contents(0)) == std::vector<float>{4});
}

TEST_CASE("32 concurrent clients each get their own data back") {
  auto server = StartExampleServer();
  std::atomic<int> failures{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 32; ++c) {
    clients.emplace_back([&, c] {
      auto stub = inference::GRPCInferenceService::NewStub(
          grpc::CreateChannel(server->address(), grpc::InsecureChannelCredentials()));
      for (int i = 0; i < 20; ++i) {
        std::vector<float> v = {float(c), float(i), float(c * 1000 + i)};
        inference::ModelInferResponse r;
        if (!Infer(*stub, IdentityRequest(v), &r).ok() || Fp32Values(r.raw_output_contents(0)) != v) {
          ++failures;
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  CHECK(failures == 0);
}

TEST_CASE("ModelStreamInfer answers every request and survives a bad one") {
  auto server = StartExampleServer();
  auto stub = server->Stub();
  grpc::ClientContext ctx;
  SetDeadline(ctx, milliseconds(10000));
  auto stream = stub->ModelStreamInfer(&ctx);
  auto good = IdentityRequest({1, 2});
  good.set_id("a");
  auto bad = IdentityRequest({1});
  bad.set_id("b");
  bad.mutable_inputs(0)->set_datatype("FP64");
  auto good2 = IdentityRequest({3});
  good2.set_id("c");
  REQUIRE(stream->Write(good));
  REQUIRE(stream->Write(bad));
  REQUIRE(stream->Write(good2));
  stream->WritesDone();
  std::map<std::string, inference::ModelStreamInferResponse> got;
  inference::ModelStreamInferResponse r;
  while (stream->Read(&r)) got[r.infer_response().id()] = r;
  REQUIRE(stream->Finish().ok());
  REQUIRE(got.size() == 3);
  CHECK(got["a"].error_message().empty());
  CHECK(Fp32Values(got["a"].infer_response().raw_output_contents(0)) == std::vector<float>{1, 2});
  CHECK(got["b"].error_message().find("INPUT0") != std::string::npos);
  CHECK(got["c"].error_message().empty());
}

TEST_CASE("a model that fails to load is recorded and the others keep serving") {
  TempRepository repo;
  repo.Write("broken/config.pbtxt", "name: \"broken\"\nbackend: \"identity\"\nmax_batch_size: x\n");
  repo.Write("broken/1/README", "");
  repo.Write("norunner/config.pbtxt", R"(backend: "does_not_exist"
    input [{name:"INPUT0" data_type:TYPE_FP32 dims:[1]}] output [{name:"OUTPUT0" data_type:TYPE_FP32 dims:[1]}])");
  repo.Write("norunner/1/README", "");
  auto server = StartServer(repo, {"--strict-readiness=false"});
  auto stub = server->Stub();
  inference::ModelInferResponse r;
  REQUIRE(Infer(*stub, IdentityRequest({1}), &r).ok());

  grpc::ClientContext ctx;
  inference::RepositoryIndexResponse index;
  REQUIRE(stub->RepositoryIndex(&ctx, {}, &index).ok());
  std::map<std::string, inference::RepositoryIndexResponse::ModelIndex> by_name;
  for (const auto& m : index.models()) by_name[m.name()] = m;
  CHECK(by_name["broken"].state() == "UNAVAILABLE");
  CHECK(by_name["broken"].reason().find("line 3") != std::string::npos);
  CHECK(by_name["norunner"].reason().find("libtorii_does_not_exist.so") != std::string::npos);
  CHECK(by_name["identity"].state() == "READY");

  grpc::ClientContext ctx2;
  inference::ModelReadyRequest q;
  q.set_name("broken");
  inference::ModelReadyResponse ready;
  REQUIRE(stub->ModelReady(&ctx2, q, &ready).ok());
  CHECK_FALSE(ready.ready());
}

TEST_CASE("strict readiness: a failed model makes the server not ready but still live") {
  TempRepository repo;
  repo.Write("broken/config.pbtxt", "backend: \"identity\"\n");
  repo.Write("broken/1/README", "");
  auto server = StartServer(repo, {}, /*wait_ready=*/false);
  auto stub = server->Stub();
  // Give the loads time to finish, then ask.
  bool ready = true;
  for (int i = 0; i < 100 && ready; ++i) {
    grpc::ClientContext ctx;
    inference::RepositoryIndexResponse index;
    stub->RepositoryIndex(&ctx, {}, &index);
    bool all_settled = index.models_size() >= 4;
    for (const auto& m : index.models()) all_settled = all_settled && m.state() != "LOADING";
    if (all_settled) break;
    std::this_thread::sleep_for(milliseconds(50));
  }
  grpc::ClientContext c1, c2;
  inference::ServerReadyResponse r;
  inference::ServerLiveResponse l;
  REQUIRE(stub->ServerReady(&c1, {}, &r).ok());
  REQUIRE(stub->ServerLive(&c2, {}, &l).ok());
  CHECK_FALSE(r.ready());
  CHECK(l.live());
}

TEST_CASE("SIGTERM under load: every request succeeds or gets UNAVAILABLE, exit 0") {
  auto server = StartExampleServer({"--exit-timeout-secs=10"});
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, unavailable{0}, other{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 8; ++c) {
    clients.emplace_back([&] {
      auto stub = server->Stub();
      while (!stop) {
        inference::ModelInferResponse r;
        const grpc::Status s = Infer(*stub, IdentityRequest({1, 2, 3}), &r);
        if (s.ok()) ++ok;
        else if (s.error_code() == grpc::UNAVAILABLE) ++unavailable;
        else {
          ++other;
          UNSCOPED_INFO("code " << s.error_code() << ": " << s.error_message());
        }
      }
    });
  }
  std::this_thread::sleep_for(milliseconds(300));
  const int status = server->Signal(SIGTERM, std::chrono::seconds(20));
  std::this_thread::sleep_for(milliseconds(200));
  stop = true;
  for (auto& t : clients) t.join();
  REQUIRE(status != -1);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(ok > 0);
  CHECK(other == 0);
}

TEST_CASE("poll mode: a new version is served with no failed request and a removed model unloads") {
  TempRepository repo;
  auto server = StartServer(repo, {"--model-control-mode=poll", "--repository-poll-secs=1"});
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::set<std::string> versions_seen;
  std::mutex mu;
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&] {
      auto stub = server->Stub();
      while (!stop) {
        inference::ModelInferResponse r;
        if (Infer(*stub, IdentityRequest({5}), &r).ok()) {
          ++ok;
          std::lock_guard<std::mutex> lock(mu);
          versions_seen.insert(r.model_version());
        } else {
          ++failed;
        }
      }
    });
  }
  std::this_thread::sleep_for(milliseconds(500));
  repo.Write("identity/2/README", "version 2");
  auto stub = server->Stub();
  bool moved = false;
  for (int i = 0; i < 100 && !moved; ++i) {
    std::this_thread::sleep_for(milliseconds(100));
    std::lock_guard<std::mutex> lock(mu);
    moved = versions_seen.count("2") != 0;
  }
  // A broken config must leave version 2 serving.
  repo.Write("identity/config.pbtxt", "this is not a config");
  std::this_thread::sleep_for(milliseconds(2500));
  stop = true;
  for (auto& t : clients) t.join();
  CHECK(moved);
  CHECK(failed == 0);
  CHECK(ok > 0);
  {
    grpc::ClientContext ctx;
    inference::RepositoryIndexResponse index;
    REQUIRE(stub->RepositoryIndex(&ctx, {}, &index).ok());
    bool found = false;
    for (const auto& m : index.models()) {
      if (m.name() == "identity") {
        found = true;
        CHECK(m.state() == "READY");
        CHECK(m.reason().find("config.pbtxt") != std::string::npos);
      }
    }
    CHECK(found);
  }
  std::filesystem::remove_all(repo.path() + "/add_sub");
  bool gone = false;
  for (int i = 0; i < 50 && !gone; ++i) {
    std::this_thread::sleep_for(milliseconds(100));
    grpc::ClientContext ctx;
    inference::ModelReadyRequest q;
    q.set_name("add_sub");
    inference::ModelReadyResponse r;
    stub->ModelReady(&ctx, q, &r);
    gone = !r.ready();
  }
  CHECK(gone);
}

TEST_CASE("explicit mode: load and unload by name, paths outside the repository are refused") {
  TempRepository repo;
  auto server = StartServer(repo, {"--model-control-mode=explicit", "--load-model=identity"});
  auto stub = server->Stub();
  CHECK(ModelReady(*stub, "identity"));
  CHECK_FALSE(ModelReady(*stub, "add_sub"));
  REQUIRE(LoadModel(*stub, "add_sub").ok());
  CHECK(ModelReady(*stub, "add_sub"));
  for (const char* evil : {"..", "../etc", "/etc", "a/b", "", "nonexistent"}) {
    INFO(evil);
    const grpc::Status s = LoadModel(*stub, evil);
    CHECK((s.error_code() == grpc::INVALID_ARGUMENT || s.error_code() == grpc::NOT_FOUND));
  }
  REQUIRE(UnloadModel(*stub, "identity").ok());
  CHECK_FALSE(ModelReady(*stub, "identity"));
}

TEST_CASE("statistics count what was served") {
  auto server = StartExampleServer();
  auto stub = server->Stub();
  for (int i = 0; i < 5; ++i) {
    inference::ModelInferResponse r;
    REQUIRE(Infer(*stub, IdentityRequest({1}), &r).ok());
  }
  inference::ModelInferResponse r;
  auto bad = IdentityRequest({1});
  bad.set_raw_input_contents(0, "x");
  CHECK_FALSE(Infer(*stub, bad, &r).ok());
  grpc::ClientContext ctx;
  inference::ModelStatisticsRequest q;
  q.set_name("identity");
  inference::ModelStatisticsResponse s;
  REQUIRE(stub->ModelStatistics(&ctx, q, &s).ok());
  REQUIRE(s.model_stats_size() == 1);
  CHECK(s.model_stats(0).version() == "1");
  CHECK(s.model_stats(0).inference_count() == 5);
  CHECK(s.model_stats(0).execution_count() == 5);
  CHECK(s.model_stats(0).inference_stats().success().count() == 5);
}

}  // namespace
}  // namespace testing
}  // namespace torii

namespace torii {
namespace testing {
namespace {

TEST_CASE("Prometheus metrics per model and version pass promtool") {
  auto server = StartExampleServer();
  auto stub = server->Stub();
  for (int i = 0; i < 3; ++i) {
    inference::ModelInferResponse r;
    REQUIRE(Infer(*stub, IdentityRequest({1, 2}), &r).ok());
  }
  {
    // One invalid request: counted as a failure with its reason.
    auto bad = IdentityRequest({1, 2});
    bad.mutable_inputs(0)->set_datatype("INT8");
    inference::ModelInferResponse r;
    REQUIRE(Infer(*stub, bad, &r).error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  }
  const std::string text = HttpGet(server->metrics_port(), "/metrics");
  CHECK(text.find("torii_inference_request_failure_total{model=\"identity\",version=\"1\","
                  "reason=\"invalid\"} 1") != std::string::npos);
  CHECK(text.find("torii_inference_request_failure_total{model=\"identity\",version=\"1\","
                  "reason=\"expired\"} 0") != std::string::npos);
  CHECK(text.find("process_resident_memory_bytes ") != std::string::npos);
  CHECK(text.find("process_cpu_seconds_total ") != std::string::npos);
  CHECK(text.find("process_open_fds ") != std::string::npos);
  CHECK(text.find("torii_inference_request_success_total{model=\"identity\",version=\"1\"} 3") !=
        std::string::npos);
  // Every answered request, the failed one too.
  CHECK(text.find("torii_inference_request_duration_seconds_bucket{model=\"identity\",version=\"1\",le=\"+Inf\"} 4") !=
        std::string::npos);
  CHECK(text.find("torii_inference_pending_requests{model=\"add_sub\",version=\"1\"} 0") != std::string::npos);
  CHECK(text.find("torii_model_ready{model=\"identity\",version=\"1\"} 1") != std::string::npos);

  std::string path_text = TempRoot() + "/torii-metrics-XXXXXX";
  char* path = path_text.data();
  const int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  REQUIRE(write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
  close(fd);
  const std::string cmd = std::string("promtool check metrics < ") + path + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[512];
  while (fgets(buf, sizeof(buf), p) != nullptr) out += buf;
  const int rc = pclose(p);
  unlink(path);
  INFO(out);
  CHECK(rc == 0);
}

}  // namespace
}  // namespace testing
}  // namespace torii

namespace torii {
namespace testing {
namespace {

TEST_CASE("a hung runner: the client gets DEADLINE_EXCEEDED, the instance is reported, others serve") {
  TempRepository repo;
  repo.Write("slow/config.pbtxt", R"(backend: "probe" max_batch_size: 4
    input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
    output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
    parameters { key: "execution_timeout_ms" value { string_value: "200" } })");
  repo.Write("slow/1/README", "");
  std::filesystem::copy_file(TORII_PROBE_RUNNER, repo.path() + "/slow/libtorii_probe.so");
  auto server = StartServer(repo);
  auto stub = server->Stub();

  auto req = IdentityRequest({1}, "slow");
  (*req.mutable_parameters())["sleep_ms"].set_int64_param(2500);
  grpc::ClientContext ctx;
  SetDeadline(ctx, milliseconds(300));
  inference::ModelInferResponse r;
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(stub->ModelInfer(&ctx, req, &r).error_code() == grpc::DEADLINE_EXCEEDED);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(1500));

  // Other models keep serving while the instance is stuck.
  inference::ModelInferResponse ok;
  REQUIRE(Infer(*stub, IdentityRequest({2}), &ok).ok());

  auto model_ready = [&] {
    grpc::ClientContext c;
    inference::ModelReadyRequest q;
    q.set_name("slow");
    inference::ModelReadyResponse rr;
    REQUIRE(stub->ModelReady(&c, q, &rr).ok());
    return rr.ready();
  };
  bool reported = false;
  for (int i = 0; i < 40 && !reported; ++i) {
    std::this_thread::sleep_for(milliseconds(50));
    reported = !model_ready();
  }
  CHECK(reported);
  // The log line comes from the server's 250 ms housekeeping tick.
  CHECK(WaitLog(*server, "runner instance stuck", milliseconds(2000)));
  const std::string metrics = HttpGet(server->metrics_port(), "/metrics");
  CHECK(metrics.find("torii_runner_instances_stuck{model=\"slow\",version=\"1\"} 1") != std::string::npos);

  // When the batch finally ends, the model is ready again.
  bool back = false;
  for (int i = 0; i < 100 && !back; ++i) {
    std::this_thread::sleep_for(milliseconds(50));
    back = model_ready();
  }
  CHECK(back);
}

}  // namespace
}  // namespace testing
}  // namespace torii
