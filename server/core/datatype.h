// Datatype names of the v2 protocol ("FP32", "BYTES", ...) <-> the runner
// ABI's ToriiDataType. (Config TYPE_* names live with the config, in
// server/repository/config_types.h.)
#ifndef TORII_SERVER_CORE_DATATYPE_H_
#define TORII_SERVER_CORE_DATATYPE_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "torii/host_checks.h"
#include "torii/runner_abi.h"

namespace torii {

/// "FP32" for TORII_TYPE_FP32; "INVALID" for an unknown value.
inline const char* DataTypeName(ToriiDataType t) { return host_checks::TypeName(t); }
/// Bytes per element; 0 for BYTES and INVALID.
inline size_t DataTypeSize(ToriiDataType t) { return host_checks::TypeSize(t); }

/// Appends one BYTES element (4-byte little-endian length, then the bytes).
inline void AppendBytesElement(std::string& out, absl::string_view element) {
  const auto len = static_cast<uint32_t>(element.size());
  const char prefix[4] = {char(len & 0xff), char((len >> 8) & 0xff), char((len >> 16) & 0xff),
                          char((len >> 24) & 0xff)};
  out.append(prefix, 4);
  out.append(element.data(), element.size());
}

/// "FP32" -> TORII_TYPE_FP32; TORII_TYPE_INVALID for an unknown name.
ToriiDataType DataTypeFromName(absl::string_view name);

/// "[1,3,4]".
template <typename Dims>
std::string ShapeString(const Dims& dims) {
  std::string s = "[";
  bool first = true;
  for (int64_t d : dims) {
    if (!first) s += ",";
    s += std::to_string(d);
    first = false;
  }
  return s + "]";
}

}  // namespace torii

#endif  // TORII_SERVER_CORE_DATATYPE_H_
