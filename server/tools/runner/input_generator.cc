#include "server/tools/runner/input_generator.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "server/tools/runner/half_float.h"
#include "server/core/datatype.h"

namespace torii {
namespace runner_tool {
namespace {

// splitmix64: a tiny, well-mixed deterministic sequence.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

template <typename T>
void Put(std::string& out, size_t i, T v) {
  std::memcpy(&out[i * sizeof(T)], &v, sizeof(T));
}

template <typename T>
T IntValue(Values values, uint64_t r, size_t i) {
  switch (values) {
    case Values::kZeros:
      return T(0);
    case Values::kExtreme: {
      const T choices[] = {std::numeric_limits<T>::min(), std::numeric_limits<T>::max(), T(0),
                           static_cast<T>(-1)};
      return choices[i % 4];
    }
    default:
      return static_cast<T>(r % 4);
  }
}

float FloatValue(Values values, uint64_t r, size_t i) {
  switch (values) {
    case Values::kZeros:
      return 0.0f;
    case Values::kExtreme: {
      const float choices[] = {std::numeric_limits<float>::quiet_NaN(),
                               std::numeric_limits<float>::infinity(),
                               -std::numeric_limits<float>::infinity(),
                               -0.0f,
                               std::numeric_limits<float>::max(),
                               std::numeric_limits<float>::lowest(),
                               std::numeric_limits<float>::denorm_min()};
      return choices[i % 7];
    }
    default:
      // Multiples of 1/8 in [-1, 1]: exact in FP16, BF16, FP32 and FP64.
      return static_cast<float>(static_cast<int>(r % 17) - 8) / 8.0f;
  }
}

std::string StringValue(Values values, uint64_t r, size_t i) {
  switch (values) {
    case Values::kZeros:
      return std::string();
    case Values::kExtreme: {
      switch (i % 4) {
        case 0:
          return std::string();
        case 1:
          return std::string("\xff\xfe\x00\x01 not utf-8", 15);
        case 2:
          return std::string(4096, 'x');
        default:
          return std::string("\xe6\x97\xa5\xe6\x9c\xac", 6);  // UTF-8 text
      }
    }
    default:
      return "s" + std::to_string(r % 1000);
  }
}

}  // namespace

std::vector<int64_t> InputGenerator::Dims(const TensorSpec& t, int64_t variable) const {
  auto it = dims_.find(t.name);
  if (it != dims_.end()) return it->second;
  std::vector<int64_t> dims = t.dims;
  for (auto& d : dims) {
    if (d < 0) d = variable;
  }
  return dims;
}

size_t InputGenerator::MaxVariableDims() const {
  size_t most = 0;
  for (const auto& t : spec_.inputs) {
    if (dims_.count(t.name) != 0) continue;
    size_t n = 0;
    for (int64_t d : t.dims) n += d < 0 ? 1 : 0;
    most = std::max(most, n);
  }
  return most;
}

TestRequest InputGenerator::Request(int64_t rows, int64_t variable, uint64_t seed,
                                    Values values) const {
  TestRequest req;
  uint64_t s = seed;
  for (const auto& t : spec_.inputs) {
    std::vector<int64_t> shape;
    if (spec_.batching_enabled()) shape.push_back(rows);
    for (int64_t d : Dims(t, variable)) shape.push_back(d);
    s = Mix(s);
    req.inputs.push_back(Tensor(t.name, t.datatype, shape, s, values));
  }
  return req;
}

HostTensor InputGenerator::Tensor(const std::string& name, ToriiDataType datatype,
                                  const std::vector<int64_t>& shape, uint64_t seed,
                                  Values values) {
  HostTensor t{name, datatype, shape, {}};
  size_t n = 1;
  for (int64_t d : shape) n *= static_cast<size_t>(d < 0 ? 0 : d);
  const size_t esize = DataTypeSize(datatype);
  if (datatype != TORII_TYPE_BYTES) t.data.assign(n * esize, '\0');
  uint64_t r = seed;
  for (size_t i = 0; i < n; ++i) {
    r = Mix(r + i);
    switch (datatype) {
      case TORII_TYPE_BOOL:
        t.data[i] = values == Values::kZeros ? 0 : static_cast<char>((r + i) & 1u);
        break;
      case TORII_TYPE_UINT8: Put(t.data, i, IntValue<uint8_t>(values, r, i)); break;
      case TORII_TYPE_UINT16: Put(t.data, i, IntValue<uint16_t>(values, r, i)); break;
      case TORII_TYPE_UINT32: Put(t.data, i, IntValue<uint32_t>(values, r, i)); break;
      case TORII_TYPE_UINT64: Put(t.data, i, IntValue<uint64_t>(values, r, i)); break;
      case TORII_TYPE_INT8: Put(t.data, i, IntValue<int8_t>(values, r, i)); break;
      case TORII_TYPE_INT16: Put(t.data, i, IntValue<int16_t>(values, r, i)); break;
      case TORII_TYPE_INT32: Put(t.data, i, IntValue<int32_t>(values, r, i)); break;
      case TORII_TYPE_INT64: Put(t.data, i, IntValue<int64_t>(values, r, i)); break;
      case TORII_TYPE_FP16: Put(t.data, i, FloatToHalf(FloatValue(values, r, i))); break;
      case TORII_TYPE_BF16: Put(t.data, i, FloatToBf16(FloatValue(values, r, i))); break;
      case TORII_TYPE_FP32: Put(t.data, i, FloatValue(values, r, i)); break;
      case TORII_TYPE_FP64:
        Put(t.data, i, static_cast<double>(FloatValue(values, r, i)));
        break;
      case TORII_TYPE_BYTES:
        AppendBytesElement(t.data, StringValue(values, r, i));
        break;
      default:
        break;
    }
  }
  return t;
}

}  // namespace runner_tool
}  // namespace torii
