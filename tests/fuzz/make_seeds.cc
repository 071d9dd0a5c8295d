// Writes the seed corpora of fuzz_validate_request and fuzz_bytes (the
// committed files under tests/fuzz/corpus/). Each request seed states which
// fuzz model must accept it (or that none may), and the generator checks that
// before writing, so the fuzzer starts from known-valid requests and from
// near misses of each kind.
//
//   build-fuzz/fuzz_make_seeds tests/fuzz/corpus
//
// The config corpus (corpus/fuzz_config_parse/) is hand-written text.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "fuzz_models.h"
#include "inference.pb.h"
#include "server/core/datatype.h"
#include "server/core/request_validator.h"
#include "server/grpc/wire_request.h"

namespace {

using inference::ModelInferRequest;
using Input = ModelInferRequest::InferInputTensor;

std::string g_root;
int g_failures = 0;

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!f) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    std::exit(1);
  }
}

// `accepted_by`: the fuzz model that must accept it, "" if none may. A
// request goes the frontend's way: RequestFromWire, then ValidateRequest.
void Request(const std::string& name, const std::string& accepted_by,
             const ModelInferRequest& req) {
  for (const auto& m : torii_fuzz::Models()) {
    torii::InferenceRequest out;
    std::vector<std::string> converted;
    absl::Status s = torii::RequestFromWire(req, &out, &converted);
    if (s.ok()) s = torii::ValidateRequest(m.spec, torii::ValidationLimits{}, &out);
    const bool want = m.name == accepted_by;
    if (s.ok() != want) {
      std::fprintf(stderr, "seed %s: model '%s' %s it: %s\n", name.c_str(), m.name.c_str(),
                   s.ok() ? "accepts" : "rejects", s.ToString().c_str());
      ++g_failures;
    }
  }
  std::string bytes;
  req.SerializeToString(&bytes);
  WriteFile(g_root + "/fuzz_validate_request/" + name, bytes);
}

Input* Add(ModelInferRequest& r, const std::string& name, const std::string& dt,
           std::vector<int64_t> shape) {
  Input* in = r.add_inputs();
  in->set_name(name);
  in->set_datatype(dt);
  for (int64_t d : shape) in->add_shape(d);
  return in;
}

