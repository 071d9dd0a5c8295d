#include "http_payload.h"

#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

namespace torii::perf {
namespace {

template <typename T>
T Load(const std::string& raw, size_t i) {
  T v;
  std::memcpy(&v, raw.data() + i * sizeof(T), sizeof(T));
  return v;
}

template <typename T>
void AppendNumber(std::string* out, T v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, r.ptr);
}

void AppendJsonString(std::string* out, absl::string_view s) {
  out->push_back('"');
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(c));
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out->append(buf);
    } else {
      out->push_back(static_cast<char>(c));
    }
  }
  out->push_back('"');
}

// The tensor's raw bytes as a flat JSON array.
absl::Status AppendData(const TensorData& t, std::string* out) {
  const std::string& dt = t.spec.datatype;
  const int64_t size = DatatypeSize(dt);
  out->push_back('[');
  if (dt == "BYTES") {
    size_t off = 0;
    bool first = true;
    while (off + 4 <= t.raw.size()) {
      uint32_t len;
      std::memcpy(&len, t.raw.data() + off, 4);
      off += 4;
      if (len > t.raw.size() - off) break;
      if (!first) out->push_back(',');
      first = false;
      AppendJsonString(out, absl::string_view(t.raw.data() + off, len));
      off += len;
    }
    out->push_back(']');
    return absl::OkStatus();
  }
  if (dt == "FP16" || dt == "BF16" || size <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "input '", t.spec.name, "': ", dt,
        " has no JSON form (as in Triton); use --input-tensor-format=binary"));
  }
  const size_t n = t.raw.size() / static_cast<size_t>(size);
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) out->push_back(',');
    if (dt == "BOOL") {
      out->append(t.raw[i] != 0 ? "true" : "false");
    } else if (dt == "INT8") {
      AppendNumber(out, static_cast<int>(Load<int8_t>(t.raw, i)));
    } else if (dt == "INT16") {
      AppendNumber(out, Load<int16_t>(t.raw, i));
    } else if (dt == "INT32") {
      AppendNumber(out, Load<int32_t>(t.raw, i));
    } else if (dt == "INT64") {
      AppendNumber(out, Load<int64_t>(t.raw, i));
    } else if (dt == "UINT8") {
      AppendNumber(out, static_cast<unsigned>(Load<uint8_t>(t.raw, i)));
    } else if (dt == "UINT16") {
      AppendNumber(out, Load<uint16_t>(t.raw, i));
    } else if (dt == "UINT32") {
      AppendNumber(out, Load<uint32_t>(t.raw, i));
    } else if (dt == "UINT64") {
      AppendNumber(out, Load<uint64_t>(t.raw, i));
    } else if (dt == "FP32") {
      AppendNumber(out, Load<float>(t.raw, i));
    } else if (dt == "FP64") {
      AppendNumber(out, Load<double>(t.raw, i));
    } else {
      return absl::InvalidArgumentError(absl::StrCat("input '", t.spec.name,
                                                     "': unknown datatype ", dt));
    }
  }
  out->push_back(']');
  return absl::OkStatus();
}

}  // namespace

std::string ModelPath(const std::string& model, const std::string& version) {
  std::string path = "/v2/models/";
  for (unsigned char c : model) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      path.push_back(static_cast<char>(c));
    } else {
      char buf[4];
      std::snprintf(buf, sizeof(buf), "%%%02X", c);
      path.append(buf);
    }
  }
  if (!version.empty()) absl::StrAppend(&path, "/versions/", version);
  return path;
}

absl::StatusOr<std::string> HttpRequestJson(const Sample& sample,
                                            const HttpRequestOptions& options) {
  std::string json = "{\"inputs\":[";
  for (size_t i = 0; i < sample.size(); ++i) {
    const TensorData& t = sample[i];
    if (i > 0) json.push_back(',');
    json += "{\"name\":";
    AppendJsonString(&json, t.spec.name);
    absl::StrAppend(&json, ",\"datatype\":\"", t.spec.datatype, "\",\"shape\":[");
    for (size_t d = 0; d < t.spec.shape.size(); ++d) {
      if (d > 0) json.push_back(',');
      AppendNumber(&json, t.spec.shape[d]);
    }
    json.push_back(']');
    if (options.binary_inputs) {
      absl::StrAppend(&json, ",\"parameters\":{\"binary_data_size\":", t.raw.size(), "}");
    } else {
      json += ",\"data\":";
      absl::Status s = AppendData(t, &json);
      if (!s.ok()) return s;
    }
    json.push_back('}');
  }
  json.push_back(']');
  if (!options.outputs.empty()) {
    json += ",\"outputs\":[";
    for (size_t i = 0; i < options.outputs.size(); ++i) {
      if (i > 0) json.push_back(',');
      json += "{\"name\":";
      AppendJsonString(&json, options.outputs[i]);
      json.push_back('}');
    }
    json.push_back(']');
  }
  if (options.binary_outputs) json += ",\"parameters\":{\"binary_data_output\":true}";
  json.push_back('}');
  return json;
}

absl::StatusOr<std::string> BuildHttpRequest(const Sample& sample,
                                             const HttpRequestOptions& options) {
  auto json = HttpRequestJson(sample, options);
  if (!json.ok()) return json.status();
  size_t body = json->size();
  if (options.binary_inputs) {
    for (const TensorData& t : sample) body += t.raw.size();
  }
  std::string out = absl::StrCat(
      "POST ", ModelPath(options.model_name, options.model_version), "/infer HTTP/1.1\r\n",
      "Host: ", options.host, "\r\n",
      "Content-Type: ",
      options.binary_inputs ? "application/octet-stream" : "application/json", "\r\n",
      "Content-Length: ", body, "\r\n");
  if (options.binary_inputs) {
    absl::StrAppend(&out, "Inference-Header-Content-Length: ", json->size(), "\r\n");
  }
  out += "\r\n";
  out.reserve(out.size() + body);
  out += *json;
  if (options.binary_inputs) {
    for (const TensorData& t : sample) out += t.raw;
  }
  return out;
}

absl::StatusOr<inference::ModelMetadataResponse> MetadataFromJson(
    absl::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text.begin(), text.end(), nullptr,
                                           /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("model metadata is not a JSON object: ", text.substr(0, 200)));
  }
  if (j.contains("error")) {
    return absl::UnavailableError(j["error"].is_string() ? j["error"].get<std::string>()
                                                         : j["error"].dump());
  }
  inference::ModelMetadataResponse m;
  auto str = [](const nlohmann::json& o, const char* k) {
    return o.contains(k) && o[k].is_string() ? o[k].get<std::string>() : std::string();
  };
  m.set_name(str(j, "name"));
  m.set_platform(str(j, "platform"));
  if (j.contains("versions") && j["versions"].is_array()) {
    for (const auto& v : j["versions"]) {
      if (v.is_string()) m.add_versions(v.get<std::string>());
    }
  }
  for (const char* key : {"inputs", "outputs"}) {
    if (!j.contains(key) || !j[key].is_array()) continue;
    for (const auto& t : j[key]) {
      auto* out = std::string(key) == "inputs" ? m.add_inputs() : m.add_outputs();
      out->set_name(str(t, "name"));
      out->set_datatype(str(t, "datatype"));
      if (t.contains("shape") && t["shape"].is_array()) {
        for (const auto& d : t["shape"]) {
          if (!d.is_number_integer()) {
            return absl::InvalidArgumentError(
                absl::StrCat("model metadata: tensor '", out->name(), "' has a bad shape"));
          }
          out->add_shape(d.get<int64_t>());
        }
      }
    }
  }
  return m;
}

}  // namespace torii::perf
