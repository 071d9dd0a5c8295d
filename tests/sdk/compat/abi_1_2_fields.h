/* The members of the ABI 1.2 structs, as X-macro lists (see
 * abi_1_0_fields.h). 1.2 appended functions to ToriiHostApi; the other
 * structs are 1.0's. No includes on purpose. */
#ifndef TORII_TESTS_SDK_COMPAT_ABI_1_2_FIELDS_H_
#define TORII_TESTS_SDK_COMPAT_ABI_1_2_FIELDS_H_

#include "abi_1_1_fields.h"

#define TORII_ABI_1_2_HOST_API_FIELDS(X) \
  TORII_ABI_1_1_HOST_API_FIELDS(X) X(batch_request_id) X(batch_request_output_requested) X(batch_request_parameter_count) X(batch_request_parameter_at) X(batch_response_sender) X(response_new) X(response_output_allocate) X(response_delete) X(sender_send) X(sender_is_cancelled) X(infer_request_new) X(infer_request_add_input) X(infer_request_add_output) X(infer_request_set_id) X(infer_request_set_parameter) X(infer_request_set_timeout_us) X(infer_request_delete) X(infer_request_send) X(infer_result_code) X(infer_result_message) X(infer_result_output_count) X(infer_result_output) X(infer_result_delete) X(model_set_config_json) X(model_report_property)

#endif /* TORII_TESTS_SDK_COMPAT_ABI_1_2_FIELDS_H_ */
