// Checks a ModelInferRequest against a model's signature, once, before the
// request is queued, and turns it into an InferenceRequest that later layers
// trust without re-parsing.
#ifndef TORII_SERVER_CORE_REQUEST_VALIDATOR_H_
#define TORII_SERVER_CORE_REQUEST_VALIDATOR_H_

#include <cstddef>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "inference.pb.h"
#include "server/core/inference_request.h"
#include "server/core/model_signature.h"

namespace torii {

struct ValidationLimits {
  /// Largest total input size (bytes, after decoding typed contents) a request
  /// may carry.
  size_t max_input_bytes = size_t{256} << 20;
};

/// Validates `wire` for `model_name` and fills `out` (inputs, requested
/// outputs, rows). Every failure is INVALID_ARGUMENT with a message naming the
/// tensor, what was expected and what arrived. `out->wire` is set to `&wire`.
absl::Status ValidateRequest(absl::string_view model_name,
                             const ModelSignature& signature,
                             const inference::ModelInferRequest& wire,
                             const ValidationLimits& limits,
                             InferenceRequest* out);

/// Checks that a BYTES buffer is a sequence of exactly `expected_elements`
/// length-prefixed elements that tile it exactly. `what` names the tensor in
/// the error message.
absl::Status ValidateBytesBuffer(const char* data, size_t size,
                                 int64_t expected_elements,
                                 absl::string_view what);

}  // namespace torii

#endif  // TORII_SERVER_CORE_REQUEST_VALIDATOR_H_
