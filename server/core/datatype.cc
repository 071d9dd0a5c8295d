#include "server/core/datatype.h"

namespace torii {

ToriiDataType DataTypeFromName(absl::string_view name) {
  for (int t = TORII_TYPE_BOOL; t <= TORII_TYPE_BF16; ++t) {
    if (name == DataTypeName(static_cast<ToriiDataType>(t))) {
      return static_cast<ToriiDataType>(t);
    }
  }
  return TORII_TYPE_INVALID;
}

}  // namespace torii
