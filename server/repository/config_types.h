// Config datatypes (TYPE_FP32, ...) <-> the runner ABI's ToriiDataType. The
// ABI enum uses the config's numbers, so the conversion is a cast (checked by
// static_asserts in config_types.cc).
#ifndef TORII_SERVER_REPOSITORY_CONFIG_TYPES_H_
#define TORII_SERVER_REPOSITORY_CONFIG_TYPES_H_

#include "absl/strings/string_view.h"
#include "model_config.pb.h"
#include "torii/runner_abi.h"

namespace torii {

/// TYPE_FP32 -> TORII_TYPE_FP32 (TYPE_STRING -> TORII_TYPE_BYTES).
inline ToriiDataType DataTypeFromConfig(inference::DataType t) {
  return static_cast<ToriiDataType>(t);
}
inline inference::DataType ConfigTypeFromDataType(ToriiDataType t) {
  return static_cast<inference::DataType>(t);
}

/// TORII_TYPE_BYTES -> "TYPE_STRING", for messages about config files.
absl::string_view ConfigTypeName(ToriiDataType t);

}  // namespace torii

#endif  // TORII_SERVER_REPOSITORY_CONFIG_TYPES_H_
