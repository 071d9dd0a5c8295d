// One model version loaded into a runner: the runner's model state and its
// instances. Turns a group of validated requests into one ToriiBatch, calls
// the runner, and writes each request's outputs into its response.
#ifndef TORII_SERVER_RUNNER_RUNNER_MODEL_H_
#define TORII_SERVER_RUNNER_RUNNER_MODEL_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model_config.pb.h"
#include "server/core/inference_request.h"
#include "server/core/model_signature.h"
#include "server/runner/execution_backend.h"
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
    const inference::ModelConfig* config = nullptr;  // must outlive the model
    const ModelSignature* signature = nullptr;       // must outlive the model
    uint32_t instance_count = 1;
  };

  /// Loads the model into the runner and creates its instances. On failure
  /// everything created so far is released and the error names the model.
  static absl::StatusOr<std::unique_ptr<RunnerModel>> Create(
      std::shared_ptr<RunnerLibrary> library, Options options);

  /// Destroys the instances and unloads the model. No Execute() may be running.
  ~RunnerModel() override;

  size_t instance_count() const override { return instances_.size(); }
  const RunnerLibrary& library() const { return *library_; }

  /// See ExecutionBackend::Execute. `timing` may be null.
  std::vector<absl::Status> Execute(size_t instance,
                                    const std::vector<InferenceRequest*>& requests,
                                    Timing* timing = nullptr) override;

 private:
  RunnerModel(std::shared_ptr<RunnerLibrary> library, const ModelSignature* signature)
      : library_(std::move(library)), signature_(signature) {}

  void BuildInputs(ToriiBatch& batch) const;
  // Per declared output: OK, or why no request may receive it (missing, or
  // malformed BYTES). Only outputs some request asked for are checked.
  std::vector<absl::Status> CheckOutputs(const ToriiBatch& batch) const;
  // Writes request `r`'s rows (starting at `row_offset`) into its response.
  absl::Status ScatterOutputs(ToriiBatch& batch, size_t r, int64_t row_offset,
                              const std::vector<absl::Status>& checked);

  std::shared_ptr<RunnerLibrary> library_;
  const ModelSignature* signature_;
  ToriiModel model_;
  void* model_state_ = nullptr;
  bool loaded_ = false;  // model_load succeeded: model_unload is owed
  std::vector<void*> instances_;
};

}  // namespace torii

#endif  // TORII_SERVER_RUNNER_RUNNER_MODEL_H_
