// Every datatype LibTorch can hold goes through the runner with its bytes
// interpreted as that type; the others are refused at load.
#include <cstring>
#include <string>
#include <vector>

#include "runner_test_util.h"

namespace torii_test {
namespace {

struct DtypeCase {
  ToriiDataType type;
  Tensor input;          // [2, 2]
  std::string expected;  // raw bytes of the result
};

template <typename T>
DtypeCase Doubled(const std::vector<T>& in, const std::vector<T>& out) {
  return {torii::DataTypeOf<T>::value, Tensor::Of<T>("INPUT__0", {2, 2}, in),
          Tensor::Of<T>("x", {2, 2}, out).data};
}

DtypeCase Doubled16(ToriiDataType type, const std::vector<float>& in,
                    uint16_t (*to_bits)(float)) {
  std::vector<uint16_t> a, b;
  for (float v : in) {
    a.push_back(to_bits(v));
    b.push_back(to_bits(v * 2));
  }
  return {type, Bits16("INPUT__0", type, {2, 2}, a), Bits16("x", type, {2, 2}, b).data};
}

TEST_CASE("every LibTorch datatype goes through the runner") {
  // x * 2 keeps the datatype in torch, including integer wrap-around, so the
  // expected bytes follow from C++ arithmetic on the same type.
  std::vector<DtypeCase> cases = {
      Doubled<uint8_t>({1, 200, 255, 0}, {2, 144, 254, 0}),
      Doubled<int8_t>({1, 100, -100, -1}, {2, -56, 56, -2}),
      Doubled<int16_t>({1, 20000, -3, 0}, {2, -25536, -6, 0}),
      Doubled<int32_t>({1, 2000000000, -3, 7}, {2, -294967296, -6, 14}),
      Doubled<int64_t>({1, int64_t(1) << 40, -3, 7}, {2, int64_t(1) << 41, -6, 14}),
      Doubled<float>({0.5f, -1.25f, 3.0f, 1e30f}, {1.0f, -2.5f, 6.0f, 2e30f}),
      Doubled<double>({0.1, -1.25, 3.0, 1e300}, {0.2, -2.5, 6.0, 2e300}),
      Doubled16(TORII_TYPE_FP16, {0.5f, -1.25f, 3.0f, 1000.0f}, FloatToHalf),
      Doubled16(TORII_TYPE_BF16, {0.5f, -1.25f, 3.0f, 1000.0f}, FloatToBf16),
      // BOOL: logical_not (x * 2 would promote to INT64).
      {TORII_TYPE_BOOL, Bools("INPUT__0", {2, 2}, {1, 0, 1, 1}), std::string("\0\1\0\0", 4)},
  };
  for (const auto& c : cases) {
    DYNAMIC_SECTION(torii::DataTypeName(c.type)) {
      TempDir dir;
      ModelSpec spec = MakeSpec(dir, std::string("dtype_") + torii::DataTypeName(c.type), 4,
                                {{"INPUT__0", c.type, {2}}}, {{"OUTPUT__0", c.type, {2}}});
      SaveScript(ModelFile(spec), c.type == TORII_TYPE_BOOL ? R"(
def forward(self, x):
    return torch.logical_not(x)
)"
                                                            : R"(
def forward(self, x):
    return x * 2
)");
      auto model = Host().Load(spec);
      auto instance = model->CreateInstance();
      const Response r = instance->Infer({c.input});
      REQUIRE(r.ok());
      const Tensor& out = r.output("OUTPUT__0");
      CHECK(out.datatype == c.type);
      CHECK(out.shape == std::vector<int64_t>{2, 2});
      CHECK(out.data == c.expected);
    }
  }
}

TEST_CASE("FP16 and BF16 arithmetic matches an independent computation") {
  const ToriiDataType type = GENERATE(TORII_TYPE_FP16, TORII_TYPE_BF16);
  INFO(torii::DataTypeName(type));
  auto to_bits = type == TORII_TYPE_FP16 ? FloatToHalf : FloatToBf16;
  auto to_float = type == TORII_TYPE_FP16 ? HalfToFloat : Bf16ToFloat;
  TempDir dir;
  ModelSpec spec = MakeSpec(dir, "half", 4, {{"x", type, {3}}, {"y", type, {3}}},
                            {{"OUTPUT__0", type, {3}}, {"OUTPUT__1", type, {1}}});
  SaveScript(ModelFile(spec), R"(
def forward(self, x, y):
    return (x * x + y, torch.sum(x * y, 1, keepdim=True))
)");
  auto model = Host().Load(spec);
  auto instance = model->CreateInstance();
  // Values whose products and sums are exact in both formats, so the result
  // does not depend on where torch rounds.
  const std::vector<float> x = {0.5f, 1.5f, -2.0f, 3.0f, 0.25f, 8.0f};
  const std::vector<float> y = {1.0f, 1.0f, 1.0f, -4.0f, 2.0f, 0.5f};
  std::vector<uint16_t> xb, yb;
  for (float v : x) xb.push_back(to_bits(v));
  for (float v : y) yb.push_back(to_bits(v));
  const Response r = instance->Infer({Bits16("x", type, {2, 3}, xb), Bits16("y", type, {2, 3}, yb)});
  REQUIRE(r.ok());
  std::vector<float> got0, got1;
  for (uint16_t b : Bits16Values(r.output("OUTPUT__0"))) got0.push_back(to_float(b));
  for (uint16_t b : Bits16Values(r.output("OUTPUT__1"))) got1.push_back(to_float(b));
  std::vector<float> want0, want1 = {0, 0};
  for (size_t i = 0; i < x.size(); ++i) {
    want0.push_back(x[i] * x[i] + y[i]);
    want1[i / 3] += x[i] * y[i];
  }
  CHECK(r.output("OUTPUT__0").datatype == type);
  CHECK(got0 == want0);
  CHECK(got1 == want1);
}

TEST_CASE("datatypes LibTorch cannot hold are refused at load, naming the tensor") {
  const ToriiDataType bad = GENERATE(TORII_TYPE_UINT16, TORII_TYPE_UINT32, TORII_TYPE_UINT64,
                                     TORII_TYPE_BYTES);
  const bool as_input = GENERATE(true, false);
  INFO(torii::DataTypeName(bad) << (as_input ? " input" : " output"));
  TempDir dir;
  ModelSpec spec = MakeSpec(
      dir, "refuse", 4, {{"WEIRD_IN", as_input ? bad : TORII_TYPE_FP32, {2}}},
      {{"WEIRD_OUT", as_input ? TORII_TYPE_FP32 : bad, {2}}});
  SaveScript(ModelFile(spec), "def forward(self, x):\n    return x\n");
  const torii::Error e = LoadError(spec);
  CHECK(e.code() == TORII_STATUS_INVALID_ARGUMENT);
  const std::string message = e.what();
  CHECK(message.find("model 'refuse'") != std::string::npos);
  CHECK(message.find(as_input ? "input 'WEIRD_IN'" : "output 'WEIRD_OUT'") != std::string::npos);
  CHECK(message.find(torii::DataTypeName(bad)) != std::string::npos);
}

}  // namespace
}  // namespace torii_test
