#include "server/tools/runner/tensor_json.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "server/tools/runner/half_float.h"
#include "server/core/datatype.h"

namespace torii {
namespace runner_tool {
namespace {

using nlohmann::json;
// Outputs keep the v2 member order: name, datatype, shape, data.
using ojson = nlohmann::ordered_json;

constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string Base64Encode(const std::string& in) {
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += kBase64[(v >> s) & 63];
  }
  if (i < in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    if (i + 1 < in.size()) v |= uint8_t(in[i + 1]) << 8;
    out += kBase64[(v >> 18) & 63];
    out += kBase64[(v >> 12) & 63];
    out += i + 1 < in.size() ? kBase64[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

bool Base64Decode(const std::string& in, std::string* out) {
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    const char* p = std::strchr(kBase64, c);
    if (p == nullptr || c == '\0') return false;
    acc = (acc << 6) | static_cast<uint32_t>(p - kBase64);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return true;
}

bool IsUtf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n;
    if (c < 0x80) {
      n = 0;
    } else if ((c >> 5) == 6) {
      n = 1;
    } else if ((c >> 4) == 14) {
      n = 2;
    } else if ((c >> 3) == 30) {
      n = 3;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;  // truncated sequence
    for (size_t k = 1; k <= n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
    }
    // Overlong forms and surrogates are not valid UTF-8.
    if (n == 1 && c < 0xc2) return false;
    if (n == 2) {
      const auto c1 = static_cast<unsigned char>(s[i + 1]);
      if ((c == 0xe0 && c1 < 0xa0) || (c == 0xed && c1 >= 0xa0)) return false;
    }
    if (n == 3) {
      const auto c1 = static_cast<unsigned char>(s[i + 1]);
      if (c > 0xf4 || (c == 0xf0 && c1 < 0x90) || (c == 0xf4 && c1 >= 0x90)) return false;
    }
    i += n + 1;
  }
  return true;
}

// Walks the nesting: the shape of `v`, checking every array at a depth has
// the same length and that leaves are all at the same depth.
absl::Status InferShape(const json& v, std::vector<int64_t>* shape) {
  const json* p = &v;
  shape->clear();
  while (p->is_array()) {
    shape->push_back(static_cast<int64_t>(p->size()));
    if (p->empty()) break;
    p = &(*p)[0];
  }
  return absl::OkStatus();
}

absl::Status Flatten(const json& v, const std::vector<int64_t>& shape, size_t depth,
                     std::vector<const json*>* out) {
  if (depth == shape.size()) {
    if (v.is_array()) {
      return absl::InvalidArgumentError("the array is not rectangular (nesting depths differ)");
    }
    out->push_back(&v);
    return absl::OkStatus();
  }
  if (!v.is_array() || static_cast<int64_t>(v.size()) != shape[depth]) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the array is not rectangular: at depth ", depth, " expected ", shape[depth],
        " elements, found ", v.is_array() ? std::to_string(v.size()) : std::string("a value")));
  }
  for (const auto& e : v) {
    absl::Status s = Flatten(e, shape, depth + 1, out);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<double> FloatOf(const json& e) {
  if (e.is_number()) return e.get<double>();
  if (e.is_string()) {
    const std::string s = e.get<std::string>();
    if (s == "nan" || s == "NaN") return std::numeric_limits<double>::quiet_NaN();
    if (s == "inf" || s == "Infinity") return std::numeric_limits<double>::infinity();
    if (s == "-inf" || s == "-Infinity") return -std::numeric_limits<double>::infinity();
  }
  return absl::InvalidArgumentError(absl::StrCat("expected a number, got ", e.dump()));
}

template <typename T>
absl::StatusOr<T> IntOf(const json& e) {
  if (e.is_number_unsigned()) {
    const uint64_t v = e.get<uint64_t>();
    if (v <= static_cast<uint64_t>(std::numeric_limits<T>::max())) return static_cast<T>(v);
  } else if (e.is_number_integer()) {
    const int64_t v = e.get<int64_t>();
    if (v >= 0 || std::numeric_limits<T>::is_signed) {
      if (v >= static_cast<int64_t>(std::numeric_limits<T>::lowest()) &&
          (v < 0 || static_cast<uint64_t>(v) <= static_cast<uint64_t>(std::numeric_limits<T>::max()))) {
        return static_cast<T>(v);
      }
    }
  } else if (e.is_number_float()) {
    const double d = e.get<double>();
    if (std::trunc(d) == d && d >= static_cast<double>(std::numeric_limits<T>::lowest()) &&
        d <= static_cast<double>(std::numeric_limits<T>::max())) {
      return static_cast<T>(d);
    }
    return absl::InvalidArgumentError(
        absl::StrCat(e.dump(), " is not an integer in the range of the datatype"));
  } else {
    return absl::InvalidArgumentError(absl::StrCat("expected an integer, got ", e.dump()));
  }
  return absl::InvalidArgumentError(absl::StrCat(e.dump(), " is out of range for the datatype"));
}

template <typename T>
absl::Status AppendInt(const json& e, std::string* out) {
  auto v = IntOf<T>(e);
  if (!v.ok()) return v.status();
  const T x = *v;
  out->append(reinterpret_cast<const char*>(&x), sizeof(T));
  return absl::OkStatus();
}

template <typename T>
void AppendRaw(T x, std::string* out) {
  out->append(reinterpret_cast<const char*>(&x), sizeof(T));
}

absl::Status AppendElement(ToriiDataType dt, const json& e, std::string* out) {
  switch (dt) {
    case TORII_TYPE_BOOL:
      if (e.is_boolean()) {
        out->push_back(e.get<bool>() ? 1 : 0);
        return absl::OkStatus();
      }
      if (e.is_number_integer() && (e.get<int64_t>() == 0 || e.get<int64_t>() == 1)) {
        out->push_back(static_cast<char>(e.get<int64_t>()));
        return absl::OkStatus();
      }
      return absl::InvalidArgumentError(absl::StrCat("expected true/false, got ", e.dump()));
    case TORII_TYPE_UINT8: return AppendInt<uint8_t>(e, out);
    case TORII_TYPE_UINT16: return AppendInt<uint16_t>(e, out);
    case TORII_TYPE_UINT32: return AppendInt<uint32_t>(e, out);
    case TORII_TYPE_UINT64: return AppendInt<uint64_t>(e, out);
    case TORII_TYPE_INT8: return AppendInt<int8_t>(e, out);
    case TORII_TYPE_INT16: return AppendInt<int16_t>(e, out);
    case TORII_TYPE_INT32: return AppendInt<int32_t>(e, out);
    case TORII_TYPE_INT64: return AppendInt<int64_t>(e, out);
    case TORII_TYPE_FP16:
    case TORII_TYPE_BF16:
    case TORII_TYPE_FP32:
    case TORII_TYPE_FP64: {
      auto d = FloatOf(e);
      if (!d.ok()) return d.status();
      if (dt == TORII_TYPE_FP64) {
        AppendRaw(*d, out);
      } else if (dt == TORII_TYPE_FP32) {
        AppendRaw(static_cast<float>(*d), out);
      } else if (dt == TORII_TYPE_FP16) {
        AppendRaw(FloatToHalf(static_cast<float>(*d)), out);
      } else {
        AppendRaw(FloatToBf16(static_cast<float>(*d)), out);
      }
      return absl::OkStatus();
    }
    case TORII_TYPE_BYTES: {
      if (e.is_string()) {
        AppendBytesElement(*out, e.get<std::string>());
        return absl::OkStatus();
      }
      if (e.is_object() && e.size() == 1 && e.contains("b64") && e["b64"].is_string()) {
        std::string bytes;
        if (!Base64Decode(e["b64"].get<std::string>(), &bytes)) {
          return absl::InvalidArgumentError(absl::StrCat("invalid base64 in ", e.dump()));
        }
        AppendBytesElement(*out, bytes);
        return absl::OkStatus();
      }
      return absl::InvalidArgumentError(
          absl::StrCat("expected a string or {\"b64\": ...}, got ", e.dump()));
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("datatype ", DataTypeName(dt), " cannot be given as JSON"));
  }
}

ojson FloatJson(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  return d;
}

template <typename T>
T Read(const std::string& data, size_t i) {
  T v;
  std::memcpy(&v, data.data() + i * sizeof(T), sizeof(T));
  return v;
}

ojson Nest(const std::vector<ojson>& flat, const std::vector<int64_t>& shape, size_t depth,
           size_t* pos) {
  if (depth == shape.size()) return flat[(*pos)++];
  ojson a = ojson::array();
  for (int64_t i = 0; i < shape[depth]; ++i) a.push_back(Nest(flat, shape, depth + 1, pos));
  return a;
}

}  // namespace

absl::StatusOr<std::vector<int64_t>> ParseShape(const std::string& text) {
  absl::string_view s = absl::StripAsciiWhitespace(text);
  absl::ConsumePrefix(&s, "[");
  absl::ConsumeSuffix(&s, "]");
  std::vector<int64_t> shape;
  if (absl::StripAsciiWhitespace(s).empty()) return shape;
  for (absl::string_view part : absl::StrSplit(s, ',')) {
    int64_t d;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(part), &d) || d < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad shape '", text, "': expected non-negative integers like 1,4"));
    }
    shape.push_back(d);
  }
  return shape;
}

