// The runner ABI's compatibility promise (docs/runner-abi.md, "Versioning"),
// checked against the server's own loader and execution path:
//   - runners built against the frozen ABI 1.0 and 1.1 headers load into this
//     server and serve batches, errors included;
//   - a runner claiming another major, or a minor newer than the server's, is
//     refused with a message naming both versions;
//   - the 1.0 and 1.1 struct layouts and enum values are an unchanged prefix
//     of today's (what makes the first point hold for every older runner).
//   - the server never writes past the struct_size of a runner's out-structs
//     (small_struct_runner.c).
// fake_host_compat_test.cc checks the same in the SDK's fake host.
#include <catch2/catch.hpp>
#include <cstddef>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "abi_1_0_fields.h"
#include "abi_1_1_fields.h"
#include "abi_1_2_fields.h"
#include "absl/strings/str_cat.h"
#include "server/core/request_validator.h"
#include "server/repository/model_config_parser.h"
#include "server/repository/model_spec_builder.h"
#include "server/runner/runner_library.h"
#include "server/runner/runner_model.h"
#include "tests/util/runner_fixture.h"
#include "torii/runner_abi.h"

extern "C" {
extern const size_t torii_abi_1_0_runner_info_size;
extern const size_t torii_abi_1_0_runner_info_offsets[];
extern const size_t torii_abi_1_0_tensor_size;
extern const size_t torii_abi_1_0_tensor_offsets[];
extern const size_t torii_abi_1_0_parameter_size;
extern const size_t torii_abi_1_0_parameter_offsets[];
extern const size_t torii_abi_1_0_host_api_size;
extern const size_t torii_abi_1_0_host_api_offsets[];
extern const long torii_abi_1_0_enum_values[];
extern const size_t torii_abi_1_1_runner_info_size;
extern const size_t torii_abi_1_1_tensor_size;
extern const size_t torii_abi_1_1_parameter_size;
extern const size_t torii_abi_1_1_host_api_size;
extern const size_t torii_abi_1_1_host_api_offsets[];
extern const size_t torii_abi_1_2_host_api_size;
extern const size_t torii_abi_1_2_host_api_offsets[];
}

namespace torii {
namespace {

const std::string kServerAbi =
    absl::StrCat(TORII_RUNNER_ABI_VERSION_MAJOR, ".", TORII_RUNNER_ABI_VERSION_MINOR);

std::shared_ptr<const ModelSpec> Spec(const std::string& factor) {
  std::string text = R"(
    name: "scale"
    backend: "abi_1_0_scale"
    max_batch_size: 8
    input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
    output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ])";
  if (!factor.empty()) {
    text += "\nparameters { key: \"factor\" value { string_value: \"" + factor + "\" } }";
  }
  auto parsed = ParseModelConfig(text, "config.pbtxt", "scale");
  INFO(parsed.status().ToString());
  REQUIRE(parsed.ok());
  RunnerManifest runner;
  runner.runner = "abi_1_0_scale";
  auto spec = BuildModelSpec(parsed->config, runner, SpecDefaults{});
  REQUIRE(spec.ok());
  return std::make_shared<const ModelSpec>(std::move(*spec));
}

// One validated request of `rows` x `values.size() / rows` floats.
struct Request {
  std::string bytes;
  std::shared_ptr<testing::CollectingSink> sink = std::make_shared<testing::CollectingSink>();
  std::unique_ptr<InferenceRequest> request = std::make_unique<InferenceRequest>();

