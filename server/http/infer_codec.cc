#include "server/http/infer_codec.h"

#include <simdjson.h>

#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "server/core/datatype.h"
#include "server/http/json_writer.h"

namespace torii {
namespace http {
namespace {

namespace od = simdjson::ondemand;

static_assert(kBodyPadding >= simdjson::SIMDJSON_PADDING,
              "request bodies must carry the padding simdjson reads past the end");

// Nested `data` deeper than this is refused (a flat array is depth 1).
constexpr int kMaxDataDepth = 32;
// Documents larger than this get a parser of their own, so a thread does not
// keep the memory of its largest request for ever.
constexpr size_t kSharedParserMaxBytes = size_t{1} << 20;

// Abseil 20220623 has its own string_view type.
absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }

template <typename... Args>
absl::Status Invalid(const Args&... args) {
  return absl::InvalidArgumentError(absl::StrCat(args...));
}

std::string JsonError(simdjson::error_code e) { return simdjson::error_message(e); }

// The text of a scalar as it was sent, for error messages.
std::string Token(od::value& v) {
  std::string_view raw = v.raw_json_token();
  absl::string_view t = absl::StripTrailingAsciiWhitespace(AV(raw));
  if (t.size() > 40) return absl::StrCat(t.substr(0, 40), "...");
  return std::string(t);
}

const char* TypeName(od::json_type t) {
  switch (t) {
    case od::json_type::array: return "an array";
    case od::json_type::object: return "an object";
    case od::json_type::number: return "a number";
    case od::json_type::string: return "a string";
    case od::json_type::boolean: return "a boolean";
    case od::json_type::null: return "null";
  }
  return "a value";
}

// --- half-precision conversions (round to nearest even) ---------------------

uint16_t FloatToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t mant = x & 0x7fffffu;
  const int exp = static_cast<int>((x >> 23) & 0xff);
  if (exp == 0xff) return static_cast<uint16_t>(sign | 0x7c00u | (mant != 0 ? 0x200u : 0));
  const int e = exp - 127 + 15;
  if (e >= 0x1f) return static_cast<uint16_t>(sign | 0x7c00u);
  if (e <= 0) {
    if (e < -10) return static_cast<uint16_t>(sign);
    mant |= 0x800000u;
    const int shift = 14 - e;
    uint32_t half = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1);
    const uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (half & 1u))) ++half;
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t half = sign | (static_cast<uint32_t>(e) << 10) | (mant >> 13);
  const uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (half & 1u))) ++half;  // may carry into the exponent
  return static_cast<uint16_t>(half);
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    const float f = std::ldexp(static_cast<float>(mant), -24);
    return sign != 0 ? -f : f;
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t FloatToBf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if (std::isnan(f)) return static_cast<uint16_t>((x >> 16) | 0x40u);
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

float Bf16ToFloat(uint16_t b) {
  const uint32_t x = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

template <typename T>
void Store(char* base, size_t i, T v) {
  std::memcpy(base + i * sizeof(T), &v, sizeof(T));
}

template <typename T>
T Load(const char* base, size_t i) {
  T v;
  std::memcpy(&v, base + i * sizeof(T), sizeof(T));
  return v;
}

// --- parameters ----------------------------------------------------------------

// One JSON parameter value: bool, string or number (integers stay integers).
absl::Status ReadParameter(absl::string_view where, absl::string_view name, od::value v,
                           Parameter::Value* out) {
  od::json_type type;
  if (auto e = v.type().get(type)) return Invalid(where, ": ", JsonError(e));
  switch (type) {
    case od::json_type::boolean: {
      bool b;
      if (auto e = v.get_bool().get(b)) return Invalid(where, ": ", JsonError(e));
      *out = b;
      return absl::OkStatus();
    }
    case od::json_type::string: {
      std::string_view s;
      if (auto e = v.get_string().get(s)) return Invalid(where, ": ", JsonError(e));
      *out = std::string(s);
      return absl::OkStatus();
    }
    case od::json_type::number: {
      od::number_type nt;
      if (auto e = v.get_number_type().get(nt)) return Invalid(where, ": ", JsonError(e));
      if (nt == od::number_type::signed_integer) {
        int64_t i;
        if (v.get_int64().get(i) == simdjson::SUCCESS) {
          *out = i;
          return absl::OkStatus();
        }
      } else if (nt == od::number_type::unsigned_integer) {
        uint64_t u;
        if (v.get_uint64().get(u) == simdjson::SUCCESS) {
          if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
            *out = static_cast<int64_t>(u);
          } else {
            *out = u;
          }
          return absl::OkStatus();
        }
      }
      double d;
      if (auto e = v.get_double().get(d)) return Invalid(where, ": ", JsonError(e));
      *out = d;
      return absl::OkStatus();
    }
    default:
      return Invalid(where, ": parameter '", name, "' must be a boolean, a number or a string, got ",
                     TypeName(type));
  }
}

