#include "server/repository/model_repository.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "server/common/filesystem.h"
#include "server/common/status_macros.h"
#include "server/repository/model_config_parser.h"
#include "server/repository/repository_poller.h"

namespace torii {
namespace {

std::vector<std::string> ListDirectories(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    const std::string n = e->d_name;
    // Hidden entries, and the lost+found of a volume's root, are not models.
    if (n.empty() || n[0] == '.' || n == "lost+found") continue;
    if (IsDirectory(dir + "/" + n)) out.push_back(n);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

// Numeric version folders: version -> folder name (e.g. 3 -> "3" or "03").
std::map<int64_t, std::string> ListVersions(const std::string& model_dir) {
  std::map<int64_t, std::string> versions;
  for (const auto& n : ListDirectories(model_dir)) {
    if (n.size() > 18 || !std::all_of(n.begin(), n.end(), ::isdigit)) continue;
    const int64_t v = std::stoll(n);
    if (v > 0) versions.emplace(v, n);
  }
  return versions;
}

// The identity of a file: a library replaced in place (same path, new
// contents) must count as a change.
std::string FileIdentity(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return "";
  return absl::StrCat(path, ":", st.st_ino, ":", st.st_size, ":", st.st_mtim.tv_sec, ".",
                      st.st_mtim.tv_nsec);
}

}  // namespace

bool IsPlainName(const std::string& name) {
  return !name.empty() && name != "." && name != ".." &&
         name.find_first_of(std::string("/\\\0", 3)) == std::string::npos;
}

std::vector<int64_t> ApplyVersionPolicy(const inference::ModelVersionPolicy& policy,
                                        const std::map<int64_t, std::string>& available) {
  std::vector<int64_t> all;
  for (auto it = available.rbegin(); it != available.rend(); ++it) all.push_back(it->first);
  if (policy.has_all()) return all;
  if (policy.has_specific()) {
    std::vector<int64_t> out;
    const auto& want = policy.specific().versions();
    for (int64_t v : all) {
      if (std::find(want.begin(), want.end(), v) != want.end()) out.push_back(v);
    }
    return out;
  }
  const size_t n = policy.has_latest() ? policy.latest().num_versions() : 1;
  return {all.begin(), all.begin() + std::min(n, all.size())};
}

ModelRepository::ModelRepository(Options options)
    : options_(std::move(options)), catalog_(options_.backend_directories) {}

std::vector<std::string> ModelRepository::List() const { return ListDirectories(options_.root); }

std::string ModelRepository::Fingerprint(const std::string& directory) {
  return FingerprintModelDirectory(directory);
}

absl::StatusOr<ModelSource> ModelRepository::Read(const std::string& name) const {
  return ReadModel(name, options_.root + "/" + name, nullptr);
}

absl::StatusOr<ModelSource> ModelRepository::ReadOverride(const std::string& name,
                                                          const ParsedModelConfig& config,
                                                          const std::string& directory) const {
  if (directory.empty()) return ReadModel(name, options_.root + "/" + name, &config);
  TORII_ASSIGN_OR_RETURN(ModelSource src, ReadModel(name, directory, &config));
  // The same files in another directory are another load: nothing may
  // keep serving from a directory that is about to be removed.
  for (auto& v : src.versions) absl::StrAppend(&v.fingerprint, "override:", directory, "\n");
  return src;
}

absl::StatusOr<ModelSource> ModelRepository::ReadModel(const std::string& name,
                                                       const std::string& directory,
                                                       const ParsedModelConfig* config) const {
  if (!IsPlainName(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("model name '", name, "' must be a plain directory name in the repository"));
  }
  ModelSource src;
  src.name = name;
  src.directory = directory;
  if (!IsDirectory(src.directory)) {
    return absl::NotFoundError(
        absl::StrCat("no model directory '", name, "' in the repository ", options_.root));
  }
  const std::map<int64_t, std::string> available = ListVersions(src.directory);
  std::vector<std::string> all_version_dirs;
  for (const auto& [v, dir] : available) all_version_dirs.push_back(src.directory + "/" + dir);

  const std::string config_path = src.directory + "/config.pbtxt";
  if (config != nullptr) {
    src.config = config->config;
    src.warnings = config->warnings;
  } else if (IsFile(config_path)) {
    TORII_ASSIGN_OR_RETURN(ParsedModelConfig parsed, LoadModelConfig(config_path, name));
    src.config = std::move(parsed.config);
    src.warnings = std::move(parsed.warnings);
  } else {
    // Triton's auto-complete: a folder with only a model file is served when
    // its runner can complete the config.
    src.has_config_file = false;
    src.config.set_name(name);
  }
  auto runner = catalog_.RunnerFor(src.config, all_version_dirs);
  if (!runner.ok()) {
    if (!src.has_config_file) {
      return absl::NotFoundError(absl::StrCat("model '", name, "': no config.pbtxt in ",
                                              src.directory, ", and ", runner.status().message()));
    }
    return runner.status();
  }

  const std::vector<int64_t> selected = ApplyVersionPolicy(src.config.version_policy(), available);
  if (selected.empty()) {
    return absl::NotFoundError(absl::StrCat("model '", name, "': no version directory ",
                                            available.empty() ? "(like 1/) exists"
                                                              : "matches version_policy",
                                            " in ", src.directory));
  }
  if (*runner == kEnsembleRunner) {
    src.runner.manifest.runner = kEnsembleRunner;
  } else {
    const std::string first_dir = src.directory + "/" + available.at(selected.front());
    auto loc = catalog_.Find(*runner, src.directory, first_dir);
    if (!loc.ok()) {
      return absl::Status(loc.status().code(),
                          absl::StrCat("model '", name, "': ", loc.status().message()));
    }
    src.runner = std::move(*loc);
    if (!src.has_config_file && !src.runner.manifest.auto_complete_config) {
      return absl::NotFoundError(absl::StrCat("model '", name, "': no config.pbtxt in ",
                                              src.directory, ", and runner '", *runner,
                                              "' cannot complete a config"));
    }
  }
  // A given config may leave inputs and outputs to a runner that completes
  // configs (as Triton's auto-complete does); for any other it is complete.
  if (config != nullptr && !src.runner.manifest.auto_complete_config) {
    TORII_RETURN_IF_ERROR(ValidateModelConfig(src.config, "config override"));
  }
  for (int64_t v : selected) {
    VersionSource vs;
    vs.version = v;
    vs.directory = src.directory + "/" + available.at(v);
    vs.fingerprint = FingerprintModelDirectory(vs.directory);
    if (!src.runner.library_path.empty()) {
      auto loc = catalog_.Find(src.runner.manifest.runner, src.directory, vs.directory);
      if (!loc.ok()) return loc.status();
      vs.library_path = loc->library_path;
      // A library in the model folder is part of every version; one replaced
      // in place (same path, new contents) must count as a change.
      if (absl::StartsWith(vs.library_path, src.directory + "/")) {
        vs.fingerprint += FileIdentity(vs.library_path);
      }
    }
    src.versions.push_back(std::move(vs));
  }
  return src;
}

}  // namespace torii
