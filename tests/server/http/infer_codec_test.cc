#include "server/http/infer_codec.h"

#include <cstring>
#include <limits>

#include <catch2/catch.hpp>

namespace torii {
namespace http {
namespace {

struct Parsed {
  absl::Status status;
  InferRequestBuffers buffers;
  InferenceRequest request;
  OutputFormat format;
};

// Parses `body` as the codec would: the JSON is the first `json_length`
// bytes (all of it when 0).
std::unique_ptr<Parsed> Parse(std::string body, size_t json_length = 0,
                              size_t max_input_bytes = 1 << 20) {
  auto p = std::make_unique<Parsed>();
  const size_t n = json_length == 0 ? body.size() : json_length;
  p->buffers.body = std::move(body);
  p->status = ParseInferRequest(n, max_input_bytes, /*shared_memory=*/nullptr, &p->buffers,
                                &p->request, &p->format);
  return p;
}

std::string OneInput(const std::string& datatype, const std::string& shape, const std::string& data) {
  return R"({"inputs":[{"name":"X","datatype":")" + datatype + R"(","shape":)" + shape +
         R"(,"data":)" + data + "}]}";
}

template <typename T>
std::vector<T> Values(const InferenceInput& in) {
  std::vector<T> v(in.byte_size / sizeof(T));
  std::memcpy(v.data(), in.data, in.byte_size);
  return v;
}

std::string Raw(const InferenceInput& in) { return std::string(in.data, in.byte_size); }

TEST_CASE("JSON request: inputs, id, parameters and outputs", "[http][codec]") {
  auto p = Parse(R"({"id":"req-7","parameters":{"timeout":500,"tag":"a","big":18446744073709551615,
      "ratio":0.5,"flag":true,"binary_data_output":true},
    "inputs":[{"name":"INPUT0","shape":[1,4],"datatype":"FP32","data":[1,2.5,-3,4e2]}],
    "outputs":[{"name":"OUTPUT0","parameters":{"binary_data":false,"top":3}},{"name":"OUTPUT1"}]})");
  REQUIRE(p->status.ok());
  const InferenceRequest& r = p->request;
  CHECK(r.id == "req-7");
  REQUIRE(r.inputs.size() == 1);
  CHECK(r.inputs[0].name == "INPUT0");
  CHECK(r.inputs[0].datatype == TORII_TYPE_FP32);
  CHECK(r.inputs[0].shape == Shape{1, 4});
  CHECK(Values<float>(r.inputs[0]) == std::vector<float>{1, 2.5f, -3, 400});
  // Request parameters keep their JSON types; binary_data_output is the frontend's.
  CHECK(r.parameters.Find("timeout")->as_int64() == 500);
  CHECK(r.parameters.Find("tag")->as_string() == "a");
  CHECK(r.parameters.Find("big")->as_uint64() == std::numeric_limits<uint64_t>::max());
  CHECK(r.parameters.Find("ratio")->as_double() == 0.5);
  CHECK(r.parameters.Find("flag")->as_bool());
  CHECK(r.parameters.Find("binary_data_output") == nullptr);
  CHECK(p->format.binary_by_default);
  REQUIRE(r.requested_outputs.size() == 2);
  CHECK(r.requested_outputs[0].name == "OUTPUT0");
  CHECK(r.requested_outputs[0].parameters.Find("top")->as_int64() == 3);
  CHECK(r.requested_outputs[0].parameters.Find("binary_data") == nullptr);
  CHECK_FALSE(p->format.Binary("OUTPUT0"));  // explicit false beats the default
  CHECK(p->format.Binary("OUTPUT1"));
}

TEST_CASE("JSON data may be nested like the shape or flat", "[http][codec]") {
  auto nested = Parse(OneInput("INT32", "[2,3]", "[[1,2,3],[4,5,6]]"));
  auto flat = Parse(OneInput("INT32", "[2,3]", "[1,2,3,4,5,6]"));
  REQUIRE(nested->status.ok());
  REQUIRE(flat->status.ok());
  CHECK(Values<int32_t>(nested->request.inputs[0]) == std::vector<int32_t>{1, 2, 3, 4, 5, 6});
  CHECK(Raw(nested->request.inputs[0]) == Raw(flat->request.inputs[0]));
}

TEST_CASE("every datatype converts from JSON to raw little-endian bytes", "[http][codec]") {
  SECTION("BOOL") {
    auto p = Parse(OneInput("BOOL", "[3]", "[true,false,true]"));
    REQUIRE(p->status.ok());
    CHECK(Raw(p->request.inputs[0]) == std::string("\x01\x00\x01", 3));
  }
  SECTION("unsigned") {
    auto p8 = Parse(OneInput("UINT8", "[2]", "[0,255]"));
    auto p16 = Parse(OneInput("UINT16", "[2]", "[0,65535]"));
    auto p32 = Parse(OneInput("UINT32", "[1]", "[4294967295]"));
    auto p64 = Parse(OneInput("UINT64", "[1]", "[18446744073709551615]"));
    REQUIRE((p8->status.ok() && p16->status.ok() && p32->status.ok() && p64->status.ok()));
    CHECK(Values<uint8_t>(p8->request.inputs[0]) == std::vector<uint8_t>{0, 255});
    CHECK(Values<uint16_t>(p16->request.inputs[0]) == std::vector<uint16_t>{0, 65535});
    CHECK(Values<uint32_t>(p32->request.inputs[0]) == std::vector<uint32_t>{4294967295u});
    CHECK(Values<uint64_t>(p64->request.inputs[0]) ==
          std::vector<uint64_t>{std::numeric_limits<uint64_t>::max()});
  }
  SECTION("signed") {
    auto p8 = Parse(OneInput("INT8", "[2]", "[-128,127]"));
    auto p16 = Parse(OneInput("INT16", "[2]", "[-32768,32767]"));
    auto p32 = Parse(OneInput("INT32", "[1]", "[-2147483648]"));
    auto p64 = Parse(OneInput("INT64", "[2]", "[-9223372036854775808,9223372036854775807]"));
    REQUIRE((p8->status.ok() && p16->status.ok() && p32->status.ok() && p64->status.ok()));
    CHECK(Values<int8_t>(p8->request.inputs[0]) == std::vector<int8_t>{-128, 127});
    CHECK(Values<int16_t>(p16->request.inputs[0]) == std::vector<int16_t>{-32768, 32767});
    CHECK(Values<int32_t>(p32->request.inputs[0]) ==
          std::vector<int32_t>{std::numeric_limits<int32_t>::min()});
    CHECK(Values<int64_t>(p64->request.inputs[0]) ==
          std::vector<int64_t>{std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()});
  }
  SECTION("floating point, half precision rounded to nearest even") {
    auto p32 = Parse(OneInput("FP32", "[2]", "[0.1,-1e30]"));
    auto p64 = Parse(OneInput("FP64", "[2]", "[0.1,1e300]"));
    auto p16 = Parse(OneInput("FP16", "[5]", "[1.5,-2,65504,0.1,6e-8]"));
    auto pb = Parse(OneInput("BF16", "[2]", "[1.5,-3.0e38]"));
    REQUIRE((p32->status.ok() && p64->status.ok() && p16->status.ok() && pb->status.ok()));
    CHECK(Values<float>(p32->request.inputs[0]) == std::vector<float>{0.1f, -1e30f});
    CHECK(Values<double>(p64->request.inputs[0]) == std::vector<double>{0.1, 1e300});
    // 1.5 = 0x3e00, -2 = 0xc000, 65504 = 0x7bff, 0.1 -> 0x2e66, 6e-8 -> smallest subnormal 0x0001.
    CHECK(Values<uint16_t>(p16->request.inputs[0]) ==
          std::vector<uint16_t>{0x3e00, 0xc000, 0x7bff, 0x2e66, 0x0001});
    CHECK(Values<uint16_t>(pb->request.inputs[0])[0] == 0x3fc0);
  }
  SECTION("BYTES: strings, unescaped, length-prefixed") {
    auto p = Parse(OneInput("BYTES", "[1,3]", R"(["hi","","a\"b\u00e9"])"));
    REQUIRE(p->status.ok());
    CHECK(Raw(p->request.inputs[0]) == std::string("\x02\0\0\0hi\0\0\0\0\x05\0\0\0a\"b\xc3\xa9", 19));
  }
}

TEST_CASE("bad JSON data gets a 400 message naming the input", "[http][codec]") {
  struct Case {
    std::string datatype, shape, data, expect;
  };
  const std::vector<Case> cases = {
      {"UINT8", "[2]", "[1,256]", "input 'X': element 1 of 'data' (256) is out of range for UINT8"},
      {"UINT16", "[1]", "[-1]", "element 0 of 'data' (-1) is out of range for UINT16"},
      {"INT8", "[1]", "[-129]", "(-129) is out of range for INT8"},
      {"INT64", "[1]", "[9223372036854775808]", "is out of range for INT64"},
      {"FP32", "[1]", "[1e39]", "(1e39) is out of range for FP32"},
      {"FP16", "[1]", "[70000]", "(70000) is out of range for FP16"},
      {"INT32", "[1]", "[1.5]", "element 0 of 'data' must be an integer for INT32, got 1.5"},
      {"BOOL", "[1]", "[1]", "must be true or false for BOOL, got 1"},
      {"BYTES", "[1]", "[5]", "must be a string for BYTES, got 5"},
      {"FP32", "[1]", R"(["x"])", "must be a number for FP32, got \"x\""},
      {"FP32", "[2,3]", "[1,2,3,4,5]", "input 'X': its shape has 6 elements but 'data' holds 5"},
      {"FP32", "[2]", "[1,2,3]", "its shape has 2 elements but 'data' holds more than 2"},
      {"FP32", "[1]", "3", "'data' must be a JSON array, got a number"},
  };
  for (const Case& c : cases) {
    INFO(c.datatype << " " << c.data);
    auto p = Parse(OneInput(c.datatype, c.shape, c.data));
    CHECK(p->status.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(p->status.message()), Catch::Contains(c.expect));
  }
}

TEST_CASE("malformed requests are refused with what was expected", "[http][codec]") {
  struct Case {
    std::string body, expect;
  };
  const std::vector<Case> cases = {
      {R"({"inputs":[)", "not valid JSON"},
      {R"([1,2])", "must be a JSON object"},
      {R"({"id":5,"inputs":[]})", "'id' must be a string, got 5"},
      {R"({"outputs":[]})", "the request has no 'inputs'"},
      {R"({"inputs":{}})", "'inputs' must be an array"},
      {R"({"inputs":[{"datatype":"FP32","shape":[1],"data":[1]}]})", "inputs[0] has no 'name'"},
      {R"({"inputs":[{"name":"A","shape":[1],"data":[1]}]})", "input 'A' has no 'datatype'"},
      {R"({"inputs":[{"name":"A","datatype":"FP8","shape":[1],"data":[1]}]})", "unknown datatype 'FP8'"},
      {R"({"inputs":[{"name":"A","datatype":"FP32","data":[1]}]})", "input 'A' has no 'shape'"},
      {R"({"inputs":[{"name":"A","datatype":"FP32","shape":[-1],"data":[1]}]})", "shape dimension -1 is negative"},
      {R"({"inputs":[{"name":"A","datatype":"FP32","shape":[1]}]})",
       "must have exactly one of 'data', a 'binary_data_size' parameter or a "
       "'shared_memory_region' parameter; it has none"},
      {R"({"inputs":[{"name":"A","datatype":"FP32","shape":[1],"data":[1],"parameters":{"binary_data_size":4}}]})",
       "it has 'data' and 'binary_data_size'"},
      {R"({"inputs":[{"name":"A","datatype":"FP32","shape":[1],"parameters":{"shared_memory_region":"r"}}]})",
       "'shared_memory_region' is set without 'shared_memory_byte_size'"},
      {R"({"inputs":[],"outputs":[{"name":"O","parameters":{"shared_memory_region":"r",)"
       R"("shared_memory_byte_size":4,"binary_data":true}}]})",
       "sets both 'shared_memory_region' and 'binary_data'"},
      {R"({"inputs":[{"name":"A","datatype":"FP32","shape":[1],"parameters":{"binary_data_size":4}}]})",
       "the request has no binary part"},
      {R"({"inputs":[],"parameters":{"binary_data_output":1}})", "'binary_data_output' must be true or false"},
      {R"({"inputs":[],"parameters":{"x":[1]}})", "parameter 'x' must be a boolean, a number or a string"},
      {R"({"inputs":[],"outputs":[{"parameters":{}}]})", "outputs[0] has no 'name'"},
      {R"({"inputs":[]} {})", "JSON"},
  };
  for (const Case& c : cases) {
    INFO(c.body);
    auto p = Parse(c.body);
    CHECK(p->status.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(p->status.message()), Catch::Contains(c.expect));
  }
  auto cls = Parse(R"({"inputs":[],"outputs":[{"name":"O","parameters":{"classification":2}}]})");
  CHECK(cls->status.code() == absl::StatusCode::kUnimplemented);
  // Shared memory needs a registry (the server always passes one).
  auto shm = Parse(R"({"inputs":[{"name":"A","datatype":"FP32","shape":[1],)"
                   R"("parameters":{"shared_memory_region":"r","shared_memory_byte_size":4}}]})");
  CHECK(shm->status.code() == absl::StatusCode::kUnimplemented);
}

TEST_CASE("declared sizes are checked against the limit before allocating", "[http][codec]") {
  auto p = Parse(OneInput("FP64", "[1000000,1000000,1000000]", "[1]"), 0, 1 << 20);
  CHECK(p->status.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(p->status.message()),
             Catch::Contains("declares more tensor data than the limit of 1048576 bytes"));
  auto overflow = Parse(OneInput("FP32", "[4611686018427387904,8]", "[1]"));
  CHECK(overflow->status.code() == absl::StatusCode::kInvalidArgument);
}

// A body in Triton's binary tensor format: JSON header, then the tensors.
std::pair<std::string, size_t> BinaryBody(const std::string& json, const std::string& tail) {
  return {json + tail, json.size()};
}

TEST_CASE("binary tensor extension: inputs are views into the body", "[http][codec]") {
  const std::string a("\x01\x00\x00\x00\x02\x00\x00\x00", 8);
  const std::string b("\x01\x00\x01", 3);
  auto [body, n] = BinaryBody(
      R"({"inputs":[{"name":"A","shape":[2],"datatype":"INT32","parameters":{"binary_data_size":8}},)"
      R"({"name":"J","shape":[1],"datatype":"FP64","data":[2.5]},)"
      R"({"name":"B","shape":[3],"datatype":"BOOL","parameters":{"binary_data_size":3}}]})",
      a + b);
  auto p = Parse(body, n);
  REQUIRE(p->status.ok());
  const auto& in = p->request.inputs;
  REQUIRE(in.size() == 3);
  // No copy: the binary inputs point into the body buffer, in input order.
  CHECK(in[0].data == p->buffers.body.data() + n);
  CHECK(in[0].byte_size == 8);
  CHECK(in[2].data == p->buffers.body.data() + n + 8);
  CHECK(Raw(in[2]) == b);
  CHECK(Values<double>(in[1]) == std::vector<double>{2.5});
}

TEST_CASE("binary sizes that do not add up are refused", "[http][codec]") {
  const std::string json =
      R"({"inputs":[{"name":"A","shape":[2],"datatype":"INT32","parameters":{"binary_data_size":8}}]})";
  auto short_body = Parse(json + std::string(5, 'x'), json.size());
  CHECK_THAT(std::string(short_body->status.message()),
             Catch::Contains("input 'A' has binary_data_size 8 but only 5 bytes of binary data remain"));
  auto long_body = Parse(json + std::string(12, 'x'), json.size());
  CHECK_THAT(std::string(long_body->status.message()),
             Catch::Contains("the body has 12 bytes after the JSON header but the inputs' "
                             "binary_data_size add up to 8"));
  // A header length that cuts the JSON short, or runs into the binary part.
  auto cut = Parse(json + std::string(8, 'x'), json.size() - 3);
  CHECK(cut->status.code() == absl::StatusCode::kInvalidArgument);
  auto over = Parse(json + std::string(8, 'x'), json.size() + 2);
  CHECK(over->status.code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("Inference-Header-Content-Length must be a byte count within the body", "[http][codec]") {
  CHECK_FALSE(ParseInferHeaderLength(nullptr, 10)->has_value());
  const std::string ok = "7", bad = "abc", big = "11", neg = "-1", zero = "0";
  CHECK(**ParseInferHeaderLength(&ok, 10) == 7);
  for (const std::string* v : {&bad, &big, &neg}) {
    auto r = ParseInferHeaderLength(v, 10);
    CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(r.status().message()), Catch::Contains("between 0 and the body size 10"));
  }
  // 0 is Triton's raw binary request (ParseRawInferRequest).
  CHECK(**ParseInferHeaderLength(&zero, 10) == 0);
}

ModelMetadata OneInputModel(ToriiDataType datatype, std::vector<int64_t> shape,
                            int64_t max_batch_size) {
  ModelMetadata m;
  m.name = "m";
  m.max_batch_size = max_batch_size;
  m.inputs.push_back({"IN", datatype, std::move(shape)});
  m.outputs.push_back({"OUT", datatype, {-1}});
  return m;
}

std::unique_ptr<Parsed> ParseRaw(const ModelMetadata& m, std::string body) {
  auto p = std::make_unique<Parsed>();
  p->buffers.body = std::move(body);
  p->status = ParseRawInferRequest(m, &p->buffers, &p->request, &p->format);
  return p;
}

TEST_CASE("raw binary request: the body is the one input, its shape deduced as Triton does",
          "[http][codec]") {
  const std::string four_floats(16, '\x01');
  // A batching model with one variable dimension: [1, bytes / 4].
  auto batched = ParseRaw(OneInputModel(TORII_TYPE_FP32, {-1, -1}, 8), four_floats);
  REQUIRE(batched->status.ok());
  REQUIRE(batched->request.inputs.size() == 1);
  const InferenceInput& in = batched->request.inputs[0];
  CHECK(in.name == "IN");
  CHECK(in.datatype == TORII_TYPE_FP32);
  CHECK(in.shape == Shape{1, 4});
  // A view into the body, not a copy; outputs come back binary.
  CHECK(in.data == batched->buffers.body.data());
  CHECK(in.byte_size == 16);
  CHECK(batched->format.Binary("OUT"));

  // Fixed dimensions stay as declared; a model that does not batch gets no 1.
  auto fixed = ParseRaw(OneInputModel(TORII_TYPE_INT32, {2, 2}, 0), four_floats);
  REQUIRE(fixed->status.ok());
  CHECK(fixed->request.inputs[0].shape == Shape{2, 2});
  auto rows = ParseRaw(OneInputModel(TORII_TYPE_INT16, {-1, 2}, 0), four_floats);
  REQUIRE(rows->status.ok());
  CHECK(rows->request.inputs[0].shape == Shape{4, 2});

  // BYTES: the body is one element, sent length-prefixed.
  auto text = ParseRaw(OneInputModel(TORII_TYPE_BYTES, {-1, 1}, 4), "hello");
  REQUIRE(text->status.ok());
  CHECK(text->request.inputs[0].shape == Shape{1, 1});
  CHECK(Raw(text->request.inputs[0]) == std::string("\x05\0\0\0hello", 9));
}

TEST_CASE("raw binary request: models it cannot describe are refused", "[http][codec]") {
  ModelMetadata two = OneInputModel(TORII_TYPE_FP32, {4}, 0);
  two.inputs.push_back({"IN2", TORII_TYPE_FP32, {4}});
  auto p = ParseRaw(two, std::string(16, '\0'));
  CHECK(p->status.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(p->status.message()), Catch::Contains("has 2"));

  p = ParseRaw(OneInputModel(TORII_TYPE_FP32, {-1, -1}, 0), std::string(16, '\0'));
  CHECK(p->status.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(p->status.message()), Catch::Contains("more than one variable dimension"));

  p = ParseRaw(OneInputModel(TORII_TYPE_BYTES, {-1, 2}, 8), "ab");
  CHECK(p->status.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(p->status.message()), Catch::Contains("shape [1]"));
}

// --- responses -------------------------------------------------------------

std::shared_ptr<InferenceResponse> Response() {
  auto r = std::make_shared<HttpInferResponse>();
  r->model_name = "m";
  r->model_version = "3";
  return r;
}

template <typename T>
void Add(InferenceResponse* r, const std::string& name, ToriiDataType type, Shape shape,
         std::vector<T> values) {
  char* buf = *r->AddOutput(name, type, std::move(shape), values.size() * sizeof(T));
  std::memcpy(buf, values.data(), values.size() * sizeof(T));
}

TEST_CASE("JSON response: every datatype as data", "[http][codec]") {
  auto r = Response();
  r->id = "q1";
  r->parameters.Set("sequence_id", int64_t{7});
  Add<uint8_t>(r.get(), "b", TORII_TYPE_BOOL, {2}, {1, 0});
  Add<int8_t>(r.get(), "i8", TORII_TYPE_INT8, {1}, {-5});
  Add<uint64_t>(r.get(), "u64", TORII_TYPE_UINT64, {1}, {std::numeric_limits<uint64_t>::max()});
  Add<float>(r.get(), "f", TORII_TYPE_FP32, {1, 2}, {0.1f, -2.5f});
  Add<double>(r.get(), "d", TORII_TYPE_FP64, {1}, {0.1});
  Add<uint16_t>(r.get(), "h", TORII_TYPE_FP16, {2}, {0x3e00, 0xc000});
  Add<uint16_t>(r.get(), "bf", TORII_TYPE_BF16, {1}, {0x3fc0});
  const std::string bytes("\x02\0\0\0hi\x01\0\0\0\"", 11);
  std::memcpy(*r->AddOutput("s", TORII_TYPE_BYTES, {2}, bytes.size()), bytes.data(), bytes.size());
  HttpResponse out;
  REQUIRE(WriteInferResponse(r, OutputFormat{}, &out).ok());
  CHECK(out.status == 200);
  CHECK(out.tail.empty());
  CHECK(out.body ==
        R"({"id":"q1","model_name":"m","model_version":"3","parameters":{"sequence_id":7},"outputs":[)"
        R"({"name":"b","datatype":"BOOL","shape":[2],"data":[true,false]},)"
        R"({"name":"i8","datatype":"INT8","shape":[1],"data":[-5]},)"
        R"({"name":"u64","datatype":"UINT64","shape":[1],"data":[18446744073709551615]},)"
        R"({"name":"f","datatype":"FP32","shape":[1,2],"data":[0.1,-2.5]},)"
        R"({"name":"d","datatype":"FP64","shape":[1],"data":[0.1]},)"
        R"({"name":"h","datatype":"FP16","shape":[2],"data":[1.5,-2]},)"
        R"({"name":"bf","datatype":"BF16","shape":[1],"data":[1.5]},)"
        R"({"name":"s","datatype":"BYTES","shape":[2],"data":["hi","\""]}]})");
  CHECK(*out.headers.begin() == std::make_pair(std::string("Content-Type"), std::string("application/json")));
}

