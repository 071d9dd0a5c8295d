// The manager's side of ensembles, with the real repository, loader, request
// path and the bundled identity and add_sub runners: composing models load
// first, readiness follows them, broken dependencies are refused with their
// reason, and a composing model reloaded under load fails no request.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/match.h"
#include "server/manager/inference_core.h"
#include "server/manager/model_manager.h"
#include "tests/util/runner_fixture.h"
#include "tests/util/temp_dir.h"

namespace torii {
namespace testing {
namespace {

using std::chrono::milliseconds;

constexpr const char* kIdentity = R"(name: "identity" backend: "identity" max_batch_size: 64
input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
dynamic_batching { max_queue_delay_microseconds: 200 })";

constexpr const char* kAddSub = R"(name: "add_sub" backend: "add_sub" max_batch_size: 64
input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 16 ] },
        { name: "INPUT1" data_type: TYPE_FP32 dims: [ 16 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 16 ] },
         { name: "OUTPUT1" data_type: TYPE_FP32 dims: [ 16 ] } ])";

// IN -> identity -> copy; (copy, IN) -> add_sub -> SUM = 2 IN, DIFF = 0.
std::string PairConfig(const std::string& name = "pair", const std::string& second = "add_sub") {
  return R"(name: ")" + name + R"(" platform: "ensemble" max_batch_size: 8
input [ { name: "IN" data_type: TYPE_FP32 dims: [ 16 ] } ]
output [ { name: "SUM" data_type: TYPE_FP32 dims: [ 16 ] },
         { name: "DIFF" data_type: TYPE_FP32 dims: [ 16 ] } ]
ensemble_scheduling { step [
  { model_name: "identity" model_version: -1
    input_map { key: "INPUT0" value: "IN" } output_map { key: "OUTPUT0" value: "copy" } },
  { model_name: ")" + second + R"(" model_version: -1
    input_map [ { key: "INPUT0" value: "copy" }, { key: "INPUT1" value: "IN" } ]
    output_map [ { key: "OUTPUT0" value: "SUM" }, { key: "OUTPUT1" value: "DIFF" } ] } ] })";
}

class Server {
 public:
  Server() : dir_("torii-ens-mgr-") {
    Write("identity/config.pbtxt", kIdentity);
    Write("identity/1/.keep", "");
    Write("add_sub/config.pbtxt", kAddSub);
    Write("add_sub/1/.keep", "");
    Write("pair/config.pbtxt", PairConfig());
    Write("pair/1/.keep", "");
    ModelRepository::Options ro;
    ro.root = dir_.path();
    ro.backend_directories = {TORII_RUNNER_DIR};
    repository_ = std::make_unique<ModelRepository>(ro);
    loader_ = std::make_unique<ModelLoader>(ModelLoader::Options{});
    ModelManager::Options mo;
    mo.drain_timeout = std::chrono::seconds(10);
    manager_ = std::make_unique<ModelManager>(repository_.get(), loader_.get(), mo);
    core_ = std::make_unique<InferenceCore>(manager_.get(), ValidationLimits{});
    loader_->set_dispatcher(core_.get());
  }
  ~Server() { manager_->UnloadAll(); }

  void Write(const std::string& rel, const std::string& text) const {
    std::filesystem::create_directories(std::filesystem::path(dir_.path() + "/" + rel).parent_path());
    std::ofstream(dir_.path() + "/" + rel) << text;
  }
  ModelManager& manager() { return *manager_; }

  ModelIndexEntry Entry(const std::string& name) const {
    for (const auto& e : manager_->Index()) {
      if (e.name == name) return e;
    }
    return {name, "", ModelState::kUnavailable, "<not in the index>"};
  }

  // Infers `model` with IN = 16 values from `first`; the final response.
  std::unique_ptr<TestRequest> Infer(const std::string& model, float first) {
    auto t = std::make_unique<TestRequest>();
    t->request->model_name = model;
    t->request->sink = t->sink;
    std::vector<float> v(16);
    for (int i = 0; i < 16; ++i) v[i] = first + static_cast<float>(i);
    t->AddInput("IN", TORII_TYPE_FP32, {1, 16}, FloatBytes(v));
    core_->Infer(std::move(t->request));
    REQUIRE(t->sink->WaitFinal(milliseconds(20000)));
    return t;
  }

