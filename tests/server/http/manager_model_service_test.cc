// ManagerModelService over a real ModelManager, InferenceCore and the
// identity runner: what the HTTP endpoints answer about models is what the
// manager (and so gRPC) knows.
#include "server/http/manager_model_service.h"

#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>

#include "server/manager/inference_core.h"
#include "tests/util/runner_fixture.h"
#include "tests/util/temp_dir.h"

namespace torii {
namespace http {
namespace {

using torii::testing::TempDir;
using torii::testing::TestRequest;

void WriteFile(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << text;
}

// A repository: "identity" (versions 1 and 2 served), "broken" (a config
// that does not parse) and "spare" (valid, loaded only on request).
struct Server {
  TempDir dir{"torii-http-mms-"};
  std::unique_ptr<ModelRepository> repository;
  std::unique_ptr<ModelLoader> loader;
  std::unique_ptr<ModelManager> manager;
  std::unique_ptr<InferenceCore> core;
  std::unique_ptr<ServerReadiness> readiness;
  std::unique_ptr<ManagerModelService> service;

  explicit Server(bool explicit_control = true, bool strict = true) {
    const std::string identity = R"(backend: "identity"
max_batch_size: 64
input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
)";
    WriteFile(dir.path() + "/identity/config.pbtxt",
              "name: \"identity\"\nversion_policy: { all {} }\n" + identity);
    WriteFile(dir.path() + "/identity/1/README", "v1");
    WriteFile(dir.path() + "/identity/2/README", "v2");
    WriteFile(dir.path() + "/broken/config.pbtxt", "name: \"broken\"\nmax_batch_size: oops\n");
    WriteFile(dir.path() + "/broken/1/README", "v1");
    WriteFile(dir.path() + "/spare/config.pbtxt", "name: \"spare\"\n" + identity);
    WriteFile(dir.path() + "/spare/1/README", "v1");
    repository = std::make_unique<ModelRepository>(
        ModelRepository::Options{dir.path(), {TORII_RUNNER_DIR}});
    loader = std::make_unique<ModelLoader>(ModelLoader::Options{});
    manager = std::make_unique<ModelManager>(repository.get(), loader.get(), ModelManager::Options{});
    core = std::make_unique<InferenceCore>(manager.get(), ValidationLimits{});
    loader->set_dispatcher(core.get());
    readiness = std::make_unique<ServerReadiness>(manager.get(), core.get(), strict);
    service = std::make_unique<ManagerModelService>(
        ManagerModelService::Options{manager.get(), readiness.get(), explicit_control});
    manager->LoadAll({"identity", "broken"}, 2);
  }

