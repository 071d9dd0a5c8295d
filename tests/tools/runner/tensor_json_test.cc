// The JSON <-> tensor conversions behind `torii-runner infer`, and the FP16 /
// BF16 conversions they rely on.
#include "server/tools/runner/tensor_json.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>

#include "server/tools/runner/half_float.h"
#include "server/core/datatype.h"

namespace torii {
namespace runner_tool {
namespace {

template <typename T>
std::vector<T> Values(const HostTensor& t) {
  std::vector<T> v(t.data.size() / sizeof(T));
  if (!v.empty()) std::memcpy(v.data(), t.data.data(), t.data.size());
  return v;
}

HostTensor Parse(ToriiDataType dt, const std::string& json,
                 std::optional<std::vector<int64_t>> shape = std::nullopt) {
  auto t = TensorFromJson("X", dt, json, shape);
  INFO(json << " -> " << t.status().ToString());
  REQUIRE(t.ok());
  return *t;
}

std::string Error(ToriiDataType dt, const std::string& json,
                  std::optional<std::vector<int64_t>> shape = std::nullopt) {
  auto t = TensorFromJson("X", dt, json, shape);
  REQUIRE_FALSE(t.ok());
  CHECK(t.status().code() == absl::StatusCode::kInvalidArgument);
  return std::string(t.status().message());
}

TEST_CASE("nesting gives the shape", "[tensor_json]") {
  CHECK(Parse(TORII_TYPE_FP32, "[[1,2,3],[4,5,6]]").shape == std::vector<int64_t>{2, 3});
  CHECK(Parse(TORII_TYPE_FP32, "[1,2]").shape == std::vector<int64_t>{2});
  CHECK(Parse(TORII_TYPE_FP32, "7").shape.empty());
  CHECK(Parse(TORII_TYPE_FP32, "[]").shape == std::vector<int64_t>{0});
  CHECK(Parse(TORII_TYPE_FP32, "[[]]").shape == std::vector<int64_t>{1, 0});
  const HostTensor t = Parse(TORII_TYPE_FP32, "[1,2,3,4,5,6]", std::vector<int64_t>{3, 2});
  CHECK(t.shape == std::vector<int64_t>{3, 2});
  CHECK(Values<float>(t) == std::vector<float>{1, 2, 3, 4, 5, 6});
}

TEST_CASE("ragged or malformed JSON is refused with the reason", "[tensor_json]") {
  CHECK_THAT(Error(TORII_TYPE_FP32, "[[1,2],[3]]"), Catch::Contains("not rectangular"));
  CHECK_THAT(Error(TORII_TYPE_FP32, "[[1,2],3]"), Catch::Contains("not rectangular"));
  CHECK_THAT(Error(TORII_TYPE_FP32, "[1,[2]]"), Catch::Contains("not rectangular"));
  CHECK_THAT(Error(TORII_TYPE_FP32, "[1,"), Catch::Contains("not valid JSON"));
  CHECK_THAT(Error(TORII_TYPE_FP32, "[1,2,3]", std::vector<int64_t>{2, 2}),
             Catch::Contains("needs 4 elements, the JSON has 3"));
  CHECK_THAT(Error(TORII_TYPE_FP32, "[true]"), Catch::Contains("element 0 (FP32): expected a number"));
}

TEST_CASE("integers are checked for range and integrality", "[tensor_json]") {
  CHECK(Values<int8_t>(Parse(TORII_TYPE_INT8, "[-128,127,0]")) == std::vector<int8_t>{-128, 127, 0});
  CHECK(Values<uint8_t>(Parse(TORII_TYPE_UINT8, "[0,255,3.0]")) == std::vector<uint8_t>{0, 255, 3});
  CHECK(Values<int64_t>(Parse(TORII_TYPE_INT64, "[-9223372036854775808,9223372036854775807]")) ==
        std::vector<int64_t>{std::numeric_limits<int64_t>::min(),
                             std::numeric_limits<int64_t>::max()});
  CHECK(Values<uint64_t>(Parse(TORII_TYPE_UINT64, "[18446744073709551615]")) ==
        std::vector<uint64_t>{std::numeric_limits<uint64_t>::max()});
  CHECK_THAT(Error(TORII_TYPE_INT8, "[128]"), Catch::Contains("out of range"));
  CHECK_THAT(Error(TORII_TYPE_UINT8, "[-1]"), Catch::Contains("out of range"));
  CHECK_THAT(Error(TORII_TYPE_UINT32, "[-1]"), Catch::Contains("out of range"));
  CHECK_THAT(Error(TORII_TYPE_INT32, "[1.5]"), Catch::Contains("not an integer"));
  CHECK_THAT(Error(TORII_TYPE_INT32, "[\"1\"]"), Catch::Contains("expected an integer"));
}

TEST_CASE("BOOL, floats and BYTES", "[tensor_json]") {
  CHECK(Parse(TORII_TYPE_BOOL, "[true,false,1,0]").data == std::string("\1\0\1\0", 4));
  CHECK_THAT(Error(TORII_TYPE_BOOL, "[2]"), Catch::Contains("expected true/false"));
  const auto d = Values<double>(Parse(TORII_TYPE_FP64, R"([0.1,"nan","inf","-inf"])"));
  CHECK(d[0] == 0.1);
  CHECK(std::isnan(d[1]));
  CHECK(d[2] == std::numeric_limits<double>::infinity());
  CHECK(d[3] == -std::numeric_limits<double>::infinity());
  const HostTensor b = Parse(TORII_TYPE_BYTES, R"(["ab", "", {"b64": "AP8="}])");
  CHECK(b.shape == std::vector<int64_t>{3});
  CHECK(b.data == std::string("\2\0\0\0ab\0\0\0\0\2\0\0\0\0\xff", 16));
  CHECK_THAT(Error(TORII_TYPE_BYTES, "[1]"), Catch::Contains("expected a string"));
  CHECK_THAT(Error(TORII_TYPE_BYTES, R"([{"b64": "***"}])"), Catch::Contains("invalid base64"));
}

TEST_CASE("outputs print in the v2 JSON form", "[tensor_json]") {
  HostTensor f{"OUT", TORII_TYPE_FP32, {2, 2}, {}};
  const float v[] = {1.5f, std::numeric_limits<float>::quiet_NaN(),
                     -std::numeric_limits<float>::infinity(), 0};
  f.data.assign(reinterpret_cast<const char*>(v), sizeof v);
  const auto flat = TensorToJson(f);
  CHECK(flat["name"] == "OUT");
  CHECK(flat["datatype"] == "FP32");
  CHECK(flat["shape"] == nlohmann::ordered_json::array({2, 2}));
  CHECK(flat["data"] == nlohmann::ordered_json::parse(R"([1.5,"nan","-inf",0.0])"));
  CHECK(TensorToJson(f, true)["data"] == nlohmann::ordered_json::parse(R"([[1.5,"nan"],["-inf",0.0]])"));

  HostTensor s{"S", TORII_TYPE_BYTES, {3}, {}};
  AppendBytesElement(s.data, "h\xc3\xa9llo");     // UTF-8
  AppendBytesElement(s.data, std::string("\xff\x00", 2));  // not UTF-8
  AppendBytesElement(s.data, "\xed\xa0\x80");     // a surrogate: not UTF-8
  CHECK(TensorToJson(s)["data"] ==
        nlohmann::ordered_json::parse(R"(["h\u00e9llo", {"b64": "/wA="}, {"b64": "7aCA"}])"));

  HostTensor h{"H", TORII_TYPE_FP16, {2}, {}};
  const uint16_t hv[] = {FloatToHalf(0.5f), FloatToHalf(-2.0f)};
  h.data.assign(reinterpret_cast<const char*>(hv), sizeof hv);
  CHECK(TensorToJson(h)["data"] == nlohmann::ordered_json::array({0.5, -2.0}));
}

TEST_CASE("FP16 and BF16 round-trip and round to nearest even", "[half_float]") {
  for (float f : {0.0f, -0.0f, 1.0f, -1.5f, 0.125f, 65504.0f, 6.103515625e-05f,
                  5.9604644775390625e-08f /* smallest subnormal */}) {
    CHECK(HalfToFloat(FloatToHalf(f)) == f);
    CHECK(std::signbit(HalfToFloat(FloatToHalf(f))) == std::signbit(f));
  }
  CHECK(FloatToHalf(1.0f) == 0x3c00);
  CHECK(FloatToHalf(65520.0f) == 0x7c00);  // rounds up to infinity
  CHECK(FloatToHalf(1.0f + 1.0f / 2048) == 0x3c00);  // tie: to even
  CHECK(FloatToHalf(1.0f + 3.0f / 2048) == 0x3c02);  // tie: to even
  CHECK(std::isnan(HalfToFloat(FloatToHalf(std::numeric_limits<float>::quiet_NaN()))));
  CHECK(std::isinf(HalfToFloat(FloatToHalf(std::numeric_limits<float>::infinity()))));
  for (float f : {0.0f, 1.0f, -2.5f, 3.140625f, 1e30f}) {
    CHECK(Bf16ToFloat(FloatToBf16(f)) == Approx(f).epsilon(1.0 / 128));
  }
  CHECK(FloatToBf16(1.0f) == 0x3f80);
  CHECK(std::isnan(Bf16ToFloat(FloatToBf16(std::numeric_limits<float>::quiet_NaN()))));
}

TEST_CASE("shapes parse from 1,4 or [1,4]", "[tensor_json]") {
  CHECK(*ParseShape("1,4") == std::vector<int64_t>{1, 4});
  CHECK(*ParseShape("[2, 3]") == std::vector<int64_t>{2, 3});
  CHECK(ParseShape("")->empty());
  CHECK_FALSE(ParseShape("1,-1").ok());
  CHECK_FALSE(ParseShape("a").ok());
}

}  // namespace
}  // namespace runner_tool
}  // namespace torii
