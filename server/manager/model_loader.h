// The loader (TensorFlow Serving's Loader): turns one version of what the
// repository holds (ModelSource + VersionSource) into a serving ModelVersion.
// It builds the spec from the config, picks the backend (a runner library in
// process, runner host children for isolated models, or an ensemble), lets
// the runner complete the config when its manifest allows, and starts the
// scheduler. It keeps no model state; the manager decides what to load.
#ifndef TORII_SERVER_MANAGER_MODEL_LOADER_H_
#define TORII_SERVER_MANAGER_MODEL_LOADER_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/core/inference_dispatcher.h"
#include "torii/metric_registry.h"
#include "server/manager/ensemble_model.h"
#include "server/manager/model_version.h"
#include "server/repository/model_repository.h"
#include "server/repository/model_spec_builder.h"
#include "server/runner/runner_library.h"

namespace torii {

class ModelLoader {
 public:
  struct Options {
    SpecDefaults defaults;
    /// Where runners' calls to other models go (the server's request path).
    InferenceDispatcher* dispatcher = nullptr;
    /// torii-runner-host for isolated models; empty = beside this executable.
    std::string runner_host_path;
    /// Where ensembles look up the models their steps call (the manager).
    const ComposingModels* composing_models = nullptr;
    /// Where runner-defined metrics (ABI 1.3) go; must outlive every model
    /// (null: runners cannot define metrics).
    host_metrics::Registry* runner_metrics = nullptr;
  };

  explicit ModelLoader(Options options) : options_(std::move(options)) {}

  /// Sets where runners' model calls go (the dispatcher is built after the
  /// manager that owns this loader). Call before the first Load().
  void set_dispatcher(InferenceDispatcher* dispatcher) { options_.dispatcher = dispatcher; }
  /// Sets where ensembles look up their composing models (the manager that
  /// owns this loader sets itself).
  void set_composing_models(const ComposingModels* models) { options_.composing_models = models; }

  /// Loads version `version` of `source`. Errors name the model.
  absl::StatusOr<std::shared_ptr<ModelVersion>> Load(const ModelSource& source,
                                                     const VersionSource& version);

  /// Builds the spec of `config` as `source` describes it (used for a config
  /// a runner completed, too).
  absl::StatusOr<std::shared_ptr<const ModelSpec>> Spec(const ModelSource& source,
                                                        const inference::ModelConfig& config,
                                                        bool require_io) const;

 private:
  // An ensemble version: its steps checked against the models serving now.
  absl::StatusOr<std::shared_ptr<ModelVersion>> LoadEnsemble(
      const ModelSource& source, const VersionSource& version,
      std::shared_ptr<const ModelSpec> spec);

  Options options_;
  RunnerLibraryCache libraries_;
};

}  // namespace torii

#endif  // TORII_SERVER_MANAGER_MODEL_LOADER_H_
