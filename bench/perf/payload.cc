#include "payload.h"

#include <cmath>
#include <cstring>
#include <random>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace torii::perf {
namespace {

using google::protobuf::Value;

int64_t ElementCount(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

template <typename T>
void Put(std::string* out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));  // x86-64 and aarch64: little-endian
  out->append(bytes, sizeof(T));
}

template <typename T>
T Get(const char* p) {
  T value;
  std::memcpy(&value, p, sizeof(T));
  return value;
}

void PutBytesElement(std::string* out, absl::string_view element) {
  Put<uint32_t>(out, static_cast<uint32_t>(element.size()));
  out->append(element.data(), element.size());
}

// Appends one numeric JSON value as `datatype`'s little-endian bytes.
absl::Status PutNumber(std::string* out, const std::string& datatype,
                       double v) {
  if (datatype == "BOOL") {
    Put<uint8_t>(out, v != 0 ? 1 : 0);
  } else if (datatype == "INT8") {
    Put<int8_t>(out, static_cast<int8_t>(v));
  } else if (datatype == "INT16") {
    Put<int16_t>(out, static_cast<int16_t>(v));
  } else if (datatype == "INT32") {
    Put<int32_t>(out, static_cast<int32_t>(v));
  } else if (datatype == "INT64") {
    Put<int64_t>(out, static_cast<int64_t>(v));
  } else if (datatype == "UINT8") {
    Put<uint8_t>(out, static_cast<uint8_t>(v));
  } else if (datatype == "UINT16") {
    Put<uint16_t>(out, static_cast<uint16_t>(v));
  } else if (datatype == "UINT32") {
    Put<uint32_t>(out, static_cast<uint32_t>(v));
  } else if (datatype == "UINT64") {
    Put<uint64_t>(out, static_cast<uint64_t>(v));
  } else if (datatype == "FP32") {
    Put<float>(out, static_cast<float>(v));
  } else if (datatype == "FP64") {
    Put<double>(out, v);
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "datatype ", datatype, " cannot be written from JSON numbers",
        datatype == "FP16" || datatype == "BF16" ? " (use \"b64\")" : ""));
  }
  return absl::OkStatus();
}

// Flattens a (possibly nested) JSON array into `datatype`'s raw encoding.
absl::Status AppendContent(const Value& value, const std::string& datatype,
                           std::string* out, int64_t* count) {
  switch (value.kind_case()) {
    case Value::kListValue:
      for (const Value& v : value.list_value().values()) {
        absl::Status s = AppendContent(v, datatype, out, count);
        if (!s.ok()) return s;
      }
      return absl::OkStatus();
    case Value::kNumberValue:
      ++*count;
      return PutNumber(out, datatype, value.number_value());
    case Value::kBoolValue:
      if (datatype != "BOOL") break;
      ++*count;
      Put<uint8_t>(out, value.bool_value() ? 1 : 0);
      return absl::OkStatus();
    case Value::kStringValue:
      if (datatype != "BYTES") break;
      ++*count;
      PutBytesElement(out, value.string_value());
      return absl::OkStatus();
    default:
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("a ", datatype, " tensor cannot hold this JSON value"));
}

absl::StatusOr<std::vector<int64_t>> ShapeFromJson(const Value& value) {
  if (value.kind_case() != Value::kListValue) {
    return absl::InvalidArgumentError("\"shape\" must be an array");
  }
  std::vector<int64_t> shape;
  for (const Value& d : value.list_value().values()) {
    if (d.kind_case() != Value::kNumberValue || d.number_value() < 0 ||
        d.number_value() != std::floor(d.number_value())) {
      return absl::InvalidArgumentError(
          "\"shape\" must hold non-negative integers");
    }
    shape.push_back(static_cast<int64_t>(d.number_value()));
  }
  return shape;
}

