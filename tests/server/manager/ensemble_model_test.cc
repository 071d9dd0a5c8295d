// Ensembles: the config rules (BuildModelSpec), the checks against the
// composing models (CheckEnsembleSteps, EnsembleModel::Create/Availability)
// and execution as a graph over a fake request path (fake_models.h).
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include "absl/strings/match.h"
#include "server/manager/ensemble_model.h"
#include "server/repository/model_spec_builder.h"
#include "tests/server/manager/fake_models.h"
#include "tests/util/runner_fixture.h"

namespace torii {
namespace testing {
namespace {

using std::chrono::milliseconds;

absl::Status SpecError(const std::string& text) {
  inference::ModelConfig config;
  REQUIRE(google::protobuf::TextFormat::ParseFromString(text, &config));
  RunnerManifest runner;
  runner.runner = config.platform() == "ensemble" ? "ensemble" : config.backend();
  return BuildModelSpec(config, runner, SpecDefaults{}).status();
}

// FP32 values of input `name` of a validated request.
std::vector<float> In(const InferenceRequest& r, const std::string& name) {
  for (const auto& in : r.inputs) {
    if (in.name != name) continue;
    std::vector<float> v(in.byte_size / 4);
    if (!v.empty()) std::memcpy(v.data(), in.data, in.byte_size);
    return v;
  }
  FAIL("no input " << name);
  return {};
}

absl::Status Out(InferenceResponse* resp, const std::string& name, const Shape& shape,
                 const std::vector<float>& v) {
  auto buf = resp->AddOutput(name, TORII_TYPE_FP32, shape, v.size() * 4);
  if (!buf.ok()) return buf.status();
  if (!v.empty()) std::memcpy(*buf, v.data(), v.size() * 4);
  return absl::OkStatus();
}

bool Requested(const InferenceRequest& r, const ModelSpec& spec, const std::string& output) {
  return r.output_requested[spec.OutputIndex(output)] != 0;
}

// The composing models of these tests, FP32 with a batch dimension:
//   inc:    INPUT0 -> OUTPUT0 = INPUT0 + 1
//   dbl:    X -> Y = 2 X
//   addsub: A, B -> SUM = A + B, DIFF = A - B
//   fail:   INPUT0 -> OUTPUT0, always INVALID_ARGUMENT
void AddModels(FakeModels& f) {
  auto inc = SpecFromText(R"(name: "inc" backend: "x" max_batch_size: 8
    input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
    output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ])");
  f.Add(inc, [](const InferenceRequest& r, InferenceResponse* resp) {
    auto v = In(r, "INPUT0");
    for (float& x : v) x += 1;
    return Out(resp, "OUTPUT0", r.inputs[0].shape, v);
  });
  auto dbl = SpecFromText(R"(name: "dbl" backend: "x" max_batch_size: 8
    input [ { name: "X" data_type: TYPE_FP32 dims: [ -1 ] } ]
    output [ { name: "Y" data_type: TYPE_FP32 dims: [ -1 ] } ])");
  f.Add(dbl, [](const InferenceRequest& r, InferenceResponse* resp) {
    auto v = In(r, "X");
    for (float& x : v) x *= 2;
    return Out(resp, "Y", r.inputs[0].shape, v);
  });
  auto addsub = SpecFromText(R"(name: "addsub" backend: "x" max_batch_size: 8
    input [ { name: "A" data_type: TYPE_FP32 dims: [ -1 ] },
            { name: "B" data_type: TYPE_FP32 dims: [ -1 ] } ]
    output [ { name: "SUM" data_type: TYPE_FP32 dims: [ -1 ] },
             { name: "DIFF" data_type: TYPE_FP32 dims: [ -1 ] } ])");
  f.Add(addsub, [addsub](const InferenceRequest& r, InferenceResponse* resp) {
    auto a = In(r, "A"), b = In(r, "B"), sum = a, diff = a;
    for (size_t i = 0; i < a.size(); ++i) {
      sum[i] = a[i] + b[i];
      diff[i] = a[i] - b[i];
    }
    if (Requested(r, *addsub, "SUM")) {
      auto s = Out(resp, "SUM", r.inputs[0].shape, sum);
      if (!s.ok()) return s;
    }
    if (Requested(r, *addsub, "DIFF")) return Out(resp, "DIFF", r.inputs[0].shape, diff);
    return absl::OkStatus();
  });
  auto fail = SpecFromText(R"(name: "fail" backend: "x" max_batch_size: 8
    input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
    output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ])");
  f.Add(fail, [](const InferenceRequest&, InferenceResponse*) {
    return absl::InvalidArgumentError("model 'fail': NaN in INPUT0");
  });
}

// IN -> inc -> t -> dbl -> OUT
constexpr const char* kChain = R"(name: "chain" platform: "ensemble" max_batch_size: 8
  input [ { name: "IN" data_type: TYPE_FP32 dims: [ -1 ] } ]
  output [ { name: "OUT" data_type: TYPE_FP32 dims: [ -1 ] } ]
  ensemble_scheduling { step [
    { model_name: "inc" model_version: -1
      input_map { key: "INPUT0" value: "IN" } output_map { key: "OUTPUT0" value: "t" } },
    { model_name: "dbl" model_version: -1
      input_map { key: "X" value: "t" } output_map { key: "Y" value: "OUT" } } ] })";

