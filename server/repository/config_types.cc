#include "server/repository/config_types.h"

namespace torii {

static_assert(TORII_TYPE_BOOL == int(inference::TYPE_BOOL));
static_assert(TORII_TYPE_UINT64 == int(inference::TYPE_UINT64));
static_assert(TORII_TYPE_INT64 == int(inference::TYPE_INT64));
static_assert(TORII_TYPE_FP64 == int(inference::TYPE_FP64));
static_assert(TORII_TYPE_BYTES == int(inference::TYPE_STRING));
static_assert(TORII_TYPE_BF16 == int(inference::TYPE_BF16));

absl::string_view ConfigTypeName(ToriiDataType t) {
  return inference::DataType_Name(static_cast<inference::DataType>(t));
}

}  // namespace torii
