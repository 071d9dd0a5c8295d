#include "server/http/json_writer.h"

#include <charconv>
#include <cmath>

namespace torii {
namespace http {

void AppendJsonString(std::string* out, absl::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t run = 0;  // start of the pending run of bytes that need no escape
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      case '\b': out->append("\\b"); break;
      case '\f': out->append("\\f"); break;
      default: {
        const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
        out->append(esc, 6);
      }
    }
  }
  out->append(s.data() + run, s.size() - run);
  out->push_back('"');
}

std::string ErrorJson(absl::string_view message) {
  std::string out = "{\"error\":";
  AppendJsonString(&out, message);
  out.push_back('}');
  return out;
}

void JsonWriter::BeforeValue() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!has_element_.empty()) {
    if (has_element_.back()) out_->push_back(',');
    has_element_.back() = true;
  }
}

void JsonWriter::StartObject() {
  BeforeValue();
  out_->push_back('{');
  has_element_.push_back(false);
}

void JsonWriter::EndObject() {
  out_->push_back('}');
  has_element_.pop_back();
}

void JsonWriter::StartArray() {
  BeforeValue();
  out_->push_back('[');
  has_element_.push_back(false);
}

void JsonWriter::EndArray() {
  out_->push_back(']');
  has_element_.pop_back();
}

void JsonWriter::Key(absl::string_view name) {
  BeforeValue();
  AppendJsonString(out_, name);
  out_->push_back(':');
  after_key_ = true;
}

void JsonWriter::String(absl::string_view s) {
  BeforeValue();
  AppendJsonString(out_, s);
}

void JsonWriter::Bool(bool b) {
  BeforeValue();
  out_->append(b ? "true" : "false");
}

void JsonWriter::Null() {
  BeforeValue();
  out_->append("null");
}

void JsonWriter::Raw(absl::string_view json) {
  BeforeValue();
  out_->append(json.data(), json.size());
}

namespace {
template <typename T>
void AppendNumber(std::string* out, T v) {
  char buf[40];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, r.ptr);
}

template <typename T>
bool AppendNonFinite(std::string* out, T v) {
  if (std::isnan(v)) {
    out->append("NaN");
  } else if (std::isinf(v)) {
    out->append(v > 0 ? "Infinity" : "-Infinity");
  } else {
    return false;
  }
  return true;
}
}  // namespace

void JsonWriter::Int(int64_t v) {
  BeforeValue();
  AppendNumber(out_, v);
}

void JsonWriter::Uint(uint64_t v) {
  BeforeValue();
  AppendNumber(out_, v);
}

void JsonWriter::Double(double v) {
  BeforeValue();
  if (!AppendNonFinite(out_, v)) AppendNumber(out_, v);
}

void JsonWriter::Float(float v) {
  BeforeValue();
  if (!AppendNonFinite(out_, v)) AppendNumber(out_, v);
}

}  // namespace http
}  // namespace torii