TEST_CASE("binary response: parts after the JSON, sent from the output buffers", "[http][codec]") {
  auto r = Response();
  Add<int32_t>(r.get(), "A", TORII_TYPE_INT32, {2}, {1, 2});
  Add<float>(r.get(), "B", TORII_TYPE_FP32, {1}, {4.0f});
  OutputFormat format;
  format.binary_by_default = true;
  format.binary.emplace_back("B", false);
  HttpResponse out;
  REQUIRE(WriteInferResponse(r, format, &out).ok());
  CHECK(out.body ==
        R"({"model_name":"m","model_version":"3","outputs":[)"
        R"({"name":"A","datatype":"INT32","shape":[2],"parameters":{"binary_data_size":8}},)"
        R"({"name":"B","datatype":"FP32","shape":[1],"data":[4]}]})");
  REQUIRE(out.tail.size() == 1);
  CHECK(out.tail[0].data() == r->outputs()[0].data);  // no copy
  CHECK(out.keep.get() == r.get());
  bool has_length = false;
  for (const auto& h : out.headers) {
    if (h.first == "Inference-Header-Content-Length") {
      has_length = true;
      CHECK(h.second == std::to_string(out.body.size()));
    }
  }
  CHECK(has_length);
}

TEST_CASE("outputs that cannot be written as JSON are errors", "[http][codec]") {
  auto bad_utf8 = Response();
  const std::string bytes("\x02\0\0\0\xff\xfe", 6);
  std::memcpy(*bad_utf8->AddOutput("s", TORII_TYPE_BYTES, {1}, 6), bytes.data(), 6);
  HttpResponse out;
  absl::Status s = WriteInferResponse(bad_utf8, OutputFormat{}, &out);
  CHECK(s.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(s.message()), Catch::Contains("request it with \"binary_data\": true"));
  // The same output is fine as binary.
  OutputFormat binary;
  binary.binary_by_default = true;
  CHECK(WriteInferResponse(bad_utf8, binary, &out).ok());

  auto wrong_size = Response();
  Add<float>(wrong_size.get(), "f", TORII_TYPE_FP32, {3}, {1.0f, 2.0f});
  s = WriteInferResponse(wrong_size, OutputFormat{}, &out);
  CHECK(s.code() == absl::StatusCode::kInternal);
  CHECK_THAT(std::string(s.message()), Catch::Contains("output 'f' holds 8 bytes but its shape [3] of FP32 needs 12"));
}

}  // namespace
}  // namespace http
}  // namespace torii