std::string Floats(std::vector<float> v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

std::string Strings(std::vector<std::string> v) {
  std::string out;
  for (const auto& s : v) torii::AppendBytesElement(out, s);
  return out;
}

void RequestSeeds() {
  {  // batched: two rows, raw
    ModelInferRequest r;
    r.set_model_name("batched");
    Add(r, "x", "FP32", {2, 4});
    r.add_raw_input_contents(Floats({1, 2, 3, 4, 5, 6, 7, 8}));
    Request("batched_raw", "batched", r);
    r.add_outputs()->set_name("y");
    Request("batched_raw_output", "batched", r);
    r.mutable_inputs(0)->set_shape(0, 9);  // over max_batch_size
    Request("batched_too_many_rows", "", r);
  }
  {  // the 'timeout' parameter (queue policy): whole microseconds >= 0
    ModelInferRequest r;
    Add(r, "x", "FP32", {1, 4});
    r.add_raw_input_contents(Floats({1, 2, 3, 4}));
    (*r.mutable_parameters())["timeout"].set_int64_param(1500);
    (*r.mutable_parameters())["priority"].set_string_param("high");  // passed on
    Request("batched_timeout", "batched", r);
    (*r.mutable_parameters())["timeout"].set_uint64_param(~uint64_t{0});
    Request("batched_timeout_uint64_too_big", "", r);
    (*r.mutable_parameters())["timeout"].set_int64_param(-1);
    Request("batched_timeout_negative", "", r);
    (*r.mutable_parameters())["timeout"].set_string_param("1500");
    Request("batched_timeout_string", "", r);
  }
  {  // batched: one row, typed
    ModelInferRequest r;
    auto* in = Add(r, "x", "FP32", {1, 4});
    for (float f : {0.5f, -1.0f, 3e38f, 0.0f}) in->mutable_contents()->add_fp32_contents(f);
    Request("batched_typed", "batched", r);
    in->mutable_contents()->add_fp32_contents(1);
    Request("batched_typed_extra_value", "", r);
  }
  {  // strings: raw and typed BYTES
    ModelInferRequest r;
    Add(r, "s", "BYTES", {2});
    r.add_raw_input_contents(Strings({"hello", ""}));
    Request("strings_raw", "strings", r);
    r.set_raw_input_contents(0, Strings({"hello"}) + std::string("\x05\x00\x00", 3));
    Request("strings_raw_truncated_prefix", "", r);
    r.set_raw_input_contents(0, Strings({"a"}) + std::string("\xff\x00\x00\x00xy", 6));
    Request("strings_raw_overlong_element", "", r);
  }
  {
    ModelInferRequest r;
    auto* in = Add(r, "s", "BYTES", {2});
    in->mutable_contents()->add_bytes_contents("torii");
    in->mutable_contents()->add_bytes_contents(std::string("\0\xff", 2));
    r.add_outputs()->set_name("len");
    Request("strings_typed", "strings", r);
  }
  {  // mixed: INT8 typed + FP16 raw is not allowed (one or the other); raw both
    ModelInferRequest r;
    Add(r, "a", "INT8", {2, 3});
    Add(r, "h", "FP16", {2, 2, 2});
    r.add_raw_input_contents(std::string("\x01\x02\x03\xff\xfe\x7f", 6));
    r.add_raw_input_contents(std::string(16, '\x3c'));
    Request("mixed_raw", "mixed", r);
    r.mutable_inputs(1)->set_shape(0, 1);
    Request("mixed_rows_differ", "", r);
  }
  {
    ModelInferRequest r;
    auto* a = Add(r, "a", "INT8", {1, 3});
    for (int v : {-128, 0, 127}) a->mutable_contents()->add_int_contents(v);
    Add(r, "h", "FP16", {1, 2, 2});
    Request("mixed_fp16_typed", "", r);
    a->mutable_contents()->set_int_contents(0, 128);
    Request("mixed_int8_out_of_range", "", r);
  }
  {  // every: typed contents for every type that can travel typed
    ModelInferRequest r;
    auto c = [&](const char* name, const char* dt, int n) {
      return Add(r, name, dt, {n})->mutable_contents();
    };
    auto* b = c("bool", "BOOL", 2); b->add_bool_contents(true); b->add_bool_contents(false);
    auto* u8 = c("u8", "UINT8", 2); u8->add_uint_contents(0); u8->add_uint_contents(255);
    auto* u16 = c("u16", "UINT16", 1); u16->add_uint_contents(65535);
    auto* u32 = c("u32", "UINT32", 1); u32->add_uint_contents(4294967295u);
    auto* u64 = c("u64", "UINT64", 1); u64->add_uint64_contents(~uint64_t{0});
    auto* i8 = c("i8", "INT8", 2); i8->add_int_contents(-128); i8->add_int_contents(127);
    auto* i16 = c("i16", "INT16", 1); i16->add_int_contents(-32768);
    auto* i32 = c("i32", "INT32", 1); i32->add_int_contents(-2147483647 - 1);
    auto* i64 = c("i64", "INT64", 1); i64->add_int64_contents(INT64_MIN);
    auto* f32 = c("f32", "FP32", 1); f32->add_fp32_contents(1.5f);
    auto* f64 = c("f64", "FP64", 1); f64->add_fp64_contents(-2.25);
    auto* s = c("str", "BYTES", 3);
    for (const char* v : {"", "x", "yz"}) s->add_bytes_contents(v);
    Request("every_typed", "every", r);
    r.mutable_inputs(3)->set_datatype("UINT16");
    Request("every_typed_wrong_datatype", "", r);
  }
  {  // every: raw
    ModelInferRequest r;
    const char* names[] = {"bool", "u8", "u16", "u32", "u64", "i8",
                           "i16", "i32", "i64", "f32", "f64", "str"};
    const int sizes[] = {1, 1, 2, 4, 8, 1, 2, 4, 8, 4, 8, 0};
    const char* types[] = {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8",
                           "INT16", "INT32", "INT64", "FP32", "FP64", "BYTES"};
    for (int k = 0; k < 12; ++k) {
      Add(r, names[k], types[k], {2});
      r.add_raw_input_contents(sizes[k] == 0 ? Strings({"ab", "c"})
                                             : std::string(2 * sizes[k], k == 0 ? '\1' : '\x42'));
    }
    Request("every_raw", "every", r);
  }
  {  // bf16: raw only; typed is refused
    ModelInferRequest r;
    Add(r, "bf", "BF16", {2, 3, 2});
    r.add_raw_input_contents(std::string(24, '\x3f'));
    Request("bf16_raw", "bf16", r);
    r.clear_raw_input_contents();
    r.mutable_inputs(0)->mutable_contents()->add_fp32_contents(1);
    Request("bf16_typed", "", r);
  }
  {  // near misses that no model accepts
    ModelInferRequest r;
    Add(r, "x", "FP32", {1, 4});
    Add(r, "x", "FP32", {1, 4});
    r.add_raw_input_contents(Floats({1, 2, 3, 4}));
    r.add_raw_input_contents(Floats({1, 2, 3, 4}));
    Request("duplicate_input", "", r);
    r.mutable_inputs()->RemoveLast();
    Request("raw_count_mismatch", "", r);
    r.mutable_raw_input_contents()->RemoveLast();
    r.mutable_inputs(0)->set_shape(1, -4);
    Request("negative_dim", "", r);
    r.mutable_inputs(0)->set_shape(1, int64_t{1} << 62);
    Request("huge_dim", "", r);
  }
  Request("empty", "", ModelInferRequest{});
}

void BytesSeeds() {
  auto seed = [](const std::string& name, uint8_t count, const std::string& buf) {
    WriteFile(g_root + "/fuzz_bytes/" + name, std::string(1, static_cast<char>(count)) + buf);
  };
  seed("empty_0", 0, "");
  seed("one_empty_element", 1, Strings({""}));
  seed("three", 3, Strings({"a", "bc", "def"}));
  seed("count_mismatch", 2, Strings({"a", "bc", "def"}));
  seed("truncated_prefix", 1, Strings({"abc"}) + std::string("\x01\x00", 2));
  seed("overlong", 1, std::string("\x10\x00\x00\x00short", 9));
  seed("max_length_prefix", 1, std::string("\xff\xff\xff\xff", 4));
  seed("binary", 2, Strings({std::string("\0\0\0\0", 4), std::string(300, '\xab')}));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_ROOT  (e.g. tests/fuzz/corpus)\n", argv[0]);
    return 2;
  }
  g_root = argv[1];
  std::filesystem::create_directories(g_root + "/fuzz_validate_request");
  std::filesystem::create_directories(g_root + "/fuzz_bytes");
  RequestSeeds();
  BytesSeeds();
  if (g_failures > 0) {
    std::fprintf(stderr, "%d seed expectation(s) failed\n", g_failures);
    return 1;
  }
  std::printf("seeds written under %s\n", g_root.c_str());
  return 0;
}
