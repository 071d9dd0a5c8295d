/* A runner that claims runner ABI 2.0, as if built with a future SDK that
 * broke compatibility. The current server must refuse it, naming both
 * versions. Built against the current header; only the claim differs. */
#include "torii/runner_abi.h"

TORII_RUNNER_EXPORT const ToriiRunnerInfo* torii_runner_info(void) {
  static const ToriiRunnerInfo info = {sizeof(ToriiRunnerInfo), 2, 0, "compat_major_2", "2.0.0",
                                       "2.0.0", "cc", "fixture"};
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