 private:
  TempDir dir_;
  std::unique_ptr<ModelRepository> repository_;
  std::unique_ptr<ModelLoader> loader_;
  std::unique_ptr<ModelManager> manager_;
  std::unique_ptr<InferenceCore> core_;
};

TEST_CASE("loading an ensemble loads the composing models it needs") {
  Server s;
  REQUIRE(s.manager().Load("pair").ok());
  CHECK(s.Entry("identity").state == ModelState::kReady);
  CHECK(s.Entry("add_sub").state == ModelState::kReady);
  CHECK(s.Entry("pair").state == ModelState::kReady);
  auto t = s.Infer("pair", 1);
  INFO(t->status().message());
  REQUIRE(t->status().ok());
  const auto sum = OutputValues<float>(t->response(), "SUM");
  REQUIRE(sum.size() == 16);
  for (int i = 0; i < 16; ++i) CHECK(sum[i] == 2 * (1 + i));
  CHECK(OutputValues<float>(t->response(), "DIFF") == std::vector<float>(16, 0));
  CHECK(t->response().model_name == "pair");
  CHECK(t->response().model_version == "1");
  // Statistics: one request for the ensemble, one per step for each model.
  auto pair = s.manager().Get("pair", "");
  auto add_sub = s.manager().Get("add_sub", "");
  REQUIRE(pair.ok());
  REQUIRE(add_sub.ok());
  CHECK((*pair)->stats.Read().success.count == 1);
  CHECK((*pair)->stats.Read().inference_count == 1);
  CHECK((*add_sub)->stats.Read().success.count == 1);
  CHECK((*pair)->provenance.runner == "ensemble");
}

TEST_CASE("an unloaded composing model makes the ensemble not ready, with the reason") {
  Server s;
  REQUIRE(s.manager().Load("pair").ok());
  REQUIRE(s.manager().Unload("add_sub").ok());
  ModelIndexEntry e = s.Entry("pair");
  CHECK(e.state == ModelState::kUnavailable);
  CHECK(e.version == "1");
  CHECK(absl::StrContains(e.reason, "step 1 (model 'add_sub') cannot run"));
  CHECK(absl::StrContains(e.reason, "unloaded"));
  auto pair = s.manager().Get("pair", "");
  REQUIRE(pair.ok());
  CHECK_FALSE((*pair)->CanServe());
  auto t = s.Infer("pair", 1);
  CHECK(t->status().code() == absl::StatusCode::kUnavailable);
  CHECK(absl::StrContains(t->status().message(), "ensemble 'pair' step 1 (model 'add_sub')"));
  // Loading it back makes the ensemble ready again, without reloading it.
  REQUIRE(s.manager().Load("add_sub").ok());
  CHECK(s.Entry("pair").state == ModelState::kReady);
  CHECK((*pair)->CanServe());
  CHECK(s.Infer("pair", 1)->status().ok());
}

