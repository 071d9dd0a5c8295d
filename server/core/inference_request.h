// One validated inference request on its way through the scheduler to a
// runner. Input data is viewed in place in the wire message (no copy) unless
// it arrived as typed contents, which are converted to raw bytes once.
#ifndef TORII_SERVER_CORE_INFERENCE_REQUEST_H_
#define TORII_SERVER_CORE_INFERENCE_REQUEST_H_

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "inference.pb.h"
#include "torii/runner_abi.h"

namespace torii {

struct InputData {
  std::vector<int64_t> shape;  // as the client sent it (with batch dim)
  const char* data = nullptr;  // little-endian row-major bytes
  size_t byte_size = 0;
};

struct InferenceRequest {
  using Clock = std::chrono::steady_clock;

  /// The wire request; owned by the frontend and alive until `done` runs.
  const inference::ModelInferRequest* wire = nullptr;
  /// Filled with outputs by the runner path; owned by the frontend.
  inference::ModelInferResponse* response = nullptr;

  std::vector<InputData> inputs;        // in the model's declared input order
  std::vector<std::string> converted;   // raw bytes made from typed contents
  std::vector<bool> output_requested;   // in the model's declared output order
  int64_t rows = 1;                     // batch rows (1 for a non-batching model)

  Clock::time_point arrival{};
  Clock::time_point deadline = Clock::time_point::max();
  /// True once the client cancelled or went away. May be empty.
  std::function<bool()> is_cancelled;
  /// Called exactly once with the final status (response filled when OK).
  std::function<void(const absl::Status&)> done;
};

}  // namespace torii

#endif  // TORII_SERVER_CORE_INFERENCE_REQUEST_H_