// IN -> inc -> a; IN -> <second> -> b; (a, b) -> addsub -> SUM, DIFF
std::string Diamond(const std::string& second = "dbl") {
  const bool is_dbl = second == "dbl";
  return std::string(R"(name: "diamond" platform: "ensemble" max_batch_size: 8
  input [ { name: "IN" data_type: TYPE_FP32 dims: [ -1 ] } ]
  output [ { name: "SUM" data_type: TYPE_FP32 dims: [ -1 ] },
           { name: "DIFF" data_type: TYPE_FP32 dims: [ -1 ] } ]
  ensemble_scheduling { step [
    { model_name: "inc" input_map { key: "INPUT0" value: "IN" }
      output_map { key: "OUTPUT0" value: "a" } },
    { model_name: ")") + second + R"(" input_map { key: ")" + (is_dbl ? "X" : "INPUT0") +
         R"(" value: "IN" } output_map { key: ")" + (is_dbl ? "Y" : "OUTPUT0") + R"(" value: "b" } },
    { model_name: "addsub" input_map [ { key: "A" value: "a" }, { key: "B" value: "b" } ]
      output_map [ { key: "SUM" value: "SUM" }, { key: "DIFF" value: "DIFF" } ] } ] })";
}

std::unique_ptr<EnsembleModel> MakeEnsemble(FakeModels& f, const std::string& text) {
  EnsembleModel::Options o;
  o.spec = SpecFromText(text);
  o.dispatcher = &f;
  o.models = &f;
  o.drain_timeout = std::chrono::seconds(10);
  auto m = EnsembleModel::Create(o);
  INFO(m.status().message());
  REQUIRE(m.ok());
  return *std::move(m);
}

// An ensemble request of IN = [1, n] values first, first+1, ...
std::unique_ptr<TestRequest> EnsembleRequest(const ModelSpec& spec, std::vector<float> values,
                                             std::vector<std::string> outputs = {}) {
  auto t = std::make_unique<TestRequest>();
  t->request->model_name = spec.name;
  t->request->served_version = "1";
  t->request->id = "req-7";
  t->request->sink = t->sink;
  const int64_t n = static_cast<int64_t>(values.size());
  t->AddInput("IN", TORII_TYPE_FP32, {1, n}, FloatBytes(values));
  for (auto& o : outputs) t->request->requested_outputs.push_back({o, {}});
  absl::Status s = ValidateRequest(spec, ValidationLimits{}, t->request.get());
  INFO(s.message());
  REQUIRE(s.ok());
  return t;
}

// The client is answered just before a run counts itself out.
bool WaitIdle(const EnsembleModel& e) {
  for (int i = 0; i < 2000 && e.in_flight() != 0; ++i) std::this_thread::sleep_for(milliseconds(5));
  return e.in_flight() == 0;
}

const ModelSpec& SpecOf(const std::string& text) {
  static std::map<std::string, std::shared_ptr<const ModelSpec>> specs;
  auto& s = specs[text];
  if (s == nullptr) s = SpecFromText(text);
  return *s;
}

