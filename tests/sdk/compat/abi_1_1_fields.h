/* The members of the ABI 1.1 structs, as X-macro lists (see
 * abi_1_0_fields.h). 1.1 appended one function to ToriiHostApi; the other
 * structs are 1.0's. No includes on purpose. */
#ifndef TORII_TESTS_SDK_COMPAT_ABI_1_1_FIELDS_H_
#define TORII_TESTS_SDK_COMPAT_ABI_1_1_FIELDS_H_

#include "abi_1_0_fields.h"

#define TORII_ABI_1_1_HOST_API_FIELDS(X) \
  TORII_ABI_1_0_HOST_API_FIELDS(X) X(batch_is_cancelled)

#endif /* TORII_TESTS_SDK_COMPAT_ABI_1_1_FIELDS_H_ */
