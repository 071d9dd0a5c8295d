#include "http_payload.h"

#include <cstring>

#include <catch2/catch.hpp>

namespace torii::perf {
namespace {

TensorData Tensor(const std::string& name, const std::string& dt, std::vector<int64_t> shape,
                  std::string raw) {
  return TensorData{{name, dt, std::move(shape)}, std::move(raw)};
}

std::string Floats(std::initializer_list<float> v) {
  std::string raw(v.size() * 4, '\0');
  std::memcpy(raw.data(), v.begin(), raw.size());
  return raw;
}

TEST_CASE("HTTP request: binary tensors after the JSON, as tritonclient sends them",
          "[bench][http]") {
  Sample s{Tensor("INPUT0", "FP32", {1, 2}, Floats({1.5f, -2}))};
  HttpRequestOptions o;
  o.host = "127.0.0.1:8000";
  o.model_name = "my model";
  o.model_version = "3";
  auto r = BuildHttpRequest(s, o);
  REQUIRE(r.ok());
  const std::string json =
      R"({"inputs":[{"name":"INPUT0","datatype":"FP32","shape":[1,2],)"
      R"("parameters":{"binary_data_size":8}}],"parameters":{"binary_data_output":true}})";
  const std::string expected =
      "POST /v2/models/my%20model/versions/3/infer HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n"
      "Content-Type: application/octet-stream\r\nContent-Length: " +
      std::to_string(json.size() + 8) + "\r\nInference-Header-Content-Length: " +
      std::to_string(json.size()) + "\r\n\r\n" + json + Floats({1.5f, -2});
  CHECK(*r == expected);
}

TEST_CASE("HTTP request: JSON data for every datatype with a JSON form", "[bench][http]") {
  std::string i64(16, '\0');
  const int64_t v[2] = {-3, 1LL << 40};
  std::memcpy(i64.data(), v, 16);
  std::string bytes = std::string("\x02\0\0\0hi", 6) + std::string("\x01\0\0\0\"", 5);
  Sample s{Tensor("F", "FP32", {2}, Floats({0.1f, 3})), Tensor("I", "INT64", {2}, i64),
           Tensor("B", "BOOL", {2}, std::string("\x01\x00", 2)),
           Tensor("S", "BYTES", {2}, bytes), Tensor("U", "UINT8", {1}, "\xff")};
  HttpRequestOptions o;
  o.model_name = "m";
  o.binary_inputs = false;
  o.binary_outputs = false;
  o.outputs = {"OUT"};
  auto json = HttpRequestJson(s, o);
  REQUIRE(json.ok());
  CHECK(*json ==
        R"({"inputs":[{"name":"F","datatype":"FP32","shape":[2],"data":[0.1,3]},)"
        R"({"name":"I","datatype":"INT64","shape":[2],"data":[-3,1099511627776]},)"
        R"({"name":"B","datatype":"BOOL","shape":[2],"data":[true,false]},)"
        R"({"name":"S","datatype":"BYTES","shape":[2],"data":["hi","\""]},)"
        R"({"name":"U","datatype":"UINT8","shape":[1],"data":[255]}],)"
        R"("outputs":[{"name":"OUT"}]})");
  auto full = BuildHttpRequest(s, o);
  REQUIRE(full.ok());
  CHECK_THAT(*full, Catch::Contains("Content-Type: application/json\r\n"));
  CHECK_THAT(*full, !Catch::Contains("Inference-Header-Content-Length"));
  // FP16 has no JSON form (as in Triton).
  Sample half{Tensor("H", "FP16", {1}, std::string(2, '\0'))};
  CHECK(HttpRequestJson(half, o).status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("model metadata from the REST answer", "[bench][http]") {
  auto m = MetadataFromJson(
      R"({"name":"identity","versions":["1"],"platform":"identity",)"
      R"("inputs":[{"name":"INPUT0","datatype":"FP32","shape":[-1,-1]}],)"
      R"("outputs":[{"name":"OUTPUT0","datatype":"FP32","shape":[-1,-1]}]})");
  REQUIRE(m.ok());
  CHECK(m->name() == "identity");
  REQUIRE(m->inputs_size() == 1);
  CHECK(m->inputs(0).datatype() == "FP32");
  CHECK(m->inputs(0).shape_size() == 2);
  CHECK(m->outputs(0).name() == "OUTPUT0");
  auto err = MetadataFromJson(R"({"error":"Request for unknown model: 'x' is not found"})");
  CHECK(err.status().code() == absl::StatusCode::kUnavailable);
  CHECK_FALSE(MetadataFromJson("not json").ok());
}

}  // namespace
}  // namespace torii::perf
