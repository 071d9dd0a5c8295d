// A small streaming JSON writer for the responses the HTTP endpoints build.
// Numbers are written with std::to_chars (shortest text that reads back to
// the same value: FP32 outputs stay short), strings escaped per RFC 8259.
#ifndef TORII_SERVER_HTTP_JSON_WRITER_H_
#define TORII_SERVER_HTTP_JSON_WRITER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace torii {
namespace http {

class JsonWriter {
 public:
  /// Appends to `out`, which must outlive the writer.
  explicit JsonWriter(std::string* out) : out_(out) {}

  void StartObject();
  void EndObject();
  void StartArray();
  void EndArray();
  /// An object member's name; the next call writes its value.
  void Key(absl::string_view name);
  void String(absl::string_view s);
  void Bool(bool b);
  void Int(int64_t v);
  void Uint(uint64_t v);
  /// Non-finite values are written as NaN, Infinity and -Infinity, which
  /// Python's json and rapidjson read (strict JSON has no spelling for them).
  void Double(double v);
  void Float(float v);
  void Null();
  /// An already serialized JSON value, written as is.
  void Raw(absl::string_view json);

 private:
  void BeforeValue();

  std::string* out_;
  // Per open container: whether it already holds an element.
  std::vector<bool> has_element_;
  bool after_key_ = false;
};

/// Appends `s` as a JSON string literal (with quotes).
void AppendJsonString(std::string* out, absl::string_view s);

/// {"error":"<message>"}: the body of every error answer.
std::string ErrorJson(absl::string_view message);

}  // namespace http
}  // namespace torii

#endif  // TORII_SERVER_HTTP_JSON_WRITER_H_
