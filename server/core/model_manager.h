// The model manager: model name -> versions -> ref-counted handles.
//
// A handle (std::shared_ptr<ModelVersion>) keeps a version, its runner and its
// scheduler alive while a request uses it. Loading a model builds the new
// versions beside the serving ones and swaps them in only when ready; a
// failed load leaves what was serving in place and records the reason.
#ifndef TORII_SERVER_CORE_MODEL_MANAGER_H_
#define TORII_SERVER_CORE_MODEL_MANAGER_H_

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/core/model_signature.h"
#include "server/core/request_validator.h"
#include "server/repository/model_config_parser.h"
#include "server/runner/runner_library.h"
#include "server/runner/runner_model.h"
#include "server/scheduler/model_statistics.h"
#include "server/scheduler/scheduler.h"

namespace torii {

/// One loaded version of a model: immutable after load.
struct ModelVersion {
  std::string name;
  int64_t version = 0;
  std::string version_string;
  std::string fingerprint;  // of the version folder's files, at load
  inference::ModelConfig config;
  std::unique_ptr<ModelSignature> signature;
  std::shared_ptr<RunnerLibrary> library;
  std::unique_ptr<ExecutionBackend> runner;
  std::unique_ptr<Scheduler> scheduler;
  ModelStatistics stats;
  std::atomic<size_t> reported_stuck{0};  // last stuck count logged

  /// Loaded, its runner can execute (an isolated runner may be restarting),
  /// and not every instance is stuck in a batch.
  bool CanServe() const;

  ~ModelVersion();
};

/// A model's state for RepositoryIndex and readiness.
struct ModelIndexEntry {
  std::string name;
  std::string version;  // empty when no version could be determined
  std::string state;    // READY, LOADING, UNAVAILABLE
  std::string reason;
};

class ModelManager {
 public:
  struct Options {
    std::string repository;
    /// Directories searched for libtorii_<runner>.so after the model's own.
    std::vector<std::string> backend_directories;
    size_t default_max_queue_size = 0;
  };

  explicit ModelManager(Options options);
  /// Drains and unloads everything.
  ~ModelManager();

  /// Names of the model directories in the repository.
  std::vector<std::string> ScanRepository() const;

  /// Loads (or reloads) `name` from the repository: every version its policy
  /// selects. On failure the versions already serving stay, and the reason
  /// is recorded and returned.
  absl::Status Load(const std::string& name);
  /// Stops serving `name`; queued and in-flight requests finish first.
  absl::Status Unload(const std::string& name);
  /// Unloads every model (shutdown): queued requests finish first.
  void UnloadAll();

  /// A ready version: `version` empty selects the highest. NOT_FOUND for an
  /// unknown model or version, UNAVAILABLE for a known model not ready.
  absl::StatusOr<std::shared_ptr<ModelVersion>> Get(const std::string& name,
                                                    const std::string& version) const;
  /// Every ready version of `name` (highest first).
  std::vector<std::shared_ptr<ModelVersion>> ReadyVersions(const std::string& name) const;
  /// Every model the manager knows (served, failed, loading).
  std::vector<ModelIndexEntry> Index() const;
  /// True when no model is loading or failed.
  bool AllReady() const;
  /// Logs instances that became stuck (or recovered) since the last call.
  void ReportStuckInstances();

  const Options& options() const { return options_; }

 private:
  struct ModelSlot {
    std::map<int64_t, std::shared_ptr<ModelVersion>> versions;  // serving
    std::string state = "UNAVAILABLE";
    std::string reason;
  };

  // Builds the versions the policy selects, reusing `serving` versions whose
  // config and files did not change.
  absl::StatusOr<std::vector<std::shared_ptr<ModelVersion>>> BuildVersions(
      const std::string& name, const std::map<int64_t, std::shared_ptr<ModelVersion>>& serving,
      std::vector<std::string>* warnings);
  absl::StatusOr<std::string> FindRunner(const std::string& runner,
                                         const std::string& model_dir,
                                         const std::string& version_dir) const;
  void SetState(const std::string& name, const std::string& state, const std::string& reason);

  const Options options_;
  RunnerLibraryCache libraries_;
  std::mutex load_mu_;  // one load/unload at a time
  mutable std::mutex mu_;
  std::map<std::string, ModelSlot> models_;
};

/// Which runner a config names: backend, or Triton's platform/backend
/// aliases ("pytorch_libtorch", "pytorch" -> "torchscript").
absl::StatusOr<std::string> RunnerNameForConfig(const inference::ModelConfig& config);

/// True if `name` is a plain directory name (no '/', not "." or "..", not
/// empty, no NUL).
bool IsPlainName(const std::string& name);

}  // namespace torii

#endif  // TORII_SERVER_CORE_MODEL_MANAGER_H_
