// The execution path: ToriiBatch building, output checks, error mapping.
#include "server/runner/runner_model.h"

#include <catch2/catch.hpp>

#include "server/core/datatype.h"
#include "tests/util/runner_fixture.h"

namespace torii {
namespace {

using testing::Fp32Request;
using testing::LoadRunnerModel;
using testing::Output;
using testing::OutputValues;
using testing::ProbeConfig;
using testing::RunBatch;

std::string Fixture(const std::string& name) {
  return std::string(TORII_FIXTURE_DIR) + "/libtorii_" + name + ".so";
}

std::unique_ptr<testing::LoadedModel> Probe(int max_batch = 8) {
  auto m = LoadRunnerModel(Fixture("probe"), ProbeConfig("probe", max_batch));
  REQUIRE(m.ok());
  return std::move(*m);
}

bool Contains(const absl::Status& s, const std::string& needle) {
  return std::string(s.message()).find(needle) != std::string::npos;
}

TEST_CASE("one request runs in place and its outputs go straight into its response") {
  auto m = Probe();
  auto t = Fp32Request(*m, 2, 3, 1.0f);
  RunBatch(*m->model, {t.get()});
  REQUIRE(t->sink->finals() == 1);
  REQUIRE(t->status().ok());
  const auto& r = t->response();
  REQUIRE(r.outputs().size() == 4);
  const OutputTensor& out = Output(r, "OUTPUT0");
  CHECK(out.datatype == TORII_TYPE_FP32);
  CHECK(std::vector<int64_t>(out.shape.begin(), out.shape.end()) == std::vector<int64_t>{2, 3});
  CHECK(OutputValues<float>(r, "OUTPUT0") == std::vector<float>{1, 2, 3, 4, 5, 6});
  CHECK(OutputValues<int64_t>(r, "BATCH") == std::vector<int64_t>{2, 2});
}

TEST_CASE("several requests are concatenated and each gets its own rows back") {
  auto m = Probe();
  auto a = Fp32Request(*m, 1, 2, 10.0f);
  auto b = Fp32Request(*m, 2, 2, 20.0f);
  auto c = Fp32Request(*m, 1, 2, 30.0f);
  RunBatch(*m->model, {a.get(), b.get(), c.get()});
  for (auto* t : {a.get(), b.get(), c.get()}) REQUIRE(t->status().ok());
  CHECK(OutputValues<float>(a->response(), "OUTPUT0") == std::vector<float>{10, 11});
  CHECK(OutputValues<float>(b->response(), "OUTPUT0") == std::vector<float>{20, 21, 22, 23});
  CHECK(OutputValues<float>(c->response(), "OUTPUT0") == std::vector<float>{30, 31});
  CHECK(Output(b->response(), "OUTPUT0").shape[0] == 2);
  // Ran in one batch of 4 rows.
  CHECK(OutputValues<int64_t>(a->response(), "BATCH") == std::vector<int64_t>{4});
}

TEST_CASE("only requested outputs are returned") {
  auto m = Probe();
  auto t = std::make_unique<testing::TestRequest>();
  t->request->model_name = "probe";
  t->request->sink = t->sink;
  t->AddInput("INPUT0", TORII_TYPE_FP32, {1, 2}, testing::FloatBytes({0, 1}));
  t->request->requested_outputs.push_back({"INSTANCE", {}});
  REQUIRE(ValidateRequest(*m->spec, {}, t->request.get()).ok());
  RunBatch(*m->model, {t.get()});
  REQUIRE(t->status().ok());
  REQUIRE(t->response().outputs().size() == 1);
  CHECK(t->response().outputs()[0].name == "INSTANCE");
}

TEST_CASE("runner errors keep their code and exceptions become INTERNAL") {
  auto m = Probe();
  auto e = Fp32Request(*m, 1, 2, 0.0f, {{"mode", "error"}});
  RunBatch(*m->model, {e.get()});
  CHECK(e->status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(Contains(e->status(), "probe: asked to fail"));

  auto t = Fp32Request(*m, 1, 2, 0.0f, {{"mode", "throw"}});
  RunBatch(*m->model, {t.get()});
  CHECK(t->status().code() == absl::StatusCode::kInternal);
  CHECK(Contains(t->status(), "probe: boom"));
}

TEST_CASE("wrong output shapes, types and missing outputs are errors naming the tensor") {
  auto m = Probe();
  auto s = Fp32Request(*m, 1, 2, 0.0f, {{"mode", "bad_shape"}});
  RunBatch(*m->model, {s.get()});
  CHECK(s->status().code() == absl::StatusCode::kInternal);
  CHECK(Contains(s->status(), "output 'OUTPUT0'"));

  auto d = Fp32Request(*m, 1, 2, 0.0f, {{"mode", "bad_dtype"}});
  RunBatch(*m->model, {d.get()});
  CHECK(Contains(d->status(), "config declares FP32, the runner produced INT32"));

  auto n = Fp32Request(*m, 1, 2, 0.0f, {{"mode", "no_output"}});
  RunBatch(*m->model, {n.get()});
  CHECK(Contains(n->status(), "produced no output 'OUTPUT0'"));
}

TEST_CASE("a runner may fail one request of a batch without failing the rest") {
  auto m = Probe();
  auto a = Fp32Request(*m, 1, 2, 2.0f, {{"mode", "fail_odd"}});
  auto b = Fp32Request(*m, 1, 2, 3.0f);
  auto c = Fp32Request(*m, 1, 2, 4.0f);
  RunBatch(*m->model, {a.get(), b.get(), c.get()});
  CHECK(a->status().ok());
  CHECK(b->status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(c->status().ok());
  CHECK(OutputValues<float>(c->response(), "OUTPUT0") == std::vector<float>{4, 5});
}

TEST_CASE("an exception thrown across the bare C ABI is caught by the host") {
  auto m = LoadRunnerModel(Fixture("throws_across_abi"), ProbeConfig("t", 8));
  REQUIRE(m.ok());
  auto t = Fp32Request(**m, 1, 2, 0.0f);
  RunBatch(*(*m)->model, {t.get()});
  CHECK(t->status().code() == absl::StatusCode::kInternal);
  CHECK(Contains(t->status(), "escaped through the C ABI"));
}

TEST_CASE("a failing model load reports the runner's code and message") {
  auto m = LoadRunnerModel(Fixture("init_fails"), ProbeConfig("f", 8));
  REQUIRE_FALSE(m.ok());
  CHECK(m.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(Contains(m.status(), "weights file is corrupt"));
  CHECK(Contains(m.status(), "model 'f'"));

  auto p = LoadRunnerModel(Fixture("probe"),
                           ProbeConfig("p", 8, R"(parameters { key: "fail_load" value { string_value: "1" } })"));
  REQUIRE_FALSE(p.ok());
  CHECK(Contains(p.status(), "probe: fail_load is set"));
}

TEST_CASE("BYTES flow through identity, merged and split per request") {
  auto m = LoadRunnerModel(std::string(TORII_RUNNER_DIR) + "/libtorii_identity.so", R"(
    name: "ib" backend: "identity" max_batch_size: 8
    input [ { name: "INPUT0" data_type: TYPE_STRING dims: [ -1 ] } ]
    output [ { name: "OUTPUT0" data_type: TYPE_STRING dims: [ -1 ] } ])");
  REQUIRE(m.ok());
  auto make = [&](std::vector<std::string> elems) {
    auto t = std::make_unique<testing::TestRequest>();
    t->request->model_name = "ib";
    t->request->sink = t->sink;
    std::string bytes;
    for (auto& e : elems) AppendBytesElement(bytes, e);
    t->AddInput("INPUT0", TORII_TYPE_BYTES, {1, static_cast<int64_t>(elems.size())}, bytes);
    REQUIRE(ValidateRequest(*(*m)->spec, {}, t->request.get()).ok());
    return t;
  };
  auto a = make({"x", "", "yz"});
  auto b = make({"hello", "w", "!"});
  RunBatch(*(*m)->model, {a.get(), b.get()});
  REQUIRE(a->status().ok());
  REQUIRE(b->status().ok());
  std::string want;
  for (const char* e : {"hello", "w", "!"}) AppendBytesElement(want, e);
  const OutputTensor& out = Output(b->response(), "OUTPUT0");
  CHECK(std::string(out.data, out.byte_size) == want);
  CHECK(Output(a->response(), "OUTPUT0").shape[1] == 3);
}

TEST_CASE("malformed BYTES from a runner are the server's fault: INTERNAL, not INVALID_ARGUMENT") {
  auto m = LoadRunnerModel(Fixture("probe"), ProbeConfig("probe", 8) + R"(
    output [ { name: "BYTES_OUT" data_type: TYPE_STRING dims: [ 1 ] } ])");
  REQUIRE(m.ok());
  auto good = Fp32Request(**m, 2, 1, 0.0f);
  RunBatch(*(*m)->model, {good.get()});
  REQUIRE(good->status().ok());
  CHECK(Output(good->response(), "BYTES_OUT").byte_size == 10);

  for (int batch_of : {1, 2}) {
    INFO("batch of " << batch_of);
    std::vector<std::unique_ptr<testing::TestRequest>> reqs;
    std::vector<testing::TestRequest*> ptrs;
    for (int i = 0; i < batch_of; ++i) {
      reqs.push_back(Fp32Request(**m, 1, 1, 0.0f, {{"mode", "bad_bytes"}}));
      ptrs.push_back(reqs.back().get());
    }
    RunBatch(*(*m)->model, ptrs);
    for (auto& t : reqs) {
      CHECK(t->status().code() == absl::StatusCode::kInternal);
      CHECK(Contains(t->status(), "runner output 'BYTES_OUT': BYTES element 0 declares 1000 bytes"));
    }
  }
}

}  // namespace
}  // namespace torii