absl::StatusOr<TensorData> TensorFromJson(const std::string& name,
                                          const Value& value,
                                          const InputSpec* spec) {
  TensorData t;
  t.spec.name = name;
  bool have_shape = spec != nullptr;
  if (spec != nullptr) t.spec = *spec;
  const Value* content = &value;
  const Value* b64 = nullptr;
  if (value.kind_case() == Value::kStructValue) {
    const auto& fields = value.struct_value().fields();
    content = nullptr;
    for (const auto& [key, v] : fields) {
      if (key == "content") {
        content = &v;
      } else if (key == "b64") {
        if (v.kind_case() != Value::kStringValue) {
          return absl::InvalidArgumentError(
              absl::StrCat(name, ": \"b64\" must be a string"));
        }
        b64 = &v;
      } else if (key == "shape") {
        auto shape = ShapeFromJson(v);
        if (!shape.ok()) {
          return absl::InvalidArgumentError(
              absl::StrCat(name, ": ", shape.status().message()));
        }
        t.spec.shape = *std::move(shape);
        have_shape = true;
      } else if (key == "datatype") {
        if (v.kind_case() != Value::kStringValue) {
          return absl::InvalidArgumentError(
              absl::StrCat(name, ": \"datatype\" must be a string"));
        }
        t.spec.datatype = v.string_value();
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat(name, ": unknown key \"", key, "\""));
      }
    }
    if ((content == nullptr) == (b64 == nullptr)) {
      return absl::InvalidArgumentError(absl::StrCat(
          name, ": give exactly one of \"content\" and \"b64\""));
    }
  }
  if (t.spec.datatype.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, ": no datatype (add --input ", name,
        ":DATATYPE:SHAPE or a \"datatype\" key)"));
  }
  int64_t size = DatatypeSize(t.spec.datatype);
  if (size == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": unknown datatype ", t.spec.datatype));
  }
  int64_t count = 0;
  if (b64 != nullptr) {
    if (!absl::Base64Unescape(b64->string_value(), &t.raw)) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": \"b64\" is not valid base64"));
    }
    count = size > 0 ? static_cast<int64_t>(t.raw.size()) / size : -1;
  } else {
    absl::Status s = AppendContent(*content, t.spec.datatype, &t.raw, &count);
    if (!s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": ", s.message()));
    }
  }
  if (!have_shape) {
    // No shape anywhere: a flat vector of what was given.
    if (count < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": a BYTES \"b64\" tensor needs a \"shape\""));
    }
    t.spec.shape = {count};
  }
  if (size > 0 &&
      static_cast<int64_t>(t.raw.size()) != ElementCount(t.spec.shape) * size) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, ": ", t.raw.size(), " bytes of data do not fit shape [",
        absl::StrJoin(t.spec.shape, ","), "] of ", t.spec.datatype));
  }
  if (size < 0 && count >= 0 && count != ElementCount(t.spec.shape)) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": ", count, " elements do not fit shape [",
                     absl::StrJoin(t.spec.shape, ","), "]"));
  }
  return t;
}

// Splits a v2 BYTES buffer into its elements.
absl::StatusOr<std::vector<absl::string_view>> SplitBytes(absl::string_view raw) {
  std::vector<absl::string_view> elements;
  size_t pos = 0;
  while (pos < raw.size()) {
    if (raw.size() - pos < 4) {
      return absl::InvalidArgumentError("truncated BYTES length prefix");
    }
    auto len = Get<uint32_t>(raw.data() + pos);
    pos += 4;
    if (raw.size() - pos < len) {
      return absl::InvalidArgumentError("truncated BYTES element");
    }
    elements.push_back(raw.substr(pos, len));
    pos += len;
  }
  return elements;
}

