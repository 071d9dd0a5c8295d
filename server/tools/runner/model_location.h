// Where a model directory's config, version and runner library are, found the
// way torii-server finds them, before anything is loaded.
#ifndef TORII_SERVER_TOOLS_RUNNER_MODEL_LOCATION_H_
#define TORII_SERVER_TOOLS_RUNNER_MODEL_LOCATION_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/common/filesystem.h"
#include "server/repository/model_config_parser.h"

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
  /// libtorii_<name>.so that is not yet copied into the model).
  std::string runner_path;
};

struct ModelLocation {
  std::string model_dir;    // absolute
  std::string model_name;   // the directory's name
  int64_t version = 0;
  std::string version_dir;  // absolute
  std::string runner_name;  // from backend: / platform:
  std::string runner_path;  // absolute path of libtorii_<runner>.so
  std::vector<std::string> searched;  // where the library was looked for
  ParsedModelConfig parsed;
};

/// Parses <model_dir>/config.pbtxt, picks the version folder and finds the
/// runner library in <model>/<version>/, <model>/, then the backend
/// directories (the server's order). Errors say what is missing and where it
/// was looked for.
absl::StatusOr<ModelLocation> LocateModel(const LocateOptions& options);

/// Numeric version folders of a model directory, highest first.
std::vector<int64_t> ListVersionFolders(const std::string& model_dir);

}  // namespace runner_tool
}  // namespace torii

#endif  // TORII_SERVER_TOOLS_RUNNER_MODEL_LOCATION_H_
