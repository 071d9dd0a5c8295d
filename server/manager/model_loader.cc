#include "server/manager/model_loader.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/common/status_macros.h"
#include "server/isolation/isolated_runner_model.h"
#include "server/runner/runner_model.h"

namespace torii {

absl::StatusOr<std::shared_ptr<const ModelSpec>> ModelLoader::Spec(
    const ModelSource& source, const inference::ModelConfig& config, bool require_io) const {
  TORII_ASSIGN_OR_RETURN(ModelSpec spec, BuildModelSpec(config, source.runner.manifest,
                                                        options_.defaults, require_io));
  return std::make_shared<const ModelSpec>(std::move(spec));
}

absl::StatusOr<std::shared_ptr<ModelVersion>> ModelLoader::Load(const ModelSource& source,
                                                                const VersionSource& version) {
  const RunnerManifest& manifest = source.runner.manifest;
  // A runner that may complete the config may be handed one without inputs
  // and outputs (Triton's auto-complete).
  const bool may_complete = manifest.auto_complete_config;
  TORII_ASSIGN_OR_RETURN(std::shared_ptr<const ModelSpec> spec,
                         Spec(source, source.config, /*require_io=*/!may_complete));
  if (spec->is_ensemble() || manifest.runner == kEnsembleRunner) {
    return LoadEnsemble(source, version, std::move(spec));
  }

  auto mv = std::make_shared<ModelVersion>();
  mv->name = source.name;
  mv->version = version.version;
  mv->version_string = std::to_string(version.version);
  mv->fingerprint = version.fingerprint;
  mv->source_config = source.config;
  mv->config = source.config;

  // What a runner's completed config becomes: checked like a config.pbtxt,
  // and it may not change what the server already decided from the original.
  auto accept_completed = [&](const inference::ModelConfig& completed)
      -> absl::StatusOr<std::shared_ptr<const ModelSpec>> {
    inference::ModelConfig c = completed;
    if (c.name().empty()) c.set_name(source.name);
    if (c.name() != source.name) {
      return absl::InvalidArgumentError(absl::StrCat(
          "model '", source.name, "': the runner's completed config renames the model to '",
          c.name(), "'"));
    }
    TORII_ASSIGN_OR_RETURN(auto completed_spec, Spec(source, c, /*require_io=*/true));
    if (completed_spec->instance_count != spec->instance_count ||
        completed_spec->isolation.mode != spec->isolation.mode) {
      return absl::InvalidArgumentError(absl::StrCat(
          "model '", source.name,
          "': the runner's completed config changes instance groups or isolation, which "
          "auto-complete may not"));
    }
    mv->config = std::move(c);
    return completed_spec;
  };

  std::shared_ptr<const ModelSpec> served;
  if (spec->isolation.mode == IsolationMode::kNone) {
    const bool in_model_folder = absl::StartsWith(version.library_path, source.directory + "/");
    auto library = libraries_.Get(version.library_path, /*private_copy=*/in_model_folder);
    if (!library.ok()) {
      return absl::Status(library.status().code(),
                          absl::StrCat("model '", source.name, "': ", library.status().message()));
    }
    RunnerModel::Options o;
    o.name = source.name;
    o.version = version.version;
    o.directory = source.directory;
    o.version_directory = version.directory;
    o.spec = spec;
    o.dispatcher = options_.dispatcher;
    o.metrics = options_.runner_metrics;
    o.instance_count = spec->instance_count;
    if (may_complete) {
      o.complete_config = [&](const std::string& json)
          -> absl::StatusOr<std::shared_ptr<const ModelSpec>> {
        TORII_ASSIGN_OR_RETURN(
            auto c, ConfigFromJson(json, absl::StrCat("model '", source.name, "': completed config")));
        return accept_completed(c);
      };
    }
    TORII_ASSIGN_OR_RETURN(auto model, RunnerModel::Create(*library, std::move(o)));
    served = model->spec();
    mv->backend = std::move(model);
  } else {
    IsolatedRunnerModel::Options o;
    o.name = source.name;
    o.version = version.version;
    o.directory = source.directory;
    o.version_directory = version.directory;
    o.spec = spec;
    source.config.SerializeToString(&o.config);
    o.library_path = version.library_path;
    o.runner = manifest.runner;
    o.default_model_filename = spec->default_model_filename;
    o.allow_config_completion = may_complete;
    o.host_path = options_.runner_host_path;
    o.dispatcher = options_.dispatcher;
    o.metrics = options_.runner_metrics;
    o.on_completed_config = [&](const std::string& serialized)
        -> absl::StatusOr<std::shared_ptr<const ModelSpec>> {
      inference::ModelConfig c;
      if (!c.ParseFromString(serialized)) {
        return absl::InternalError(absl::StrCat("model '", source.name,
                                                "': the completed config arrived damaged"));
      }
      return accept_completed(c);
    };
    TORII_ASSIGN_OR_RETURN(auto model, IsolatedRunnerModel::Create(std::move(o)));
    served = model->spec();
    mv->backend = std::move(model);
  }
  if (served->inputs.empty() || served->outputs.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model '", source.name, "': the config declares no ",
        served->inputs.empty() ? "'input'" : "'output'", " and the runner did not complete it"));
  }
  mv->spec = served;
  mv->provenance = mv->backend->provenance();
  mv->scheduler = std::make_unique<Scheduler>(Scheduler::FromSpec(*served), mv->backend.get(),
                                              &mv->stats);
  return mv;
}

absl::StatusOr<std::shared_ptr<ModelVersion>> ModelLoader::LoadEnsemble(
    const ModelSource& source, const VersionSource& version,
    std::shared_ptr<const ModelSpec> spec) {
  EnsembleModel::Options o;
  o.spec = spec;
  o.dispatcher = options_.dispatcher;
  o.models = options_.composing_models;
  TORII_ASSIGN_OR_RETURN(auto model, EnsembleModel::Create(std::move(o)));
  auto mv = std::make_shared<ModelVersion>();
  mv->name = source.name;
  mv->version = version.version;
  mv->version_string = std::to_string(version.version);
  mv->fingerprint = version.fingerprint;
  mv->source_config = source.config;
  mv->config = source.config;
  mv->spec = spec;
  mv->backend = std::move(model);
  mv->provenance = mv->backend->provenance();
  mv->scheduler = std::make_unique<Scheduler>(Scheduler::FromSpec(*spec), mv->backend.get(),
                                              &mv->stats);
  return mv;
}

}  // namespace torii