// Raw bytes → the InferTensorContents field for the datatype.
absl::Status FillContents(const TensorData& t,
                          inference::InferTensorContents* c) {
  const std::string& dt = t.spec.datatype;
  const char* p = t.raw.data();
  int64_t size = DatatypeSize(dt);
  size_t n = size > 0 ? t.raw.size() / static_cast<size_t>(size) : 0;
  auto each = [&](auto tag, auto add) {
    using T = decltype(tag);
    for (size_t i = 0; i < n; ++i) add(Get<T>(p + i * sizeof(T)));
  };
  if (dt == "BOOL") {
    each(uint8_t{}, [&](uint8_t v) { c->add_bool_contents(v != 0); });
  } else if (dt == "INT8") {
    each(int8_t{}, [&](int8_t v) { c->add_int_contents(v); });
  } else if (dt == "INT16") {
    each(int16_t{}, [&](int16_t v) { c->add_int_contents(v); });
  } else if (dt == "INT32") {
    each(int32_t{}, [&](int32_t v) { c->add_int_contents(v); });
  } else if (dt == "INT64") {
    each(int64_t{}, [&](int64_t v) { c->add_int64_contents(v); });
  } else if (dt == "UINT8") {
    each(uint8_t{}, [&](uint8_t v) { c->add_uint_contents(v); });
  } else if (dt == "UINT16") {
    each(uint16_t{}, [&](uint16_t v) { c->add_uint_contents(v); });
  } else if (dt == "UINT32") {
    each(uint32_t{}, [&](uint32_t v) { c->add_uint_contents(v); });
  } else if (dt == "UINT64") {
    each(uint64_t{}, [&](uint64_t v) { c->add_uint64_contents(v); });
  } else if (dt == "FP32") {
    c->mutable_fp32_contents()->Resize(static_cast<int>(n), 0.0f);
    std::memcpy(c->mutable_fp32_contents()->mutable_data(), p, n * 4);
  } else if (dt == "FP64") {
    c->mutable_fp64_contents()->Resize(static_cast<int>(n), 0.0);
    std::memcpy(c->mutable_fp64_contents()->mutable_data(), p, n * 8);
  } else if (dt == "BYTES") {
    auto elements = SplitBytes(t.raw);
    if (!elements.ok()) return elements.status();
    for (absl::string_view e : *elements) c->add_bytes_contents(std::string(e));
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        t.spec.name, ": ", dt, " has no typed contents; use raw (the default)"));
  }
  return absl::OkStatus();
}

}  // namespace

int64_t DatatypeSize(absl::string_view dt) {
  if (dt == "BOOL" || dt == "INT8" || dt == "UINT8") return 1;
  if (dt == "INT16" || dt == "UINT16" || dt == "FP16" || dt == "BF16") return 2;
  if (dt == "INT32" || dt == "UINT32" || dt == "FP32") return 4;
  if (dt == "INT64" || dt == "UINT64" || dt == "FP64") return 8;
  if (dt == "BYTES") return -1;
  return 0;
}

absl::StatusOr<std::vector<int64_t>> ParseDims(absl::string_view text,
                                               bool allow_wildcard) {
  std::vector<int64_t> dims;
  if (text.empty()) return dims;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    int64_t d = 0;
    if (!absl::SimpleAtoi(part, &d) || d < (allow_wildcard ? -1 : 0)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "shape '", text, "': '", part, "' is not a ",
          allow_wildcard ? "dimension" : "non-negative dimension"));
    }
    dims.push_back(d);
  }
  return dims;
}

absl::StatusOr<InputSpec> ParseInputSpec(absl::string_view text) {
  std::vector<absl::string_view> parts = absl::StrSplit(text, ':');
  if (parts.size() != 3 || parts[0].empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--input '", text, "' is not NAME:DATATYPE:SHAPE (e.g. INPUT0:FP32:1,256)"));
  }
  InputSpec spec;
  spec.name = std::string(parts[0]);
  spec.datatype = std::string(parts[1]);
  if (DatatypeSize(spec.datatype) == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--input '", text, "': unknown datatype '", parts[1], "'"));
  }
  auto dims = ParseDims(parts[2]);
  if (!dims.ok()) return dims.status();
  spec.shape = *std::move(dims);
  return spec;
}

absl::StatusOr<std::pair<std::string, std::vector<int64_t>>> ParseShapeFlag(
    absl::string_view text) {
  size_t colon = text.rfind(':');
  if (colon == absl::string_view::npos || colon == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--shape '", text, "' is not NAME:SHAPE (e.g. INPUT0:1,256)"));
  }
  auto dims = ParseDims(text.substr(colon + 1));
  if (!dims.ok()) return dims.status();
  return std::make_pair(std::string(text.substr(0, colon)), *std::move(dims));
}

