/*
 * Torii runner ABI: the whole contract between the Torii server (the host) and
 * a runner plugin (a shared library that executes one kind of model).
 *
 * This header is pure C99 and depends only on <stdint.h>, <stddef.h> and
 * <stdbool.h>, so a runner can be built by any compiler, in any CI, and keep
 * loading into any server with a compatible ABI version.
 *
 * Naming families (who implements what):
 *   torii_runner_*   implemented by the RUNNER, exported from the plugin and
 *                    called by the host. These are the only exported symbols.
 *   ToriiHostApi.*   implemented by the HOST, reached only through the function
 *                    table handed to the runner; a runner never links against
 *                    the server.
 *   Torii*           plain types shared by both.
 *
 * Lifecycle (host's view):
 *   dlopen(lib)                       once per library per process
 *   torii_runner_info()               ABI check; may be called any time
 *   torii_runner_model_load()         once per model version
 *     torii_runner_instance_create()  once per instance (instance_group count)
 *       torii_runner_instance_execute()   many times
 *     torii_runner_instance_destroy()
 *   torii_runner_model_unload()
 *   dlclose(lib)                      after the last model of the library
 *
 * Threading:
 *   - One instance is never executed concurrently: calls to
 *     torii_runner_instance_execute() for the same instance are serialised.
 *   - Different instances (of the same or different models) may execute in
 *     parallel on different threads.
 *   - model_load / model_unload / instance_create / instance_destroy of one
 *     model are called from one control thread, never concurrently with each
 *     other for the same model, and never while an instance of that model is
 *     executing a batch it was destroyed under.
 *   - Every ToriiHostApi function is thread-safe. Batch accessors may only be
 *     called during the execute call that received the batch, from any thread
 *     the runner uses inside that call.
 *
 * Errors:
 *   - A runner reports failure by returning a ToriiError* created with
 *     ToriiHostApi.error_new(); NULL means success. The host owns every error
 *     object; the runner never frees one it returned or passed to the host.
 *   - C++ exceptions (or any other unwinding) must never cross this boundary.
 *     The C++ SDK's TORII_RUNNER macro catches everything and converts it.
 *
 * Versioning (see docs/runner-abi.md):
 *   - A runner reports the ABI version it was compiled against in
 *     ToriiRunnerInfo. The host loads it when the majors are equal and the
 *     runner's minor is <= the host's minor.
 *   - A minor release may only add: new functions at the END of ToriiHostApi,
 *     new fields at the END of structs that carry struct_size, new enum values,
 *     new optional torii_runner_* symbols. Anything else is a new major.
 *   - Structs that may grow start with `uint32_t struct_size`, set by whoever
 *     allocates the struct, so the other side never reads past its end.
 */
#ifndef TORII_RUNNER_ABI_H_
#define TORII_RUNNER_ABI_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TORII_RUNNER_ABI_VERSION_MAJOR 1
#define TORII_RUNNER_ABI_VERSION_MINOR 2

/* Marks the runner entry points for export (the SDK's version script keeps
 * only these symbols visible). */
#if defined(__GNUC__)
#define TORII_RUNNER_EXPORT __attribute__((visibility("default")))
#else
#define TORII_RUNNER_EXPORT
#endif

/* ------------------------------------------------------------------------ */
/* Types                                                                     */
/* ------------------------------------------------------------------------ */

/* Tensor element types: the Open Inference Protocol v2 datatype set. Values
 * are part of the ABI and never change; new types are appended. */
typedef enum ToriiDataType {
  TORII_TYPE_INVALID = 0,
  TORII_TYPE_BOOL = 1, /* 1 byte, 0 or 1 */
  TORII_TYPE_UINT8 = 2,
  TORII_TYPE_UINT16 = 3,
  TORII_TYPE_UINT32 = 4,
  TORII_TYPE_UINT64 = 5,
  TORII_TYPE_INT8 = 6,
  TORII_TYPE_INT16 = 7,
  TORII_TYPE_INT32 = 8,
  TORII_TYPE_INT64 = 9,
  TORII_TYPE_FP16 = 10,
  TORII_TYPE_FP32 = 11,
  TORII_TYPE_FP64 = 12,
  /* Variable length: each element is a 4-byte little-endian length followed
   * by that many bytes; elements are concatenated. */
  TORII_TYPE_BYTES = 13,
  TORII_TYPE_BF16 = 14
} ToriiDataType;