absl::StatusOr<HostTensor> TensorFromJson(const std::string& name, ToriiDataType datatype,
                                          const std::string& json_text,
                                          const std::optional<std::vector<int64_t>>& shape) {
  auto fail = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("input '", name, "': ", why));
  };
  json v = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (v.is_discarded()) return fail("not valid JSON");
  std::vector<int64_t> nesting;
  absl::Status s = InferShape(v, &nesting);
  if (!s.ok()) return fail(s.message());
  std::vector<const json*> flat;
  s = Flatten(v, nesting, 0, &flat);
  if (!s.ok()) return fail(s.message());

  HostTensor t;
  t.name = name;
  t.datatype = datatype;
  t.shape = nesting;
  if (shape.has_value()) {
    int64_t n = 1;
    for (int64_t d : *shape) n *= d;
    if (n != static_cast<int64_t>(flat.size())) {
      return fail(absl::StrCat("--shape ", ShapeString(*shape), " needs ", n,
                               " elements, the JSON has ", flat.size()));
    }
    t.shape = *shape;
  }
  for (size_t i = 0; i < flat.size(); ++i) {
    s = AppendElement(datatype, *flat[i], &t.data);
    if (!s.ok()) {
      return fail(absl::StrCat("element ", i, " (", DataTypeName(datatype), "): ", s.message()));
    }
  }
  return t;
}

