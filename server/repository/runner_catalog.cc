#include "server/repository/runner_catalog.h"

#include <dirent.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "server/common/filesystem.h"
#include "server/common/logging.h"

namespace torii {
namespace {

using json = nlohmann::json;

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

absl::StatusOr<std::string> ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string ManifestPathFor(const std::string& library_path) {
  // libtorii_x.so -> libtorii_x.json
  return library_path.substr(0, library_path.size() - 3) + ".json";
}

}  // namespace

const char* IsolationModeName(IsolationMode mode) {
  switch (mode) {
    case IsolationMode::kNone: return "none";
    case IsolationMode::kProcess: return "process";
    case IsolationMode::kProcessPerInstance: return "process_per_instance";
  }
  return "none";
}

bool ParseIsolationMode(const std::string& text, IsolationMode* out) {
  if (text.empty() || text == "none") {
    *out = IsolationMode::kNone;
  } else if (text == "process") {
    *out = IsolationMode::kProcess;
  } else if (text == "process_per_instance") {
    *out = IsolationMode::kProcessPerInstance;
  } else {
    return false;
  }
  return true;
}

absl::StatusOr<RunnerManifest> ParseRunnerManifest(const std::string& text,
                                                   const std::string& file) {
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  auto bad = [&](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": ", what));
  };
  if (!j.is_object()) return bad("a runner manifest is one JSON object");
  RunnerManifest m;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    const json& v = it.value();
    if (key == "runner" && v.is_string()) {
      m.runner = v.get<std::string>();
    } else if ((key == "backends" || key == "platforms") && v.is_array()) {
      auto& out = key == "backends" ? m.backends : m.platforms;
      for (const json& e : v) {
        if (!e.is_string()) return bad(absl::StrCat("'", key, "' must be a list of strings"));
        out.push_back(e.get<std::string>());
      }
    } else if (key == "isolation" && v.is_string()) {
      if (!ParseIsolationMode(v.get<std::string>(), &m.isolation)) {
        return bad(absl::StrCat("'isolation' is \"", v.get<std::string>(),
                                "\"; expected none, process or process_per_instance"));
      }
    } else if (key == "default_model_filename" && v.is_string()) {
      m.default_model_filename = v.get<std::string>();
    } else if (key == "auto_complete_config" && v.is_boolean()) {
      m.auto_complete_config = v.get<bool>();
    } else {
      return bad(absl::StrCat("unknown key or wrong type for '", key, "'"));
    }
  }
  if (m.runner.empty()) return bad("'runner' (the runner's name) is missing");
  if (!Contains(m.backends, m.runner)) m.backends.push_back(m.runner);
  return m;
}

RunnerCatalog::RunnerCatalog(std::vector<std::string> backend_directories)
    : directories_(std::move(backend_directories)) {
  for (const auto& dir : directories_) {
    DIR* d = opendir(dir.c_str());
    if (d == nullptr) continue;
    std::vector<std::string> files;
    while (dirent* e = readdir(d)) {
      const std::string n = e->d_name;
      if (absl::StartsWith(n, "libtorii_") && absl::EndsWith(n, ".json")) files.push_back(n);
    }
    closedir(d);
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      const std::string path = dir + "/" + f;
      auto text = ReadText(path);
      auto m = text.ok() ? ParseRunnerManifest(*text, path) : text.status();
      if (!m.ok()) {
        LogWarning("runner manifest ignored", {{"reason", std::string(m.status().message())}});
        continue;
      }
      // The first directory that names a runner wins, as for libraries.
      bool known = false;
      for (const auto& have : manifests_) known = known || have.runner == m->runner;
      if (!known) manifests_.push_back(std::move(*m));
    }
  }
}

absl::StatusOr<std::string> RunnerCatalog::RunnerFor(
    const inference::ModelConfig& config, const std::vector<std::string>& version_dirs) const {
  const std::string& backend = config.backend();
  if (!backend.empty()) {
    for (const auto& m : manifests_) {
      if (Contains(m.backends, backend)) return m.runner;
    }
    return backend;  // a runner without a manifest, e.g. in the model folder
  }
  const std::string& platform = config.platform();
  if (platform == kEnsembleRunner) return std::string(kEnsembleRunner);
  if (!platform.empty()) {
    for (const auto& m : manifests_) {
      if (Contains(m.platforms, platform)) return m.runner;
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "model '", config.name(), "': platform \"", platform,
        "\" has no Torii runner; set backend: \"<runner>\""));
  }
  std::vector<std::string> looked_for;
  for (const auto& m : manifests_) {
    if (m.default_model_filename.empty()) continue;
    looked_for.push_back(m.default_model_filename);
    for (const auto& dir : version_dirs) {
      if (IsFile(dir + "/" + m.default_model_filename)) return m.runner;
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "model '", config.name(), "': config.pbtxt names no runner (set backend: \"<runner>\")",
      looked_for.empty() ? std::string()
                         : absl::StrCat(" and no version folder holds a model file a runner "
                                        "recognises (", absl::StrJoin(looked_for, ", "), ")")));
}

absl::StatusOr<RunnerLocation> RunnerCatalog::Find(const std::string& runner,
                                                   const std::string& model_dir,
                                                   const std::string& version_dir) const {
  if (runner.empty() || runner == "." || runner == ".." ||
      runner.find_first_of(std::string("/\\\0", 3)) != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("runner name '", runner,
                                                   "' is not a plain name"));
  }
  const std::string file = "libtorii_" + runner + ".so";
  std::vector<std::string> searched = {version_dir, model_dir};
  searched.insert(searched.end(), directories_.begin(), directories_.end());
  for (const auto& dir : searched) {
    const std::string path = dir + "/" + file;
    if (!IsFile(path)) continue;
    RunnerLocation loc;
    loc.library_path = path;
    const std::string manifest_path = ManifestPathFor(path);
    if (IsFile(manifest_path)) {
      auto text = ReadText(manifest_path);
      auto m = text.ok() ? ParseRunnerManifest(*text, manifest_path) : text.status();
      if (!m.ok()) return m.status();
      loc.manifest = std::move(*m);
    } else {
      loc.manifest.runner = runner;
      loc.manifest.backends = {runner};
    }
    return loc;
  }
  return absl::NotFoundError(absl::StrCat("runner '", runner, "' not found: no ", file, " in ",
                                          absl::StrJoin(searched, ", ")));
}

}  // namespace torii
