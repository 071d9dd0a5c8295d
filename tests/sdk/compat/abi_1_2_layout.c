/* The ABI 1.2 layout, measured by the compiler from the frozen 1.2 header and
 * exported as plain arrays for abi_compat_test.cc to compare with today's. */
#include <stddef.h>

#include "abi_1_2_fields.h"
#include "torii/runner_abi.h"

#if TORII_RUNNER_ABI_VERSION_MAJOR != 1 || TORII_RUNNER_ABI_VERSION_MINOR != 2
#error "abi_1_2_layout.c must be compiled against the frozen ABI 1.2 header"
#endif

#define TORII_HOST_OFFSET(f) offsetof(ToriiHostApi, f),

const size_t torii_abi_1_2_runner_info_size = sizeof(ToriiRunnerInfo);
const size_t torii_abi_1_2_tensor_size = sizeof(ToriiTensor);
const size_t torii_abi_1_2_parameter_size = sizeof(ToriiParameter);
const size_t torii_abi_1_2_host_api_size = sizeof(ToriiHostApi);
const size_t torii_abi_1_2_host_api_offsets[] = {
    TORII_ABI_1_2_HOST_API_FIELDS(TORII_HOST_OFFSET)};