TEST_CASE("an ensemble whose composing model does not exist or does not fit is refused") {
  Server s;
  s.Write("ghost/config.pbtxt", PairConfig("ghost", "nope"));
  s.Write("ghost/1/.keep", "");
  absl::Status st = s.manager().Load("ghost");
  CHECK_FALSE(st.ok());
  ModelIndexEntry e = s.Entry("ghost");
  CHECK(e.state == ModelState::kUnavailable);
  CHECK(absl::StrContains(e.reason, "model 'ghost': step 1 (model 'nope') cannot run"));
  CHECK(absl::StrContains(e.reason, "no model directory 'nope'"));
  // A composing model whose signature does not fit.
  s.Write("misfit/config.pbtxt", R"(name: "misfit" platform: "ensemble" max_batch_size: 8
input [ { name: "IN" data_type: TYPE_INT32 dims: [ 16 ] } ]
output [ { name: "OUT" data_type: TYPE_FP32 dims: [ -1 ] } ]
ensemble_scheduling { step [ { model_name: "identity"
  input_map { key: "INPUT0" value: "IN" } output_map { key: "OUTPUT0" value: "OUT" } } ] })");
  s.Write("misfit/1/.keep", "");
  CHECK_FALSE(s.manager().Load("misfit").ok());
  e = s.Entry("misfit");
  CHECK(e.state == ModelState::kUnavailable);
  CHECK(absl::StrContains(e.reason, "ensemble tensor 'IN': ensemble input 'IN' is INT32"));
  CHECK(absl::StrContains(e.reason, "input 'INPUT0' of step 0 (model 'identity') is FP32"));
  // The server keeps serving the rest.
  CHECK(s.Entry("identity").state == ModelState::kReady);
  REQUIRE(s.manager().Load("pair").ok());
  CHECK(s.Infer("pair", 0)->status().ok());
}

TEST_CASE("ensembles that call each other in a cycle are refused") {
  Server s;
  auto wrap = [](const std::string& name, const std::string& inner) {
    return R"(name: ")" + name + R"(" platform: "ensemble" max_batch_size: 8
input [ { name: "IN" data_type: TYPE_FP32 dims: [ 16 ] } ]
output [ { name: "SUM" data_type: TYPE_FP32 dims: [ 16 ] } ]
ensemble_scheduling { step [ { model_name: ")" + inner + R"("
  input_map { key: "IN" value: "IN" } output_map { key: "SUM" value: "SUM" } } ] })";
  };
  s.Write("e1/config.pbtxt", wrap("e1", "e2"));
  s.Write("e1/1/.keep", "");
  s.Write("e2/config.pbtxt", wrap("e2", "e1"));
  s.Write("e2/1/.keep", "");
  absl::Status st = s.manager().Load("e1");
  CHECK_FALSE(st.ok());
  CHECK(absl::StrContains(st.message(), "ensembles call each other in a cycle: e1 -> e2 -> e1"));
  // Nested ensembles without a cycle work: outer -> pair -> (identity, add_sub).
  s.Write("outer/config.pbtxt", wrap("outer", "pair"));
  s.Write("outer/1/.keep", "");
  REQUIRE(s.manager().Load("outer").ok());
  auto t = s.Infer("outer", 3);
  INFO(t->status().message());
  REQUIRE(t->status().ok());
  CHECK(OutputValues<float>(t->response(), "SUM")[0] == 6);
}

TEST_CASE("reloading a composing model under load fails no ensemble request") {
  Server s;
  REQUIRE(s.manager().Load("pair").ok());
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::string first_error;
  std::mutex error_mu;
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; !stop; ++i) {
        auto t = s.Infer("pair", static_cast<float>(c * 1000 + i));
        const absl::Status st = t->status();
        bool right = st.ok();
        if (right) {
          const auto sum = OutputValues<float>(t->response(), "SUM");
          right = sum.size() == 16 && sum[0] == 2 * static_cast<float>(c * 1000 + i);
        }
        if (right) {
          ++ok;
        } else {
          ++failed;
          std::lock_guard<std::mutex> lock(error_mu);
          if (first_error.empty()) first_error = st.ok() ? "wrong values" : std::string(st.message());
        }
      }
    });
  }
  // Each reload sees changed files, so it builds a new version and retires
  // the serving one while requests keep coming.
  for (int r = 0; r < 6; ++r) {
    std::this_thread::sleep_for(milliseconds(100));
    s.Write("identity/1/reload-" + std::to_string(r), "x");
    s.Write("add_sub/1/reload-" + std::to_string(r), "x");
    REQUIRE(s.manager().Load("identity").ok());
    REQUIRE(s.manager().Load("add_sub").ok());
  }
  std::this_thread::sleep_for(milliseconds(100));
  stop = true;
  for (auto& c : clients) c.join();
  INFO(first_error);
  CHECK(failed == 0);
  CHECK(ok > 0);
}

}  // namespace
}  // namespace testing
}  // namespace torii
