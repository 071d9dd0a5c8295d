#include "payload.h"

#include <cstring>

#include <catch2/catch.hpp>

namespace torii::perf {
namespace {

float FloatAt(const std::string& raw, size_t i) {
  float v;
  std::memcpy(&v, raw.data() + i * 4, 4);
  return v;
}

TEST_CASE("input specs parse NAME:DATATYPE:SHAPE", "[bench][payload]") {
  auto spec = ParseInputSpec("INPUT0:FP32:1,256");
  REQUIRE(spec.ok());
  CHECK(spec->name == "INPUT0");
  CHECK(spec->datatype == "FP32");
  CHECK(spec->shape == std::vector<int64_t>{1, 256});
  auto scalar = ParseInputSpec("S:INT64:");
  REQUIRE(scalar.ok());
  CHECK(scalar->shape.empty());
  for (const char* bad : {"INPUT0:FP32", "INPUT0:FLOAT:1", ":FP32:1",
                          "INPUT0:FP32:1,-1", "INPUT0:FP32:1,x"}) {
    INFO(bad);
    CHECK_FALSE(ParseInputSpec(bad).ok());
  }
  auto shape = ParseShapeFlag("INPUT__0:2,256");
  REQUIRE(shape.ok());
  CHECK(shape->first == "INPUT__0");
  CHECK(shape->second == std::vector<int64_t>{2, 256});
  CHECK_FALSE(ParseShapeFlag("2,256").ok());
  CHECK(*ParseDims("-1,4", /*allow_wildcard=*/true) ==
        std::vector<int64_t>{-1, 4});
}

TEST_CASE("synthetic data has the declared size", "[bench][payload]") {
  std::vector<InputSpec> specs{{"A", "FP32", {1, 256}},
                               {"B", "INT8", {3}},
                               {"C", "BYTES", {2}},
                               {"D", "FP16", {4}}};
  auto sample = MakeSyntheticSample(specs, DataMode::kRandom, 7, 5);
  REQUIRE(sample.ok());
  REQUIRE(sample->size() == 4);
  CHECK((*sample)[0].raw.size() == 1024);
  for (size_t i = 0; i < 256; ++i) {
    float v = FloatAt((*sample)[0].raw, i);
    CHECK((v >= -1.0f && v < 1.0f));
  }
  CHECK((*sample)[1].raw.size() == 3);
  CHECK((*sample)[2].raw.size() == 2 * (4 + 5));  // length-prefixed
  CHECK((*sample)[3].raw.size() == 8);
  CHECK(PayloadBytes(*sample) == 1024 + 3 + 18 + 8);
  auto zero = MakeSyntheticSample({{"A", "FP32", {4}}}, DataMode::kZero, 1);
  REQUIRE(zero.ok());
  CHECK((*zero)[0].raw == std::string(16, '\0'));
}

TEST_CASE("input data JSON: flat, nested, shaped and b64", "[bench][payload]") {
  std::vector<InputSpec> specs{{"INPUT0", "FP32", {1, 4}}};
  auto samples = ParseInputDataJson(R"({"data": [
      {"INPUT0": [1, 2, 3, 4]},
      {"INPUT0": {"content": [[5, 6], [7, 8]], "shape": [2, 2]}},
      {"INPUT0": {"b64": "AACAPwAAAEAAAEBAAACAQA=="}}
    ]})", specs);
  REQUIRE(samples.ok());
  REQUIRE(samples->size() == 3);
  CHECK((*samples)[0][0].spec.shape == std::vector<int64_t>{1, 4});
  CHECK(FloatAt((*samples)[0][0].raw, 3) == 4.0f);
  CHECK((*samples)[1][0].spec.shape == std::vector<int64_t>{2, 2});
  CHECK(FloatAt((*samples)[1][0].raw, 0) == 5.0f);
  CHECK(FloatAt((*samples)[2][0].raw, 1) == 2.0f);  // 1,2,3,4 in base64
}

TEST_CASE("input data JSON without --input names its datatype",
          "[bench][payload]") {
  auto samples = ParseInputDataJson(
      R"({"data": [{"TEXT": {"content": ["ab", "c"], "datatype": "BYTES"},
                    "FLAG": {"content": [true, false], "datatype": "BOOL"}}]})",
      {});
  REQUIRE(samples.ok());
  const Sample& s = (*samples)[0];
  REQUIRE(s.size() == 2);
  CHECK(s[0].spec.name == "FLAG");  // extra inputs in name order
  CHECK(s[0].raw == std::string("\x01\x00", 2));
  CHECK(s[1].spec.shape == std::vector<int64_t>{2});
  CHECK(s[1].raw == std::string("\x02\0\0\0ab\x01\0\0\0c", 11));
}

TEST_CASE("input data JSON errors say what is wrong", "[bench][payload]") {
  std::vector<InputSpec> specs{{"INPUT0", "FP32", {1, 4}}};
  CHECK_FALSE(ParseInputDataJson("not json", specs).ok());
  CHECK_FALSE(ParseInputDataJson(R"({"data": []})", specs).ok());
  CHECK_FALSE(ParseInputDataJson(R"({"data": [{"OTHER": [1]}]})", specs).ok());
  auto short_data = ParseInputDataJson(R"({"data": [{"INPUT0": [1, 2]}]})", specs);
  REQUIRE_FALSE(short_data.ok());
  CHECK_THAT(std::string(short_data.status().message()),
             Catch::Contains("do not fit shape"));
  CHECK_FALSE(ParseInputDataJson(R"({"data": [{"X": [1]}]})", {}).ok());
}

TEST_CASE("requests carry raw or typed contents", "[bench][payload]") {
  auto sample = MakeSyntheticSample(
      {{"INPUT0", "FP32", {1, 8}}, {"INPUT1", "INT16", {2}}},
      DataMode::kRandom, 3);
  REQUIRE(sample.ok());
  RequestOptions options{"identity", "1", false, {"OUTPUT0"}};
  auto raw = BuildRequest(*sample, options);
  REQUIRE(raw.ok());
  CHECK(raw->model_name() == "identity");
  CHECK(raw->model_version() == "1");
  REQUIRE(raw->inputs_size() == 2);
  CHECK(raw->inputs(0).shape_size() == 2);
  REQUIRE(raw->raw_input_contents_size() == 2);
  CHECK(raw->raw_input_contents(0) == (*sample)[0].raw);
  CHECK(raw->outputs(0).name() == "OUTPUT0");

  options.typed = true;
  auto typed = BuildRequest(*sample, options);
  REQUIRE(typed.ok());
  CHECK(typed->raw_input_contents_size() == 0);
  REQUIRE(typed->inputs(0).contents().fp32_contents_size() == 8);
  CHECK(typed->inputs(0).contents().fp32_contents(5) ==
        FloatAt((*sample)[0].raw, 5));
  CHECK(typed->inputs(1).contents().int_contents_size() == 2);

  auto half = MakeSyntheticSample({{"H", "FP16", {2}}}, DataMode::kZero, 1);
  CHECK_FALSE(BuildRequest(*half, options).ok());  // FP16 only travels raw
}

}  // namespace
}  // namespace torii::perf
