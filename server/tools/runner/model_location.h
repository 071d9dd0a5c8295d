// Where a model directory's config, version and runner library are, found the
// way torii-server finds them (the repository's runner catalog and manifests),
// before anything is loaded.
#ifndef TORII_SERVER_TOOLS_RUNNER_MODEL_LOCATION_H_
#define TORII_SERVER_TOOLS_RUNNER_MODEL_LOCATION_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/repository/model_config_parser.h"
#include "server/repository/runner_catalog.h"

namespace torii {
namespace runner_tool {

struct LocateOptions {
  std::string model_dir;  // <repository>/<model>
  /// The version folder to use; 0 selects the highest numeric folder.
  int64_t version = 0;
  /// Searched after the model's own directories (the server's
  /// --backend-directory). Empty: <dir of this executable>/../lib/torii.
  std::vector<std::string> backend_directories;
  /// An explicit runner library; skips the search (e.g. a freshly built
  /// libtorii_<name>.so that is not yet copied into the model). Its manifest
  /// is the libtorii_<name>.json beside it, if any.
  std::string runner_path;
};

struct ModelLocation {
  std::string model_dir;    // absolute
  std::string model_name;   // the directory's name
  int64_t version = 0;
  std::string version_dir;  // absolute
  std::string runner_name;  // from backend: / platform: / the model file
  std::string runner_path;  // absolute path of libtorii_<runner>.so
  std::vector<std::string> searched;  // where the library was looked for
  /// The config as read; for a folder without config.pbtxt (a runner that
  /// completes configs, e.g. a Python model.py alone) just the name.
  ParsedModelConfig parsed;
  bool has_config_file = true;
  /// What the runner declares about itself (libtorii_<runner>.json beside
  /// the library): isolation floor, default model file, auto-complete.
  RunnerManifest manifest;
};

/// Reads <model_dir>/config.pbtxt (or, without one, finds the runner by its
/// model file as the server does), picks the version folder and finds the
/// runner library in <model>/<version>/, <model>/, then the backend
/// directories (the server's order), with its manifest. Errors say what is
/// missing and where it was looked for.
absl::StatusOr<ModelLocation> LocateModel(const LocateOptions& options);

/// Numeric version folders of a model directory, highest first.
std::vector<int64_t> ListVersionFolders(const std::string& model_dir);

}  // namespace runner_tool
}  // namespace torii

#endif  // TORII_SERVER_TOOLS_RUNNER_MODEL_LOCATION_H_