/* Status codes; the numbers equal gRPC's, so the host forwards them as-is. */
typedef enum ToriiStatusCode {
  TORII_STATUS_OK = 0,
  TORII_STATUS_CANCELLED = 1,
  TORII_STATUS_UNKNOWN = 2,
  TORII_STATUS_INVALID_ARGUMENT = 3,
  TORII_STATUS_DEADLINE_EXCEEDED = 4,
  TORII_STATUS_NOT_FOUND = 5,
  TORII_STATUS_ALREADY_EXISTS = 6,
  TORII_STATUS_PERMISSION_DENIED = 7,
  TORII_STATUS_RESOURCE_EXHAUSTED = 8,
  TORII_STATUS_FAILED_PRECONDITION = 9,
  TORII_STATUS_ABORTED = 10,
  TORII_STATUS_OUT_OF_RANGE = 11,
  TORII_STATUS_UNIMPLEMENTED = 12,
  TORII_STATUS_INTERNAL = 13,
  TORII_STATUS_UNAVAILABLE = 14,
  TORII_STATUS_DATA_LOSS = 15,
  TORII_STATUS_UNAUTHENTICATED = 16
} ToriiStatusCode;

typedef enum ToriiLogLevel {
  TORII_LOG_ERROR = 0,
  TORII_LOG_WARNING = 1,
  TORII_LOG_INFO = 2,
  TORII_LOG_VERBOSE = 3
} ToriiLogLevel;

/* Opaque, host-owned handles. */
typedef struct ToriiError ToriiError; /* an error code plus message */
typedef struct ToriiModel ToriiModel; /* one loaded model version */
typedef struct ToriiBatch ToriiBatch; /* the requests of one execute call */
/* Added in ABI 1.2: */
typedef struct ToriiResponseSender ToriiResponseSender; /* answers one request */
typedef struct ToriiResponse ToriiResponse;   /* one response being built */
typedef struct ToriiInferRequest ToriiInferRequest; /* a call to another model */
typedef struct ToriiInferResult ToriiInferResult;   /* one response to such a call */

/* Flags of ToriiHostApi.sender_send (ABI 1.2). */
#define TORII_RESPONSE_FINAL 1u

/* Receives the responses of a model call (ABI 1.2, infer_request_send).
 * Called once per response, in order, on a host thread (never concurrently
 * for one call); the last call has `final` true. `result` is the response,
 * or NULL on a final call that carries none (a decoupled model ended without
 * a last response). OWNERSHIP: the runner owns `result` and releases it with
 * infer_result_delete(), from any thread, at any time. The callback must not
 * block for long: it runs on a thread that serves other requests. */
typedef void (*ToriiInferCallback)(void* user_data, ToriiInferResult* result,
                                   bool final);

/* Who built the runner. Returned by torii_runner_info(); the strings and the
 * struct have static storage in the runner library (valid until dlclose). */
typedef struct ToriiRunnerInfo {
  uint32_t struct_size; /* sizeof(ToriiRunnerInfo) as compiled by the runner */
  uint32_t abi_version_major; /* TORII_RUNNER_ABI_VERSION_MAJOR at build time */
  uint32_t abi_version_minor; /* TORII_RUNNER_ABI_VERSION_MINOR at build time */
  const char* name;            /* runner name, e.g. "identity" */
  const char* version;         /* the runner's own version, e.g. "1.2.0" */
  const char* sdk_version;     /* Torii SDK version, e.g. "0.1.0" */
  const char* compiler;        /* e.g. "gcc 12.2.0" */
  const char* source_revision; /* e.g. a git commit; "unknown" if none */
} ToriiRunnerInfo;

/* A tensor description. Filled by the host for inputs and model metadata. */
typedef struct ToriiTensor {
  uint32_t struct_size; /* set by the CALLER to sizeof(ToriiTensor) */
  const char* name;     /* OWNERSHIP: host; valid as long as the owner */
  ToriiDataType datatype;
  const int64_t* shape; /* OWNERSHIP: host; `ndim` entries */
  size_t ndim;
  /* Contiguous little-endian row-major bytes. For model metadata (dims) NULL.
   * OWNERSHIP: host; valid until the execute call returns. Read-only. */
  const void* data;
  size_t byte_size;
} ToriiTensor;