absl::StatusOr<Sample> MakeSyntheticSample(const std::vector<InputSpec>& specs,
                                           DataMode mode, uint64_t seed,
                                           int string_length) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(-1.0, 1.0);
  Sample sample;
  for (const InputSpec& spec : specs) {
    TensorData t{spec, {}};
    int64_t size = DatatypeSize(spec.datatype);
    int64_t n = ElementCount(spec.shape);
    if (size == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          spec.name, ": unknown datatype '", spec.datatype, "'"));
    }
    if (size < 0) {
      std::string element(static_cast<size_t>(std::max(string_length, 0)), '0');
      for (int64_t i = 0; i < n; ++i) {
        if (mode == DataMode::kRandom) {
          for (char& ch : element) ch = static_cast<char>('a' + rng() % 26);
        }
        PutBytesElement(&t.raw, element);
      }
    } else if (mode == DataMode::kZero) {
      t.raw.assign(static_cast<size_t>(n * size), '\0');
    } else {
      const std::string& dt = spec.datatype;
      t.raw.reserve(static_cast<size_t>(n * size));
      for (int64_t i = 0; i < n; ++i) {
        if (dt == "FP32") {
          Put<float>(&t.raw, static_cast<float>(unit(rng)));
        } else if (dt == "FP64") {
          Put<double>(&t.raw, unit(rng));
        } else if (dt == "FP16" || dt == "BF16") {
          // Sign, small exponent, random mantissa: finite values in (-2, 2).
          uint16_t bits = dt == "FP16" ? 0x3800 : 0x3f00;
          uint16_t mantissa = static_cast<uint16_t>(
              rng() & (dt == "FP16" ? 0x3ff : 0x7f));
          uint16_t sign = static_cast<uint16_t>((rng() & 1) << 15);
          Put<uint16_t>(&t.raw, static_cast<uint16_t>(sign | bits | mantissa));
        } else if (dt == "BOOL") {
          Put<uint8_t>(&t.raw, static_cast<uint8_t>(rng() & 1));
        } else {
          uint64_t bits = rng();
          t.raw.append(reinterpret_cast<const char*>(&bits),
                       static_cast<size_t>(size));
        }
      }
    }
    sample.push_back(std::move(t));
  }
  return sample;
}

absl::StatusOr<std::vector<Sample>> ParseInputDataJson(
    absl::string_view json, const std::vector<InputSpec>& specs) {
  Value root;
  auto parsed = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), &root);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("input data is not valid JSON: ", parsed.ToString()));
  }
  const Value* data = nullptr;
  if (root.kind_case() == Value::kStructValue) {
    auto it = root.struct_value().fields().find("data");
    if (it != root.struct_value().fields().end()) data = &it->second;
  }
  if (data == nullptr || data->kind_case() != Value::kListValue ||
      data->list_value().values_size() == 0) {
    return absl::InvalidArgumentError(
        "input data needs a non-empty \"data\" array: {\"data\": [{...}]}");
  }
  std::vector<Sample> samples;
  for (const Value& entry : data->list_value().values()) {
    if (entry.kind_case() != Value::kStructValue) {
      return absl::InvalidArgumentError(
          "each \"data\" entry must be an object of tensors");
    }
    Sample sample;
    // Spec order first, so the request lists inputs in a stable order.
    const auto& fields = entry.struct_value().fields();
    for (const InputSpec& spec : specs) {
      auto it = fields.find(spec.name);
      if (it == fields.end()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "data entry ", samples.size(), " lacks input ", spec.name));
      }
      auto t = TensorFromJson(spec.name, it->second, &spec);
      if (!t.ok()) return t.status();
      sample.push_back(*std::move(t));
    }
    std::vector<std::string> extra;
    for (const auto& [name, value] : fields) {
      bool known = false;
      for (const InputSpec& spec : specs) known = known || spec.name == name;
      if (!known) extra.push_back(name);
    }
    std::sort(extra.begin(), extra.end());
    for (const std::string& name : extra) {
      auto t = TensorFromJson(name, fields.at(name), nullptr);
      if (!t.ok()) return t.status();
      sample.push_back(*std::move(t));
    }
    samples.push_back(std::move(sample));
  }
  return samples;
}

absl::StatusOr<inference::ModelInferRequest> BuildRequest(
    const Sample& sample, const RequestOptions& options) {
  inference::ModelInferRequest request;
  request.set_model_name(options.model_name);
  request.set_model_version(options.model_version);
  for (const TensorData& t : sample) {
    auto* input = request.add_inputs();
    input->set_name(t.spec.name);
    input->set_datatype(t.spec.datatype);
    for (int64_t d : t.spec.shape) input->add_shape(d);
    if (options.typed) {
      absl::Status s = FillContents(t, input->mutable_contents());
      if (!s.ok()) return s;
    } else {
      request.add_raw_input_contents(t.raw);
    }
  }
  for (const std::string& name : options.outputs) {
    request.add_outputs()->set_name(name);
  }
  return request;
}

size_t PayloadBytes(const Sample& sample) {
  size_t n = 0;
  for (const TensorData& t : sample) n += t.raw.size();
  return n;
}

}  // namespace torii::perf
