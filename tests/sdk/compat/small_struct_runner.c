/* small_struct_runner: checks that a host never writes past the struct_size
 * a runner sets on the out-structs it passes (ToriiTensor, ToriiParameter).
 *
 * A runner built against an older ABI has smaller structs than the host's; a
 * host that fills the whole current struct overwrites the runner's memory
 * behind it. This runner calls every host function that fills a ToriiTensor
 * or a ToriiParameter with buffers whose struct_size ends at each field
 * boundary of today's struct (and one byte into the next field), followed by
 * canary bytes. It fails (model load, or execute) with an INTERNAL error that
 * names the function, the struct_size and the first byte changed past it, if
 * the host wrote a byte past struct_size, changed struct_size itself, or
 * filled a field inside struct_size differently from a full-size call.
 *
 * Plain C, one file, against the current ABI header; no SDK. To use it in a
 * host's tests:
 *   - build it as a runner: torii_add_runner(<target> SOURCES small_struct_runner.c)
 *   - config: any name and max_batch_size; input INPUT0 and output OUTPUT0 of
 *     the same datatype and dims (any); e.g.
 *       input  [ { name: "INPUT0"  data_type: TYPE_FP32 dims: [ -1 ] } ]
 *       output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
 *   - send requests with parameters of every type (each is probed by key and,
 *     on an ABI 1.2 host, by position); OUTPUT0 comes back equal to INPUT0.
 * Load failing, or a request failing with "wrote past struct_size", means the
 * host writes past struct_size (fill through host_checks::FillSized).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "torii/runner_abi.h"

#define CANARY 0xA5
#define SLACK 64 /* canary bytes after the largest struct */

typedef struct Field {
  size_t offset;
  size_t size;
  const char* name;
} Field;

#define FIELD(T, f) {offsetof(T, f), sizeof(((T*)0)->f), #f}

static const Field kTensorFields[] = {
    FIELD(ToriiTensor, struct_size), FIELD(ToriiTensor, name),      FIELD(ToriiTensor, datatype),
    FIELD(ToriiTensor, shape),       FIELD(ToriiTensor, ndim),      FIELD(ToriiTensor, data),
    FIELD(ToriiTensor, byte_size)};
static const Field kParameterFields[] = {
    FIELD(ToriiParameter, struct_size),  FIELD(ToriiParameter, type),
    FIELD(ToriiParameter, bool_value),   FIELD(ToriiParameter, int64_value),
    FIELD(ToriiParameter, uint64_value), FIELD(ToriiParameter, double_value),
    FIELD(ToriiParameter, string_value), FIELD(ToriiParameter, string_size)};

/* Big enough and aligned for either struct plus the canary. */
typedef union Buffer {
  ToriiTensor tensor;
  ToriiParameter parameter;
  unsigned char bytes[(sizeof(ToriiTensor) > sizeof(ToriiParameter) ? sizeof(ToriiTensor)
                                                                      : sizeof(ToriiParameter)) +
                      SLACK];
} Buffer;

/* The host functions that fill an out-struct. */
typedef enum Probe {
  kModelInput,
  kModelOutput,
  kBatchInput,
  kBatchInputByName,
  kBatchRequestParameter,
  kBatchRequestParameterAt
} Probe;
static const char* const kProbeNames[] = {"model_input",       "model_output",
                                          "batch_input",       "batch_input_by_name",
                                          "batch_request_parameter",
                                          "batch_request_parameter_at"};

typedef struct Target {
  const ToriiHostApi* host;
  const ToriiModel* model;
  const ToriiBatch* batch;
  size_t index;     /* tensor or parameter index */
  size_t request;   /* request index */
  const char* name; /* input name or parameter key */
} Target;

static int Call(Probe p, const Target* t, Buffer* out) {
  const char* key = NULL;
  switch (p) {
    case kModelInput: return t->host->model_input(t->model, t->index, &out->tensor);
    case kModelOutput: return t->host->model_output(t->model, t->index, &out->tensor);
    case kBatchInput: return t->host->batch_input(t->batch, t->index, &out->tensor);
    case kBatchInputByName: return t->host->batch_input_by_name(t->batch, t->name, &out->tensor);
    case kBatchRequestParameter:
      return t->host->batch_request_parameter(t->batch, t->request, t->name, &out->parameter);
    case kBatchRequestParameterAt:
      return t->host->batch_request_parameter_at(t->batch, t->request, t->index, &key,
                                                 &out->parameter);
  }
  return 0;
}

static ToriiError* Fail(const ToriiHostApi* host, Probe p, size_t size, const char* what) {
  char line[256];
  snprintf(line, sizeof line, "small_struct_runner: %s with struct_size %u %s",
           kProbeNames[p], (unsigned)size, what);
  return host->error_new(TORII_STATUS_INTERNAL, line);
}