/* A request or model parameter value, as it arrived. */
typedef enum ToriiParameterType {
  TORII_PARAMETER_NONE = 0, /* not present */
  TORII_PARAMETER_BOOL = 1,
  TORII_PARAMETER_INT64 = 2,
  TORII_PARAMETER_STRING = 3,
  TORII_PARAMETER_DOUBLE = 4,
  TORII_PARAMETER_UINT64 = 5
} ToriiParameterType;

typedef struct ToriiParameter {
  uint32_t struct_size; /* set by the CALLER to sizeof(ToriiParameter) */
  ToriiParameterType type;
  bool bool_value;
  int64_t int64_value;
  uint64_t uint64_value;
  double double_value;
  const char* string_value; /* OWNERSHIP: host; NUL-terminated; lifetime of
                               the object it was read from */
  size_t string_size;       /* bytes, without the NUL */
} ToriiParameter;

/* ------------------------------------------------------------------------ */
/* Host API: implemented by the server, handed to the runner at model load.  */
/* The table is owned by the host and outlives every model of the runner.    */
/* New functions are only ever appended; check struct_size before calling a  */
/* function added after ABI 1.0.                                             */
/* ------------------------------------------------------------------------ */
typedef struct ToriiHostApi {
  uint32_t struct_size; /* sizeof(ToriiHostApi) as compiled by the host */
  uint32_t abi_version_major;
  uint32_t abi_version_minor;

  /* --- errors ------------------------------------------------------------ */
  /* Creates an error. `message` is copied (may be NULL). OWNERSHIP: the
   * result belongs to the host once returned from a torii_runner_* function
   * or passed to batch_fail_request(); a runner that creates an error and
   * does not hand it over must release it with error_delete(). Never NULL. */
  ToriiError* (*error_new)(ToriiStatusCode code, const char* message);
  void (*error_delete)(ToriiError* error);
  /* Reads an error (for a runner that got one from the host, e.g. from
   * batch_output_allocate). The message is owned by the error. */
  ToriiStatusCode (*error_code)(const ToriiError* error);
  const char* (*error_message)(const ToriiError* error);

  /* --- logging ----------------------------------------------------------- */
  /* Writes one line to the server log, tagged with the model when given
   * (`model` may be NULL). `message` is copied. */
  void (*log)(const ToriiModel* model, ToriiLogLevel level,
              const char* message);

  /* --- model (valid from model_load until model_unload returns) --------- */
  const char* (*model_name)(const ToriiModel* model);
  int64_t (*model_version)(const ToriiModel* model);
  /* Absolute path of <repository>/<model>. */
  const char* (*model_directory)(const ToriiModel* model);
  /* Absolute path of <repository>/<model>/<version>; artifacts live here. */
  const char* (*model_version_directory)(const ToriiModel* model);
  /* 0: the model does not batch. > 0: tensors carry a leading batch dim. */
  int32_t (*model_max_batch_size)(const ToriiModel* model);
  /* The whole parsed config.pbtxt as JSON (protobuf JSON mapping, field names
   * as in config.pbtxt). */
  const char* (*model_config_json)(const ToriiModel* model);
  /* Declared inputs/outputs: `out->shape` are the config dims (without the
   * batch dimension, -1 for variable); data is NULL. Returns false when
   * `index` is out of range. */
  size_t (*model_input_count)(const ToriiModel* model);
  bool (*model_input)(const ToriiModel* model, size_t index, ToriiTensor* out);
  size_t (*model_output_count)(const ToriiModel* model);
  bool (*model_output)(const ToriiModel* model, size_t index, ToriiTensor* out);
  /* `parameters { key: .. value { string_value: .. } }` from the config.
   * Returns NULL when the key is absent. OWNERSHIP: host, model lifetime. */
  const char* (*model_parameter)(const ToriiModel* model, const char* key);

  /* --- batch (valid only during the execute call that received it) ------ */
  /* Number of requests merged into this batch (>= 1). */
  size_t (*batch_request_count)(const ToriiBatch* batch);
  /* Rows request `request_index` contributes along the batch dimension (1 for
   * a model with max_batch_size 0). Requests occupy consecutive rows in
   * order. */
  int64_t (*batch_request_rows)(const ToriiBatch* batch, size_t request_index);
  /* Inputs in the order the config declares them. For a batching model the
   * data is the requests' rows concatenated along dimension 0 and shape[0] is
   * the total rows. Returns false when `index` is out of range. */
  size_t (*batch_input_count)(const ToriiBatch* batch);
  bool (*batch_input)(const ToriiBatch* batch, size_t index, ToriiTensor* out);
  /* Finds an input by name; false when the batch has no such input. */
  bool (*batch_input_by_name)(const ToriiBatch* batch, const char* name,
                              ToriiTensor* out);
  /* Whether any request in the batch asked for this output. A runner may skip
   * computing outputs nobody requested. */
  bool (*batch_output_requested)(const ToriiBatch* batch, const char* name);
  /* Allocates the buffer of an output for the whole batch. For a batching
   * model shape[0] must equal the batch's total rows. `byte_size` must equal
   * elements x element size for fixed-size types; for BYTES it is the total
   * encoded size. The host checks name, datatype and shape against the
   * config and returns an error on mismatch (the runner should return it).
   * On success *buffer points to `byte_size` writable bytes. OWNERSHIP: host;
   * valid until execute returns. Each output may be allocated once. */
  ToriiError* (*batch_output_allocate)(ToriiBatch* batch, const char* name,
                                       ToriiDataType datatype,
                                       const int64_t* shape, size_t ndim,
                                       size_t byte_size, void** buffer);
  /* Fails one request of the batch; the others still get their outputs.
   * Takes ownership of `error`. */
  void (*batch_fail_request)(ToriiBatch* batch, size_t request_index,
                             ToriiError* error);
  /* A request parameter (ModelInferRequest.parameters). Returns false when
   * absent. Strings: OWNERSHIP host, valid until execute returns. */
  bool (*batch_request_parameter)(const ToriiBatch* batch,
                                  size_t request_index, const char* key,
                                  ToriiParameter* out);
  /* Absolute deadline of the most urgent request in the batch, nanoseconds
   * on CLOCK_MONOTONIC; 0 when no request has a deadline. */
  uint64_t (*batch_deadline_ns)(const ToriiBatch* batch);

  /* --- added in ABI 1.1 (check struct_size before use) ------------------- */
  /* True when every request of the batch has been cancelled by its client or
   * is past its deadline: a long-running runner may stop early and return an
   * error, since nobody will read the outputs. */
  bool (*batch_is_cancelled)(const ToriiBatch* batch);

  /* --- added in ABI 1.2 (check struct_size before use) ------------------- */

  /* -- requests of a batch -- */
  /* The client's request id (may be empty). OWNERSHIP: host; valid until
   * execute returns (or, for a request answered through a sender, until the
   * final send). */
  const char* (*batch_request_id)(const ToriiBatch* batch,
                                  size_t request_index);
  /* Whether request `request_index` asked for output `name` (a request that
   * names no outputs asks for all of them). */
  bool (*batch_request_output_requested)(const ToriiBatch* batch,
                                         size_t request_index,
                                         const char* name);
  /* The request's parameters by position, for runners that pass them all on:
   * count, then key and value of entry `param_index`. Returns false when the
   * index is out of range. OWNERSHIP: host; as batch_request_parameter. */
  size_t (*batch_request_parameter_count)(const ToriiBatch* batch,
                                          size_t request_index);
  bool (*batch_request_parameter_at)(const ToriiBatch* batch,
                                     size_t request_index, size_t param_index,
                                     const char** key, ToriiParameter* out);

  /* -- answering a request yourself (decoupled models) -- */
  /* Takes over answering request `request_index`: from now on the runner,
   * not the return of execute, answers it, with any number of responses
   * followed by exactly one send carrying TORII_RESPONSE_FINAL. Outputs
   * allocated with batch_output_allocate are not sent to this request.
   * Calling it again for the same request returns the same sender. Only a
   * model with `model_transaction_policy { decoupled: true }` may send more
   * than one response; for other models the first send must be final.
   * OWNERSHIP: host. The sender is valid from this call until the final
   * send returns and may be used from any thread, during or after execute.
   * A sender never finished is finished by the host with an INTERNAL error
   * when the model is unloaded. */
  ToriiResponseSender* (*batch_response_sender)(ToriiBatch* batch,
                                                size_t request_index);
  /* A new, empty response for the sender's request. OWNERSHIP: runner until
   * passed to sender_send() or released with response_delete(). NULL when
   * the sender is already finished. */
  ToriiResponse* (*response_new)(ToriiResponseSender* sender);
  /* Allocates an output of the response; the same checks as
   * batch_output_allocate, with the request's own rows as the batch
   * dimension. The buffer is valid until the response is sent or deleted. */
  ToriiError* (*response_output_allocate)(ToriiResponse* response,
                                          const char* name,
                                          ToriiDataType datatype,
                                          const int64_t* shape, size_t ndim,
                                          size_t byte_size, void** buffer);
  void (*response_delete)(ToriiResponse* response);
  /* Sends `response` (may be NULL), or the error `error` (then `response`
   * must be NULL), with `flags` (TORII_RESPONSE_FINAL ends the request).
   * Takes ownership of both. Blocks while the client has not taken earlier
   * responses of this request (back-pressure, bounded; see
   * docs/runner-abi.md); returns an error when the sender is already
   * finished or the client went away (the runner should stop and send
   * final). Responses of one request keep the order of their sends. */
  ToriiError* (*sender_send)(ToriiResponseSender* sender,
                             ToriiResponse* response, ToriiError* error,
                             uint32_t flags);
  /* True once the request's client cancelled or went away, or its deadline
   * passed: stop producing and send TORII_RESPONSE_FINAL. */
  bool (*sender_is_cancelled)(const ToriiResponseSender* sender);

  /* -- calling other models of this server -- */
  /* Starts a request to `model_name` (`model_version` -1 = the highest ready
   * version). It goes through the same validation, scheduler and statistics
   * as a client's request, without a network hop. OWNERSHIP: runner until
   * passed to infer_request_send() or released with
   * infer_request_delete(). */
  ToriiInferRequest* (*infer_request_new)(const ToriiModel* caller,
                                          const char* model_name,
                                          int64_t model_version);
  /* Adds an input. The bytes are NOT copied: OWNERSHIP stays with the
   * runner, and they must stay valid and unchanged until the final callback
   * of the request. `name` and `shape` are copied. */
  ToriiError* (*infer_request_add_input)(ToriiInferRequest* request,
                                         const char* name,
                                         ToriiDataType datatype,
                                         const int64_t* shape, size_t ndim,
                                         const void* data, size_t byte_size);
  /* Asks for one output; a request that asks for none gets all. */
  ToriiError* (*infer_request_add_output)(ToriiInferRequest* request,
                                          const char* name);
  void (*infer_request_set_id)(ToriiInferRequest* request, const char* id);
  ToriiError* (*infer_request_set_parameter)(ToriiInferRequest* request,
                                             const char* key,
                                             const ToriiParameter* value);
  /* A deadline for the call, in microseconds from now; 0 = none. */
  void (*infer_request_set_timeout_us)(ToriiInferRequest* request,
                                       uint64_t timeout_us);
  void (*infer_request_delete)(ToriiInferRequest* request);
  /* Sends the request; its responses reach `callback`. Takes ownership of
   * `request` whatever the outcome. An error here (e.g. INVALID_ARGUMENT for
   * a malformed request) means the callback is never called; errors found
   * later (unknown model, invalid inputs, runner errors) arrive as a result
   * whose code is not OK. */
  ToriiError* (*infer_request_send)(ToriiInferRequest* request,
                                    ToriiInferCallback callback,
                                    void* user_data);
  /* A result's status: TORII_STATUS_OK, or a code and message (OWNERSHIP:
   * result). */
  ToriiStatusCode (*infer_result_code)(const ToriiInferResult* result);
  const char* (*infer_result_message)(const ToriiInferResult* result);
  /* The result's outputs. OWNERSHIP: result (names, shapes and data valid
   * until infer_result_delete). */
  size_t (*infer_result_output_count)(const ToriiInferResult* result);
  bool (*infer_result_output)(const ToriiInferResult* result, size_t index,
                              ToriiTensor* out);
  void (*infer_result_delete)(ToriiInferResult* result);

  /* -- model -- */
  /* During torii_runner_model_load only: replaces the model's config with a
   * completed one (Triton's auto-complete), as JSON in the same mapping
   * model_config_json returns. The host checks it like a config.pbtxt; on
   * success the model_* accessors return the new config from then on. The
   * name, runner and instance groups cannot change. */
  ToriiError* (*model_set_config_json)(ToriiModel* model, const char* json);
  /* Reports a fact about the code that runs the model (e.g. "python" =
   * "3.11.2", "model.py sha256" = "..."), shown in ModelMetadata properties
   * and logged at load. Copied. Thread-safe; may be called any time while the
   * model is loaded. */
  void (*model_report_property)(const ToriiModel* model, const char* key,
                                const char* value);
} ToriiHostApi;