  Request(const ModelSpec& spec, int64_t rows, const std::vector<float>& values) {
    bytes.assign(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
    InferenceInput in;
    in.name = "INPUT0";
    in.datatype = TORII_TYPE_FP32;
    in.shape = {rows, static_cast<int64_t>(values.size()) / rows};
    in.data = bytes.data();
    in.byte_size = bytes.size();
    request->inputs.push_back(std::move(in));
    request->sink = sink;
    const absl::Status s = ValidateRequest(spec, ValidationLimits{}, request.get());
    INFO(s.ToString());
    REQUIRE(s.ok());
  }

  const OutputTensor& Tensor() const {
    REQUIRE(sink->finals() == 1);
    REQUIRE(sink->last().status.ok());
    REQUIRE(sink->last().outputs().size() == 1);
    return sink->last().outputs()[0];
  }
  std::vector<float> Output() const {
    const OutputTensor& t = Tensor();
    std::vector<float> v(t.byte_size / sizeof(float));
    std::memcpy(v.data(), t.data, t.byte_size);
    return v;
  }
};

void Run(RunnerModel& model, size_t instance, std::vector<Request*> requests) {
  RequestBatch batch;
  for (Request* r : requests) batch.push_back(std::move(r->request));
  model.Execute(instance, batch, nullptr);
}

TEST_CASE("a runner built against ABI 1.0 loads and runs in the current server", "[compat]") {
  auto lib = RunnerLibrary::Open(TORII_COMPAT_ABI_1_0);
  INFO(lib.status().ToString());
  REQUIRE(lib.ok());
  const RunnerProvenance& p = (*lib)->provenance();
  CHECK(p.runner == "abi_1_0_scale");
  CHECK(p.runner_version == "1.0.0");
  CHECK(p.runner_abi == "1.0");
  CHECK(p.runner_build == "sdk 0.1.0; cc (c99); rev frozen-abi-1.0");

  const auto spec = Spec("3");
  RunnerModel::Options o;
  o.name = "scale";
  o.version = 1;
  o.directory = "/nonexistent/scale";
  o.version_directory = "/nonexistent/scale/1";
  o.spec = spec;
  o.instance_count = 2;
  auto model = RunnerModel::Create(*lib, o);
  INFO(model.status().ToString());
  REQUIRE(model.ok());
  REQUIRE((*model)->instance_count() == 2);

  SECTION("one request") {
    Request r(*spec, 1, {1, -2, 0.5f});
    Run(**model, 1, {&r});
    CHECK(r.Output() == std::vector<float>{3, -6, 1.5f});
    CHECK(r.Tensor().shape[0] == 1);
    CHECK(r.Tensor().shape[1] == 3);
  }
  SECTION("requests merged into one batch are split back") {
    Request a(*spec, 1, {1, 2}), b(*spec, 2, {3, 4, 5, 6});
    Run(**model, 0, {&a, &b});
    CHECK(a.Output() == std::vector<float>{3, 6});
    CHECK(b.Output() == std::vector<float>{9, 12, 15, 18});
    CHECK(b.Tensor().shape[0] == 2);
  }
}

TEST_CASE("a runner built against ABI 1.1 loads and runs in the current server", "[compat]") {
  auto lib = RunnerLibrary::Open(TORII_COMPAT_ABI_1_1);
  INFO(lib.status().ToString());
  REQUIRE(lib.ok());
  const RunnerProvenance& p = (*lib)->provenance();
  CHECK(p.runner == "abi_1_1_scale");
  CHECK(p.runner_version == "1.1.0");
  CHECK(p.runner_abi == "1.1");
  CHECK(p.runner_build == "sdk 0.1.0; cc (c99); rev frozen-abi-1.1");

  const auto spec = Spec("3");
  RunnerModel::Options o;
  o.name = "scale";
  o.version = 1;
  o.spec = spec;
  auto model = RunnerModel::Create(*lib, o);
  INFO(model.status().ToString());
  REQUIRE(model.ok());

  SECTION("requests merged into one batch are split back") {
    Request a(*spec, 1, {1, 2}), b(*spec, 2, {3, 4, 5, 6});
    Run(**model, 0, {&a, &b});
    CHECK(a.Output() == std::vector<float>{3, 6});
    CHECK(b.Output() == std::vector<float>{9, 12, 15, 18});
  }
  SECTION("a request parameter fails one request of the batch") {
    Request a(*spec, 1, {1}), b(*spec, 1, {2});
    b.request->parameters.Set("fail", std::string("not this one"));
    auto b_sink = b.sink;
    Run(**model, 0, {&a, &b});
    CHECK(a.Output() == std::vector<float>{3});
    REQUIRE(b_sink->finals() == 1);
    CHECK(b_sink->last().status.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(b_sink->last().status.message()), Catch::Contains("not this one"));
  }
}

TEST_CASE("a 1.0 runner's error crosses the ABI with its code and message", "[compat]") {
  auto lib = RunnerLibrary::Open(TORII_COMPAT_ABI_1_0);
  REQUIRE(lib.ok());
  RunnerModel::Options o;
  o.name = "scale";
  o.version = 1;
  o.spec = Spec("three");
  auto model = RunnerModel::Create(*lib, o);
  REQUIRE_FALSE(model.ok());
  CHECK(model.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(model.status().message()),
             Catch::Contains("parameter factor 'three' is not a number") &&
                 Catch::Contains("model 'scale'"));
}

TEST_CASE("a runner built for another ABI major is refused, naming both versions", "[compat]") {
  auto lib = RunnerLibrary::Open(TORII_COMPAT_MAJOR_2);
  REQUIRE_FALSE(lib.ok());
  CHECK(lib.status().code() == absl::StatusCode::kFailedPrecondition);
  const std::string msg(lib.status().message());
  CHECK_THAT(msg, Catch::Contains("runner ABI 2.0") &&
                      Catch::Contains("this server implements ABI " + kServerAbi) &&
                      Catch::Contains("libtorii_compat_abi_major_2.so") &&
                      Catch::Contains("major versions must be equal"));
}

TEST_CASE("a runner built for a newer ABI minor is refused, naming both versions", "[compat]") {
  auto lib = RunnerLibrary::Open(TORII_COMPAT_MINOR_99);
  REQUIRE_FALSE(lib.ok());
  CHECK(lib.status().code() == absl::StatusCode::kFailedPrecondition);
  const std::string msg(lib.status().message());
  CHECK_THAT(msg, Catch::Contains("needs runner ABI 1.99") &&
                      Catch::Contains("implements only ABI " + kServerAbi) &&
                      Catch::Contains("libtorii_compat_abi_minor_99.so"));
}

TEST_CASE("the ABI 1.0 layout is an unchanged prefix of today's", "[compat]") {
  SECTION("versions") {
    CHECK(TORII_RUNNER_ABI_VERSION_MAJOR == 1);
    CHECK(TORII_RUNNER_ABI_VERSION_MINOR >= 0);
  }
  // Every 1.0 member sits at the same offset; structs only grew at the end.
#define TORII_CHECK_MEMBERS(type, list, offsets, old_size)                    \
  SECTION(#type) {                                                            \
    size_t i = 0;                                                             \
    list(TORII_CHECK_ONE_##type)                                              \
    CHECK(sizeof(type) >= old_size);                                          \
    (void)i;                                                                  \
  }
#define TORII_CHECK_FIELD(type, offsets, f)                                   \
  {                                                                           \
    INFO(#type "." #f);                                                       \
    CHECK(offsetof(type, f) == offsets[i]);                                   \
    ++i;                                                                      \
  }
#define TORII_CHECK_ONE_ToriiRunnerInfo(f) \
  TORII_CHECK_FIELD(ToriiRunnerInfo, torii_abi_1_0_runner_info_offsets, f)
#define TORII_CHECK_ONE_ToriiTensor(f) \
  TORII_CHECK_FIELD(ToriiTensor, torii_abi_1_0_tensor_offsets, f)
#define TORII_CHECK_ONE_ToriiParameter(f) \
  TORII_CHECK_FIELD(ToriiParameter, torii_abi_1_0_parameter_offsets, f)
#define TORII_CHECK_ONE_ToriiHostApi(f) \
  TORII_CHECK_FIELD(ToriiHostApi, torii_abi_1_0_host_api_offsets, f)
  TORII_CHECK_MEMBERS(ToriiRunnerInfo, TORII_ABI_1_0_RUNNER_INFO_FIELDS,
                      torii_abi_1_0_runner_info_offsets, torii_abi_1_0_runner_info_size)
  TORII_CHECK_MEMBERS(ToriiTensor, TORII_ABI_1_0_TENSOR_FIELDS, torii_abi_1_0_tensor_offsets,
                      torii_abi_1_0_tensor_size)
  TORII_CHECK_MEMBERS(ToriiParameter, TORII_ABI_1_0_PARAMETER_FIELDS,
                      torii_abi_1_0_parameter_offsets, torii_abi_1_0_parameter_size)
  TORII_CHECK_MEMBERS(ToriiHostApi, TORII_ABI_1_0_HOST_API_FIELDS,
                      torii_abi_1_0_host_api_offsets, torii_abi_1_0_host_api_size)
  SECTION("enumerators keep their numbers") {
    size_t i = 0;
#define TORII_CHECK_ENUM(e)          \
  {                                  \
    INFO(#e);                        \
    CHECK(static_cast<long>(e) == torii_abi_1_0_enum_values[i]); \
    ++i;                             \
  }
    TORII_ABI_1_0_ENUM_VALUES(TORII_CHECK_ENUM)
  }
}

TEST_CASE("the server never writes past a runner's struct_size (small_struct_runner)",
          "[compat]") {
  auto lib = RunnerLibrary::Open(TORII_COMPAT_SMALL_STRUCT);
  INFO(lib.status().ToString());
  REQUIRE(lib.ok());
  const auto spec = Spec("");
  RunnerModel::Options o;
  o.name = "scale";
  o.version = 1;
  o.spec = spec;
  auto model = RunnerModel::Create(*lib, o);  // probes model_input / model_output
  INFO(model.status().ToString());
  REQUIRE(model.ok());
  Request a(*spec, 1, {1, 2}), b(*spec, 2, {3, 4, 5, 6});
  for (Request* r : {&a, &b}) {  // every parameter type, probed by key and by position
    r->request->parameters.Set("b", true);
    r->request->parameters.Set("i", int64_t{-3});
    r->request->parameters.Set("u", uint64_t{7});
    r->request->parameters.Set("d", 0.5);
    r->request->parameters.Set("s", std::string("text"));
  }
  auto a_sink = a.sink, b_sink = b.sink;
  Run(**model, 0, {&a, &b});
  REQUIRE(a_sink->finals() == 1);
  INFO(a_sink->last().status.ToString());
  CHECK(a.Output() == std::vector<float>{1, 2});
  CHECK(b.Output() == std::vector<float>{3, 4, 5, 6});
}

TEST_CASE("the ABI 1.1 layout is an unchanged prefix of today's", "[compat]") {
  // 1.1 appended batch_is_cancelled to ToriiHostApi; the other structs are
  // 1.0's, whose members the test above checks.
  size_t i = 0;
#define TORII_CHECK_1_1_HOST(f)                                            \
  {                                                                        \
    INFO("ToriiHostApi." #f);                                              \
    CHECK(offsetof(ToriiHostApi, f) == torii_abi_1_1_host_api_offsets[i]); \
    ++i;                                                                   \
  }
  TORII_ABI_1_1_HOST_API_FIELDS(TORII_CHECK_1_1_HOST)
#undef TORII_CHECK_1_1_HOST
  CHECK(i == 30);  // 29 members in 1.0, one more in 1.1
  CHECK(sizeof(ToriiHostApi) >= torii_abi_1_1_host_api_size);
  CHECK(torii_abi_1_1_host_api_size ==
        offsetof(ToriiHostApi, batch_is_cancelled) + sizeof(void*));
  CHECK(sizeof(ToriiRunnerInfo) >= torii_abi_1_1_runner_info_size);
  CHECK(sizeof(ToriiTensor) >= torii_abi_1_1_tensor_size);
  CHECK(sizeof(ToriiParameter) >= torii_abi_1_1_parameter_size);
}

TEST_CASE("the ABI 1.2 layout is an unchanged prefix of today's", "[compat]") {
  // 1.3 appended the metric functions after model_report_property.
  size_t i = 0;
#define TORII_CHECK_1_2_HOST(f)                                            \
  {                                                                        \
    INFO("ToriiHostApi." #f);                                              \
    CHECK(offsetof(ToriiHostApi, f) == torii_abi_1_2_host_api_offsets[i]); \
    ++i;                                                                   \
  }
  TORII_ABI_1_2_HOST_API_FIELDS(TORII_CHECK_1_2_HOST)
#undef TORII_CHECK_1_2_HOST
  CHECK(i == 55);  // 30 members in 1.1, 25 more in 1.2
  CHECK(torii_abi_1_2_host_api_size ==
        offsetof(ToriiHostApi, model_report_property) + sizeof(void*));
  CHECK(sizeof(ToriiHostApi) > torii_abi_1_2_host_api_size);
  CHECK(offsetof(ToriiHostApi, metric_family_new) == torii_abi_1_2_host_api_size);
}

}  // namespace
}  // namespace torii
