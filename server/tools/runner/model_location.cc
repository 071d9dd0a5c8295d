#include "server/tools/runner/model_location.h"

#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/common/filesystem.h"
#include "server/common/status_macros.h"
#include "server/core/model_manager.h"

namespace torii {
namespace runner_tool {

std::vector<int64_t> ListVersionFolders(const std::string& model_dir) {
  std::vector<int64_t> versions;
  DIR* d = opendir(model_dir.c_str());
  if (d == nullptr) return versions;
  while (dirent* e = readdir(d)) {
    const std::string n = e->d_name;
    // The server's rule: a positive number of at most 18 digits.
    if (n.empty() || n.size() > 18 || !std::all_of(n.begin(), n.end(), ::isdigit)) continue;
    if (!IsDirectory(model_dir + "/" + n)) continue;
    const int64_t v = std::stoll(n);
    if (v > 0) versions.push_back(v);
  }
  closedir(d);
  std::sort(versions.rbegin(), versions.rend());
  return versions;
}

absl::StatusOr<ModelLocation> LocateModel(const LocateOptions& options) {
  ModelLocation loc;
  std::string dir = options.model_dir;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  if (!IsDirectory(dir)) {
    return absl::NotFoundError(absl::StrCat("'", options.model_dir, "' is not a directory"));
  }
  loc.model_dir = AbsolutePath(dir);
  loc.model_name = loc.model_dir.substr(loc.model_dir.rfind('/') + 1);
  const std::string config_path = loc.model_dir + "/config.pbtxt";
  if (!IsFile(config_path)) {
    return absl::NotFoundError(absl::StrCat(
        "no config.pbtxt in ", loc.model_dir,
        " (a model directory holds config.pbtxt and numeric version folders like 1/)"));
  }
  TORII_ASSIGN_OR_RETURN(loc.parsed, LoadModelConfig(config_path, loc.model_name));
  TORII_ASSIGN_OR_RETURN(loc.runner_name, RunnerNameForConfig(loc.parsed.config));

  const std::vector<int64_t> versions = ListVersionFolders(loc.model_dir);
  if (options.version > 0) {
    if (std::find(versions.begin(), versions.end(), options.version) == versions.end()) {
      return absl::NotFoundError(absl::StrCat(
          "model '", loc.model_name, "' has no version folder ", options.version, " (found: ",
          versions.empty() ? "none" : absl::StrJoin(versions, ", "), ")"));
    }
    loc.version = options.version;
  } else {
    if (versions.empty()) {
      return absl::NotFoundError(absl::StrCat("model '", loc.model_name,
                                              "' has no version folder (like 1/) in ",
                                              loc.model_dir));
    }
    loc.version = versions.front();
  }
  loc.version_dir = absl::StrCat(loc.model_dir, "/", loc.version);

  if (!options.runner_path.empty()) {
    if (!IsFile(options.runner_path)) {
      return absl::NotFoundError(
          absl::StrCat("runner library '", options.runner_path, "' does not exist"));
    }
    loc.runner_path = AbsolutePath(options.runner_path);
    loc.searched = {loc.runner_path};
    return loc;
  }
  if (!IsPlainName(loc.runner_name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("runner name '", loc.runner_name, "' is not a plain name"));
  }
  const std::string file = "libtorii_" + loc.runner_name + ".so";
  loc.searched = {loc.version_dir, loc.model_dir};
  if (options.backend_directories.empty()) {
    loc.searched.push_back(AbsolutePath(DefaultBackendDirectory()));
  } else {
    for (const auto& d : options.backend_directories) loc.searched.push_back(AbsolutePath(d));
  }
  for (const auto& d : loc.searched) {
    if (IsFile(d + "/" + file)) {
      loc.runner_path = AbsolutePath(d + "/" + file);
      return loc;
    }
  }
  return absl::NotFoundError(absl::StrCat("runner '", loc.runner_name, "' not found: no ", file,
                                          " in ", absl::StrJoin(loc.searched, ", "),
                                          " (copy the built library into the model directory, "
                                          "or pass --runner FILE or --backend-directory DIR)"));
}

}  // namespace runner_tool
}  // namespace torii