/* True when `host` provides the function `field` (it was compiled with an ABI
 * that has it). Use before calling any function added after ABI 1.0, e.g.
 * TORII_HOST_HAS(host, batch_is_cancelled). */
#define TORII_HOST_HAS(host, field)                                   \
  ((host)->struct_size >= offsetof(ToriiHostApi, field) + sizeof(void*) && \
   (host)->field != NULL)

/* ------------------------------------------------------------------------ */
/* Runner entry points: implemented and exported by the runner.              */
/* All six are required; a library missing one is refused at load.          */
/* ------------------------------------------------------------------------ */

/* Identifies the runner and the ABI it was built against. Called first, before
 * any other entry point, and may be called at any time from any thread.
 * OWNERSHIP: runner (static storage). Never NULL. */
TORII_RUNNER_EXPORT const ToriiRunnerInfo* torii_runner_info(void);

/* Loads one model version. `host` and `model` stay valid until
 * torii_runner_model_unload() returns for *model_state. On success stores the
 * runner's state in *model_state and returns NULL; on failure returns an error
 * (the host then does not call model_unload). */
TORII_RUNNER_EXPORT ToriiError* torii_runner_model_load(
    const ToriiHostApi* host, ToriiModel* model, void** model_state);

/* Releases a model version; every instance was destroyed first. */
TORII_RUNNER_EXPORT void torii_runner_model_unload(void* model_state);

