// Which runner library serves a model, and what that runner declares about
// itself in its manifest.
//
// A runner library libtorii_<name>.so may ship a manifest beside it,
// libtorii_<name>.json:
//   {"runner": "python", "backends": ["python"], "platforms": [],
//    "isolation": "process_per_instance", "default_model_filename": "model.py",
//    "auto_complete_config": true}
// It says which config names select the runner (backend aliases, Triton
// platform names), the least isolation its models need, the model file that
// identifies a model folder without config.pbtxt, and whether the runner may
// complete a config. The server reads manifests; it never runs a runner's code
// to learn these (isolated runners run only in their child processes).
#ifndef TORII_SERVER_REPOSITORY_RUNNER_CATALOG_H_
#define TORII_SERVER_REPOSITORY_RUNNER_CATALOG_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model_config.pb.h"
#include "server/core/model_spec.h"

namespace torii {

/// The runner name of ensembles (built in; no library).
inline constexpr char kEnsembleRunner[] = "ensemble";

struct RunnerManifest {
  std::string runner;
  std::vector<std::string> backends;   // `backend:` values that select it
  std::vector<std::string> platforms;  // `platform:` values that select it
  IsolationMode isolation = IsolationMode::kNone;  // the least its models get
  std::string default_model_filename;
  bool auto_complete_config = false;
};

/// Parses a manifest (JSON text). `file` names it in errors.
absl::StatusOr<RunnerManifest> ParseRunnerManifest(const std::string& text,
                                                   const std::string& file);

/// A runner library found for a model, with its manifest (defaults when it
/// ships none).
struct RunnerLocation {
  std::string library_path;
  RunnerManifest manifest;
};

class RunnerCatalog {
 public:
  /// Reads the manifests in `backend_directories` (searched in order). A
  /// manifest that does not parse is logged and skipped.
  explicit RunnerCatalog(std::vector<std::string> backend_directories);

  /// The runner a config selects: `backend` (or one of a manifest's aliases),
  /// else `platform` ("ensemble" for ensembles), else, when the config names
  /// neither, the runner whose default_model_filename is present in one of
  /// `version_dirs`. The error says what was looked for.
  absl::StatusOr<std::string> RunnerFor(const inference::ModelConfig& config,
                                        const std::vector<std::string>& version_dirs) const;

  /// libtorii_<runner>.so in `version_dir`, then `model_dir`, then the
  /// backend directories, and its manifest (the one beside the library, or
  /// the catalog's).
  absl::StatusOr<RunnerLocation> Find(const std::string& runner, const std::string& model_dir,
                                      const std::string& version_dir) const;

  const std::vector<std::string>& backend_directories() const { return directories_; }

 private:
  std::vector<std::string> directories_;
  std::vector<RunnerManifest> manifests_;
};

/// Name for IsolationMode in configs and manifests: "none", "process",
/// "process_per_instance".
const char* IsolationModeName(IsolationMode mode);
bool ParseIsolationMode(const std::string& text, IsolationMode* out);

}  // namespace torii

#endif  // TORII_SERVER_REPOSITORY_RUNNER_CATALOG_H_
