// Datatype conversions between the wire (v2 names), the config (TYPE_*) and
// the runner ABI (ToriiDataType). The ABI enum uses the config's numbers, so
// config <-> ABI is a cast (checked by static_asserts in datatype.cc).
#ifndef TORII_SERVER_CORE_DATATYPE_H_
#define TORII_SERVER_CORE_DATATYPE_H_

#include "absl/strings/string_view.h"

#include "model_config.pb.h"
#include "torii/runner.h"

namespace torii {

/// "FP32" -> TORII_TYPE_FP32; TORII_TYPE_INVALID for an unknown name.
ToriiDataType DataTypeFromName(absl::string_view name);

/// TYPE_FP32 -> TORII_TYPE_FP32 (TYPE_STRING -> TORII_TYPE_BYTES).
inline ToriiDataType DataTypeFromConfig(inference::DataType t) {
  return static_cast<ToriiDataType>(t);
}

/// TORII_TYPE_BYTES -> "TYPE_STRING", for messages about config files.
absl::string_view ConfigTypeName(ToriiDataType t);

}  // namespace torii

#endif  // TORII_SERVER_CORE_DATATYPE_H_
