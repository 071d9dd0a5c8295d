// Ensembles (config platform: "ensemble", Triton's ensemble_scheduling): a
// graph of steps, each step a request to another model, served as one model.
//
// The ensemble's own config rules (one producer per tensor, every output
// produced, no cycle, ...) are checked when its spec is built
// (server/repository/model_spec_builder.cc). What needs the composing models
// is checked here, at load and again whenever a composing model's served spec
// changes: every step's model serves, every step input is mapped, names
// exist, and datatypes and shapes agree between a tensor's producer and its
// readers.
//
// EnsembleModel is the ExecutionBackend of an ensemble version. Execute()
// takes each ensemble request over and returns at once; the request is then
// answered asynchronously by a Run, which sends every step whose inputs exist
// to InferenceDispatcher::Infer (so a step enters its model's own scheduler
// and dynamic batching merges the steps of many ensemble requests), and
// starts the steps that a finished step's outputs make ready from that
// step's completion. Independent branches run in parallel. Tensors pass
// between steps as views: a step's input views the output buffer of the
// response that produced it (kept alive until no step needs it), and the
// ensemble's inputs are views of the client's buffers; the only copy is the
// final one into the client's response. The client's deadline and
// cancellation reach every step; a failed step fails the ensemble request
// with a message naming the step and its model, once every step already
// started has finished (their inputs view the client's buffers).
#ifndef TORII_SERVER_MANAGER_ENSEMBLE_MODEL_H_
#define TORII_SERVER_MANAGER_ENSEMBLE_MODEL_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/core/execution_backend.h"
#include "server/core/inference_dispatcher.h"
#include "server/core/model_spec.h"
#include "server/scheduler/model_statistics.h"

namespace torii {

/// Where an ensemble learns about the models its steps call (implemented by
/// ModelManager; by a fake in tests).
class ComposingModels {
 public:
  virtual ~ComposingModels() = default;
  /// The spec of the version of `name` that serves a request now (`version`
  /// -1: the highest ready version), or why none can: NOT_FOUND for an
  /// unknown model or version, UNAVAILABLE with the reason otherwise.
  virtual absl::StatusOr<std::shared_ptr<const ModelSpec>> ServingSpec(const std::string& name,
                                                                       int64_t version) const = 0;
};

/// Checks `ensemble`'s steps against the specs of the models they call
/// (`steps[i]` serves ensemble.ensemble_steps[i]). INVALID_ARGUMENT naming
/// the ensemble, the step, its model and the tensor: a decoupled step, a
/// step whose max_batch_size is below the ensemble's, an input_map or
/// output_map naming a tensor the model does not have, a model input left
/// unmapped, a datatype or shape that differs between a tensor's producer
/// (an ensemble input or a step output) and a reader (a step input) or the
/// ensemble output it becomes. Shapes are compared with their batch
/// dimension (-1 matches any size), which is what passes at run time.
absl::Status CheckEnsembleSteps(const ModelSpec& ensemble,
                                const std::vector<const ModelSpec*>& steps);

/// True for a request an ensemble sends for one of its steps: part of an
/// ensemble request already accepted (a draining server still takes it).
bool IsEnsembleStep(const InferenceRequest& request);

class EnsembleModel : public ExecutionBackend {
 public:
  struct Options {
    /// The ensemble's spec (BuildModelSpec has checked its own rules).
    std::shared_ptr<const ModelSpec> spec;
    /// Where steps are sent; must outlive every request the ensemble takes.
    InferenceDispatcher* dispatcher = nullptr;
    /// Must outlive this object.
    const ComposingModels* models = nullptr;
    /// How long destruction waits for ensemble requests still running their
    /// steps (their answers go out anyway; past it, their statistics are
    /// not recorded).
    std::chrono::milliseconds drain_timeout{30000};
  };

  /// Checks the steps against the models serving now (CheckEnsembleSteps);
  /// an error names the step and model that cannot serve or do not fit.
  static absl::StatusOr<std::unique_ptr<EnsembleModel>> Create(Options options);
  ~EnsembleModel() override;

  /// One: Execute() only hands requests over, so one scheduler worker never
  /// holds the next ensemble request back while steps run.
  size_t instance_count() const override { return 1; }
  /// Takes every request out of `requests` and answers each later, from the
  /// thread that completes its last step.
  void Execute(size_t instance, RequestBatch& requests, Timing* timing) override;
  /// What InferenceCore does with a validated ensemble request instead of
  /// queueing it on the ensemble's scheduler: the steps that read only
  /// ensemble inputs are sent on the caller's thread (Triton's ensemble
  /// scheduler does the same), which saves a thread hand-off per request.
  /// Records the request and its execution in `stats` as the scheduler would
  /// (no queue time: an ensemble does not queue).
  void Submit(std::unique_ptr<InferenceRequest> request, ModelStatistics* stats);
  /// True while Availability() is OK.
  bool healthy() const override { return Availability().ok(); }
  bool InstanceReady(size_t /*instance*/) const override { return true; }
  RunnerProvenance provenance() const override;

  /// OK while every step's model serves and fits the graph (re-checked when
  /// a composing model's served spec changed); else UNAVAILABLE or
  /// INVALID_ARGUMENT naming the step and why.
  absl::Status Availability() const;
  /// Names of the composing models, in step order, without repeats.
  std::vector<std::string> ComposingModelNames() const;
  /// Ensemble requests taken and not yet answered.
  size_t in_flight() const;

  struct Plan;
  class Run;
  struct Shared;

 private:
  EnsembleModel(Options options, std::shared_ptr<const Plan> plan);
  // The composing specs serving now, or why a step cannot run.
  absl::StatusOr<std::vector<std::shared_ptr<const ModelSpec>>> ServingSpecs() const;

  const Options options_;
  const std::shared_ptr<const Plan> plan_;
  const std::shared_ptr<Shared> shared_;
  // The composing specs the graph was last checked against, and the result.
  mutable std::mutex check_mu_;
  mutable std::vector<std::shared_ptr<const ModelSpec>> checked_specs_;
  mutable absl::Status checked_;
};

}  // namespace torii

#endif  // TORII_SERVER_MANAGER_ENSEMBLE_MODEL_H_