// Calls fn(name, value) for each member of a `parameters` object.
template <typename Fn>
absl::Status ForEachParameter(absl::string_view where, od::value v, Fn&& fn) {
  od::object obj;
  if (v.get_object().get(obj) != simdjson::SUCCESS) {
    return Invalid(where, ": 'parameters' must be a JSON object");
  }
  for (auto fr : obj) {
    od::field f;
    if (auto e = std::move(fr).get(f)) return Invalid(where, ": ", JsonError(e));
    std::string_view key;
    if (auto e = f.unescaped_key().get(key)) return Invalid(where, ": ", JsonError(e));
    absl::Status s = fn(std::string(key), f.value());
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status ReadBoolParameter(absl::string_view where, absl::string_view name, od::value v,
                               bool* out) {
  if (v.get_bool().get(*out) != simdjson::SUCCESS) {
    return Invalid(where, ": parameter '", name, "' must be true or false, got ", Token(v));
  }
  return absl::OkStatus();
}

// --- JSON tensor data ----------------------------------------------------------

// Converts one input's `data` (flat or nested) into `out`, which holds
// exactly `count` elements (BYTES: collected first, then copied once). With
// `scalar_ok` (generate requests) the value may also be a single element.
class DataReader {
 public:
  DataReader(const std::string& input, ToriiDataType type, size_t count, bool scalar_ok = false)
      : input_(input), type_(type), count_(count), scalar_ok_(scalar_ok),
        what_(scalar_ok ? "the value" : "'data'") {}

  absl::Status Read(od::value v, char* out, std::vector<std::string_view>* strings) {
    out_ = out;
    strings_ = strings;
    absl::Status s = Walk(v, 0);
    if (!s.ok()) return s;
    if (n_ != count_) return CountMismatch(false);
    return absl::OkStatus();
  }

 private:
  absl::Status CountMismatch(bool more) {
    return Invalid("input '", input_, "': its shape has ", absl::StrCat(count_),
                   " elements but ", what_, " holds ",
                   more ? absl::StrCat("more than ", count_) : absl::StrCat(n_));
  }

  absl::Status Walk(od::value v, int depth) {
    od::json_type type;
    if (auto e = v.type().get(type)) return Invalid("input '", input_, "': ", JsonError(e));
    if (type == od::json_type::array) {
      if (depth >= kMaxDataDepth) {
        return Invalid("input '", input_, "': 'data' is nested deeper than ",
                       absl::StrCat(kMaxDataDepth), " levels");
      }
      od::array arr;
      if (auto e = v.get_array().get(arr)) return Invalid("input '", input_, "': ", JsonError(e));
      for (auto er : arr) {
        od::value el;
        if (auto e = er.get(el)) return Invalid("input '", input_, "': ", JsonError(e));
        absl::Status s = Walk(el, depth + 1);
        if (!s.ok()) return s;
      }
      return absl::OkStatus();
    }
    if (depth == 0 && !scalar_ok_) {
      return Invalid("input '", input_, "': 'data' must be a JSON array, got ", TypeName(type));
    }
    if (n_ >= count_) return CountMismatch(true);
    absl::Status s = Element(v, type);
    ++n_;
    return s;
  }

  absl::Status WrongType(od::value& v, const char* want) {
    return Invalid("input '", input_, "': element ", absl::StrCat(n_), " of ", what_, " must be ", want,
                   absl::StrCat(" for ", DataTypeName(type_), ", got ", Token(v)));
  }

  absl::Status OutOfRange(od::value& v) {
    return Invalid("input '", input_, "': element ", absl::StrCat(n_), " of ", what_, " (", Token(v),
                   absl::StrCat(") is out of range for ", DataTypeName(type_)));
  }

  template <typename T>
  absl::Status Signed(od::value& v) {
    int64_t i;
    auto e = v.get_int64().get(i);
    if (e == simdjson::NUMBER_OUT_OF_RANGE) return OutOfRange(v);
    if (e == simdjson::INCORRECT_TYPE) {
      // Above INT64_MAX the parser reads an unsigned integer.
      uint64_t u;
      if (v.get_uint64().get(u) == simdjson::SUCCESS) return OutOfRange(v);
    }
    if (e) return WrongType(v, "an integer");
    if (i < std::numeric_limits<T>::min() || i > std::numeric_limits<T>::max()) return OutOfRange(v);
    Store<T>(out_, n_, static_cast<T>(i));
    return absl::OkStatus();
  }

  template <typename T>
  absl::Status Unsigned(od::value& v) {
    uint64_t u;
    auto e = v.get_uint64().get(u);
    if (e == simdjson::NUMBER_OUT_OF_RANGE) return OutOfRange(v);
    if (e == simdjson::INCORRECT_TYPE) {
      // A negative integer is a number of the wrong range, not of the wrong kind.
      int64_t i;
      if (v.get_int64().get(i) == simdjson::SUCCESS) return OutOfRange(v);
    }
    if (e) return WrongType(v, "a non-negative integer");
    if (u > std::numeric_limits<T>::max()) return OutOfRange(v);
    Store<T>(out_, n_, static_cast<T>(u));
    return absl::OkStatus();
  }

  absl::Status Number(od::value& v, double max, double* d) {
    auto e = v.get_double().get(*d);
    if (e == simdjson::NUMBER_OUT_OF_RANGE) return OutOfRange(v);
    if (e) return WrongType(v, "a number");
    if (std::fabs(*d) > max) return OutOfRange(v);
    return absl::OkStatus();
  }

  absl::Status Element(od::value& v, od::json_type type) {
    double d;
    switch (type_) {
      case TORII_TYPE_BOOL: {
        bool b;
        if (type != od::json_type::boolean || v.get_bool().get(b)) return WrongType(v, "true or false");
        out_[n_] = b ? 1 : 0;
        return absl::OkStatus();
      }
      case TORII_TYPE_INT8: return Signed<int8_t>(v);
      case TORII_TYPE_INT16: return Signed<int16_t>(v);
      case TORII_TYPE_INT32: return Signed<int32_t>(v);
      case TORII_TYPE_INT64: return Signed<int64_t>(v);
      case TORII_TYPE_UINT8: return Unsigned<uint8_t>(v);
      case TORII_TYPE_UINT16: return Unsigned<uint16_t>(v);
      case TORII_TYPE_UINT32: return Unsigned<uint32_t>(v);
      case TORII_TYPE_UINT64: return Unsigned<uint64_t>(v);
      case TORII_TYPE_FP16: {
        if (auto s = Number(v, 65504.0, &d); !s.ok()) return s;
        Store<uint16_t>(out_, n_, FloatToHalf(static_cast<float>(d)));
        return absl::OkStatus();
      }
      case TORII_TYPE_BF16: {
        if (auto s = Number(v, FLT_MAX, &d); !s.ok()) return s;
        Store<uint16_t>(out_, n_, FloatToBf16(static_cast<float>(d)));
        return absl::OkStatus();
      }
      case TORII_TYPE_FP32: {
        if (auto s = Number(v, FLT_MAX, &d); !s.ok()) return s;
        Store<float>(out_, n_, static_cast<float>(d));
        return absl::OkStatus();
      }
      case TORII_TYPE_FP64: {
        if (auto s = Number(v, DBL_MAX, &d); !s.ok()) return s;
        Store<double>(out_, n_, d);
        return absl::OkStatus();
      }
      case TORII_TYPE_BYTES: {
        std::string_view s;
        if (type != od::json_type::string || v.get_string().get(s)) return WrongType(v, "a string");
        if (s.size() > std::numeric_limits<uint32_t>::max()) return OutOfRange(v);
        strings_->push_back(s);
        return absl::OkStatus();
      }
      default:
        return Invalid("input '", input_, "': unsupported datatype");
    }
  }

  const std::string& input_;
  const ToriiDataType type_;
  const size_t count_;
  const bool scalar_ok_;
  const char* const what_;
  char* out_ = nullptr;
  std::vector<std::string_view>* strings_ = nullptr;
  size_t n_ = 0;
};

// --- the request --------------------------------------------------------------

struct Parse {
  size_t json_length;
  size_t max_input_bytes;
  const SystemSharedMemory* shared_memory;  // may be null
  InferRequestBuffers* buffers;
  InferenceRequest* request;
  OutputFormat* format;
  size_t binary_offset;      // next unread byte of the binary part
  size_t converted_bytes = 0;

  absl::Status Input(od::value v, size_t index);
  absl::Status Output(od::value v, size_t index);
  absl::Status InputData(const std::string& name, od::value data, InferenceInput* in);
};

// Converts JSON tensor values into one raw buffer kept in `buffers`, for an
// input whose shape is set; at most `max_input_bytes` in all (with
// `*converted_bytes` already used).
absl::Status ReadTensorData(const std::string& name, od::value data, bool scalar_ok,
                            size_t max_input_bytes, size_t* converted_bytes,
                            InferRequestBuffers* buffers, InferenceInput* in) {
  // Element count and size, checked for overflow against the limit before
  // anything is allocated.
  size_t count = 1;
  for (int64_t d : in->shape) {
    if (d != 0 && count > std::numeric_limits<size_t>::max() / static_cast<size_t>(d)) {
      count = std::numeric_limits<size_t>::max();
      break;
    }
    count *= static_cast<size_t>(d);
  }
  const size_t elem = in->datatype == TORII_TYPE_BYTES ? 4 : DataTypeSize(in->datatype);
  const size_t left = max_input_bytes - *converted_bytes;
  if (count > left / elem) {
    return Invalid("input '", name, "': shape ", ShapeString(in->shape),
                   absl::StrCat(" declares more tensor data than the limit of ", max_input_bytes,
                                " bytes (--max-request-bytes)"));
  }
  DataReader reader(name, in->datatype, count, scalar_ok);
  if (in->datatype != TORII_TYPE_BYTES) {
    const size_t bytes = count * elem;
    std::unique_ptr<char[]> raw(new char[bytes == 0 ? 1 : bytes]);
    absl::Status s = reader.Read(data, raw.get(), nullptr);
    if (!s.ok()) return s;
    in->data = raw.get();
    in->byte_size = bytes;
    *converted_bytes += bytes;
    buffers->converted.push_back(std::move(raw));
    return absl::OkStatus();
  }
  // BYTES: the strings stay where the parser unescaped them until the exact
  // size is known, then are copied once, length-prefixed.
  std::vector<std::string_view> strings;
  strings.reserve(count);
  absl::Status s = reader.Read(data, nullptr, &strings);
  if (!s.ok()) return s;
  size_t bytes = 4 * strings.size();
  for (std::string_view e : strings) bytes += e.size();
  if (bytes > left) {
    return Invalid("input '", name,
                   absl::StrCat("': its strings take ", bytes, " bytes, more than the limit of ",
                                max_input_bytes, " bytes (--max-request-bytes)"));
  }
  std::unique_ptr<char[]> raw(new char[bytes == 0 ? 1 : bytes]);
  char* p = raw.get();
  for (std::string_view e : strings) {
    const uint32_t len = static_cast<uint32_t>(e.size());
    const unsigned char prefix[4] = {static_cast<unsigned char>(len), static_cast<unsigned char>(len >> 8),
                                     static_cast<unsigned char>(len >> 16),
                                     static_cast<unsigned char>(len >> 24)};
    std::memcpy(p, prefix, 4);
    if (!e.empty()) std::memcpy(p + 4, e.data(), e.size());
    p += 4 + e.size();
  }
  in->data = raw.get();
  in->byte_size = bytes;
  *converted_bytes += bytes;
  buffers->converted.push_back(std::move(raw));
  return absl::OkStatus();
}

absl::Status Parse::InputData(const std::string& name, od::value data, InferenceInput* in) {
  return ReadTensorData(name, data, /*scalar_ok=*/false, max_input_bytes, &converted_bytes,
                        buffers, in);
}

absl::Status Parse::Input(od::value v, size_t index) {
  const std::string where = absl::StrCat("inputs[", index, "]");
  od::object obj;
  if (v.get_object().get(obj) != simdjson::SUCCESS) return Invalid(where, " must be a JSON object");
  InferenceInput in;

  std::string_view sv;
  auto e = obj.find_field_unordered("name").get_string().get(sv);
  if (e == simdjson::NO_SUCH_FIELD) return Invalid(where, " has no 'name'");
  if (e) return Invalid(where, ": 'name' must be a string");
  in.name = std::string(sv);
  const std::string input = absl::StrCat("input '", in.name, "'");

  e = obj.find_field_unordered("datatype").get_string().get(sv);
  if (e == simdjson::NO_SUCH_FIELD) return Invalid(input, " has no 'datatype'");
  if (e) return Invalid(input, ": 'datatype' must be a string");
  in.datatype = DataTypeFromName(AV(sv));
  if (in.datatype == TORII_TYPE_INVALID) {
    return Invalid(input, ": unknown datatype '", AV(sv),
                   "' (expected BOOL, UINT8..UINT64, INT8..INT64, FP16, FP32, FP64, BF16 or BYTES)");
  }

  od::array shape;
  e = obj.find_field_unordered("shape").get_array().get(shape);
  if (e == simdjson::NO_SUCH_FIELD) return Invalid(input, " has no 'shape'");
  if (e) return Invalid(input, ": 'shape' must be an array of integers");
  for (auto dr : shape) {
    int64_t d;
    od::value dv;
    if (dr.get(dv) || dv.get_int64().get(d)) {
      return Invalid(input, ": 'shape' must be an array of non-negative integers");
    }
    if (d < 0) {
      return Invalid(input, absl::StrCat(": shape dimension ", d, " is negative"));
    }
    in.shape.push_back(d);
  }

  bool binary = false;
  uint64_t binary_size = 0;
  Parameters shm;  // shared_memory_region, _offset, _byte_size
  od::value params;
  e = obj.find_field_unordered("parameters").get(params);
  if (e == simdjson::SUCCESS) {
    absl::Status s = ForEachParameter(input, params, [&](const std::string& key, od::value pv) {
      if (key == "binary_data_size") {
        if (pv.get_uint64().get(binary_size) != simdjson::SUCCESS) {
          return Invalid(input, ": 'binary_data_size' must be a non-negative integer, got ", Token(pv));
        }
        binary = true;
      } else if (IsSharedMemoryParameter(key)) {
        Parameter::Value value;
        absl::Status ps = ReadParameter(input, key, pv, &value);
        if (ps.ok()) shm.Set(key, std::move(value));
        return ps;
      }
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
  } else if (e != simdjson::NO_SUCH_FIELD) {
    return Invalid(input, ": ", JsonError(e));
  }
  auto region = SharedMemoryRefFromParameters(shm, "input", in.name);
  if (!region.ok()) return region.status();

  od::value data;
  e = obj.find_field_unordered("data").get(data);
  const bool has_data = e == simdjson::SUCCESS;
  if (e && e != simdjson::NO_SUCH_FIELD) return Invalid(input, ": ", JsonError(e));
  std::vector<absl::string_view> sources;
  if (has_data) sources.push_back("'data'");
  if (binary) sources.push_back("'binary_data_size'");
  if (region->has_value()) sources.push_back("'shared_memory_region'");
  if (sources.size() != 1) {
    return Invalid(input,
                   " must have exactly one of 'data', a 'binary_data_size' parameter or a "
                   "'shared_memory_region' parameter; it has ",
                   sources.empty() ? "none" : absl::StrJoin(sources, " and "));
  }
  if (region->has_value()) {
    if (shared_memory == nullptr) {
      return absl::UnimplementedError(
          absl::StrCat(input, ": shared memory is not available in this server"));
    }
    auto view = buffers->binding.Bind(*shared_memory, **region);
    if (!view.ok()) {
      return absl::Status(view.status().code(), absl::StrCat(input, ": ", view.status().message()));
    }
    in.data = view->data;
    in.byte_size = view->byte_size;
  } else if (binary) {
    const size_t body_size = buffers->body.size();
    if (json_length == body_size) {
      return Invalid(input,
                     " has binary_data_size but the request has no binary part: set the "
                     "Inference-Header-Content-Length header to the length of the JSON");
    }
    if (binary_size > body_size - binary_offset) {
      return Invalid(input, absl::StrCat(" has binary_data_size ", binary_size, " but only ",
                                         body_size - binary_offset,
                                         " bytes of binary data remain after the JSON header"));
    }
    in.data = buffers->body.data() + binary_offset;
    in.byte_size = static_cast<size_t>(binary_size);
    binary_offset += static_cast<size_t>(binary_size);
  } else {
    absl::Status s = InputData(in.name, data, &in);
    if (!s.ok()) return s;
  }
  request->inputs.push_back(std::move(in));
  return absl::OkStatus();
}

absl::Status Parse::Output(od::value v, size_t index) {
  const std::string where = absl::StrCat("outputs[", index, "]");
  od::object obj;
  if (v.get_object().get(obj) != simdjson::SUCCESS) return Invalid(where, " must be a JSON object");
  RequestedOutput out;
  std::string_view sv;
  auto e = obj.find_field_unordered("name").get_string().get(sv);
  if (e == simdjson::NO_SUCH_FIELD) return Invalid(where, " has no 'name'");
  if (e) return Invalid(where, ": 'name' must be a string");
  out.name = std::string(sv);
  const std::string output = absl::StrCat("output '", out.name, "'");
  bool binary = false;
  Parameters shm;
  od::value params;
  e = obj.find_field_unordered("parameters").get(params);
  if (e == simdjson::SUCCESS) {
    absl::Status s = ForEachParameter(output, params, [&](const std::string& key, od::value pv) {
      if (key == "binary_data") {
        absl::Status bs = ReadBoolParameter(output, key, pv, &binary);
        if (bs.ok()) format->binary.emplace_back(out.name, binary);
        return bs;
      }
      if (key == "classification") {
        return absl::UnimplementedError(
            absl::StrCat(output, ": the '", key, "' parameter is not supported by Torii"));
      }
      Parameter::Value value;
      absl::Status ps = ReadParameter(output, key, pv, &value);
      if (!ps.ok()) return ps;
      // The shared-memory parameters are the frontend's, as binary_data is.
      (IsSharedMemoryParameter(key) ? shm : out.parameters).Set(key, std::move(value));
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
  } else if (e != simdjson::NO_SUCH_FIELD) {
    return Invalid(output, ": ", JsonError(e));
  }
  auto region = SharedMemoryRefFromParameters(shm, "output", out.name);
  if (!region.ok()) return region.status();
  if (region->has_value()) {
    if (binary) {
      return Invalid(output, " sets both 'shared_memory_region' and 'binary_data'; choose one");
    }
    if (shared_memory == nullptr) {
      return absl::UnimplementedError(
          absl::StrCat(output, ": shared memory is not available in this server"));
    }
    auto view = buffers->binding.Bind(*shared_memory, **region);
    if (!view.ok()) {
      return absl::Status(view.status().code(), absl::StrCat(output, ": ", view.status().message()));
    }
    buffers->binding.AddOutput(out.name, *view);
    format->shared_memory.emplace_back(out.name, (*region)->region);
  }
  request->requested_outputs.push_back(std::move(out));
  return absl::OkStatus();
}

}  // namespace

const std::string* OutputFormat::SharedMemoryRegion(absl::string_view output_name) const {
  for (const auto& s : shared_memory) {
    if (s.first == output_name) return &s.second;
  }
  return nullptr;
}

bool OutputFormat::Binary(absl::string_view output_name) const {
  for (const auto& b : binary) {
    if (b.first == output_name) return b.second;
  }
  return binary_by_default;
}

absl::StatusOr<std::optional<size_t>> ParseInferHeaderLength(const std::string* value,
                                                             size_t body_size) {
  if (value == nullptr) return std::optional<size_t>();
  uint64_t n;
  if (!absl::SimpleAtoi(*value, &n) || n > body_size) {
    return Invalid("Inference-Header-Content-Length must be the byte length of the JSON part, between "
                   "0 and the body size ",
                   absl::StrCat(body_size, ", got '", *value, "'"));
  }
  return std::optional<size_t>(static_cast<size_t>(n));
}

absl::Status ParseRawInferRequest(const ModelMetadata& model, InferRequestBuffers* buffers,
                                  InferenceRequest* request, OutputFormat* format) {
  if (model.inputs.size() != 1) {
    return Invalid("a raw binary request (Inference-Header-Content-Length: 0) needs a model with "
                   "one input; model '",
                   model.name, "' has ", absl::StrCat(model.inputs.size()),
                   ": send a JSON inference header naming them");
  }
  const TensorMetadata& spec = model.inputs.front();
  InferenceInput in;
  in.name = spec.name;
  in.datatype = spec.datatype;
  // The wire shape starts with the batch dimension (-1) when the model
  // batches: a raw request is one row.
  auto dim = spec.shape.begin();
  if (model.max_batch_size > 0) {
    in.shape.push_back(1);
    if (dim != spec.shape.end()) ++dim;
  }
  int variable = -1;
  size_t elements = 1;
  for (; dim != spec.shape.end(); ++dim) {
    if (*dim < 0) {
      if (variable >= 0) {
        return Invalid("the shape of the raw input '", spec.name, "' ", ShapeString(spec.shape),
                       " cannot be deduced: it has more than one variable dimension; send a "
                       "JSON inference header with the shape");
      }
      variable = static_cast<int>(in.shape.size());
    } else {
      elements *= static_cast<size_t>(*dim);
    }
    in.shape.push_back(*dim);
  }
  std::string& body = buffers->body;
  if (spec.datatype == TORII_TYPE_BYTES) {
    if (variable >= 0 || elements != 1) {
      return Invalid("a raw binary request to the BYTES input '", spec.name,
                     "' needs the input to have shape [1], not ", ShapeString(spec.shape));
    }
    if (body.size() > std::numeric_limits<uint32_t>::max()) {
      return Invalid("the raw BYTES element is larger than 4 GiB");
    }
    // One element: its 4-byte length, then the body.
    const uint32_t len = static_cast<uint32_t>(body.size());
    std::unique_ptr<char[]> raw(new char[4 + body.size()]);
    const unsigned char prefix[4] = {static_cast<unsigned char>(len), static_cast<unsigned char>(len >> 8),
                                     static_cast<unsigned char>(len >> 16),
                                     static_cast<unsigned char>(len >> 24)};
    std::memcpy(raw.get(), prefix, 4);
    if (!body.empty()) std::memcpy(raw.get() + 4, body.data(), body.size());
    in.data = raw.get();
    in.byte_size = 4 + body.size();
    buffers->converted.push_back(std::move(raw));
  } else {
    if (variable >= 0) {
      const size_t row = elements * DataTypeSize(spec.datatype);
      // A size that is not a whole number of rows fails validation, which
      // names the byte size and the shape.
      in.shape[static_cast<size_t>(variable)] =
          row == 0 ? 0 : static_cast<int64_t>(body.size() / row);
    }
    in.data = body.data();
    in.byte_size = body.size();
  }
  request->inputs.push_back(std::move(in));
  format->binary_by_default = true;  // as Triton answers a raw request
  return absl::OkStatus();
}

absl::Status ParseInferRequest(size_t json_length, size_t max_input_bytes,
                               const SystemSharedMemory* shared_memory,
                               InferRequestBuffers* buffers, InferenceRequest* request,
                               OutputFormat* format) {
  std::string& body = buffers->body;
  EnsureBodyPadding(body);
  if (json_length > body.size()) return Invalid("the JSON header is longer than the body");

  static thread_local od::parser shared_parser;
  std::unique_ptr<od::parser> own_parser;
  od::parser* parser = &shared_parser;
  if (json_length > kSharedParserMaxBytes) {
    own_parser = std::make_unique<od::parser>();
    parser = own_parser.get();
  }
  od::document doc;
  if (auto e = parser->iterate(body.data(), json_length, body.capacity()).get(doc)) {
    return Invalid("the request body is not valid JSON: ", JsonError(e));
  }
  od::object root;
  if (auto e = doc.get_object().get(root)) {
    if (e == simdjson::INCORRECT_TYPE) return Invalid("the request body must be a JSON object");
    return Invalid("the request body is not valid JSON: ", JsonError(e));
  }
  Parse p{json_length, max_input_bytes, shared_memory, buffers, request, format, json_length};
  bool has_inputs = false;
  for (auto fr : root) {
    od::field f;
    if (auto e = std::move(fr).get(f)) return Invalid("the request body is not valid JSON: ", JsonError(e));
    std::string_view key;
    if (auto e = f.unescaped_key().get(key)) return Invalid("invalid JSON key: ", JsonError(e));
    od::value v = f.value();
    if (key == "id") {
      std::string_view id;
      if (v.get_string().get(id)) return Invalid("'id' must be a string, got ", Token(v));
      request->id = std::string(id);
    } else if (key == "parameters") {
      absl::Status s = ForEachParameter("request", v, [&](const std::string& name, od::value pv) {
        if (name == "binary_data_output") {
          return ReadBoolParameter("request", name, pv, &format->binary_by_default);
        }
        Parameter::Value value;
        absl::Status ps = ReadParameter("request", name, pv, &value);
        if (ps.ok()) request->parameters.Set(name, std::move(value));
        return ps;
      });
      if (!s.ok()) return s;
    } else if (key == "inputs" || key == "outputs") {
      od::array arr;
      if (v.get_array().get(arr)) return Invalid("'", AV(key), "' must be an array");
      size_t i = 0;
      for (auto er : arr) {
        od::value el;
        if (auto e = er.get(el)) return Invalid("'", AV(key), "': ", JsonError(e));
        absl::Status s = key == "inputs" ? p.Input(el, i) : p.Output(el, i);
        if (!s.ok()) return s;
        ++i;
      }
      if (key == "inputs") has_inputs = true;
    } else {
      // Other members (model_name, ...) carry nothing the URL does not: the
      // parser skips them.
    }
  }
  const char* rest;
  if (doc.current_location().get(rest) == simdjson::SUCCESS) {
    return Invalid("the JSON header has data after its object (check Inference-Header-Content-Length)");
  }
  if (!has_inputs) return Invalid("the request has no 'inputs'");
  if (p.binary_offset != body.size()) {
    return Invalid(absl::StrCat("the body has ", body.size() - json_length,
                                " bytes after the JSON header but the inputs' binary_data_size add up to ",
                                p.binary_offset - json_length));
  }
  return absl::OkStatus();
}

// --- the response --------------------------------------------------------------

absl::StatusOr<char*> HttpInferResponse::AllocateBuffer(size_t index) {
  const size_t n = outputs()[index].byte_size;
  if (binding_ != nullptr && binding_->has_outputs()) {
    // An output the client placed in shared memory is written there.
    auto region = binding_->OutputBuffer(outputs()[index].name, n);
    if (!region.ok() || *region != nullptr) return region;
  }
  buffers_.emplace_back(new char[n == 0 ? 1 : n]);
  return buffers_.back().get();
}

namespace {

// `generate`: a single element is written alone, not in an array, and the
// message for text that is not UTF-8 points to /infer.
absl::Status WriteJsonData(const OutputTensor& t, size_t count, JsonWriter* w,
                           bool generate = false) {
  const char* base = t.data;
  const size_t size = DataTypeSize(t.datatype);
  if (t.datatype != TORII_TYPE_BYTES && t.byte_size != count * size) {
    return absl::InternalError(absl::StrCat("output '", t.name, "' holds ", t.byte_size,
                                            " bytes but its shape ", ShapeString(t.shape), " of ",
                                            DataTypeName(t.datatype), " needs ", count * size));
  }
  const bool unwrap = generate && count == 1;
  if (!unwrap) w->StartArray();
  for (size_t i = 0, off = 0; i < count; ++i) {
    switch (t.datatype) {
      case TORII_TYPE_BOOL: w->Bool(base[i] != 0); break;
      case TORII_TYPE_UINT8: w->Uint(Load<uint8_t>(base, i)); break;
      case TORII_TYPE_UINT16: w->Uint(Load<uint16_t>(base, i)); break;
      case TORII_TYPE_UINT32: w->Uint(Load<uint32_t>(base, i)); break;
      case TORII_TYPE_UINT64: w->Uint(Load<uint64_t>(base, i)); break;
      case TORII_TYPE_INT8: w->Int(Load<int8_t>(base, i)); break;
      case TORII_TYPE_INT16: w->Int(Load<int16_t>(base, i)); break;
      case TORII_TYPE_INT32: w->Int(Load<int32_t>(base, i)); break;
      case TORII_TYPE_INT64: w->Int(Load<int64_t>(base, i)); break;
      case TORII_TYPE_FP16: w->Float(HalfToFloat(Load<uint16_t>(base, i))); break;
      case TORII_TYPE_BF16: w->Float(Bf16ToFloat(Load<uint16_t>(base, i))); break;
      case TORII_TYPE_FP32: w->Float(Load<float>(base, i)); break;
      case TORII_TYPE_FP64: w->Double(Load<double>(base, i)); break;
      case TORII_TYPE_BYTES: {
        if (off + 4 > t.byte_size) {
          return absl::InternalError(absl::StrCat("output '", t.name, "' is malformed BYTES: element ",
                                                  i, " has no length prefix"));
        }
        const unsigned char* q = reinterpret_cast<const unsigned char*>(base + off);
        const size_t len = q[0] | (q[1] << 8) | (q[2] << 16) | (static_cast<size_t>(q[3]) << 24);
        off += 4;
        if (len > t.byte_size - off) {
          return absl::InternalError(absl::StrCat("output '", t.name, "' is malformed BYTES: element ",
                                                  i, " runs past the end"));
        }
        if (!simdjson::validate_utf8(base + off, len)) {
          return absl::InvalidArgumentError(absl::StrCat(
              "output '", t.name, "' element ", i,
              " is not UTF-8 text and cannot be returned as JSON; request it with ",
              generate ? "/infer and " : "", "\"binary_data\": true"));
        }
        w->String(absl::string_view(base + off, len));
        off += len;
        if (i + 1 == count && off != t.byte_size) {
          return absl::InternalError(absl::StrCat("output '", t.name, "' has ", t.byte_size - off,
                                                  " bytes after its last BYTES element"));
        }
        break;
      }
      default:
        return absl::InternalError(absl::StrCat("output '", t.name, "' has no valid datatype"));
    }
  }
  if (!unwrap) w->EndArray();
  return absl::OkStatus();
}

void WriteParameter(const Parameter& p, JsonWriter* w) {
  if (p.is_bool()) {
    w->Bool(p.as_bool());
  } else if (p.is_int64()) {
    w->Int(p.as_int64());
  } else if (p.is_uint64()) {
    w->Uint(p.as_uint64());
  } else if (p.is_double()) {
    w->Double(p.as_double());
  } else {
    w->String(p.as_string());
  }
}

void WriteParameters(const Parameters& params, JsonWriter* w) {
  for (const auto& [name, p] : params) {
    w->Key(name);
    WriteParameter(p, w);
  }
}

}  // namespace

absl::Status WriteInferResponse(std::shared_ptr<const InferenceResponse> response,
                                const OutputFormat& format, HttpResponse* out) {
  const InferenceResponse& r = *response;
  std::string json;
  json.reserve(256);
  JsonWriter w(&json);
  w.StartObject();
  if (!r.id.empty()) {
    w.Key("id");
    w.String(r.id);
  }
  w.Key("model_name");
  w.String(r.model_name);
  w.Key("model_version");
  w.String(r.model_version);
  if (!r.parameters.empty()) {
    w.Key("parameters");
    w.StartObject();
    WriteParameters(r.parameters, &w);
    w.EndObject();
  }
  w.Key("outputs");
  w.StartArray();
  std::vector<absl::string_view> tail;
  for (const OutputTensor& t : r.outputs()) {
    w.StartObject();
    w.Key("name");
    w.String(t.name);
    w.Key("datatype");
    w.String(DataTypeName(t.datatype));
    w.Key("shape");
    w.StartArray();
    size_t count = 1;
    for (int64_t d : t.shape) {
      w.Int(d);
      count *= static_cast<size_t>(d < 0 ? 0 : d);
    }
    w.EndArray();
    if (const std::string* region = format.SharedMemoryRegion(t.name)) {
      // Written in place: the answer says where, and how much.
      w.Key("parameters");
      w.StartObject();
      w.Key("shared_memory_region");
      w.String(*region);
      w.Key("shared_memory_byte_size");
      w.Uint(t.byte_size);
      w.EndObject();
    } else if (format.Binary(t.name)) {
      w.Key("parameters");
      w.StartObject();
      w.Key("binary_data_size");
      w.Uint(t.byte_size);
      w.EndObject();
      if (t.byte_size > 0) tail.emplace_back(t.data, t.byte_size);
    } else {
      w.Key("data");
      absl::Status s = WriteJsonData(t, count, &w);
      if (!s.ok()) return s;
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();

  out->status = 200;
  if (!tail.empty()) {
    out->SetHeader("Content-Type", "application/octet-stream");
    out->SetHeader("Inference-Header-Content-Length", std::to_string(json.size()));
    out->keep = std::move(response);
  } else {
    out->SetHeader("Content-Type", "application/json");
  }
  out->body = std::move(json);
  out->tail = std::move(tail);
  return absl::OkStatus();
}

// --- Triton's generate extension -------------------------------------------------

namespace {

// The shape of a generate input holding `count` values, from the model's
// declared shape as Triton infers it: the fixed dimensions take their share,
// the innermost variable dimension the rest, any other variable dimension
// (the batch dimension of a batching model among them) 1.
absl::StatusOr<Shape> GenerateShape(const TensorMetadata& t, size_t count) {
  Shape shape(t.shape.begin(), t.shape.end());
  size_t fixed = 1;
  int innermost_variable = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 0) {
      innermost_variable = static_cast<int>(i);
      shape[i] = 1;
    } else {
      fixed *= static_cast<size_t>(shape[i]);
    }
  }
  if (innermost_variable < 0) {
    if (count == fixed) return shape;
    return Invalid("input '", t.name, "' has shape ", ShapeString(t.shape), ": it takes ",
                   absl::StrCat(fixed, " value(s), got ", count));
  }
  if (fixed == 0 ? count != 0 : count % fixed != 0) {
    return Invalid("input '", t.name, "' has shape ", ShapeString(t.shape), ": ",
                   absl::StrCat(count, " value(s) do not fill it (a multiple of ", fixed,
                                " is needed)"));
  }
  shape[static_cast<size_t>(innermost_variable)] =
      static_cast<int64_t>(fixed == 0 ? 0 : count / fixed);
  return shape;
}

struct GenerateParse {
  const ModelMetadata& model;
  size_t max_input_bytes;
  InferRequestBuffers* buffers;
  InferenceRequest* request;
  size_t converted_bytes = 0;

  const TensorMetadata* FindInput(std::string_view name) const {
    for (const TensorMetadata& t : model.inputs) {
      if (t.name == name) return &t;
    }
    return nullptr;
  }

  // One member of the request object (`top`) or of its "parameters".
  absl::Status Member(const std::string& key, od::value v, bool top) {
    if (top && key == "parameters") {
      if (FindInput(key) != nullptr) {
        return Invalid("the key 'parameters' holds the request's parameters but model '",
                       model.name, "' also has an input named 'parameters'");
      }
      od::object obj;
      if (v.get_object().get(obj) != simdjson::SUCCESS) {
        od::json_type type = od::json_type::null;
        (void)v.type().get(type);
        return Invalid("expected a JSON object for 'parameters', got ", TypeName(type));
      }
      for (auto fr : obj) {
        od::field f;
        if (auto e = std::move(fr).get(f)) return Invalid("'parameters': ", JsonError(e));
        std::string_view name;
        if (auto e = f.unescaped_key().get(name)) return Invalid("'parameters': ", JsonError(e));
        absl::Status s = Member(std::string(name), f.value(), /*top=*/false);
        if (!s.ok()) return absl::Status(s.code(), absl::StrCat("'parameters': ", s.message()));
      }
      return absl::OkStatus();
    }
    const TensorMetadata* input = FindInput(key);
    if (top && key == "id" && input == nullptr) {
      // The request id, also passed on as a parameter, as Triton does.
      std::string_view id;
      if (v.get_string().get(id)) return Invalid("'id' must be a string, got ", Token(v));
      request->id = std::string(id);
      request->parameters.Set("id", std::string(id));
      return absl::OkStatus();
    }
    if (input != nullptr) return Input(*input, v);
    od::json_type type;
    if (auto e = v.type().get(type)) return Invalid("the request body is not valid JSON: ", JsonError(e));
    if (type == od::json_type::object || type == od::json_type::array ||
        type == od::json_type::null) {
      return Invalid("parameter '", key,
                     "' has invalid type: model '", model.name, "' has no input of that name, so it is "
                     "a request parameter, which must be a string, a number or a boolean, got ",
                     TypeName(type));
    }
    Parameter::Value value;
    absl::Status s = ReadParameter("request", key, v, &value);
    if (!s.ok()) return s;
    request->parameters.Set(key, std::move(value));
    return absl::OkStatus();
  }

  absl::Status Input(const TensorMetadata& t, od::value v) {
    od::json_type type;
    if (auto e = v.type().get(type)) return Invalid("input '", t.name, "': ", JsonError(e));
    size_t count = 1;
    if (type == od::json_type::array) {
      if (auto e = v.count_elements().get(count)) return Invalid("input '", t.name, "': ", JsonError(e));
    } else if (type == od::json_type::object || type == od::json_type::null) {
      return Invalid("input '", t.name, "' must be a value or a flat array of values of ",
                     DataTypeName(t.datatype), ", got ", TypeName(type));
    }
    InferenceInput in;
    in.name = t.name;
    in.datatype = t.datatype;
    auto shape = GenerateShape(t, count);
    if (!shape.ok()) return shape.status();
    in.shape = *std::move(shape);
    absl::Status s = ReadTensorData(t.name, v, /*scalar_ok=*/true, max_input_bytes,
                                    &converted_bytes, buffers, &in);
    if (!s.ok()) return s;
    request->inputs.push_back(std::move(in));
    return absl::OkStatus();
  }
};

}  // namespace

absl::Status ParseGenerateRequest(const ModelMetadata& model, size_t max_input_bytes,
                                  InferRequestBuffers* buffers, InferenceRequest* request) {
  std::string& body = buffers->body;
  // An empty body is an empty request (Triton's reading): validation then
  // names the inputs that are missing.
  if (absl::StripAsciiWhitespace(body).empty()) return absl::OkStatus();
  EnsureBodyPadding(body);
  static thread_local od::parser shared_parser;
  std::unique_ptr<od::parser> own_parser;
  od::parser* parser = &shared_parser;
  if (body.size() > kSharedParserMaxBytes) {
    own_parser = std::make_unique<od::parser>();
    parser = own_parser.get();
  }
  od::document doc;
  if (auto e = parser->iterate(body.data(), body.size(), body.capacity()).get(doc)) {
    return Invalid("the request body is not valid JSON: ", JsonError(e));
  }
  od::object root;
  if (auto e = doc.get_object().get(root)) {
    if (e == simdjson::INCORRECT_TYPE) return Invalid("the request body must be a JSON object");
    return Invalid("the request body is not valid JSON: ", JsonError(e));
  }
  GenerateParse p{model, max_input_bytes, buffers, request};
  for (auto fr : root) {
    od::field f;
    if (auto e = std::move(fr).get(f)) return Invalid("the request body is not valid JSON: ", JsonError(e));
    std::string_view key;
    if (auto e = f.unescaped_key().get(key)) return Invalid("invalid JSON key: ", JsonError(e));
    absl::Status s = p.Member(std::string(key), f.value(), /*top=*/true);
    if (!s.ok()) return s;
  }
  const char* rest;
  if (doc.current_location().get(rest) == simdjson::SUCCESS) {
    return Invalid("the request body has data after its JSON object");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> GenerateResponseJson(const InferenceResponse& response) {
  // Triton collects the members in a map by name (the first of a name wins:
  // id, model_name, model_version, then parameters, then outputs) and writes
  // them in the map's order.
  struct Member {
    const std::string* text = nullptr;
    const Parameter* parameter = nullptr;
    const OutputTensor* output = nullptr;
  };
  std::map<std::string, Member> members;
  if (!response.id.empty()) members.emplace("id", Member{&response.id});
  members.emplace("model_name", Member{&response.model_name});
  members.emplace("model_version", Member{&response.model_version});
  for (const auto& [name, p] : response.parameters) members.emplace(name, Member{nullptr, &p});
  for (const OutputTensor& t : response.outputs()) {
    members.emplace(t.name, Member{nullptr, nullptr, &t});
  }
  std::string json;
  json.reserve(256);
  JsonWriter w(&json);
  w.StartObject();
  for (const auto& [name, m] : members) {
    w.Key(name);
    if (m.text != nullptr) {
      w.String(*m.text);
    } else if (m.parameter != nullptr) {
      WriteParameter(*m.parameter, &w);
    } else {
      size_t count = 1;
      for (int64_t d : m.output->shape) count *= static_cast<size_t>(d < 0 ? 0 : d);
      absl::Status s = WriteJsonData(*m.output, count, &w, /*generate=*/true);
      if (!s.ok()) return s;
    }
  }
  w.EndObject();
  return json;
}

}  // namespace http
}  // namespace torii