  // One inference through the request path.
  absl::Status Infer(const std::string& version) {
    TestRequest t;
    t.request->model_name = "identity";
    t.request->model_version = version;
    t.request->sink = t.sink;
    t.AddInput("INPUT0", TORII_TYPE_FP32, {1, 3}, torii::testing::FloatBytes({1, 2, 3}));
    core->Infer(std::move(t.request));
    REQUIRE(t.sink->WaitFinal(std::chrono::seconds(10)));
    return t.status();
  }
};

TEST_CASE("ManagerModelService: readiness follows the shared ServerReadiness", "[http][manager]") {
  Server strict;
  CHECK_FALSE(strict.service->ServerReady());  // not started
  strict.readiness->SetStarted();
  CHECK_FALSE(strict.service->ServerReady());  // "broken" failed to load
  Server lenient(true, /*strict=*/false);
  lenient.readiness->SetStarted();
  CHECK(lenient.service->ServerReady());
  lenient.core->SetShuttingDown();
  CHECK_FALSE(lenient.service->ServerReady());
}

TEST_CASE("ManagerModelService: model readiness, as Triton's HTTP endpoint", "[http][manager]") {
  Server s;
  CHECK(*s.service->ModelReady("identity", ""));
  CHECK(*s.service->ModelReady("identity", "1"));
  CHECK(*s.service->ModelReady("identity", "2"));
  // Unknown model or version: NOT_FOUND (404); known but not serving: false.
  CHECK(s.service->ModelReady("identity", "3").status().code() == absl::StatusCode::kNotFound);
  CHECK(s.service->ModelReady("nope", "").status().code() == absl::StatusCode::kNotFound);
  auto broken = s.service->ModelReady("broken", "");
  REQUIRE(broken.ok());
  CHECK_FALSE(*broken);
}

TEST_CASE("ManagerModelService: metadata and the config as served", "[http][manager]") {
  Server s;
  auto m = s.service->Metadata("identity", "");
  REQUIRE(m.ok());
  CHECK(m->name == "identity");
  CHECK(m->versions == std::vector<std::string>{"2", "1"});
  CHECK(m->platform == "identity");
  CHECK(m->max_batch_size == 64);
  REQUIRE(m->inputs.size() == 1);
  CHECK(m->inputs[0].name == "INPUT0");
  CHECK(m->inputs[0].datatype == TORII_TYPE_FP32);
  CHECK(m->inputs[0].shape == std::vector<int64_t>{-1, -1});
  CHECK(m->properties.at(0) == std::make_pair(std::string("runner"), std::string("identity")));
  CHECK(s.service->Metadata("broken", "").status().code() == absl::StatusCode::kUnavailable);
  CHECK(s.service->Metadata("nope", "").status().code() == absl::StatusCode::kNotFound);

  auto config = s.service->ConfigJson("identity", "1");
  REQUIRE(config.ok());
  // 64-bit integers as numbers, every primitive field present.
  CHECK_THAT(*config, Catch::Contains(R"("max_batch_size":64)"));
  CHECK_THAT(*config, Catch::Contains(R"("dims":[-1])"));
  CHECK_THAT(*config, Catch::Contains(R"("name":"identity")"));
  CHECK_THAT(*config, Catch::Contains(R"("platform":"")"));
  CHECK(s.service->ConfigJson("identity", "7").status().code() == absl::StatusCode::kNotFound);
}

TEST_CASE("ManagerModelService: statistics count what the request path did", "[http][manager]") {
  Server s;
  REQUIRE(s.Infer("2").ok());
  REQUIRE(s.Infer("").ok());
  REQUIRE(s.Infer("1").ok());
  auto v2 = s.service->Statistics("identity", "2");
  REQUIRE(v2.ok());
  REQUIRE(v2->size() == 1);
  CHECK((*v2)[0].version == "2");
  CHECK((*v2)[0].inference_count == 2);
  CHECK((*v2)[0].success.count == 2);
  CHECK((*v2)[0].batch_stats.size() == 1);
  auto versions = s.service->Statistics("identity", "");
  REQUIRE(versions.ok());
  REQUIRE(versions->size() == 2);
  CHECK((*versions)[0].version == "2");
  CHECK((*versions)[1].inference_count == 1);
  auto all = s.service->Statistics("", "");
  REQUIRE(all.ok());
  CHECK(all->size() == 2);  // broken serves nothing
  CHECK(s.service->Statistics("nope", "").status().code() == absl::StatusCode::kNotFound);
  CHECK(s.service->Statistics("broken", "").status().code() == absl::StatusCode::kUnavailable);
}

TEST_CASE("ManagerModelService: index, load and unload", "[http][manager]") {
  Server s;
  auto index = s.service->Index(false);
  std::vector<std::string> rows;
  for (const auto& e : index) rows.push_back(e.name + "/" + e.version + "/" + e.state);
  CHECK(rows == std::vector<std::string>{"broken//UNAVAILABLE", "identity/1/READY",
                                         "identity/2/READY", "spare//UNAVAILABLE"});
  CHECK(s.service->Index(true).size() == 2);

  REQUIRE(s.service->Load("spare", {}).ok());
  CHECK(*s.service->ModelReady("spare", ""));
  REQUIRE(s.service->Unload("spare", /*unload_dependents=*/true).ok());
  CHECK_FALSE(*s.service->ModelReady("spare", ""));
  CHECK(s.service->Load("nope", {}).code() == absl::StatusCode::kNotFound);

  Server fixed(/*explicit_control=*/false);
  CHECK(fixed.service->Load("spare", {}).code() == absl::StatusCode::kUnavailable);
  CHECK(fixed.service->Unload("identity", false).code() == absl::StatusCode::kUnavailable);
  CHECK(*fixed.service->ModelReady("identity", ""));
}

TEST_CASE("TritonConfigJson: 64-bit integers are numbers everywhere", "[http][manager]") {
  inference::ModelConfig c;
  c.set_name("m");
  c.set_max_batch_size(8);
  auto* in = c.add_input();
  in->set_name("X");
  in->add_dims(-1);
  in->add_dims(3);
  c.mutable_dynamic_batching()->set_max_queue_delay_microseconds(100);
  c.mutable_dynamic_batching()->add_preferred_batch_size(4);
  (*c.mutable_dynamic_batching()->mutable_priority_queue_policy())[2].set_max_queue_size(7);
  const std::string json = TritonConfigJson(c);
  CHECK_THAT(json, Catch::Contains(R"("dims":[-1,3])"));
  CHECK_THAT(json, Catch::Contains(R"("max_queue_delay_microseconds":100)"));
  CHECK_THAT(json, Catch::Contains(R"("preferred_batch_size":[4])"));
  CHECK_THAT(json, Catch::Contains(R"("priority_queue_policy":{"2":{)"));
  CHECK_THAT(json, Catch::Contains(R"("max_queue_size":7)"));
  CHECK(json.find("\"-1\"") == std::string::npos);
}

}  // namespace
}  // namespace http
}  // namespace torii
