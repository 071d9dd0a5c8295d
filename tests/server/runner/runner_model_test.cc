// The execution path: ToriiBatch building, output checks, error mapping.
#include "server/runner/runner_model.h"

#include <catch2/catch.hpp>

#include "tests/util/runner_fixture.h"
#include "torii/runner.h"

namespace torii {
namespace {

using testing::Fp32Request;
using testing::LoadRunnerModel;
using testing::OutputFloats;
using testing::OutputInts;
using testing::ProbeConfig;

std::string Fixture(const std::string& name) {
  return std::string(TORII_FIXTURE_DIR) + "/libtorii_" + name + ".so";
}

std::unique_ptr<testing::LoadedModel> Probe(int max_batch = 8) {
  auto m = LoadRunnerModel(Fixture("probe"), ProbeConfig("probe", max_batch));
  REQUIRE(m.ok());
  return std::move(*m);
}

TEST_CASE("one request runs in place and its outputs move into the response") {
  auto m = Probe();
  auto t = Fp32Request(*m, 2, 3, 1.0f);
  auto st = m->model->Execute(0, {&t->request});
  REQUIRE(st[0].ok());
  REQUIRE(t->response.outputs_size() == 4);
  CHECK(t->response.outputs(0).name() == "OUTPUT0");
  CHECK(t->response.outputs(0).datatype() == "FP32");
  CHECK(std::vector<int64_t>(t->response.outputs(0).shape().begin(),
                             t->response.outputs(0).shape().end()) == std::vector<int64_t>{2, 3});
  CHECK(OutputFloats(t->response, 0) == std::vector<float>{1, 2, 3, 4, 5, 6});
  CHECK(OutputInts(t->response, 1) == std::vector<int64_t>{2, 2});
}

TEST_CASE("several requests are concatenated and each gets its own rows back") {
  auto m = Probe();
  auto a = Fp32Request(*m, 1, 2, 10.0f);
  auto b = Fp32Request(*m, 2, 2, 20.0f);
  auto c = Fp32Request(*m, 1, 2, 30.0f);
  auto st = m->model->Execute(0, {&a->request, &b->request, &c->request});
  for (const auto& s : st) REQUIRE(s.ok());
  CHECK(OutputFloats(a->response, 0) == std::vector<float>{10, 11});
  CHECK(OutputFloats(b->response, 0) == std::vector<float>{20, 21, 22, 23});
  CHECK(OutputFloats(c->response, 0) == std::vector<float>{30, 31});
  CHECK(b->response.outputs(0).shape(0) == 2);
  CHECK(OutputInts(a->response, 1) == std::vector<int64_t>{4});  // ran in a batch of 4 rows
}

TEST_CASE("only requested outputs are returned") {
  auto m = Probe();
  auto t = std::make_unique<testing::TestRequest>();
  auto base = Fp32Request(*m, 1, 2, 0.0f);
  t->wire = base->wire;
  t->wire.add_outputs()->set_name("INSTANCE");
  REQUIRE(ValidateRequest("probe", *m->signature, t->wire, {}, &t->request).ok());
  t->request.response = &t->response;
  REQUIRE(m->model->Execute(0, {&t->request})[0].ok());
  REQUIRE(t->response.outputs_size() == 1);
  CHECK(t->response.outputs(0).name() == "INSTANCE");
}

TEST_CASE("runner errors keep their code and exceptions become INTERNAL") {
  auto m = Probe();
  auto e = Fp32Request(*m, 1, 2, 0.0f, {{"mode", "error"}});
  auto st = m->model->Execute(0, {&e->request});
  CHECK(st[0].code() == absl::StatusCode::kFailedPrecondition);
  CHECK(std::string(st[0].message()).find("probe: asked to fail") != std::string::npos);

  auto t = Fp32Request(*m, 1, 2, 0.0f, {{"mode", "throw"}});
  st = m->model->Execute(0, {&t->request});
  CHECK(st[0].code() == absl::StatusCode::kInternal);
  CHECK(std::string(st[0].message()).find("probe: boom") != std::string::npos);
}

TEST_CASE("wrong output shapes, types and missing outputs are errors naming the tensor") {
  auto m = Probe();
  auto s = Fp32Request(*m, 1, 2, 0.0f, {{"mode", "bad_shape"}});
  auto st = m->model->Execute(0, {&s->request});
  CHECK(st[0].code() == absl::StatusCode::kInternal);
  CHECK(std::string(st[0].message()).find("output 'OUTPUT0'") != std::string::npos);

  auto d = Fp32Request(*m, 1, 2, 0.0f, {{"mode", "bad_dtype"}});
  st = m->model->Execute(0, {&d->request});
  CHECK(std::string(st[0].message()).find("config declares FP32, the runner produced INT32") !=
        std::string::npos);

  auto n = Fp32Request(*m, 1, 2, 0.0f, {{"mode", "no_output"}});
  st = m->model->Execute(0, {&n->request});
  CHECK(std::string(st[0].message()).find("produced no output 'OUTPUT0'") != std::string::npos);
}

TEST_CASE("a runner may fail one request of a batch without failing the rest") {
  auto m = Probe();
  auto a = Fp32Request(*m, 1, 2, 2.0f, {{"mode", "fail_odd"}});
  auto b = Fp32Request(*m, 1, 2, 3.0f);
  auto c = Fp32Request(*m, 1, 2, 4.0f);
  auto st = m->model->Execute(0, {&a->request, &b->request, &c->request});
  CHECK(st[0].ok());
  CHECK(st[1].code() == absl::StatusCode::kInvalidArgument);
  CHECK(st[2].ok());
  CHECK(OutputFloats(c->response, 0) == std::vector<float>{4, 5});
}

TEST_CASE("an exception thrown across the bare C ABI is caught by the host") {
  auto m = LoadRunnerModel(Fixture("throws_across_abi"), ProbeConfig("t", 8));
  REQUIRE(m.ok());
  auto t = Fp32Request(**m, 1, 2, 0.0f);
  auto st = (*m)->model->Execute(0, {&t->request});
  CHECK(st[0].code() == absl::StatusCode::kInternal);
  CHECK(std::string(st[0].message()).find("escaped through the C ABI") != std::string::npos);
}

TEST_CASE("a failing model load reports the runner's code and message") {
  auto m = LoadRunnerModel(Fixture("init_fails"), ProbeConfig("f", 8));
  REQUIRE_FALSE(m.ok());
  CHECK(m.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(std::string(m.status().message()).find("weights file is corrupt") != std::string::npos);
  CHECK(std::string(m.status().message()).find("model 'f'") != std::string::npos);

  auto p = LoadRunnerModel(Fixture("probe"),
                           ProbeConfig("p", 8, R"(parameters { key: "fail_load" value { string_value: "1" } })"));
  REQUIRE_FALSE(p.ok());
  CHECK(std::string(p.status().message()).find("probe: fail_load is set") != std::string::npos);
}

TEST_CASE("BYTES flow through identity, merged and split per request") {
  auto m = LoadRunnerModel(std::string(TORII_RUNNER_DIR) + "/libtorii_identity.so", R"(
    name: "ib" backend: "identity" max_batch_size: 8
    input [ { name: "INPUT0" data_type: TYPE_STRING dims: [ -1 ] } ]
    output [ { name: "OUTPUT0" data_type: TYPE_STRING dims: [ -1 ] } ])");
  REQUIRE(m.ok());
  auto make = [&](std::vector<std::string> elems) {
    auto t = std::make_unique<testing::TestRequest>();
    auto* in = t->wire.add_inputs();
    in->set_name("INPUT0");
    in->set_datatype("BYTES");
    in->add_shape(1);
    in->add_shape(static_cast<int64_t>(elems.size()));
    for (auto& e : elems) in->mutable_contents()->add_bytes_contents(e);
    REQUIRE(ValidateRequest("ib", *(*m)->signature, t->wire, {}, &t->request).ok());
    t->request.response = &t->response;
    return t;
  };
  auto a = make({"x", "", "yz"});
  auto b = make({"hello", "w", "!"});
  auto st = (*m)->model->Execute(0, {&a->request, &b->request});
  REQUIRE(st[0].ok());
  REQUIRE(st[1].ok());
  std::string want;
  for (const char* e : {"hello", "w", "!"}) AppendBytesElement(want, e);
  CHECK(b->response.raw_output_contents(0) == want);
  CHECK(a->response.outputs(0).shape(1) == 3);
}

}  // namespace
}  // namespace torii
