#include "server/tools/runner/model_location.h"

#include <dirent.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/common/filesystem.h"
#include "server/common/status_macros.h"
#include "server/repository/model_repository.h"

namespace torii {
namespace runner_tool {
namespace {

constexpr char kLayout[] =
    "a model directory holds config.pbtxt and numeric version folders like 1/";

// The manifest beside an explicitly given library (libtorii_x.so ->
// libtorii_x.json), or the defaults of a runner that ships none.
absl::StatusOr<RunnerManifest> ManifestBeside(const std::string& library,
                                              const std::string& runner) {
  std::string path = library;
  if (path.size() > 3 && path.compare(path.size() - 3, 3, ".so") == 0) {
    path = path.substr(0, path.size() - 3) + ".json";
    if (IsFile(path)) {
      std::ifstream in(path, std::ios::binary);
      std::ostringstream text;
      text << in.rdbuf();
      return ParseRunnerManifest(text.str(), path);
    }
  }
  RunnerManifest m;
  m.runner = runner;
  m.backends = {runner};
  return m;
}

}  // namespace

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
  const std::vector<int64_t> versions = ListVersionFolders(loc.model_dir);

  std::vector<std::string> backend_dirs;
  if (options.backend_directories.empty()) {
    backend_dirs.push_back(AbsolutePath(DefaultBackendDirectory()));
  } else {
    for (const auto& d : options.backend_directories) backend_dirs.push_back(AbsolutePath(d));
  }
  const RunnerCatalog catalog(backend_dirs);

  // The config, or (Triton's auto-complete) none: then the runner is the one
  // whose model file a version folder holds, and it completes the config.
  const std::string config_path = loc.model_dir + "/config.pbtxt";
  if (IsFile(config_path)) {
    TORII_ASSIGN_OR_RETURN(loc.parsed, LoadModelConfig(config_path, loc.model_name));
  } else {
    loc.has_config_file = false;
    loc.parsed.config.set_name(loc.model_name);
  }
  std::vector<std::string> version_dirs;
  for (int64_t v : versions) version_dirs.push_back(absl::StrCat(loc.model_dir, "/", v));
  auto runner = catalog.RunnerFor(loc.parsed.config, version_dirs);
  if (!runner.ok()) {
    if (!loc.has_config_file) {
      return absl::NotFoundError(absl::StrCat(
          "no config.pbtxt in ", loc.model_dir,
          ", and no version folder holds a model file whose runner can complete a config (",
          kLayout, ")"));
    }
    return runner.status();
  }
  if (*runner == kEnsembleRunner) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model '", loc.model_name,
        "' is an ensemble: torii-runner tests a runner, and an ensemble has none (check the "
        "models of its steps instead)"));
  }
  loc.runner_name = *runner;

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
    TORII_ASSIGN_OR_RETURN(loc.manifest, ManifestBeside(loc.runner_path, loc.runner_name));
  } else {
    if (!IsPlainName(loc.runner_name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("runner name '", loc.runner_name, "' is not a plain name"));
    }
    loc.searched = {loc.version_dir, loc.model_dir};
    loc.searched.insert(loc.searched.end(), backend_dirs.begin(), backend_dirs.end());
    auto found = catalog.Find(loc.runner_name, loc.model_dir, loc.version_dir);
    if (!found.ok()) {
      if (!absl::IsNotFound(found.status())) return found.status();
      return absl::NotFoundError(absl::StrCat(
          found.status().message(),
          " (copy the built library into the model directory, or pass --runner FILE or "
          "--backend-directory DIR)"));
    }
    loc.runner_path = AbsolutePath(found->library_path);
    loc.manifest = std::move(found->manifest);
  }
  if (!loc.has_config_file && !loc.manifest.auto_complete_config) {
    return absl::NotFoundError(absl::StrCat("no config.pbtxt in ", loc.model_dir, ", and runner '",
                                            loc.runner_name,
                                            "' cannot complete a config (its manifest does not "
                                            "say auto_complete_config; ",
                                            kLayout, ")"));
  }
  return loc;
}

}  // namespace runner_tool
}  // namespace torii
