// What the scheduler drives: a loaded model version with N instances that
// execute batches of validated requests. Implemented in process by
// RunnerModel (server/runner/), out of process by IsolatedRunnerModel
// (server/isolation/), and for ensembles by EnsembleModel (server/manager/).
#ifndef TORII_SERVER_CORE_EXECUTION_BACKEND_H_
#define TORII_SERVER_CORE_EXECUTION_BACKEND_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "server/core/inference_request.h"

namespace torii {

/// Who built the code that runs a model (from the runner's ToriiRunnerInfo),
/// as the server reports it in ModelMetadata properties and logs.
struct RunnerProvenance {
  std::string runner;          // name
  std::string runner_version;
  std::string runner_build;    // "sdk 0.1.0; gcc 12.2.0; rev abc123"
  std::string runner_abi;      // "1.2"
  /// Extra key/value facts a runner reports (the Python runner: interpreter,
  /// model.py hash, package versions).
  std::vector<std::pair<std::string, std::string>> properties;
};

using RequestBatch = std::vector<std::unique_ptr<InferenceRequest>>;

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
  /// guarantees that no other Execute() runs on the same instance and that
  /// the requests are validated, compatible (same non-batch dims) and within
  /// max_batch_size. Every request is answered (exactly one final response)
  /// before this returns, except requests a decoupled model keeps answering
  /// later: the backend moves those out of `requests` and answers them from
  /// any thread. Thread-safe across instances.
  virtual void Execute(size_t instance, RequestBatch& requests, Timing* timing) = 0;

  /// False while the backend cannot serve (an isolated runner process is
  /// restarting, a composing model of an ensemble is not ready). The model
  /// reports not ready meanwhile.
  virtual bool healthy() const { return true; }

  /// False while instance `i` cannot execute (its own child process is
  /// restarting, for process-per-instance isolation); the scheduler then
  /// hands work to the other instances.
  virtual bool InstanceReady(size_t /*instance*/) const { return healthy(); }

  /// How often the backend's runner processes were restarted (0 in process).
  virtual uint64_t restarts() const { return 0; }

  /// The runner processes serving this model now, as (label, pid): empty in
  /// process. For their memory in the metrics.
  virtual std::vector<std::pair<std::string, int64_t>> RunnerProcesses() const { return {}; }

  /// Stops every running batch now, failing its requests (an unload that
  /// cannot wait any longer for a stuck batch). Only an isolated backend can:
  /// the default does nothing. Called at most once, before destruction.
  virtual void Abort(const std::string& /*reason*/) {}

  /// Who built the runner.
  virtual RunnerProvenance provenance() const = 0;
};

}  // namespace torii

#endif  // TORII_SERVER_CORE_EXECUTION_BACKEND_H_
