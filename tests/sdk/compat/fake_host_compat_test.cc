// The compatibility promise in the SDK's fake host (the server's side is
// abi_compat_test.cc): runners built against the frozen ABI 1.0 and 1.1
// headers load and run; other majors and newer minors are refused like the
// server refuses them; and the fake host never writes past the struct_size of
// a runner's out-structs (small_struct_runner.c, with a broken host as the
// control that the fixture notices).
#include <dlfcn.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "torii/testing/fake_host.h"

namespace {

using torii::testing::FakeHost;
using torii::testing::ModelSpec;
using torii::testing::Request;
using torii::testing::Tensor;

ModelSpec ScaleSpec() {
  ModelSpec spec;
  spec.name = "scale";
  spec.max_batch_size = 8;
  spec.inputs = {{"INPUT0", TORII_TYPE_FP32, {-1}}};
  spec.outputs = {{"OUTPUT0", TORII_TYPE_FP32, {-1}}};
  spec.parameters["factor"] = "3";
  return spec;
}

bool Logged(const torii::testing::FakeModel& model, const std::string& text) {
  for (const auto& line : model.log()) {
    if (line.find(text) != std::string::npos) return true;
  }
  return false;
}

TEST_CASE("runners built against ABI 1.0 and 1.1 load and run in the fake host", "[compat]") {
  for (const auto& [path, minor] : {std::pair<const char*, uint32_t>{TORII_COMPAT_ABI_1_0, 0},
                                    std::pair<const char*, uint32_t>{TORII_COMPAT_ABI_1_1, 1}}) {
    INFO(path);
    auto host = FakeHost::Open(path);
    CHECK(host->info().abi_version_major == 1);
    CHECK(host->info().abi_version_minor == minor);
    auto model = host->Load(ScaleSpec());
    CHECK(Logged(*model, "host ABI 1." + std::to_string(TORII_RUNNER_ABI_VERSION_MINOR) +
                             ", factor 3"));
    auto instance = model->CreateInstance();
    auto one = instance->Infer({Tensor::Of<float>("INPUT0", {1, 3}, {1, -2, 0.5f})});
    REQUIRE(one.ok());
    CHECK(one.output("OUTPUT0").values<float>() == std::vector<float>{3, -6, 1.5f});
    Request a, b;
    a.inputs = {Tensor::Of<float>("INPUT0", {1, 2}, {1, 2})};
    b.inputs = {Tensor::Of<float>("INPUT0", {2, 2}, {3, 4, 5, 6})};
    auto merged = instance->Execute({a, b});
    REQUIRE(merged[1].ok());
    CHECK(merged[1].output("OUTPUT0").values<float>() == std::vector<float>{9, 12, 15, 18});
    CHECK(merged[1].output("OUTPUT0").shape == std::vector<int64_t>{2, 2});
  }
}

TEST_CASE("a 1.1 runner's cancellation check and per-request errors work in the fake host",
          "[compat]") {
  auto host = FakeHost::Open(TORII_COMPAT_ABI_1_1);
  auto model = host->Load(ScaleSpec());
  auto instance = model->CreateInstance();
  Request ok, fail, gone;
  ok.inputs = fail.inputs = gone.inputs = {Tensor::Of<float>("INPUT0", {1, 1}, {2})};
  fail.parameters["fail"] = torii::Parameter::String("not this one");
  gone.cancelled = true;
  auto out = instance->Execute({ok, fail});
  REQUIRE(out[0].ok());
  CHECK(out[0].output("OUTPUT0").values<float>() == std::vector<float>{6});
  CHECK(out[1].code == TORII_STATUS_INVALID_ARGUMENT);
  CHECK(out[1].message == "not this one");
  auto cancelled = instance->Execute({gone});
  CHECK(cancelled[0].code == TORII_STATUS_CANCELLED);
  CHECK_THAT(cancelled[0].message, Catch::Contains("every request was cancelled"));
}

TEST_CASE("the fake host refuses another ABI major and a newer minor, naming both", "[compat]") {
  const std::string host_abi = "1." + std::to_string(TORII_RUNNER_ABI_VERSION_MINOR);
  auto major = FakeHost::Open(TORII_COMPAT_MAJOR_2);
  CHECK_THROWS_WITH(major->Load(ScaleSpec()),
                    "runner was built for runner ABI 2.0 but this host implements ABI " +
                        host_abi + "; the major versions must be equal");
  auto minor = FakeHost::Open(TORII_COMPAT_MINOR_99);
  try {
    minor->Load(ScaleSpec());
    FAIL("loaded a runner that needs ABI 1.99");
  } catch (const torii::Error& e) {
    CHECK(e.code() == TORII_STATUS_FAILED_PRECONDITION);
    CHECK(std::string(e.what()) ==
          "runner needs runner ABI 1.99 but this host implements only ABI " + host_abi);
  }
}

ModelSpec SmallStructSpec(ToriiDataType dt, int32_t max_batch_size) {
  ModelSpec spec;
  spec.name = "small_struct";
  spec.max_batch_size = max_batch_size;
  spec.inputs = {{"INPUT0", dt, {-1}}};
  spec.outputs = {{"OUTPUT0", dt, {-1}}};
  return spec;
}

// Parameters of every type, for the runner to probe.
void AddParameters(Request* r) {
  r->parameters["b"] = torii::Parameter::Bool(true);
  r->parameters["i"] = torii::Parameter::Int64(-3);
  r->parameters["u"] = torii::Parameter::Uint64(7);
  r->parameters["d"] = torii::Parameter::Double(0.5);
  r->parameters["s"] = torii::Parameter::String("text");
}

TEST_CASE("the fake host never writes past a runner's struct_size", "[compat]") {
  auto host = FakeHost::Open(TORII_COMPAT_SMALL_STRUCT);
  CHECK(std::string(host->info().name) == "small_struct_runner");
  auto model = host->Load(SmallStructSpec(TORII_TYPE_FP32, 4));  // probes model_input/_output
  auto instance = model->CreateInstance();
  Request a, b;
  a.inputs = {Tensor::Of<float>("INPUT0", {1, 2}, {1, 2})};
  b.inputs = {Tensor::Of<float>("INPUT0", {1, 2}, {3, 4})};
  AddParameters(&a);
  AddParameters(&b);
  auto out = instance->Execute({a, b});
  INFO(out[0].message);
  REQUIRE(out[0].ok());
  REQUIRE(out[1].ok());
  CHECK(out[1].output("OUTPUT0").values<float>() == std::vector<float>{3, 4});

  auto bytes = host->Load(SmallStructSpec(TORII_TYPE_BYTES, 0))->CreateInstance();
  Request s;
  s.inputs = {Tensor::Strings("INPUT0", {2}, {"ab", ""})};
  AddParameters(&s);
  auto text = bytes->Execute({s});
  INFO(text[0].message);
  REQUIRE(text[0].ok());
  CHECK(text[0].output("OUTPUT0").strings() == std::vector<std::string>{"ab", ""});
}

// A host as the server was before host_checks::FillSized: it writes every
// field, whatever the runner's struct_size.
bool NaiveModelInput(const ToriiModel* m, size_t i, ToriiTensor* out) {
  if (i >= m->current().inputs.size()) return false;
  const auto& t = m->current().inputs[i];
  out->name = t.name.c_str();
  out->datatype = t.datatype;
  out->shape = t.dims.data();
  out->ndim = t.dims.size();
  out->data = nullptr;
  out->byte_size = 0;
  return true;
}

bool NaiveRequestParameter(const ToriiBatch* b, size_t r, const char* key, ToriiParameter* out) {
  auto it = b->requests.at(r)->parameters.find(key);
  if (it == b->requests.at(r)->parameters.end()) return false;
  out->type = it->second.type;
  out->bool_value = it->second.bool_value;
  out->int64_value = it->second.int64_value;
  out->uint64_value = it->second.uint64_value;
  out->double_value = it->second.double_value;
  out->string_value = it->second.string_value.c_str();
  out->string_size = it->second.string_value.size();
  return true;
}

TEST_CASE("small_struct_runner notices a host that writes past struct_size", "[compat]") {
  void* lib = dlopen(TORII_COMPAT_SMALL_STRUCT, RTLD_NOW | RTLD_LOCAL);
  REQUIRE(lib != nullptr);
  auto load = reinterpret_cast<decltype(&torii_runner_model_load)>(
      dlsym(lib, TORII_RUNNER_SYMBOL_MODEL_LOAD));
  auto unload = reinterpret_cast<decltype(&torii_runner_model_unload)>(
      dlsym(lib, TORII_RUNNER_SYMBOL_MODEL_UNLOAD));
  auto execute = reinterpret_cast<decltype(&torii_runner_instance_execute)>(
      dlsym(lib, TORII_RUNNER_SYMBOL_INSTANCE_EXECUTE));
  REQUIRE((load && unload && execute));
  ToriiModel model;
  model.spec = SmallStructSpec(TORII_TYPE_FP32, 0);
  void* state = nullptr;

  SECTION("model_input") {
    ToriiHostApi naive = *torii::testing::fake_detail::Api();
    naive.model_input = NaiveModelInput;
    ToriiError* err = load(&naive, &model, &state);
    REQUIRE(err != nullptr);
    CHECK(err->code == TORII_STATUS_INTERNAL);
    CHECK_THAT(err->message, Catch::StartsWith("small_struct_runner: model_input with "
                                               "struct_size ") &&
                                 Catch::Contains("wrote past struct_size: byte 8 of the "
                                                 "runner's memory changed"));
    delete err;
  }
  SECTION("batch_request_parameter") {
    static ToriiHostApi naive = *torii::testing::fake_detail::Api();  // outlives the model
    naive.batch_request_parameter = NaiveRequestParameter;
    REQUIRE(load(&naive, &model, &state) == nullptr);
    Request r;
    r.inputs = {Tensor::Of<float>("INPUT0", {1}, {1})};
    AddParameters(&r);
    ToriiBatch batch;  // built by hand, as the host would
    batch.model = &model;
    batch.requests = {&r};
    batch.rows = {1};
    batch.inputs = r.inputs;
    batch.failed.resize(1);
    ToriiError* err = execute(state, &batch);  // the instance state is the model's
    REQUIRE(err != nullptr);
    CHECK_THAT(err->message, Catch::Contains("batch_request_parameter with struct_size") &&
                                 Catch::Contains("wrote past struct_size"));
    delete err;
    unload(state);
  }
  dlclose(lib);
}

}  // namespace
