/* A runner as someone wrote it against ABI 1.1: plain C, the bare C ABI (no
 * C++ SDK), compiled with the frozen 1.1 header in abi_1_1/. It must keep
 * loading and running in every later 1.x host (server and fake host).
 *
 * OUTPUT0 = INPUT0 * factor (FP32, any shape; `factor` is a config.pbtxt
 * parameter, default 2). It uses what 1.1 added: a batch whose requests were
 * all cancelled fails with CANCELLED (batch_is_cancelled, checked with
 * TORII_HOST_HAS). A request parameter "fail" (a string) fails that request
 * alone with INVALID_ARGUMENT and the string as message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "torii/runner_abi.h"

#if TORII_RUNNER_ABI_VERSION_MAJOR != 1 || TORII_RUNNER_ABI_VERSION_MINOR != 1
#error "this fixture must be compiled against the frozen ABI 1.1 header"
#endif

typedef struct ScaleModel {
  const ToriiHostApi* host;
  float factor;
} ScaleModel;

TORII_RUNNER_EXPORT const ToriiRunnerInfo* torii_runner_info(void) {
  static const ToriiRunnerInfo info = {
      sizeof(ToriiRunnerInfo), TORII_RUNNER_ABI_VERSION_MAJOR, TORII_RUNNER_ABI_VERSION_MINOR,
      "abi_1_1_scale", "1.1.0", "0.1.0", "cc (c99)", "frozen-abi-1.1"};
  return &info;
}

TORII_RUNNER_EXPORT ToriiError* torii_runner_model_load(const ToriiHostApi* host,
                                                        ToriiModel* model, void** model_state) {
  const char* text;
  char* end = NULL;
  ScaleModel* m;
  char line[128];
  if (!TORII_HOST_HAS(host, batch_is_cancelled) || host->abi_version_major != 1) {
    return host->error_new(TORII_STATUS_FAILED_PRECONDITION,
                           "abi_1_1_scale: the host lacks ABI 1.1's batch_is_cancelled");
  }
  m = (ScaleModel*)malloc(sizeof(ScaleModel));
  if (m == NULL) return host->error_new(TORII_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  m->host = host;
  m->factor = 2.0f;
  text = host->model_parameter(model, "factor");
  if (text != NULL) {
    m->factor = strtof(text, &end);
    if (end == text || *end != '\0') {
      free(m);
      snprintf(line, sizeof line, "abi_1_1_scale: parameter factor '%s' is not a number", text);
      return host->error_new(TORII_STATUS_INVALID_ARGUMENT, line);
    }
  }
  snprintf(line, sizeof line, "abi_1_1_scale: host ABI %u.%u, factor %g",
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
  *instance_state = model_state;
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
  ToriiParameter fail;
  ToriiError* err;
  void* buffer = NULL;
  const float* x;
  float* y;
  size_t i, n, r;
  if (host->batch_is_cancelled(batch)) {
    return host->error_new(TORII_STATUS_CANCELLED, "abi_1_1_scale: every request was cancelled");
  }
  for (r = 0; r < host->batch_request_count(batch); ++r) {
    memset(&fail, 0, sizeof fail);
    fail.struct_size = sizeof fail;
    if (host->batch_request_parameter(batch, r, "fail", &fail) &&
        fail.type == TORII_PARAMETER_STRING) {
      host->batch_fail_request(batch, r,
                               host->error_new(TORII_STATUS_INVALID_ARGUMENT, fail.string_value));
    }
  }
  memset(&in, 0, sizeof in);
  in.struct_size = sizeof in;
  if (!host->batch_input_by_name(batch, "INPUT0", &in) || in.datatype != TORII_TYPE_FP32) {
    return host->error_new(TORII_STATUS_INVALID_ARGUMENT, "abi_1_1_scale: INPUT0 must be FP32");
  }
  if (!host->batch_output_requested(batch, "OUTPUT0")) return NULL;
  err = host->batch_output_allocate(batch, "OUTPUT0", TORII_TYPE_FP32, in.shape, in.ndim,
                                    in.byte_size, &buffer);
  if (err != NULL) return err;
  x = (const float*)in.data;
  y = (float*)buffer;
  n = in.byte_size / sizeof(float);
  for (i = 0; i < n; ++i) y[i] = x[i] * m->factor;
  return NULL;
}
