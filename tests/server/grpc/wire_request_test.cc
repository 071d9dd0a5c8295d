// The gRPC path of a request: RequestFromWire (wire -> core request) then
// ValidateRequest, as the frontend runs them.
#include "server/grpc/wire_request.h"

#include <catch2/catch.hpp>
#include <cstring>

#include "google/protobuf/text_format.h"
#include "server/core/datatype.h"
#include "server/core/request_validator.h"
#include "tests/util/runner_fixture.h"

namespace torii {
namespace {

// A validated request plus the bytes typed contents were converted into.
struct Out : InferenceRequest {
  std::vector<std::string> converted;
};

absl::Status Validate(const ModelSpec& spec, const inference::ModelInferRequest& r, Out* out,
                      ValidationLimits limits = {}) {
  absl::Status s = RequestFromWire(r, out, &out->converted);
  return s.ok() ? ValidateRequest(spec, limits, out) : s;
}

// FP32 [-1, 4] batching (max 8), plus a BYTES input; two outputs.
const ModelSpec& TestSpec() {
  static const auto spec = testing::SpecFromText((R"(
    name: "m" max_batch_size: 8
    input [ { name: "A" data_type: TYPE_FP32 dims: [ -1, 4 ] },
            { name: "S" data_type: TYPE_STRING dims: [ 2 ] } ]
    output [ { name: "X" data_type: TYPE_FP32 dims: [ 4 ] },
             { name: "Y" data_type: TYPE_INT8 dims: [ 1 ] } ])"));
  return *spec;
}

std::string Floats(size_t n) { return std::string(n * 4, '\0'); }

std::string Bytes(std::initializer_list<std::string> elems) {
  std::string out;
  for (const auto& e : elems) AppendBytesElement(out, e);
  return out;
}

// A valid raw request: A [1,3,4], S [1,2].
inference::ModelInferRequest Valid() {
  inference::ModelInferRequest r;
  r.set_model_name("m");
  auto* a = r.add_inputs();
  a->set_name("A");
  a->set_datatype("FP32");
  for (int64_t d : {1, 3, 4}) a->add_shape(d);
  auto* s = r.add_inputs();
  s->set_name("S");
  s->set_datatype("BYTES");
  for (int64_t d : {1, 2}) s->add_shape(d);
  r.add_raw_input_contents(Floats(12));
  r.add_raw_input_contents(Bytes({"ab", ""}));
  return r;
}

absl::Status Check(const inference::ModelInferRequest& r, Out* out = nullptr,
                   ValidationLimits limits = {}) {
  Out local;
  return Validate(TestSpec(), r, out != nullptr ? out : &local, limits);
}

void ExpectInvalid(const inference::ModelInferRequest& r, const std::string& needle) {
  const absl::Status s = Check(r);
  INFO(s.message());
  CHECK(s.code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(s.message()).find(needle) != std::string::npos);
}

TEST_CASE("a valid raw request is accepted and viewed in place") {
  const auto r = Valid();
  Out out;
  REQUIRE(Check(r, &out).ok());
  CHECK(out.rows == 1);
  REQUIRE(out.inputs.size() == 2);
  CHECK(out.inputs[0].data == r.raw_input_contents(0).data());  // no copy
  CHECK(out.inputs[0].byte_size == 48);
  CHECK(out.output_requested == std::vector<char>{1, 1});
}

TEST_CASE("inputs may arrive in any order and map to declared order") {
  auto r = Valid();
  r.mutable_inputs()->SwapElements(0, 1);
  r.mutable_raw_input_contents()->SwapElements(0, 1);
  Out out;
  REQUIRE(Check(r, &out).ok());
  CHECK(out.inputs[0].byte_size == 48);
}

TEST_CASE("typed contents are converted once to raw bytes") {
  inference::ModelInferRequest r = Valid();
  r.clear_raw_input_contents();
  for (int i = 0; i < 12; ++i) r.mutable_inputs(0)->mutable_contents()->add_fp32_contents(float(i));
  r.mutable_inputs(1)->mutable_contents()->add_bytes_contents("ab");
  r.mutable_inputs(1)->mutable_contents()->add_bytes_contents("c");
  Out out;
  REQUIRE(Check(r, &out).ok());
  float f[12];
  std::memcpy(f, out.inputs[0].data, sizeof(f));
  CHECK(f[11] == 11.0f);
  CHECK(std::string(out.inputs[1].data, out.inputs[1].byte_size) == Bytes({"ab", "c"}));
}

TEST_CASE("every malformed request is INVALID_ARGUMENT naming the tensor") {
  SECTION("wrong datatype") {
    auto r = Valid();
    r.mutable_inputs(0)->set_datatype("FP64");
    ExpectInvalid(r, "input 'A': expected datatype FP32, got 'FP64'");
  }
  SECTION("unknown datatype name") {
    auto r = Valid();
    r.mutable_inputs(0)->set_datatype("FLOAT");
    ExpectInvalid(r, "'FLOAT'");
  }
  SECTION("unknown input") {
    auto r = Valid();
    r.mutable_inputs(0)->set_name("Z");
    ExpectInvalid(r, "unknown input 'Z'");
  }
  SECTION("missing input") {
    auto r = Valid();
    r.mutable_inputs()->RemoveLast();
    r.mutable_raw_input_contents()->RemoveLast();
    ExpectInvalid(r, "missing input 'S'");
  }
  SECTION("duplicate input") {
    auto r = Valid();
    *r.add_inputs() = r.inputs(0);
    r.add_raw_input_contents(Floats(12));
    ExpectInvalid(r, "input 'A' appears more than once");
  }
  SECTION("inner dimension differs from dims") {
    auto r = Valid();
    r.mutable_inputs(0)->set_shape(2, 5);
    ExpectInvalid(r, "input 'A': expected shape [-1,-1,4], got [1,3,5]");
  }
  SECTION("missing batch dimension") {
    auto r = Valid();
    r.mutable_inputs(0)->clear_shape();
    r.mutable_inputs(0)->add_shape(3);
    r.mutable_inputs(0)->add_shape(4);
    ExpectInvalid(r, "expected shape [-1,-1,4]");
  }
  SECTION("batch larger than max_batch_size") {
    auto r = Valid();
    r.mutable_inputs(0)->set_shape(0, 9);
    r.set_raw_input_contents(0, Floats(9 * 12));
    ExpectInvalid(r, "batch size 9 is outside 1..8");
  }
  SECTION("zero batch") {
    auto r = Valid();
    r.mutable_inputs(0)->set_shape(0, 0);
    r.set_raw_input_contents(0, "");
    ExpectInvalid(r, "batch size 0");
  }
  SECTION("inputs disagree on the batch size") {
    auto r = Valid();
    r.mutable_inputs(1)->set_shape(0, 2);
    r.set_raw_input_contents(1, Bytes({"a", "b", "c", "d"}));
    ExpectInvalid(r, "differs from the other inputs");
  }
  SECTION("negative dimension") {
    auto r = Valid();
    r.mutable_inputs(0)->set_shape(1, -3);
    ExpectInvalid(r, "negative dimension");
  }
  SECTION("element count overflows") {
    auto r = Valid();
    r.mutable_inputs(0)->set_shape(1, int64_t{1} << 62);
    ExpectInvalid(r, "request size limit");
  }
  SECTION("element count above the configured limit") {
    auto r = Valid();
    r.mutable_inputs(0)->set_shape(1, 1000);
    ValidationLimits small;
    small.max_input_bytes = 1024;
    Out out;
    const absl::Status s = Check(r, &out, small);
    CHECK(s.code() == absl::StatusCode::kInvalidArgument);
    CHECK(std::string(s.message()).find("request size limit of 1024") != std::string::npos);
  }
  SECTION("raw byte size differs from elements x size") {
    auto r = Valid();
    r.set_raw_input_contents(0, Floats(11));
    ExpectInvalid(r, "input 'A': shape [1,3,4] of FP32 needs 48 bytes, got 44");
  }
  SECTION("BYTES prefix runs past the buffer") {
    auto r = Valid();
    std::string b = Bytes({"ab", "cd"});
    b[6] = 9;  // second element claims 9 bytes
    r.set_raw_input_contents(1, b);
    ExpectInvalid(r, "input 'S': BYTES element 1 declares 9 bytes");
  }
  SECTION("BYTES truncated prefix") {
    auto r = Valid();
    r.set_raw_input_contents(1, Bytes({"ab"}) + std::string("\x01\x00", 2));
    ExpectInvalid(r, "truncated 4-byte length prefix");
  }
  SECTION("BYTES element count differs from the shape") {
    auto r = Valid();
    r.set_raw_input_contents(1, Bytes({"ab", "c", "d"}));
    ExpectInvalid(r, "shape needs 2 BYTES elements, the data holds 3");
  }
  SECTION("raw and typed contents together") {
    auto r = Valid();
    r.mutable_inputs(0)->mutable_contents()->add_fp32_contents(1);
    ExpectInvalid(r, "input 'A' sets contents while the request uses raw_input_contents");
  }
  SECTION("raw_input_contents count differs from inputs") {
    auto r = Valid();
    r.mutable_raw_input_contents()->RemoveLast();
    ExpectInvalid(r, "raw_input_contents has 1 entries but the request has 2 inputs");
  }
  SECTION("typed values in the wrong field") {
    auto r = Valid();
    r.clear_raw_input_contents();
    for (int i = 0; i < 12; ++i) r.mutable_inputs(0)->mutable_contents()->add_fp64_contents(i);
    r.mutable_inputs(1)->mutable_contents()->add_bytes_contents("a");
    r.mutable_inputs(1)->mutable_contents()->add_bytes_contents("b");
    ExpectInvalid(r, "contents.fp32_contents");
  }
  SECTION("typed value count differs from the shape") {
    auto r = Valid();
    r.clear_raw_input_contents();
    r.mutable_inputs(0)->mutable_contents()->add_fp32_contents(1);
    ExpectInvalid(r, "input 'A': shape needs 12 elements, contents.fp32_contents has 1");
  }
  SECTION("no data at all") {
    auto r = Valid();
    r.clear_raw_input_contents();
    ExpectInvalid(r, "input 'A': shape needs 12 elements");
  }
  SECTION("unknown requested output") {
    auto r = Valid();
    r.add_outputs()->set_name("NOPE");
    ExpectInvalid(r, "unknown requested output 'NOPE'");
  }
  SECTION("output requested twice") {
    auto r = Valid();
    r.add_outputs()->set_name("X");
    r.add_outputs()->set_name("X");
    ExpectInvalid(r, "output 'X' is requested more than once");
  }
}

TEST_CASE("requested outputs are recorded by declared index") {
  auto r = Valid();
  r.add_outputs()->set_name("Y");
  Out out;
  REQUIRE(Check(r, &out).ok());
  CHECK(out.output_requested == std::vector<char>{0, 1});
}

TEST_CASE("typed narrow integers are range-checked") {
  const auto spec = testing::SpecFromText(R"(name: "n" input [{name:"I" data_type:TYPE_INT8 dims:[2]}]
                                     output [{name:"O" data_type:TYPE_INT8 dims:[2]}])");
  inference::ModelInferRequest r;
  auto* in = r.add_inputs();
  in->set_name("I");
  in->set_datatype("INT8");
  in->add_shape(2);
  in->mutable_contents()->add_int_contents(-128);
  in->mutable_contents()->add_int_contents(127);
  Out out;
  REQUIRE(Validate(*spec, r, &out).ok());
  CHECK(static_cast<int8_t>(out.inputs[0].data[0]) == -128);
  in->mutable_contents()->set_int_contents(1, 300);
  const absl::Status s = Validate(*spec, r, &out);
  CHECK(s.code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(s.message()).find("value 300 does not fit in INT8") != std::string::npos);
}

TEST_CASE("raw BOOL bytes must be 0 or 1") {
  const auto spec = testing::SpecFromText(R"(name: "b" input [{name:"I" data_type:TYPE_BOOL dims:[3]}]
                                     output [{name:"O" data_type:TYPE_BOOL dims:[3]}])");
  inference::ModelInferRequest r;
  auto* in = r.add_inputs();
  in->set_name("I");
  in->set_datatype("BOOL");
  in->add_shape(3);
  r.add_raw_input_contents(std::string("\x01\x00\x01", 3));
  Out out;
  REQUIRE(Validate(*spec, r, &out).ok());
  r.set_raw_input_contents(0, std::string("\x01\x02\x00", 3));
  const absl::Status s = Validate(*spec, r, &out);
  CHECK(s.code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(s.message()).find("input 'I': BOOL element 1 is 2") != std::string::npos);
}

TEST_CASE("FP16 can only travel raw") {
  const auto spec = testing::SpecFromText(R"(name: "h" input [{name:"I" data_type:TYPE_FP16 dims:[1]}]
                                     output [{name:"O" data_type:TYPE_FP16 dims:[1]}])");
  inference::ModelInferRequest r;
  auto* in = r.add_inputs();
  in->set_name("I");
  in->set_datatype("FP16");
  in->add_shape(1);
  in->mutable_contents()->add_fp32_contents(1);
  Out out;
  const absl::Status s = Validate(*spec, r, &out);
  CHECK(s.code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(s.message()).find("raw_input_contents") != std::string::npos);
}

TEST_CASE("ValidateBytesBuffer accepts exact tilings only") {
  const std::string ok = Bytes({"", "x", "yz"});
  CHECK(ValidateBytesBuffer(ok.data(), ok.size(), 3, "t").ok());
  CHECK_FALSE(ValidateBytesBuffer(ok.data(), ok.size(), 2, "t").ok());
  CHECK_FALSE(ValidateBytesBuffer(ok.data(), ok.size() - 1, 3, "t").ok());
  CHECK(ValidateBytesBuffer(nullptr, 0, 0, "t").ok());
}

}  // namespace
}  // namespace torii
