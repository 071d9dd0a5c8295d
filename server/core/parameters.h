// Request, output and response parameters, as every frontend carries them:
// a name and a typed value (the v2 protocol's InferParameter). Frontends
// convert their wire form to these once; nothing below them sees a wire type.
#ifndef TORII_SERVER_CORE_PARAMETERS_H_
#define TORII_SERVER_CORE_PARAMETERS_H_

#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/strings/string_view.h"

namespace torii {

/// One parameter value: bool, int64, uint64, double or string.
struct Parameter {
  using Value = std::variant<bool, int64_t, uint64_t, double, std::string>;
  Value value;

  bool is_bool() const { return std::holds_alternative<bool>(value); }
  bool is_int64() const { return std::holds_alternative<int64_t>(value); }
  bool is_uint64() const { return std::holds_alternative<uint64_t>(value); }
  bool is_double() const { return std::holds_alternative<double>(value); }
  bool is_string() const { return std::holds_alternative<std::string>(value); }
  bool as_bool() const { return std::get<bool>(value); }
  int64_t as_int64() const { return std::get<int64_t>(value); }
  uint64_t as_uint64() const { return std::get<uint64_t>(value); }
  double as_double() const { return std::get<double>(value); }
  const std::string& as_string() const { return std::get<std::string>(value); }

  /// An integer value (int64, or a uint64 that fits), for parameters that
  /// mean a count or a duration whichever integer type a client sent.
  bool AsInteger(int64_t* out) const;
};

/// Parameters in the order they arrived (few per request: a vector beats a
/// map). Names are unique within one list.
class Parameters {
 public:
  using Entry = std::pair<std::string, Parameter>;

  const Parameter* Find(absl::string_view name) const;
  /// Sets `name` (replacing an existing value).
  void Set(std::string name, Parameter::Value value);
  bool Erase(absl::string_view name);

  bool empty() const { return entries_.empty(); }
  size_t size() const { return entries_.size(); }
  std::vector<Entry>::const_iterator begin() const { return entries_.begin(); }
  std::vector<Entry>::const_iterator end() const { return entries_.end(); }
  void clear() { entries_.clear(); }

 private:
  std::vector<Entry> entries_;
};

}  // namespace torii

#endif  // TORII_SERVER_CORE_PARAMETERS_H_
