// The source of models (TensorFlow Serving's Source): a model repository
// directory in Triton's layout, <root>/<model>/config.pbtxt plus numbered
// version folders. It says what a model is *on disk now*: its parsed config,
// the runner that serves it and the versions its policy selects. It loads
// nothing; server/manager/ turns what it reads into serving versions.
#ifndef TORII_SERVER_REPOSITORY_MODEL_REPOSITORY_H_
#define TORII_SERVER_REPOSITORY_MODEL_REPOSITORY_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model_config.pb.h"
#include "server/repository/model_config_parser.h"
#include "server/repository/runner_catalog.h"

namespace torii {

/// One version folder selected by the model's version policy.
struct VersionSource {
  int64_t version = 0;
  std::string directory;    // <root>/<model>/<version>
  /// The runner library serving this version (a version folder may ship its
  /// own); empty for ensembles.
  std::string library_path;
  /// Every file's path, size and mtime under the version folder, plus the
  /// runner library when it lives in the model folder: equal fingerprints
  /// mean nothing a load reads has changed.
  std::string fingerprint;
};

/// What the repository holds for one model now.
struct ModelSource {
  std::string name;
  std::string directory;  // <root>/<model>
  inference::ModelConfig config;
  /// False when the folder has no config.pbtxt (the runner completes it).
  bool has_config_file = true;
  std::vector<std::string> warnings;  // fields parsed but not implemented
  /// The runner (of the highest selected version); empty library_path for
  /// ensembles.
  RunnerLocation runner;
  std::vector<VersionSource> versions;  // highest first
};

class ModelRepository {
 public:
  struct Options {
    std::string root;
    std::vector<std::string> backend_directories;
  };
  explicit ModelRepository(Options options);

  const std::string& root() const { return options_.root; }
  const RunnerCatalog& runners() const { return catalog_; }

  /// Names of the model directories (sorted; hidden entries and lost+found
  /// skipped).
  std::vector<std::string> List() const;

  /// Reads model `name`: config (or the runner's default when the folder has
  /// none and the runner can complete configs), runner, selected versions.
  /// NOT_FOUND for a missing directory; INVALID_ARGUMENT for a bad config;
  /// errors name the model and the file.
  absl::StatusOr<ModelSource> Read(const std::string& name) const;

  /// Reads model `name` as a repository load override describes it: with
  /// `config` (ParseModelConfigJson) instead of config.pbtxt, and, when
  /// `directory` is not empty, from that directory (the files the request
  /// carried, OverrideStore) instead of the model's folder in the
  /// repository. Versions read from `directory` never compare equal to ones
  /// read from elsewhere, so a reload always rebuilds them. The config must
  /// declare inputs and outputs unless its runner can complete them.
  absl::StatusOr<ModelSource> ReadOverride(const std::string& name,
                                           const ParsedModelConfig& config,
                                           const std::string& directory) const;

  /// A cheap summary of a model directory for poll mode (see VersionSource).
  static std::string Fingerprint(const std::string& directory);

 private:
  // Read and ReadOverride: the model `name` in `directory`, with `config`
  // when given (else its config.pbtxt).
  absl::StatusOr<ModelSource> ReadModel(const std::string& name, const std::string& directory,
                                        const ParsedModelConfig* config) const;

  Options options_;
  RunnerCatalog catalog_;
};

/// True if `name` is a plain directory name (no '/', not "." or "..", not
/// empty, no NUL).
bool IsPlainName(const std::string& name);

/// The versions `policy` selects from `available` (version -> folder name),
/// highest first.
std::vector<int64_t> ApplyVersionPolicy(const inference::ModelVersionPolicy& policy,
                                        const std::map<int64_t, std::string>& available);

}  // namespace torii

#endif  // TORII_SERVER_REPOSITORY_MODEL_REPOSITORY_H_