TEST_CASE("ensemble config: every broken graph is refused, naming the step and tensor") {
  const std::string head = R"(name: "e" platform: "ensemble" max_batch_size: 8
    input [ { name: "IN" data_type: TYPE_FP32 dims: [ -1 ] } ]
    output [ { name: "OUT" data_type: TYPE_FP32 dims: [ -1 ] } ])";
  auto step = [](const std::string& model, const std::string& in, const std::string& out) {
    return R"({ model_name: ")" + model + R"(" input_map { key: "INPUT0" value: ")" + in +
           R"(" } output_map { key: "OUTPUT0" value: ")" + out + R"(" } })";
  };
  struct Case {
    const char* what;
    std::string config;
    std::vector<std::string> expect;
  };
  const std::vector<Case> cases = {
      {"a tensor nobody produces",
       head + "ensemble_scheduling { step [ " + step("inc", "IN", "t") + ", " +
           step("inc", "nowhere", "OUT") + " ] }",
       {"model 'e'", "step 1 (model 'inc')", "input 'INPUT0'", "'nowhere'", "nothing produces"}},
      {"an output produced twice",
       head + "ensemble_scheduling { step [ " + step("inc", "IN", "OUT") + ", " +
           step("dbl", "IN", "OUT") + " ] }",
       {"ensemble tensor 'OUT' is produced twice", "step 0 (model 'inc')",
        "step 1 (model 'dbl')"}},
      {"a step output onto an ensemble input",
       head + "ensemble_scheduling { step [ " + step("inc", "IN", "IN") + " ] }",
       {"ensemble tensor 'IN' is produced twice", "ensemble input", "step 0 (model 'inc')"}},
      {"a cycle",
       head + "ensemble_scheduling { step [ " + step("inc", "IN", "x") + ", " +
           step("a", "z", "y") + ", " + step("b", "y", "z") + ", " + step("c", "y", "OUT") +
           " ] }",
       {"the steps form a cycle", "step 1 (model 'a') reads 'z' from step 2 (model 'b')",
        "which reads 'y' from step 1 (model 'a')"}},
      {"a step reading its own output",
       head + "ensemble_scheduling { step [ " + step("inc", "OUT", "OUT") + " ] }",
       {"cycle", "step 0 (model 'inc') reads 'OUT' from step 0 (model 'inc')"}},
      {"an ensemble output left unmapped",
       head + "ensemble_scheduling { step [ " + step("inc", "IN", "t") + ", " +
           step("dbl", "t", "u") + " ] }",
       {"ensemble output 'OUT' is not mapped"}},
      {"an ensemble input nobody reads",
       R"(name: "e" platform: "ensemble" max_batch_size: 8
          input [ { name: "IN" data_type: TYPE_FP32 dims: [ -1 ] },
                  { name: "EXTRA" data_type: TYPE_FP32 dims: [ -1 ] } ]
          output [ { name: "OUT" data_type: TYPE_FP32 dims: [ -1 ] } ]
          ensemble_scheduling { step [ )" + step("inc", "IN", "OUT") + " ] }",
       {"ensemble input 'EXTRA' is read by no step"}},
      {"a step output nobody reads",
       head + R"(ensemble_scheduling { step [ { model_name: "addsub"
           input_map [ { key: "A" value: "IN" }, { key: "B" value: "IN" } ]
           output_map [ { key: "SUM" value: "OUT" }, { key: "DIFF" value: "lost" } ] } ] })",
       {"ensemble tensor 'lost'", "output 'DIFF' of step 0 (model 'addsub')", "read by no step"}},
      {"no step", head + "ensemble_scheduling { }", {"at least one 'step'"}},
      {"no model name", head + "ensemble_scheduling { step [ " + step("", "IN", "OUT") + " ] }",
       {"step 0: 'model_name' is empty"}},
      {"no input_map",
       head + R"(ensemble_scheduling { step [ { model_name: "inc"
           output_map { key: "OUTPUT0" value: "OUT" } } ] })",
       {"step 0 (model 'inc'): 'input_map' is empty"}},
      {"no output_map",
       head + R"(ensemble_scheduling { step [ { model_name: "inc"
           input_map { key: "INPUT0" value: "IN" } } ] })",
       {"step 0 (model 'inc'): 'output_map' is empty"}},
      {"a bad model_version",
       head + R"(ensemble_scheduling { step [ { model_name: "inc" model_version: -3
           input_map { key: "INPUT0" value: "IN" } output_map { key: "OUTPUT0" value: "OUT" } } ] })",
       {"step 0 (model 'inc'): 'model_version' is -3"}},
      {"a step calling the ensemble itself",
       head + "ensemble_scheduling { step [ " + step("e", "IN", "OUT") + " ] }",
       {"step 0 (model 'e') calls the ensemble itself"}},
      {"instance groups",
       head + "instance_group [ { count: 2 } ] ensemble_scheduling { step [ " +
           step("inc", "IN", "OUT") + " ] }",
       {"an ensemble has no 'instance_group'"}},
      {"a backend", head + "backend: \"identity\" ensemble_scheduling { step [ " +
                        step("inc", "IN", "OUT") + " ] }",
       {"no 'backend'", "identity"}},
      {"steps without the ensemble platform",
       R"(name: "e" backend: "identity" max_batch_size: 8
          input [ { name: "IN" data_type: TYPE_FP32 dims: [ -1 ] } ]
          output [ { name: "OUT" data_type: TYPE_FP32 dims: [ -1 ] } ]
          ensemble_scheduling { step [ )" + step("inc", "IN", "OUT") + " ] }",
       {"'ensemble_scheduling' is set but 'platform' is \"\""}},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    absl::Status s = SpecError(c.config);
    INFO(s.message());
    CHECK(s.code() == absl::StatusCode::kInvalidArgument);
    for (const auto& e : c.expect) CHECK(absl::StrContains(s.message(), e));
  }
  // And a good one passes.
  CHECK(SpecError(kChain).ok());
  CHECK(SpecError(Diamond()).ok());
}

