// Generated inputs: the declared signature, concrete sizes for -1, values the
// server's own validation accepts, deterministic per seed.
#include "server/tools/runner/input_generator.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>

#include "server/core/request_validator.h"
#include "server/repository/model_config_parser.h"
#include "server/repository/model_spec_builder.h"

namespace torii {
namespace runner_tool {
namespace {

ModelSpec Spec(const std::string& text) {
  auto parsed = ParseModelConfig(text, "config.pbtxt", "m");
  INFO(parsed.status().ToString());
  REQUIRE(parsed.ok());
  RunnerManifest runner;
  runner.runner = "x";
  auto spec = BuildModelSpec(parsed->config, runner, SpecDefaults{});
  INFO(spec.status().ToString());
  REQUIRE(spec.ok());
  return std::move(*spec);
}

constexpr char kAllTypes[] = R"(
name: "m" backend: "x" max_batch_size: 8
input [
  { name: "B" data_type: TYPE_BOOL dims: [ 2 ] },
  { name: "U8" data_type: TYPE_UINT8 dims: [ -1 ] },
  { name: "I16" data_type: TYPE_INT16 dims: [ 2, -1 ] },
  { name: "I64" data_type: TYPE_INT64 dims: [ 3 ] },
  { name: "H" data_type: TYPE_FP16 dims: [ -1 ] },
  { name: "BF" data_type: TYPE_BF16 dims: [ -1 ] },
  { name: "F" data_type: TYPE_FP32 dims: [ -1 ] },
  { name: "D" data_type: TYPE_FP64 dims: [ -1 ] },
  { name: "S" data_type: TYPE_STRING dims: [ -1 ] }
]
output [ { name: "O" data_type: TYPE_FP32 dims: [ -1 ] } ]
)";

TEST_CASE("generated requests pass the server's validation", "[input_generator]") {
  const ModelSpec spec = Spec(kAllTypes);
  InputGenerator gen(spec, {{"U8", {5}}});
  CHECK(gen.HasVariableDims());
  for (Values values : {Values::kOrdinary, Values::kZeros, Values::kExtreme}) {
    for (int64_t rows : {1, 8}) {
      for (int64_t variable : {0, 1, 3}) {
        const TestRequest req = gen.Request(rows, variable, 42, values);
        InferenceRequest out;
        out.model_name = "m";
        for (const auto& t : req.inputs) {
          InferenceInput in;
          in.name = t.name;
          in.datatype = t.datatype;
          in.shape.assign(t.shape.begin(), t.shape.end());
          in.data = t.data.data();
          in.byte_size = t.data.size();
          out.inputs.push_back(std::move(in));
        }
        const absl::Status s = ValidateRequest(spec, ValidationLimits{}, &out);
        INFO("rows " << rows << " variable " << variable << ": " << s.ToString());
        CHECK(s.ok());
        CHECK(out.rows == rows);
        CHECK(out.inputs[1].shape == Shape{rows, 5});  // --dims wins
        CHECK(out.inputs[2].shape == Shape{rows, 2, variable});
      }
    }
  }
}

TEST_CASE("values are deterministic per seed and follow the kind", "[input_generator]") {
  const ModelSpec spec = Spec(kAllTypes);
  InputGenerator gen(spec, {});
  const TestRequest a = gen.Request(2, 4, 7), b = gen.Request(2, 4, 7), c = gen.Request(2, 4, 8);
  for (size_t i = 0; i < a.inputs.size(); ++i) CHECK(a.inputs[i].data == b.inputs[i].data);
  bool differs = false;
  for (size_t i = 0; i < a.inputs.size(); ++i) differs = differs || a.inputs[i].data != c.inputs[i].data;
  CHECK(differs);

  const HostTensor f = InputGenerator::Tensor("F", TORII_TYPE_FP32, {64}, 1);
  for (size_t i = 0; i < 64; ++i) {
    float v;
    std::memcpy(&v, f.data.data() + 4 * i, 4);
    CHECK(v >= -1.0f);
    CHECK(v <= 1.0f);
    CHECK(v * 8 == std::floor(v * 8));
  }
  const HostTensor z = InputGenerator::Tensor("F", TORII_TYPE_FP32, {4}, 1, Values::kZeros);
  CHECK(z.data == std::string(16, '\0'));
  const HostTensor e = InputGenerator::Tensor("F", TORII_TYPE_FP32, {7}, 1, Values::kExtreme);
  float first;
  std::memcpy(&first, e.data.data(), 4);
  CHECK(std::isnan(first));
  const HostTensor s = InputGenerator::Tensor("S", TORII_TYPE_BYTES, {4}, 1, Values::kExtreme);
  const auto strings = DecodeBytesElements(s.data);
  REQUIRE(strings.ok());
  REQUIRE(strings->size() == 4);
  CHECK((*strings)[0].empty());
  CHECK((*strings)[2].size() == 4096);
}

TEST_CASE("a non-batching model gets no batch dimension", "[input_generator]") {
  const ModelSpec spec = Spec(R"(
    name: "m" backend: "x"
    input [ { name: "X" data_type: TYPE_INT32 dims: [ 4 ] } ]
    output [ { name: "Y" data_type: TYPE_INT32 dims: [ 4 ] } ])");
  InputGenerator gen(spec, {});
  CHECK_FALSE(gen.HasVariableDims());
  const TestRequest r = gen.Request(5, 3, 1);
  REQUIRE(r.inputs.size() == 1);
  CHECK(r.inputs[0].shape == std::vector<int64_t>{4});
  CHECK(r.inputs[0].data.size() == 16);
}

}  // namespace
}  // namespace runner_tool
}  // namespace torii
