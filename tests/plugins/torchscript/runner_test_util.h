// Helpers shared by the TorchScript runner tests: a fake host around the
// built libtorii_torchscript.so, temporary model directories, reference math
// in plain loops, half-precision conversions and resident-memory readings.
// Torch-free: expected values never come from the code under test.
#ifndef TORII_TESTS_PLUGINS_TORCHSCRIPT_RUNNER_TEST_UTIL_H_
#define TORII_TESTS_PLUGINS_TORCHSCRIPT_RUNNER_TEST_UTIL_H_

#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "model_factory.h"
#include "tests/util/fake_model_log.h"
#include "tests/util/temp_dir.h"
#include "torii/testing/fake_host.h"

namespace torii_test {

using torii::testing::FakeHost;
using torii::testing::FakeModel;
using torii::testing::JoinedLog;
using torii::testing::LogContains;
using torii::testing::ModelSpec;
using torii::testing::Request;
using torii::testing::Response;
using torii::testing::Tensor;

inline const char* RunnerPath() { return TORII_TORCHSCRIPT_RUNNER_PATH; }

/// The runner library, opened once per process.
inline FakeHost& Host() {
  static std::unique_ptr<FakeHost> host = FakeHost::Open(RunnerPath());
  return *host;
}

/// A directory under $TMPDIR (else /tmp) removed with everything in it.
struct TempDir : torii::testing::TempDir {
  TempDir() : torii::testing::TempDir("torii-torchscript-") {}
};

/// A spec for <dir>/<name>/1/, the version directory created.
inline ModelSpec MakeSpec(const TempDir& dir, const std::string& name,
                          int32_t max_batch_size,
                          std::vector<torii::TensorSpec> inputs,
                          std::vector<torii::TensorSpec> outputs) {
  ModelSpec spec;
  spec.name = name;
  spec.directory = dir.path() + "/" + name;
  spec.version_directory = spec.directory + "/1";
  spec.max_batch_size = max_batch_size;
  spec.inputs = std::move(inputs);
  spec.outputs = std::move(outputs);
  std::filesystem::create_directories(spec.version_directory);
  return spec;
}

inline std::string ModelFile(const ModelSpec& spec) {
  return spec.version_directory + "/model.pt";
}

/// The error Load() throws, or a failed REQUIRE when it loads.
inline torii::Error LoadError(const ModelSpec& spec) {
  try {
    Host().Load(spec);
  } catch (const torii::Error& e) {
    return e;
  }
  FAIL("model '" << spec.name << "' loaded, expected an error");
  return torii::Error(TORII_STATUS_OK, "");
}

/// Deterministic test inputs in [-1, 1).
inline std::vector<float> TestValues(size_t n, uint32_t seed) {
  std::vector<float> v(n);
  uint32_t s = seed * 2654435761u + 1;
  for (auto& x : v) {
    s = s * 1664525u + 1013904223u;
    x = static_cast<float>(s >> 8) / 8388608.0f - 1.0f;
  }
  return v;
}

/// relu(x·W1ᵀ+b1)·W2ᵀ+b2 over `rows` rows, in double precision.
inline std::vector<float> MlpReference(const MlpWeights& w, const std::vector<float>& x,
                                       int64_t rows) {
  auto linear = [](const LinearWeights& l, const std::vector<double>& in, int64_t rows,
                   bool relu) {
    std::vector<double> out(static_cast<size_t>(rows * l.out));
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t o = 0; o < l.out; ++o) {
        double acc = l.bias[o];
        for (int64_t i = 0; i < l.in; ++i) acc += in[r * l.in + i] * l.weight[o * l.in + i];
        out[r * l.out + o] = relu ? std::max(acc, 0.0) : acc;
      }
    }
    return out;
  };
  const std::vector<double> in(x.begin(), x.end());
  const auto y = linear(w.l2, linear(w.l1, in, rows, true), rows, false);
  return std::vector<float>(y.begin(), y.end());
}

/// Element-wise |a - b| <= tol * max(1, |b|).
inline void RequireClose(const std::vector<float>& actual, const std::vector<float>& expected,
                         double tol = 1e-4) {
  REQUIRE(actual.size() == expected.size());
  size_t worst = 0;
  double worst_excess = -1;
  for (size_t i = 0; i < actual.size(); ++i) {
    const double excess = std::abs(double(actual[i]) - double(expected[i])) -
                          tol * std::max(1.0, std::abs(double(expected[i])));
    if (excess > worst_excess) worst_excess = excess, worst = i;
  }
  INFO("worst element " << worst << ": " << (actual.empty() ? 0.f : actual[worst]) << " vs "
                        << (expected.empty() ? 0.f : expected[worst]) << " (tolerance " << tol
                        << ")");
  REQUIRE(worst_excess <= 0);
}

/// IEEE half → float (exact).
inline float HalfToFloat(uint16_t h) {
  const uint32_t sign = (h >> 15) & 1u, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  float v;
  if (exp == 0) {
    v = std::ldexp(static_cast<float>(mant), -24);
  } else if (exp == 31) {
    v = mant ? NAN : INFINITY;
  } else {
    v = std::ldexp(static_cast<float>(mant | 0x400u), static_cast<int>(exp) - 25);
  }
  return sign ? -v : v;
}

/// float → IEEE half, for values exactly representable as normal halves.
inline uint16_t FloatToHalf(float f) {
  if (f == 0.0f) return std::signbit(f) ? 0x8000 : 0;
  int e = 0;
  const float m = std::frexp(std::abs(f), &e);  // f = m * 2^e, m in [0.5, 1)
  const uint32_t mant = static_cast<uint32_t>(std::ldexp(m, 11)) & 0x3ffu;
  const uint16_t bits = static_cast<uint16_t>(((e + 14) << 10) | mant);
  return f < 0 ? static_cast<uint16_t>(bits | 0x8000) : bits;
}

inline float Bf16ToFloat(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

/// float → bf16 by truncation, for values exactly representable in bf16.
inline uint16_t FloatToBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  return static_cast<uint16_t>(bits >> 16);
}

/// A tensor of 16-bit values (FP16/BF16 have no C++ type in the SDK).
inline Tensor Bits16(const std::string& name, ToriiDataType type,
                     std::vector<int64_t> shape, const std::vector<uint16_t>& bits) {
  Tensor t{name, type, std::move(shape), {}};
  t.data.resize(bits.size() * 2);
  std::memcpy(&t.data[0], bits.data(), t.data.size());
  return t;
}

/// A BOOL tensor. (Tensor::Of<bool> cannot take std::vector<bool>, which
/// has no data().)
inline Tensor Bools(const std::string& name, std::vector<int64_t> shape,
                    const std::vector<uint8_t>& values) {
  Tensor t{name, TORII_TYPE_BOOL, std::move(shape), {}};
  t.data.assign(values.begin(), values.end());
  return t;
}

inline std::vector<uint16_t> Bits16Values(const Tensor& t) {
  std::vector<uint16_t> v(t.data.size() / 2);
  std::memcpy(v.data(), t.data.data(), t.data.size());
  return v;
}

/// Resident set size of this process (VmRSS), in bytes.
inline size_t ResidentBytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      std::istringstream in(line.substr(6));
      size_t kb = 0;
      in >> kb;
      return kb * 1024;
    }
  }
  return 0;
}

}  // namespace torii_test

#endif  // TORII_TESTS_PLUGINS_TORCHSCRIPT_RUNNER_TEST_UTIL_H_