/* Calls `p` with every smaller struct_size; NULL when the host behaved. */
static ToriiError* ProbeStruct(Probe p, const Target* t) {
  const int tensor = p <= kBatchInputByName;
  const Field* fields = tensor ? kTensorFields : kParameterFields;
  const size_t nfields = tensor ? sizeof kTensorFields / sizeof kTensorFields[0]
                                : sizeof kParameterFields / sizeof kParameterFields[0];
  const size_t full = tensor ? sizeof(ToriiTensor) : sizeof(ToriiParameter);
  Buffer ref, buf;
  uint32_t size32;
  size_t k, i, cut;
  int found;
  char what[160];

  memset(&ref, 0, sizeof ref);
  size32 = (uint32_t)full;
  memcpy(ref.bytes, &size32, sizeof size32);
  found = Call(p, t, &ref);

  for (k = 1; k < 2 * nfields; ++k) {
    /* Sizes: where field k/2 starts, and one byte into it. */
    const size_t size = k / 2 < nfields ? fields[k / 2].offset + (k % 2) : full - 1;
    memset(buf.bytes, CANARY, sizeof buf.bytes);
    size32 = (uint32_t)size;
    memcpy(buf.bytes, &size32, sizeof size32);
    if (Call(p, t, &buf) != found) return Fail(t->host, p, size, "answered differently");
    memcpy(&size32, buf.bytes, sizeof size32);
    if (size32 != size) return Fail(t->host, p, size, "changed struct_size");
    cut = size < sizeof size32 ? sizeof size32 : size;
    for (i = cut; i < full + SLACK; ++i) {
      if (buf.bytes[i] != CANARY) {
        snprintf(what, sizeof what, "wrote past struct_size: byte %u of the runner's memory "
                 "changed", (unsigned)i);
        return Fail(t->host, p, size, what);
      }
    }
    for (i = 1; found && i < nfields; ++i) {
      if (fields[i].offset + fields[i].size <= size &&
          memcmp(buf.bytes + fields[i].offset, ref.bytes + fields[i].offset, fields[i].size) != 0) {
        snprintf(what, sizeof what, "filled field '%s' differently from a full-size call",
                 fields[i].name);
        return Fail(t->host, p, size, what);
      }
    }
  }
  return NULL;
}

typedef struct State {
  const ToriiHostApi* host;
  ToriiModel* model;
} State;

TORII_RUNNER_EXPORT const ToriiRunnerInfo* torii_runner_info(void) {
  static const ToriiRunnerInfo info = {
      sizeof(ToriiRunnerInfo), TORII_RUNNER_ABI_VERSION_MAJOR, TORII_RUNNER_ABI_VERSION_MINOR,
      "small_struct_runner", "1.0.0", "none", "cc (c99)", "fixture"};
  return &info;
}

TORII_RUNNER_EXPORT ToriiError* torii_runner_model_load(const ToriiHostApi* host,
                                                        ToriiModel* model, void** model_state) {
  Target t;
  ToriiError* err;
  State* s;
  memset(&t, 0, sizeof t);
  t.host = host;
  t.model = model;
  for (t.index = 0; t.index < host->model_input_count(model); ++t.index) {
    if ((err = ProbeStruct(kModelInput, &t)) != NULL) return err;
  }
  for (t.index = 0; t.index < host->model_output_count(model); ++t.index) {
    if ((err = ProbeStruct(kModelOutput, &t)) != NULL) return err;
  }
  s = (State*)malloc(sizeof *s);
  if (s == NULL) return host->error_new(TORII_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  s->host = host;
  s->model = model;
  *model_state = s;
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
  const State* s = (const State*)instance_state;
  const ToriiHostApi* host = s->host;
  const int by_position = TORII_HOST_HAS(host, batch_request_parameter_at);
  Target t;
  ToriiTensor in;
  ToriiParameter p;
  ToriiError* err;
  void* out = NULL;
  size_t n;
  memset(&t, 0, sizeof t);
  t.host = host;
  t.batch = batch;
  for (t.index = 0; t.index < host->batch_input_count(batch); ++t.index) {
    if ((err = ProbeStruct(kBatchInput, &t)) != NULL) return err;
    memset(&in, 0, sizeof in);
    in.struct_size = sizeof in;
    if (!host->batch_input(batch, t.index, &in)) break;
    t.name = in.name;
    if ((err = ProbeStruct(kBatchInputByName, &t)) != NULL) return err;
  }
  for (t.request = 0; by_position && t.request < host->batch_request_count(batch); ++t.request) {
    n = host->batch_request_parameter_count(batch, t.request);
    for (t.index = 0; t.index < n; ++t.index) {
      if ((err = ProbeStruct(kBatchRequestParameterAt, &t)) != NULL) return err;
      memset(&p, 0, sizeof p);
      p.struct_size = sizeof p;
      if (!host->batch_request_parameter_at(batch, t.request, t.index, &t.name, &p)) break;
      if ((err = ProbeStruct(kBatchRequestParameter, &t)) != NULL) return err;
    }
  }

  /* The work: OUTPUT0 = INPUT0. */
  memset(&in, 0, sizeof in);
  in.struct_size = sizeof in;
  if (!host->batch_input_by_name(batch, "INPUT0", &in)) {
    return host->error_new(TORII_STATUS_INVALID_ARGUMENT, "small_struct_runner: no INPUT0");
  }
  if (!host->batch_output_requested(batch, "OUTPUT0")) return NULL;
  err = host->batch_output_allocate(batch, "OUTPUT0", in.datatype, in.shape, in.ndim,
                                    in.byte_size, &out);
  if (err != NULL) return err;
  if (in.byte_size > 0) memcpy(out, in.data, in.byte_size);
  return NULL;
}
