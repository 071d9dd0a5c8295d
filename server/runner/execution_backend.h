// What the scheduler drives: a loaded model version with N instances that
// execute batches of validated requests. Implemented in-process by
// RunnerModel, and out of process (isolation: process) by IsolatedRunnerModel.
#ifndef TORII_SERVER_RUNNER_EXECUTION_BACKEND_H_
#define TORII_SERVER_RUNNER_EXECUTION_BACKEND_H_

#include <chrono>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "server/core/inference_request.h"

namespace torii {

class ExecutionBackend {
 public:
  struct Timing {
    uint64_t input_ns = 0;   // gathering inputs into the batch
    uint64_t infer_ns = 0;   // the runner's execute call
    uint64_t output_ns = 0;  // writing outputs into the responses

    /// From the four moments: start, inputs ready, runner returned, outputs written.
    static Timing Between(InferenceRequest::Clock::time_point start,
                          InferenceRequest::Clock::time_point inputs_ready,
                          InferenceRequest::Clock::time_point executed,
                          InferenceRequest::Clock::time_point done) {
      auto ns = [](InferenceRequest::Clock::duration d) {
        return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
      };
      return {ns(inputs_ready - start), ns(executed - inputs_ready), ns(done - executed)};
    }
  };

  virtual ~ExecutionBackend() = default;

  virtual size_t instance_count() const = 0;

  /// Runs `requests` as one batch on instance `instance`. The caller
  /// guarantees no other Execute() runs on the same instance, and that the
  /// requests are compatible (same non-batch dims) and within max_batch_size.
  /// Returns one status per request; for an OK request its response holds the
  /// requested outputs as raw_output_contents. Thread-safe across instances.
  virtual std::vector<absl::Status> Execute(size_t instance,
                                            const std::vector<InferenceRequest*>& requests,
                                            Timing* timing) = 0;

  /// False while the backend cannot serve (e.g. an isolated runner process is
  /// restarting). The model reports not ready meanwhile.
  virtual bool healthy() const { return true; }

  /// How often the backend's runner process was restarted (0 in process).
  virtual uint64_t restarts() const { return 0; }
};

}  // namespace torii

#endif  // TORII_SERVER_RUNNER_EXECUTION_BACKEND_H_
