/* A runner that claims runner ABI 1.99, as if built with a far newer SDK
 * whose host functions this server lacks. The current server must refuse it:
 * a runner's minor may not exceed the server's. Built against the current
 * header; only the claim differs. */
#include "torii/runner_abi.h"

TORII_RUNNER_EXPORT const ToriiRunnerInfo* torii_runner_info(void) {
  static const ToriiRunnerInfo info = {sizeof(ToriiRunnerInfo), 1, 99, "compat_minor_99", "1.99.0",
                                       "1.99.0", "cc", "fixture"};
  return &info;
}
TORII_RUNNER_EXPORT ToriiError* torii_runner_model_load(const ToriiHostApi* host,
                                                        ToriiModel* model, void** state) {
  (void)host;
  (void)model;
  *state = 0;
  return 0;
}
TORII_RUNNER_EXPORT void torii_runner_model_unload(void* state) { (void)state; }
TORII_RUNNER_EXPORT ToriiError* torii_runner_instance_create(void* model, uint32_t index,
                                                             void** state) {
  (void)model;
  (void)index;
  *state = 0;
  return 0;
}
TORII_RUNNER_EXPORT void torii_runner_instance_destroy(void* state) { (void)state; }
TORII_RUNNER_EXPORT ToriiError* torii_runner_instance_execute(void* state, ToriiBatch* batch) {
  (void)state;
  (void)batch;
  return 0;
}
