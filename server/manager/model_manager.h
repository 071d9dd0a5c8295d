// The manager (TensorFlow Serving's Manager): model name -> versions -> ready
// handles, and the lifecycle that moves models between states.
//
// It asks the source (ModelRepository) what a model is on disk, has the
// ModelLoader build versions, and swaps them in only when ready: a (re)load
// builds the new versions beside the serving ones, a failed load leaves what
// was serving in place and records the reason, and replaced or unloaded
// versions drain within a bound. Loads and unloads of one model are
// serialised; different models load and unload independently, so a model
// stuck unloading never blocks another model's load.
#ifndef TORII_SERVER_MANAGER_MODEL_MANAGER_H_
#define TORII_SERVER_MANAGER_MODEL_MANAGER_H_

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/manager/model_loader.h"
#include "server/manager/model_version.h"
#include "server/repository/model_override.h"
#include "server/repository/model_repository.h"

namespace torii {

enum class ModelState {
  kUnavailable,  // known, not serving (failed to load, or unloaded)
  kLoading,      // a first load is under way
  kReady,        // serving at least one version
  kUnloading,    // an unload is draining it
};

/// "READY", "LOADING", "UNAVAILABLE", "UNLOADING" (Triton's names).
const char* ModelStateName(ModelState state);

/// A model's state for RepositoryIndex and readiness.
struct ModelIndexEntry {
  std::string name;
  std::string version;  // empty when no version serves
  ModelState state = ModelState::kUnavailable;
  std::string reason;
};

class ModelManager : public ComposingModels {
 public:
  struct Options {
    /// How long replaced or unloaded versions may take to finish queued and
    /// running work before it is cut short (isolated runners killed).
    std::chrono::milliseconds drain_timeout{5000};
    /// Where the files of load requests go (OverrideStore::Options).
    OverrideStore::Options overrides;
  };

  /// `repository` and `loader` must outlive the manager.
  ModelManager(ModelRepository* repository, ModelLoader* loader, Options options);
  /// Unloads everything (bounded, as Unload).
  ~ModelManager();

  const ModelRepository& repository() const { return *repository_; }

  /// Loads (or reloads) `name` from the repository: every version its policy
  /// selects; versions whose config and files did not change keep serving as
  /// they are. On failure the versions already serving stay, and the reason
  /// is recorded and returned. An ensemble first loads each composing model
  /// that serves no version (as Triton does in explicit mode); ensembles that
  /// call each other in a cycle are refused.
  absl::Status Load(const std::string& name);
  /// Loads (or reloads) `name` as a repository load override describes it
  /// (Triton's "config" and "file:" load parameters): the config replaces
  /// config.pbtxt and, when files are given, they replace the model's folder
  /// (written to a private directory of the server that lives as long as a
  /// version loaded from it). Otherwise as Load(name); a later Load(name)
  /// goes back to the repository. An empty override is Load(name).
  absl::Status Load(const std::string& name, const ModelOverride& override);
  /// Loads several models in parallel on `threads` threads (startup).
  void LoadAll(const std::vector<std::string>& names, size_t threads);
  /// Stops serving `name`; queued and running requests finish first, within
  /// Options::drain_timeout. NOT_FOUND when the model is not loaded.
  absl::Status Unload(const std::string& name);
  /// Unloads every model (shutdown).
  void UnloadAll();

  /// A ready version: `version` empty selects the highest. NOT_FOUND for an
  /// unknown model or version, UNAVAILABLE for a known model not ready.
  absl::StatusOr<std::shared_ptr<ModelVersion>> Get(const std::string& name,
                                                    const std::string& version) const;
  /// Every ready version of `name` (highest first).
  std::vector<std::shared_ptr<ModelVersion>> ReadyVersions(const std::string& name) const;
  /// Every serving version of every model.
  std::vector<std::shared_ptr<ModelVersion>> AllReadyVersions() const;
  /// Every model the manager knows (serving, failed, loading, unloaded). A
  /// loaded ensemble whose composing models cannot all serve is UNAVAILABLE,
  /// with the step and the reason.
  std::vector<ModelIndexEntry> Index() const;
  /// ComposingModels (for ensembles): the spec of the version of `name` that
  /// serves now, or why none can.
  absl::StatusOr<std::shared_ptr<const ModelSpec>> ServingSpec(const std::string& name,
                                                               int64_t version) const override;
  /// True when no model is loading or failed (unloaded models do not count).
  bool AllReady() const;
  /// Logs instances that became stuck (or recovered) since the last call.
  void ReportStuckInstances();

 private:
  struct ModelSlot {
    std::map<int64_t, std::shared_ptr<ModelVersion>> versions;  // serving
    ModelState state = ModelState::kUnavailable;
    std::string reason;
    bool unloaded = false;  // by request (does not count against readiness)
    // The files a load request carried, while versions load from them.
    std::shared_ptr<const OverrideDirectory> override_files;
  };

  // Load's steps, with the source from `read` and, for a load override, the
  // directory its versions load from.
  absl::Status LoadWith(const std::string& name,
                        const std::function<absl::StatusOr<ModelSource>()>& read,
                        std::shared_ptr<const OverrideDirectory> files);

  // Builds the versions `source` selects, reusing serving ones that did not
  // change.
  absl::StatusOr<std::vector<std::shared_ptr<ModelVersion>>> BuildVersions(
      const ModelSource& source, const std::map<int64_t, std::shared_ptr<ModelVersion>>& serving);
  // LoadWith() with the model's lock held.
  absl::Status LoadLocked(const std::string& name,
                          const std::function<absl::StatusOr<ModelSource>()>& read,
                          std::shared_ptr<const OverrideDirectory> files);
  // Loads the composing models of an ensemble that serve no version.
  absl::Status LoadComposingModels(const ModelSource& ensemble);
  // The models an ensemble's steps call: from its serving version, else
  // from the repository; empty for a model that is not an ensemble.
  std::vector<std::string> StepModels(const std::string& name) const;
  // The per-model lock serialising that model's loads and unloads.
  std::shared_ptr<std::mutex> ModelLock(const std::string& name);
  // Drains replaced or unloaded versions; keeps the ones stuck in a runner.
  void Retire(const std::string& name, std::map<int64_t, std::shared_ptr<ModelVersion>> old);
  void RecordFailure(const std::string& name, const absl::Status& status);

  ModelRepository* const repository_;
  ModelLoader* const loader_;
  const Options options_;
  OverrideStore overrides_;

  mutable std::mutex mu_;
  std::map<std::string, ModelSlot> models_;
  std::map<std::string, std::shared_ptr<std::mutex>> model_locks_;
  // Versions whose batches stayed stuck in an in-process runner after an
  // unload: their threads are inside the runner, so they are never freed.
  std::vector<std::shared_ptr<ModelVersion>> abandoned_;
};

}  // namespace torii

#endif  // TORII_SERVER_MANAGER_MODEL_MANAGER_H_
