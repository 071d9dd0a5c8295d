/* The ABI 1.0 layout, measured by the compiler from the frozen 1.0 header and
 * exported as plain arrays for abi_compat_test.cc to compare with today's. */
#include <stddef.h>

#include "abi_1_0_fields.h"
#include "torii/runner_abi.h"

#if TORII_RUNNER_ABI_VERSION_MAJOR != 1 || TORII_RUNNER_ABI_VERSION_MINOR != 0
#error "abi_1_0_layout.c must be compiled against the frozen ABI 1.0 header"
#endif

#define TORII_INFO_OFFSET(f) offsetof(ToriiRunnerInfo, f),
#define TORII_TENSOR_OFFSET(f) offsetof(ToriiTensor, f),
#define TORII_PARAMETER_OFFSET(f) offsetof(ToriiParameter, f),
#define TORII_HOST_OFFSET(f) offsetof(ToriiHostApi, f),
#define TORII_ENUM_VALUE(e) (long)(e),

const size_t torii_abi_1_0_runner_info_size = sizeof(ToriiRunnerInfo);
const size_t torii_abi_1_0_runner_info_offsets[] = {
    TORII_ABI_1_0_RUNNER_INFO_FIELDS(TORII_INFO_OFFSET)};
const size_t torii_abi_1_0_tensor_size = sizeof(ToriiTensor);
const size_t torii_abi_1_0_tensor_offsets[] = {TORII_ABI_1_0_TENSOR_FIELDS(TORII_TENSOR_OFFSET)};
const size_t torii_abi_1_0_parameter_size = sizeof(ToriiParameter);
const size_t torii_abi_1_0_parameter_offsets[] = {
    TORII_ABI_1_0_PARAMETER_FIELDS(TORII_PARAMETER_OFFSET)};
const size_t torii_abi_1_0_host_api_size = sizeof(ToriiHostApi);
const size_t torii_abi_1_0_host_api_offsets[] = {
    TORII_ABI_1_0_HOST_API_FIELDS(TORII_HOST_OFFSET)};
const long torii_abi_1_0_enum_values[] = {TORII_ABI_1_0_ENUM_VALUES(TORII_ENUM_VALUE)};