/* Creates instance number `instance_index` (0-based) of a model. */
TORII_RUNNER_EXPORT ToriiError* torii_runner_instance_create(
    void* model_state, uint32_t instance_index, void** instance_state);

/* Destroys an instance; it is not executing. */
TORII_RUNNER_EXPORT void torii_runner_instance_destroy(void* instance_state);

/* Executes one batch. Never called concurrently for the same instance.
 * Returning an error fails every request of the batch that was not already
 * failed with batch_fail_request(); returning NULL delivers the allocated
 * outputs to every request not failed individually. An output the config
 * declares but the runner did not allocate is an error for the requests that
 * asked for it. A request taken over with batch_response_sender (ABI 1.2) is
 * answered only through its sender, whatever execute returns. */
TORII_RUNNER_EXPORT ToriiError* torii_runner_instance_execute(
    void* instance_state, ToriiBatch* batch);

/* Symbol names, for the host's dlsym(). */
#define TORII_RUNNER_SYMBOL_INFO "torii_runner_info"
#define TORII_RUNNER_SYMBOL_MODEL_LOAD "torii_runner_model_load"
#define TORII_RUNNER_SYMBOL_MODEL_UNLOAD "torii_runner_model_unload"
#define TORII_RUNNER_SYMBOL_INSTANCE_CREATE "torii_runner_instance_create"
#define TORII_RUNNER_SYMBOL_INSTANCE_DESTROY "torii_runner_instance_destroy"
#define TORII_RUNNER_SYMBOL_INSTANCE_EXECUTE "torii_runner_instance_execute"

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* TORII_RUNNER_ABI_H_ */
