/* The members of the ABI 1.0 structs, as X-macro lists. abi_1_0_layout.c
 * expands them against the frozen 1.0 header, abi_compat_test.cc against the
 * current one, and the test compares offsets and sizes: the 1.0 layout must
 * be an unchanged prefix of today's. No includes on purpose. */
#ifndef TORII_TESTS_SDK_COMPAT_ABI_1_0_FIELDS_H_
#define TORII_TESTS_SDK_COMPAT_ABI_1_0_FIELDS_H_

#define TORII_ABI_1_0_RUNNER_INFO_FIELDS(X)                                          \
  X(struct_size) X(abi_version_major) X(abi_version_minor) X(name) X(version)        \
  X(sdk_version) X(compiler) X(source_revision)

#define TORII_ABI_1_0_TENSOR_FIELDS(X) \
  X(struct_size) X(name) X(datatype) X(shape) X(ndim) X(data) X(byte_size)

#define TORII_ABI_1_0_PARAMETER_FIELDS(X)                                                 \
  X(struct_size) X(type) X(bool_value) X(int64_value) X(uint64_value) X(double_value)    \
  X(string_value) X(string_size)

#define TORII_ABI_1_0_HOST_API_FIELDS(X)                                                    \
  X(struct_size) X(abi_version_major) X(abi_version_minor) X(error_new) X(error_delete)     \
  X(error_code) X(error_message) X(log) X(model_name) X(model_version) X(model_directory)   \
  X(model_version_directory) X(model_max_batch_size) X(model_config_json)                  \
  X(model_input_count) X(model_input) X(model_output_count) X(model_output)                \
  X(model_parameter) X(batch_request_count) X(batch_request_rows) X(batch_input_count)     \
  X(batch_input) X(batch_input_by_name) X(batch_output_requested) X(batch_output_allocate) \
  X(batch_fail_request) X(batch_request_parameter) X(batch_deadline_ns)

/* Enumerators whose values are part of the ABI. */
#define TORII_ABI_1_0_ENUM_VALUES(X)                                                       \
  X(TORII_TYPE_INVALID) X(TORII_TYPE_BOOL) X(TORII_TYPE_UINT8) X(TORII_TYPE_UINT16)        \
  X(TORII_TYPE_UINT32) X(TORII_TYPE_UINT64) X(TORII_TYPE_INT8) X(TORII_TYPE_INT16)         \
  X(TORII_TYPE_INT32) X(TORII_TYPE_INT64) X(TORII_TYPE_FP16) X(TORII_TYPE_FP32)            \
  X(TORII_TYPE_FP64) X(TORII_TYPE_BYTES) X(TORII_TYPE_BF16) X(TORII_STATUS_OK)             \
  X(TORII_STATUS_CANCELLED) X(TORII_STATUS_INVALID_ARGUMENT) X(TORII_STATUS_NOT_FOUND)     \
  X(TORII_STATUS_RESOURCE_EXHAUSTED) X(TORII_STATUS_FAILED_PRECONDITION)                   \
  X(TORII_STATUS_UNIMPLEMENTED) X(TORII_STATUS_INTERNAL) X(TORII_STATUS_UNAVAILABLE)       \
  X(TORII_STATUS_UNAUTHENTICATED) X(TORII_LOG_ERROR) X(TORII_LOG_WARNING) X(TORII_LOG_INFO) \
  X(TORII_LOG_VERBOSE) X(TORII_PARAMETER_NONE) X(TORII_PARAMETER_BOOL)                      \
  X(TORII_PARAMETER_INT64) X(TORII_PARAMETER_STRING) X(TORII_PARAMETER_DOUBLE)             \
  X(TORII_PARAMETER_UINT64)

#endif /* TORII_TESTS_SDK_COMPAT_ABI_1_0_FIELDS_H_ */
