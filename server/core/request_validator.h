// Checks an InferenceRequest against a model's ModelSpec, once, before it is
// queued, and fills the request's validated part (inputs in declared order,
// rows, requested outputs, queue timeout). Later layers trust the result
// without re-reading anything. Frontend-neutral: the gRPC and HTTP frontends
// and in-server callers all pass through here.
#ifndef TORII_SERVER_CORE_REQUEST_VALIDATOR_H_
#define TORII_SERVER_CORE_REQUEST_VALIDATOR_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "server/core/inference_request.h"
#include "server/core/model_spec.h"

namespace torii {

struct ValidationLimits {
  /// Largest total input size (bytes) a request may carry.
  size_t max_input_bytes = size_t{256} << 20;
};

/// Validates `request` for `spec`. Every failure is INVALID_ARGUMENT with a
/// message naming the model, the tensor, what was expected and what arrived.
/// On success request->inputs holds one entry per declared input, in declared
/// order.
absl::Status ValidateRequest(const ModelSpec& spec, const ValidationLimits& limits,
                             InferenceRequest* request);

/// Checks that a BYTES buffer is a sequence of exactly `expected_elements`
/// length-prefixed elements that tile it exactly (INVALID_ARGUMENT
/// otherwise). `what` names the tensor in the error message.
absl::Status ValidateBytesBuffer(const char* data, size_t size, int64_t expected_elements,
                                 absl::string_view what);

/// Element count of `shape`, or -1 when a dimension is negative or the product
/// exceeds `max_elements`.
int64_t CheckedElementCount(const Shape& shape, uint64_t max_elements);

}  // namespace torii

#endif  // TORII_SERVER_CORE_REQUEST_VALIDATOR_H_
