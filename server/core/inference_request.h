// One inference request on its way from a caller to a runner, frontend-
// neutral. A frontend (gRPC, HTTP) or an in-server caller (an ensemble step,
// a runner calling another model) fills the caller part: which model, the
// inputs as views over buffers the caller keeps alive until the final
// response, the outputs it wants, a deadline, a cancellation probe and the
// sink its responses go to. ValidateRequest() (request_validator.h) checks it
// once against the model's ModelSpec and fills the validated part, which the
// scheduler, the runners and isolation trust without re-reading anything.
#ifndef TORII_SERVER_CORE_INFERENCE_REQUEST_H_
#define TORII_SERVER_CORE_INFERENCE_REQUEST_H_

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "server/core/inference_response.h"
#include "server/core/parameters.h"
#include "torii/runner_abi.h"

namespace torii {

/// An input as the caller sent it: a view over its bytes (little-endian,
/// row-major; BYTES length-prefixed), owned by the caller.
struct InferenceInput {
  std::string name;
  ToriiDataType datatype = TORII_TYPE_INVALID;
  Shape shape;  // with the batch dimension when the model batches
  const char* data = nullptr;
  size_t byte_size = 0;
};

struct RequestedOutput {
  std::string name;
  Parameters parameters;
};

class InferenceRequest {
 public:
  using Clock = std::chrono::steady_clock;

  // --- filled by the caller ------------------------------------------------
  std::string model_name;
  /// Empty: the highest ready version.
  std::string model_version;
  std::string id;
  Parameters parameters;
  /// After validation: one per declared input, in declared order.
  std::vector<InferenceInput> inputs;
  /// Empty: every declared output.
  std::vector<RequestedOutput> requested_outputs;
  Clock::time_point arrival = Clock::now();
  Clock::time_point deadline = Clock::time_point::max();
  /// True once the caller cancelled or went away. May be empty.
  std::function<bool()> is_cancelled;
  /// Where responses go; required.
  std::shared_ptr<ResponseSink> sink;
  /// The caller can take only one response (unary RPCs): a decoupled model
  /// refuses the request instead of answering it in pieces.
  bool single_response = false;

  // --- filled by the dispatcher and ValidateRequest ------------------------
  /// The version that serves the request.
  std::string served_version;
  /// Per declared output: 1 when the caller asked for it.
  std::vector<char> output_requested;
  /// Batch rows (1 for a model that does not batch).
  int64_t rows = 1;
  /// The `timeout` parameter (queue policy), 0 when absent.
  std::chrono::microseconds queue_timeout{0};
  /// When an instance started executing it (statistics: queue time).
  Clock::time_point execution_start{};
  /// Why the request failed, for statistics ("expired", "cancelled",
  /// "rejected", ...), when whoever failed it knows better than the status
  /// code; null otherwise.
  const char* failure_reason = nullptr;
  /// Called once, just before the final response is delivered, with the
  /// request's outcome: OK, or the first error it was answered with (the
  /// scheduler records statistics here).
  std::function<void(const absl::Status& outcome)> on_final;

  bool Cancelled() const { return is_cancelled && is_cancelled(); }

  /// A new response for this request from its sink, with model, version and
  /// id filled.
  std::unique_ptr<InferenceResponse> NewResponse() const;
  /// Delivers one response. `final` must be true exactly once, on the last.
  void Respond(std::unique_ptr<InferenceResponse> response, bool final);
  /// Delivers the final response as an error.
  void RespondError(const absl::Status& status);
  /// The same, recording why (see failure_reason).
  void RespondError(const absl::Status& status, const char* reason) {
    failure_reason = reason;
    RespondError(status);
  }

 private:
  absl::Status outcome_;  // the first error response, if any
};

}  // namespace torii

#endif  // TORII_SERVER_CORE_INFERENCE_REQUEST_H_
