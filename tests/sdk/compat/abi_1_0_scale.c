/* A runner as someone wrote it against ABI 1.0: plain C, the bare C ABI (no
 * C++ SDK), compiled with the frozen 1.0 header in abi_1_0/. It must keep
 * loading and running in every later 1.x server.
 *
 * OUTPUT0 = INPUT0 * factor (FP32, any shape; `factor` is a config.pbtxt
 * parameter, default 2). A factor that is not a number fails the load with
 * INVALID_ARGUMENT, so the test can see a 1.0 runner's error cross the ABI.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "torii/runner_abi.h"

#if TORII_RUNNER_ABI_VERSION_MAJOR != 1 || TORII_RUNNER_ABI_VERSION_MINOR != 0
#error "this fixture must be compiled against the frozen ABI 1.0 header"
#endif
#ifdef TORII_HOST_HAS
#error "the ABI 1.0 header has no TORII_HOST_HAS"
#endif

typedef struct ScaleModel {
  const ToriiHostApi* host;
  ToriiModel* model;
  float factor;
} ScaleModel;

TORII_RUNNER_EXPORT const ToriiRunnerInfo* torii_runner_info(void) {
  static const ToriiRunnerInfo info = {
      sizeof(ToriiRunnerInfo), TORII_RUNNER_ABI_VERSION_MAJOR, TORII_RUNNER_ABI_VERSION_MINOR,
      "abi_1_0_scale", "1.0.0", "0.1.0", "cc (c99)", "frozen-abi-1.0"};
  return &info;
}

TORII_RUNNER_EXPORT ToriiError* torii_runner_model_load(const ToriiHostApi* host,
                                                        ToriiModel* model, void** model_state) {
  const char* text;
  char* end = NULL;
  ScaleModel* m;
  char line[128];
  /* A 1.0 runner may rely on every 1.0 function being there. */
  if (host->struct_size < sizeof(ToriiHostApi) || host->abi_version_major != 1) {
    return host->error_new(TORII_STATUS_FAILED_PRECONDITION,
                           "host function table is smaller than ABI 1.0's");
  }
  m = (ScaleModel*)malloc(sizeof(ScaleModel));
  if (m == NULL) return host->error_new(TORII_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  m->host = host;
  m->model = model;
  m->factor = 2.0f;
  text = host->model_parameter(model, "factor");
  if (text != NULL) {
    m->factor = strtof(text, &end);
    if (end == text || *end != '\0') {
      free(m);
      snprintf(line, sizeof line, "abi_1_0_scale: parameter factor '%s' is not a number", text);
      return host->error_new(TORII_STATUS_INVALID_ARGUMENT, line);
    }
  }
  snprintf(line, sizeof line, "abi_1_0_scale: host ABI %u.%u, factor %g",
           (unsigned)host->abi_version_major, (unsigned)host->abi_version_minor, m->factor);
  host->log(model, TORII_LOG_INFO, line);
  *model_state = m;
  return NULL;
}

TORII_RUNNER_EXPORT void torii_runner_model_unload(void* model_state) { free(model_state); }

TORII_RUNNER_EXPORT ToriiError* torii_runner_instance_create(void* model_state,
                                                             uint32_t instance_index,
                                                             void** instance_state) {
  (void)instance_index;
  *instance_state = model_state; /* instances share the immutable model */
  return NULL;
}

TORII_RUNNER_EXPORT void torii_runner_instance_destroy(void* instance_state) {
  (void)instance_state;
}

TORII_RUNNER_EXPORT ToriiError* torii_runner_instance_execute(void* instance_state,
                                                              ToriiBatch* batch) {
  const ScaleModel* m = (const ScaleModel*)instance_state;
  const ToriiHostApi* host = m->host;
  ToriiTensor in;
  ToriiError* err;
  void* buffer = NULL;
  const float* x;
  float* y;
  size_t i, n;
  memset(&in, 0, sizeof in);
  in.struct_size = sizeof in;
  if (!host->batch_input_by_name(batch, "INPUT0", &in)) {
    return host->error_new(TORII_STATUS_INVALID_ARGUMENT, "abi_1_0_scale: no INPUT0");
  }
  if (in.datatype != TORII_TYPE_FP32) {
    return host->error_new(TORII_STATUS_INVALID_ARGUMENT, "abi_1_0_scale: INPUT0 must be FP32");
  }
  if (!host->batch_output_requested(batch, "OUTPUT0")) return NULL;
  err = host->batch_output_allocate(batch, "OUTPUT0", TORII_TYPE_FP32, in.shape, in.ndim,
                                    in.byte_size, &buffer);
  if (err != NULL) return err; /* the host's error, handed back */
  x = (const float*)in.data;
  y = (float*)buffer;
  n = in.byte_size / sizeof(float);
  for (i = 0; i < n; ++i) y[i] = x[i] * m->factor;
  return NULL;
}
