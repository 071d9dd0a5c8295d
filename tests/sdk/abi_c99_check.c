/* The runner ABI header must be plain C99: this file is compiled with
 * -std=c99 -Wall -Wextra -Werror -pedantic, so any C++ (or GNU C) that leaks
 * into runner_abi.h breaks the build. It also checks the header is usable:
 * a complete runner against it would need nothing more. */
#include "torii/runner_abi.h"

const ToriiRunnerInfo* torii_runner_info(void) {
  static const ToriiRunnerInfo info = {sizeof(ToriiRunnerInfo), TORII_RUNNER_ABI_VERSION_MAJOR,
                                       TORII_RUNNER_ABI_VERSION_MINOR, "c99", "1", "0", "cc",
                                       "none"};
  return &info;
}

int torii_abi_c99_check_host_has(const ToriiHostApi* host) {
  return TORII_HOST_HAS(host, batch_is_cancelled) ? 1 : 0;
}