TEST_CASE("ensemble steps are checked against the models they call") {
  FakeModels f;
  AddModels(f);
  f.Add(SpecFromText(R"(name: "ints" backend: "x" max_batch_size: 8
    input [ { name: "X" data_type: TYPE_INT32 dims: [ -1 ] } ]
    output [ { name: "Y" data_type: TYPE_FP32 dims: [ -1 ] } ])"),
        nullptr);
  f.Add(SpecFromText(R"(name: "four" backend: "x" max_batch_size: 8
    input [ { name: "X" data_type: TYPE_FP32 dims: [ 4 ] } ]
    output [ { name: "Y" data_type: TYPE_FP32 dims: [ 4 ] } ])"),
        nullptr);
  f.Add(SpecFromText(R"(name: "square" backend: "x" max_batch_size: 8
    input [ { name: "X" data_type: TYPE_FP32 dims: [ 2, 2 ] } ]
    output [ { name: "Y" data_type: TYPE_FP32 dims: [ -1 ] } ])"),
        nullptr);
  f.Add(SpecFromText(R"(name: "small" backend: "x" max_batch_size: 2
    input [ { name: "X" data_type: TYPE_FP32 dims: [ -1 ] } ]
    output [ { name: "Y" data_type: TYPE_FP32 dims: [ -1 ] } ])"),
        nullptr);
  f.Add(SpecFromText(R"(name: "stream" backend: "x" max_batch_size: 8
    model_transaction_policy { decoupled: true }
    input [ { name: "X" data_type: TYPE_FP32 dims: [ -1 ] } ]
    output [ { name: "Y" data_type: TYPE_FP32 dims: [ -1 ] } ])"),
        nullptr);
  f.Add(SpecFromText(R"(name: "flat" backend: "x" max_batch_size: 0
    input [ { name: "X" data_type: TYPE_FP32 dims: [ -1, -1 ] } ]
    output [ { name: "Y" data_type: TYPE_FP32 dims: [ -1, -1 ] } ])"),
        nullptr);
  auto chain_via = [](const std::string& model, const std::string& in_key,
                      const std::string& out_key, const std::string& extra = "") {
    return R"(name: "e" platform: "ensemble" max_batch_size: 8
      input [ { name: "IN" data_type: TYPE_FP32 dims: [ -1 ] } ]
      output [ { name: "OUT" data_type: TYPE_FP32 dims: [ -1 ] } ]
      ensemble_scheduling { step [
        { model_name: "inc" input_map { key: "INPUT0" value: "IN" }
          output_map { key: "OUTPUT0" value: "t" } },
        { model_name: ")" + model + R"(" input_map { key: ")" + in_key + R"(" value: "t" } )" +
           extra + R"( output_map { key: ")" + out_key + R"(" value: "OUT" } } ] })";
  };
  auto create = [&](const std::string& text) {
    EnsembleModel::Options o;
    o.spec = SpecFromText(text);
    o.dispatcher = &f;
    o.models = &f;
    return EnsembleModel::Create(o).status();
  };
  struct Case {
    const char* what;
    std::string config;
    absl::StatusCode code;
    std::vector<std::string> expect;
  };
  const std::vector<Case> cases = {
      {"an unknown composing model", chain_via("nope", "X", "Y"), absl::StatusCode::kNotFound,
       {"model 'e'", "step 1 (model 'nope') cannot run", "unknown model 'nope'"}},
      {"a datatype mismatch", chain_via("ints", "X", "Y"), absl::StatusCode::kInvalidArgument,
       {"ensemble tensor 't'", "output 'OUTPUT0' of step 0 (model 'inc') is FP32 [-1,-1]",
        "input 'X' of step 1 (model 'ints') is INT32 [-1,-1]", "datatypes differ"}},
      {"a rank mismatch", chain_via("square", "X", "Y"), absl::StatusCode::kInvalidArgument,
       {"ensemble tensor 't'", "output 'OUTPUT0' of step 0 (model 'inc') is FP32 [-1,-1]",
        "input 'X' of step 1 (model 'square') is FP32 [-1,2,2]", "shapes differ"}},
      {"a dimension mismatch",
       R"(name: "e" platform: "ensemble" max_batch_size: 8
          input [ { name: "IN" data_type: TYPE_FP32 dims: [ 3 ] } ]
          output [ { name: "OUT" data_type: TYPE_FP32 dims: [ 4 ] } ]
          ensemble_scheduling { step [ { model_name: "four" input_map { key: "X" value: "IN" }
            output_map { key: "Y" value: "OUT" } } ] })",
       absl::StatusCode::kInvalidArgument,
       {"ensemble tensor 'IN': ensemble input 'IN' is FP32 [-1,3]",
        "input 'X' of step 0 (model 'four') is FP32 [-1,4]", "shapes differ"}},
      {"an input_map naming no input", chain_via("dbl", "NOPE", "Y"),
       absl::StatusCode::kInvalidArgument,
       {"step 1 (model 'dbl')", "'input_map' names input 'NOPE'", "its inputs: X"}},
      {"an output_map naming no output", chain_via("dbl", "X", "NOPE"),
       absl::StatusCode::kInvalidArgument,
       {"step 1 (model 'dbl')", "'output_map' names output 'NOPE'", "its outputs: Y"}},
      {"a model input left unmapped", chain_via("addsub", "A", "SUM"),
       absl::StatusCode::kInvalidArgument,
       {"step 1 (model 'addsub')", "input 'B' of the model is not mapped"}},
      {"a smaller max_batch_size", chain_via("small", "X", "Y"),
       absl::StatusCode::kInvalidArgument,
       {"step 1 (model 'small') takes batches of at most 2", "max_batch_size is 8"}},
      {"a decoupled step", chain_via("stream", "X", "Y"), absl::StatusCode::kInvalidArgument,
       {"step 1 (model 'stream') is decoupled"}},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    absl::Status s = create(c.config);
    INFO(s.message());
    CHECK(s.code() == c.code);
    for (const auto& e : c.expect) CHECK(absl::StrContains(s.message(), e));
  }
  // A step that does not batch fits a batching ensemble when its dims
  // include the batch dimension ([-1,-1] against [-1] plus the batch).
  CHECK(create(chain_via("flat", "X", "Y")).ok());
  CHECK(create(kChain).ok());
}

TEST_CASE("a chain runs step after step and passes buffers without copying them") {
  FakeModels f;
  AddModels(f);
  auto e = MakeEnsemble(f, kChain);
  const ModelSpec& spec = SpecOf(kChain);
  auto t = EnsembleRequest(spec, {1, 2, 3});
  t->request->parameters.Set("tag", std::string("x"));
  const auto deadline = InferenceRequest::Clock::now() + std::chrono::seconds(30);
  t->request->deadline = deadline;
  const char* client_buffer = t->request->inputs[0].data;
  RunBatch(*e, {t.get()});
  REQUIRE(t->sink->WaitFinal(milliseconds(10000)));
  INFO(t->status().message());
  REQUIRE(t->status().ok());
  CHECK(OutputValues<float>(t->response(), "OUT") == std::vector<float>{4, 6, 8});
  CHECK(t->response().model_name == "chain");
  CHECK(t->response().id == "req-7");
  CHECK(t->sink->count() == 1);
  // Step 0 viewed the client's buffer; step 1 viewed step 0's output buffer.
  const auto inc = f.SeenBy("inc");
  const auto dbl = f.SeenBy("dbl");
  REQUIRE(inc.size() == 1);
  REQUIRE(dbl.size() == 1);
  CHECK(inc[0].input_data[0] == client_buffer);
  REQUIRE(f.OutputsOf("inc").size() == 1);
  CHECK(dbl[0].input_data[0] == f.OutputsOf("inc")[0]);
  // The client's id, parameters and deadline reach every step; each step
  // asks for the outputs its output_map uses.
  for (const auto* seen : {&inc[0], &dbl[0]}) {
    CHECK(seen->id == "req-7");
    CHECK(seen->parameters == "tag;");
    CHECK(seen->deadline == deadline);
  }
  CHECK(inc[0].requested_outputs == std::vector<std::string>{"OUTPUT0"});
  CHECK(WaitIdle(*e));
}

TEST_CASE("independent branches run in parallel and join") {
  FakeModels f;
  AddModels(f);
  const std::string text = Diamond();
  auto e = MakeEnsemble(f, text);
  f.Hold("inc");
  f.Hold("dbl");
  auto t = EnsembleRequest(SpecOf(text), {1, 2});
  RunBatch(*e, {t.get()});
  // Both branches are sent before either has answered.
  CHECK(f.WaitHeld("inc", 1, milliseconds(10000)));
  CHECK(f.WaitHeld("dbl", 1, milliseconds(10000)));
  CHECK(f.SeenBy("addsub").empty());
  f.Release("dbl");
  f.Release("inc");
  REQUIRE(t->sink->WaitFinal(milliseconds(10000)));
  INFO(t->status().message());
  REQUIRE(t->status().ok());
  // a = IN + 1, b = 2 IN.
  CHECK(OutputValues<float>(t->response(), "SUM") == std::vector<float>{4, 7});
  CHECK(OutputValues<float>(t->response(), "DIFF") == std::vector<float>{0, -1});
  // The join step read both branches' buffers in place.
  const auto addsub = f.SeenBy("addsub");
  REQUIRE(addsub.size() == 1);
  CHECK(addsub[0].input_data[0] == f.OutputsOf("inc")[0]);
  CHECK(addsub[0].input_data[1] == f.OutputsOf("dbl")[0]);
}

TEST_CASE("the client asks for some outputs: the ensemble answers those") {
  FakeModels f;
  AddModels(f);
  const std::string text = Diamond();
  auto e = MakeEnsemble(f, text);
  auto t = EnsembleRequest(SpecOf(text), {5}, {"DIFF"});
  RunBatch(*e, {t.get()});
  REQUIRE(t->sink->WaitFinal(milliseconds(10000)));
  REQUIRE(t->status().ok());
  REQUIRE(t->response().outputs().size() == 1);
  CHECK(OutputValues<float>(t->response(), "DIFF") == std::vector<float>{-4});
}

TEST_CASE("Execute hands requests over: one ensemble request never holds the next back") {
  FakeModels f;
  AddModels(f);
  auto e = MakeEnsemble(f, kChain);
  f.Hold("inc");
  auto a = EnsembleRequest(SpecOf(kChain), {1});
  auto b = EnsembleRequest(SpecOf(kChain), {2});
  RunBatch(*e, {a.get()});  // returns although its first step is held
  RunBatch(*e, {b.get()});
  CHECK(f.WaitHeld("inc", 2, milliseconds(10000)));
  CHECK(e->in_flight() == 2);
  CHECK(a->sink->finals() == 0);
  f.Release("inc");
  REQUIRE(a->sink->WaitFinal(milliseconds(10000)));
  REQUIRE(b->sink->WaitFinal(milliseconds(10000)));
  CHECK(OutputValues<float>(a->response(), "OUT") == std::vector<float>{4});
  CHECK(OutputValues<float>(b->response(), "OUT") == std::vector<float>{6});
}

TEST_CASE("a failing step fails the request, naming the step and model, after running steps end") {
  FakeModels f;
  AddModels(f);
  const std::string text = Diamond("fail");
  auto e = MakeEnsemble(f, text);
  f.Hold("inc");
  auto t = EnsembleRequest(SpecOf(text), {1});
  int finals_recorded = 0;
  bool recorded_success = true;
  t->request->on_final = [&](const absl::Status& outcome) {
    ++finals_recorded;
    recorded_success = outcome.ok();
  };
  RunBatch(*e, {t.get()});
  REQUIRE(f.WaitHeld("inc", 1, milliseconds(10000)));
  // "fail" has answered; the sibling still views the client's buffer, so
  // the client is not answered yet, and the sibling now reads as cancelled.
  const auto inc = f.SeenBy("inc");
  REQUIRE(inc.size() == 1);
  for (int i = 0; i < 1000 && !inc[0].is_cancelled(); ++i) std::this_thread::sleep_for(milliseconds(5));
  CHECK(inc[0].is_cancelled());
  CHECK(t->sink->finals() == 0);
  f.Release("inc");
  REQUIRE(t->sink->WaitFinal(milliseconds(10000)));
  const absl::Status s = t->status();
  CHECK(s.code() == absl::StatusCode::kInvalidArgument);
  CHECK(absl::StrContains(s.message(), "ensemble 'diamond' step 1 (model 'fail'): "));
  CHECK(absl::StrContains(s.message(), "NaN in INPUT0"));
  CHECK(f.SeenBy("addsub").empty());
  CHECK(t->sink->finals() == 1);
  CHECK(finals_recorded == 1);
  CHECK_FALSE(recorded_success);
}

TEST_CASE("the client's cancellation reaches the steps") {
  FakeModels f;
  AddModels(f);
  auto e = MakeEnsemble(f, kChain);
  f.Hold("inc");
  auto t = EnsembleRequest(SpecOf(kChain), {1});
  auto cancelled = std::make_shared<std::atomic<bool>>(false);
  t->request->is_cancelled = [cancelled] { return cancelled->load(); };
  RunBatch(*e, {t.get()});
  REQUIRE(f.WaitHeld("inc", 1, milliseconds(10000)));
  const auto inc = f.SeenBy("inc");
  CHECK_FALSE(inc[0].is_cancelled());
  cancelled->store(true);
  CHECK(inc[0].is_cancelled());
  f.Release("inc");
  REQUIRE(t->sink->WaitFinal(milliseconds(10000)));
  CHECK(t->status().code() == absl::StatusCode::kCancelled);
  CHECK(absl::StrContains(t->status().message(), "step 0 (model 'inc')"));
  CHECK(f.SeenBy("dbl").empty());
}

TEST_CASE("a step is not started once the client's deadline has passed") {
  FakeModels f;
  AddModels(f);
  auto e = MakeEnsemble(f, kChain);
  auto t = EnsembleRequest(SpecOf(kChain), {1});
  t->request->deadline = InferenceRequest::Clock::now() - milliseconds(1);
  RunBatch(*e, {t.get()});
  REQUIRE(t->sink->WaitFinal(milliseconds(10000)));
  CHECK(t->status().code() == absl::StatusCode::kDeadlineExceeded);
  CHECK(absl::StrContains(t->status().message(),
                          "ensemble 'chain' step 0 (model 'inc') was not started"));
  CHECK(f.SeenBy("inc").empty());
}

TEST_CASE("a step whose model went away fails the request with its reason") {
  FakeModels f;
  AddModels(f);
  auto e = MakeEnsemble(f, kChain);
  f.SetServing("dbl", false);
  auto t = EnsembleRequest(SpecOf(kChain), {1});
  RunBatch(*e, {t.get()});
  REQUIRE(t->sink->WaitFinal(milliseconds(10000)));
  CHECK(t->status().code() == absl::StatusCode::kUnavailable);
  CHECK(absl::StrContains(t->status().message(),
                          "ensemble 'chain' step 1 (model 'dbl'): model 'dbl' is not ready"));
}

TEST_CASE("an ensemble is available only while its composing models serve and fit") {
  FakeModels f;
  AddModels(f);
  auto e = MakeEnsemble(f, kChain);
  CHECK(e->healthy());
  f.SetServing("dbl", false);
  CHECK_FALSE(e->healthy());
  absl::Status s = e->Availability();
  CHECK(s.code() == absl::StatusCode::kUnavailable);
  CHECK(absl::StrContains(s.message(), "step 1 (model 'dbl') cannot run: model 'dbl' is not ready"));
  f.SetServing("dbl", true);
  CHECK(e->healthy());
  // A reload that changes dbl's signature breaks the graph; a compatible
  // one mends it.
  f.Add(SpecFromText(R"(name: "dbl" backend: "x" max_batch_size: 8
    input [ { name: "X" data_type: TYPE_FP64 dims: [ -1 ] } ]
    output [ { name: "Y" data_type: TYPE_FP32 dims: [ -1 ] } ])"),
        nullptr);
  s = e->Availability();
  CHECK(s.code() == absl::StatusCode::kInvalidArgument);
  CHECK(absl::StrContains(s.message(), "input 'X' of step 1 (model 'dbl') is FP64"));
  f.Add(SpecFromText(R"(name: "dbl" backend: "x" max_batch_size: 16
    input [ { name: "X" data_type: TYPE_FP32 dims: [ -1 ] } ]
    output [ { name: "Y" data_type: TYPE_FP32 dims: [ -1 ] } ])"),
        nullptr);
  CHECK(e->healthy());
  CHECK(e->ComposingModelNames() == std::vector<std::string>{"inc", "dbl"});
}

TEST_CASE("an unloaded ensemble waits for its requests in flight before it goes") {
  FakeModels f;
  AddModels(f);
  auto e = MakeEnsemble(f, kChain);
  f.Hold("dbl");
  auto t = EnsembleRequest(SpecOf(kChain), {1});
  int recorded = 0;
  t->request->on_final = [&](const absl::Status&) { ++recorded; };
  RunBatch(*e, {t.get()});
  REQUIRE(f.WaitHeld("dbl", 1, milliseconds(10000)));
  std::atomic<bool> gone{false};
  std::thread unload([&] {
    e.reset();
    gone = true;
  });
  std::this_thread::sleep_for(milliseconds(50));
  CHECK_FALSE(gone.load());
  f.Release("dbl");
  unload.join();
  CHECK(gone.load());
  REQUIRE(t->sink->finals() == 1);
  CHECK(t->status().ok());
  CHECK(recorded == 1);  // the statistics were recorded while the version existed
}

TEST_CASE("many ensemble requests at once all get their own answers") {
  FakeModels f(4);
  AddModels(f);
  const std::string text = Diamond();
  auto e = MakeEnsemble(f, text);
  std::vector<std::unique_ptr<TestRequest>> requests;
  for (int i = 0; i < 200; ++i) {
    requests.push_back(EnsembleRequest(SpecOf(text), {static_cast<float>(i)}));
  }
  std::vector<TestRequest*> batch;
  for (auto& r : requests) batch.push_back(r.get());
  RunBatch(*e, batch);
  for (int i = 0; i < 200; ++i) {
    REQUIRE(requests[i]->sink->WaitFinal(milliseconds(10000)));
    REQUIRE(requests[i]->status().ok());
    const float x = static_cast<float>(i);
    CHECK(OutputValues<float>(requests[i]->response(), "SUM") == std::vector<float>{3 * x + 1});
  }
  CHECK(WaitIdle(*e));
}

}  // namespace
}  // namespace testing
}  // namespace torii