nlohmann::ordered_json TensorToJson(const HostTensor& t, bool nested) {
  ojson out;
  out["name"] = t.name;
  out["datatype"] = DataTypeName(t.datatype);
  out["shape"] = t.shape;
  std::vector<ojson> data;
  if (t.datatype == TORII_TYPE_BYTES) {
    // The server has checked every BYTES output it hands back.
    auto elements = DecodeBytesElements(t.data);
    if (!elements.ok()) data.push_back(ojson{{"error", std::string(elements.status().message())}});
    for (absl::string_view e : elements.ok() ? *elements : std::vector<absl::string_view>{}) {
      std::string s(e);
      if (IsUtf8(s)) {
        data.emplace_back(s);
      } else {
        data.push_back(ojson{{"b64", Base64Encode(s)}});
      }
    }
  } else {
    const size_t esize = DataTypeSize(t.datatype);
    const size_t n = esize == 0 ? 0 : t.data.size() / esize;
    for (size_t i = 0; i < n; ++i) {
      switch (t.datatype) {
        case TORII_TYPE_BOOL: data.emplace_back(t.data[i] != 0); break;
        case TORII_TYPE_UINT8: data.emplace_back(Read<uint8_t>(t.data, i)); break;
        case TORII_TYPE_UINT16: data.emplace_back(Read<uint16_t>(t.data, i)); break;
        case TORII_TYPE_UINT32: data.emplace_back(Read<uint32_t>(t.data, i)); break;
        case TORII_TYPE_UINT64: data.emplace_back(Read<uint64_t>(t.data, i)); break;
        case TORII_TYPE_INT8: data.emplace_back(Read<int8_t>(t.data, i)); break;
        case TORII_TYPE_INT16: data.emplace_back(Read<int16_t>(t.data, i)); break;
        case TORII_TYPE_INT32: data.emplace_back(Read<int32_t>(t.data, i)); break;
        case TORII_TYPE_INT64: data.emplace_back(Read<int64_t>(t.data, i)); break;
        case TORII_TYPE_FP16: data.push_back(FloatJson(HalfToFloat(Read<uint16_t>(t.data, i)))); break;
        case TORII_TYPE_BF16: data.push_back(FloatJson(Bf16ToFloat(Read<uint16_t>(t.data, i)))); break;
        case TORII_TYPE_FP32: data.push_back(FloatJson(Read<float>(t.data, i))); break;
        case TORII_TYPE_FP64: data.push_back(FloatJson(Read<double>(t.data, i))); break;
        default: break;
      }
    }
  }
  int64_t elements = 1;
  for (int64_t d : t.shape) elements *= d;
  if (nested && elements == static_cast<int64_t>(data.size())) {
    size_t pos = 0;
    out["data"] = Nest(data, t.shape, 0, &pos);
  } else {
    out["data"] = data;
  }
  return out;
}

}  // namespace runner_tool
}  // namespace torii
