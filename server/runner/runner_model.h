// One model version loaded into a runner library in this process: the
// runner's model state and its instances (the in-process ExecutionBackend).
// Turns a batch of validated requests into one ToriiBatch (a single request's
// inputs are viewed in place and its outputs written straight into its
// response), calls the runner, and answers each request. The same class runs
// isolated models inside torii-runner-host children.
#ifndef TORII_SERVER_RUNNER_RUNNER_MODEL_H_
#define TORII_SERVER_RUNNER_RUNNER_MODEL_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/core/execution_backend.h"
#include "server/core/inference_dispatcher.h"
#include "server/core/model_spec.h"
#include "server/runner/host_api.h"
#include "server/runner/runner_library.h"

namespace torii {

class RunnerModel : public ExecutionBackend {
 public:
  struct Options {
    std::string name;
    int64_t version = 0;
    std::string directory;          // <repo>/<model>
    std::string version_directory;  // <repo>/<model>/<version>
    std::shared_ptr<const ModelSpec> spec;
    /// Where the runner's calls to other models go (may be null: then such
    /// calls fail with UNAVAILABLE).
    InferenceDispatcher* dispatcher = nullptr;
    /// Where the runner's metrics (ABI 1.3) go (null: metric_family_new fails
    /// with UNAVAILABLE); `metric_observer` (may be null) is told every
    /// metric operation, in order (a runner host forwards them).
    host_metrics::Registry* metrics = nullptr;
    host_metrics::Observer* metric_observer = nullptr;
    /// Lets the runner complete the config during model_load (may be empty).
    ConfigCompleter complete_config;
    /// Instances to create, numbered from `first_instance` (a child of a
    /// process-per-instance model creates one, with its own index).
    uint32_t first_instance = 0;
    uint32_t instance_count = 1;
  };

  /// Loads the model into the runner and creates its instances. On failure
  /// everything created so far is released and the error names the model.
  static absl::StatusOr<std::unique_ptr<RunnerModel>> Create(
      std::shared_ptr<RunnerLibrary> library, Options options);

  /// Destroys the instances, finishes requests the runner still holds (with
  /// an error) and unloads the model. No Execute() may be running.
  ~RunnerModel() override;

  size_t instance_count() const override { return instances_.size(); }
  const RunnerLibrary& library() const { return *library_; }
  /// The spec the model runs with (the runner may have completed it).
  std::shared_ptr<const ModelSpec> spec() const { return model_.spec; }

  void Execute(size_t instance, RequestBatch& requests, Timing* timing) override;
  RunnerProvenance provenance() const override;

 private:
  explicit RunnerModel(std::shared_ptr<RunnerLibrary> library) : library_(std::move(library)) {}

  // What one instance's batches reuse: an instance runs one batch at a
  // time, so the vectors keep their capacity from batch to batch instead of
  // being allocated for each.
  struct Scratch {
    ToriiBatch batch;
    std::vector<int64_t> row_offsets;
    std::vector<absl::Status> checked;
  };

  void BuildInputs(ToriiBatch& batch) const;
  // Per declared output, into `checked`: OK, or why no request may receive
  // it (missing, or malformed BYTES). Only outputs some request asked for
  // are checked.
  void CheckOutputs(const ToriiBatch& batch, std::vector<absl::Status>& checked) const;
  // Answers every request the runner did not take over.
  void AnswerRequests(Scratch& scratch, const absl::Status& status);
  // Request `r`'s rows of the batch outputs (starting at `row_offset`).
  absl::Status ScatterOutputs(ToriiBatch& batch, size_t r, int64_t row_offset,
                              InferenceResponse& response) const;

  std::shared_ptr<RunnerLibrary> library_;
  ToriiModel model_;
  void* model_state_ = nullptr;
  bool loaded_ = false;  // model_load succeeded: model_unload is owed
  std::vector<void*> instances_;
  std::vector<std::unique_ptr<Scratch>> scratch_;  // per instance
  std::string call_context_;  // "model '<name>': ", prefixed to runner errors
};

}  // namespace torii

#endif  // TORII_SERVER_RUNNER_RUNNER_MODEL_H_
