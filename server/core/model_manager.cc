#include "server/core/model_manager.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/common/filesystem.h"
#include "server/common/logging.h"
#include "server/common/status_macros.h"
#include "server/isolation/isolated_runner_model.h"
#include "server/repository/repository_poller.h"
#include "google/protobuf/util/message_differencer.h"

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

// The versions a policy selects, highest first.
std::vector<int64_t> ApplyPolicy(const inference::ModelVersionPolicy& policy,
                                 const std::map<int64_t, std::string>& available) {
  std::vector<int64_t> all;
  for (auto it = available.rbegin(); it != available.rend(); ++it) all.push_back(it->first);
  if (policy.has_all()) return all;
  if (policy.has_specific()) {
    std::vector<int64_t> out;
    for (int64_t v : all) {
      const auto& want = policy.specific().versions();
      if (std::find(want.begin(), want.end(), v) != want.end()) out.push_back(v);
    }
    return out;
  }
  const size_t n = policy.has_latest() ? policy.latest().num_versions() : 1;
  return {all.begin(), all.begin() + std::min(n, all.size())};
}

std::string Ms(std::chrono::steady_clock::duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

// In-process by default; `parameters { key: "isolation" value { string_value:
// "process" } }` runs the instances in a child process.
absl::StatusOr<std::unique_ptr<ExecutionBackend>> CreateBackend(
    const inference::ModelConfig& config, std::shared_ptr<RunnerLibrary> library,
    RunnerModel::Options options) {
  auto it = config.parameters().find("isolation");
  const std::string mode = it == config.parameters().end() ? "" : it->second.string_value();
  if (mode.empty() || mode == "none") {
    TORII_ASSIGN_OR_RETURN(auto model, RunnerModel::Create(std::move(library), options));
    return std::unique_ptr<ExecutionBackend>(std::move(model));
  }
  if (mode == "process") {
    TORII_ASSIGN_OR_RETURN(auto isolated, IsolatedRunnerModel::OptionsFromConfig(
                                              config, options, library->path()));
    TORII_ASSIGN_OR_RETURN(auto model, IsolatedRunnerModel::Create(std::move(isolated)));
    return std::unique_ptr<ExecutionBackend>(std::move(model));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "model '", config.name(), "': parameter isolation is \"", mode,
      "\"; use \"none\" (default) or \"process\""));
}

}  // namespace

bool IsPlainName(const std::string& name) {
  return !name.empty() && name != "." && name != ".." &&
         name.find_first_of(std::string("/\\\0", 3)) == std::string::npos;
}

absl::StatusOr<std::string> RunnerNameForConfig(const inference::ModelConfig& config) {
  std::string name = config.backend();
  if (name == "pytorch") name = "torchscript";
  if (name.empty()) {
    if (config.platform() == "pytorch_libtorch") return std::string("torchscript");
    return absl::InvalidArgumentError(absl::StrCat(
        "model '", config.name(), "': config.pbtxt names no runner; set backend: \"<runner>\"",
        config.platform().empty() ? "" : absl::StrCat(" (platform \"", config.platform(),
                                                      "\" has no Torii runner)")));
  }
  return name;
}

bool ModelVersion::CanServe() const {
  return runner->healthy() && scheduler->stuck_instances() < runner->instance_count();
}

void ModelManager::ReportStuckInstances() {
  std::vector<std::shared_ptr<ModelVersion>> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [n, slot] : models_) {
      for (const auto& [v, mv] : slot.versions) all.push_back(mv);
    }
  }
  for (const auto& mv : all) {
    const size_t stuck = mv->scheduler->stuck_instances();
    const size_t before = mv->reported_stuck.exchange(stuck);
    if (stuck == before) continue;
    const LogFields fields = {{"model", mv->name},
                              {"version", mv->version_string},
                              {"stuck_instances", std::to_string(stuck)},
                              {"instances", std::to_string(mv->runner->instance_count())}};
    if (stuck > before) {
      LogWarning("runner instance stuck: a batch has run longer than execution_timeout_ms", fields);
    } else {
      LogInfo("runner instance recovered", fields);
    }
  }
}

ModelVersion::~ModelVersion() {
  // Drain before the runner goes away: queued requests still finish.
  if (scheduler) scheduler->Shutdown();
  scheduler.reset();
  runner.reset();
}

ModelManager::ModelManager(Options options) : options_(std::move(options)) {}

ModelManager::~ModelManager() { UnloadAll(); }

std::vector<std::string> ModelManager::ScanRepository() const {
  return ListDirectories(options_.repository);
}

absl::StatusOr<std::string> ModelManager::FindRunner(const std::string& runner,
                                                     const std::string& model_dir,
                                                     const std::string& version_dir) const {
  if (!IsPlainName(runner)) {
    return absl::InvalidArgumentError(absl::StrCat("runner name '", runner, "' is not a plain name"));
  }
  const std::string file = "libtorii_" + runner + ".so";
  std::vector<std::string> searched = {version_dir, model_dir};
  searched.insert(searched.end(), options_.backend_directories.begin(),
                  options_.backend_directories.end());
  for (const auto& dir : searched) {
    if (IsFile(dir + "/" + file)) return dir + "/" + file;
  }
  return absl::NotFoundError(absl::StrCat("runner '", runner, "' not found: no ", file, " in ",
                                          absl::StrJoin(searched, ", ")));
}

absl::StatusOr<std::vector<std::shared_ptr<ModelVersion>>> ModelManager::BuildVersions(
    const std::string& name, const std::map<int64_t, std::shared_ptr<ModelVersion>>& serving,
    std::vector<std::string>* warnings) {
  const std::string model_dir = options_.repository + "/" + name;
  TORII_ASSIGN_OR_RETURN(ParsedModelConfig parsed,
                         LoadModelConfig(model_dir + "/config.pbtxt", name));
  *warnings = parsed.warnings;
  TORII_ASSIGN_OR_RETURN(const std::string runner, RunnerNameForConfig(parsed.config));
  const std::map<int64_t, std::string> available = ListVersions(model_dir);
  const std::vector<int64_t> selected = ApplyPolicy(parsed.config.version_policy(), available);
  if (selected.empty()) {
    return absl::NotFoundError(absl::StrCat("model '", name, "': no version directory ",
                                            available.empty() ? "(like 1/) exists"
                                                              : "matches version_policy",
                                            " in ", model_dir));
  }
  uint32_t instances = 0;
  for (const auto& g : parsed.config.instance_group()) {
    instances += static_cast<uint32_t>(g.count() > 0 ? g.count() : 1);
  }
  std::vector<std::shared_ptr<ModelVersion>> out;
  for (int64_t v : selected) {
    const std::string version_dir = model_dir + "/" + available.at(v);
    const std::string fingerprint = FingerprintModelDirectory(version_dir);
    // A version whose config and files are unchanged keeps serving as it is:
    // no second copy in memory, no warm-up, statistics kept.
    auto old = serving.find(v);
    if (old != serving.end() && old->second->fingerprint == fingerprint &&
        google::protobuf::util::MessageDifferencer::Equals(old->second->config, parsed.config)) {
      out.push_back(old->second);
      continue;
    }
    auto mv = std::make_shared<ModelVersion>();
    mv->name = name;
    mv->version = v;
    mv->version_string = std::to_string(v);
    mv->fingerprint = fingerprint;
    mv->config = parsed.config;
    mv->signature = std::make_unique<ModelSignature>(mv->config);
    TORII_ASSIGN_OR_RETURN(const std::string path, FindRunner(runner, model_dir, version_dir));
    auto lib = libraries_.Get(path);
    if (!lib.ok()) {
      return absl::Status(lib.status().code(),
                          absl::StrCat("model '", name, "': ", lib.status().message()));
    }
    mv->library = *lib;
    RunnerModel::Options ro;
    ro.name = name;
    ro.version = v;
    ro.directory = model_dir;
    ro.version_directory = version_dir;
    ro.config = &mv->config;
    ro.signature = mv->signature.get();
    ro.instance_count = std::max<uint32_t>(1, instances);
    TORII_ASSIGN_OR_RETURN(mv->runner, CreateBackend(mv->config, mv->library, ro));
    mv->scheduler = std::make_unique<Scheduler>(
        Scheduler::OptionsFromConfig(mv->config, options_.default_max_queue_size),
        mv->runner.get(), &mv->stats);
    out.push_back(std::move(mv));
  }
  return out;
}

void ModelManager::SetState(const std::string& name, const std::string& state,
                            const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  ModelSlot& slot = models_[name];
  slot.state = state;
  slot.reason = reason;
}

absl::Status ModelManager::Load(const std::string& name) {
  if (!IsPlainName(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("model name '", name, "' must be a plain directory name in the repository"));
  }
  if (!IsDirectory(options_.repository + "/" + name)) {
    absl::Status s = absl::NotFoundError(
        absl::StrCat("no model directory '", name, "' in the repository ", options_.repository));
    LogError("model load failed", {{"model", name}, {"reason", std::string(s.message())}});
    std::lock_guard<std::mutex> lock(mu_);
    // Only a model the server knows gets an entry (keeps what serves).
    auto it = models_.find(name);
    if (it != models_.end()) it->second.reason = std::string(s.message());
    return s;
  }
  std::lock_guard<std::mutex> load_lock(load_mu_);
  const auto start = std::chrono::steady_clock::now();
  LogInfo("model load started", {{"model", name}});
  {
    std::lock_guard<std::mutex> lock(mu_);
    ModelSlot& slot = models_[name];
    if (slot.versions.empty()) slot.state = "LOADING";
  }
  std::map<int64_t, std::shared_ptr<ModelVersion>> serving;
  {
    std::lock_guard<std::mutex> lock(mu_);
    serving = models_[name].versions;
  }
  std::vector<std::string> warnings;
  auto built = BuildVersions(name, serving, &warnings);
  for (const auto& w : warnings) LogWarning(w, {{"model", name}});
  if (!built.ok()) {
    LogError("model load failed", {{"model", name},
                                    {"duration_ms", Ms(std::chrono::steady_clock::now() - start)},
                                    {"reason", std::string(built.status().message())}});
    std::lock_guard<std::mutex> lock(mu_);
    ModelSlot& slot = models_[name];
    // The versions already serving (if any) keep serving.
    slot.state = slot.versions.empty() ? "UNAVAILABLE" : "READY";
    slot.reason = std::string(built.status().message());
    return built.status();
  }
  std::map<int64_t, std::shared_ptr<ModelVersion>> old;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ModelSlot& slot = models_[name];
    old.swap(slot.versions);
    for (auto& v : *built) slot.versions[v->version] = v;
    slot.state = "READY";
    slot.reason.clear();
  }
  for (const auto& v : *built) {
    if (old.count(v->version) != 0 && old[v->version] == v) {
      old.erase(v->version);  // unchanged: kept serving, not unloaded
      continue;
    }
    const auto& p = v->library->provenance();
    LogInfo("model ready", {{"model", name},
                            {"version", v->version_string},
                            {"duration_ms", Ms(std::chrono::steady_clock::now() - start)},
                            {"runner", p.runner},
                            {"runner_version", p.runner_version},
                            {"runner_build", p.runner_build},
                            {"runner_abi", p.runner_abi}});
  }
  // Old versions drain outside the lock; requests holding them finish first.
  for (auto& [v, mv] : old) {
    if (mv->scheduler) mv->scheduler->Shutdown();
    LogInfo("model version unloaded", {{"model", name}, {"version", std::to_string(v)}});
  }
  return absl::OkStatus();
}

absl::Status ModelManager::Unload(const std::string& name) {
  std::lock_guard<std::mutex> load_lock(load_mu_);
  std::map<int64_t, std::shared_ptr<ModelVersion>> old;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = models_.find(name);
    if (it == models_.end()) {
      return absl::NotFoundError(absl::StrCat("model '", name, "' is not loaded"));
    }
    old.swap(it->second.versions);
    it->second.state = "UNAVAILABLE";
    it->second.reason = "unloaded";
  }
  for (auto& [v, mv] : old) {
    if (mv->scheduler) mv->scheduler->Shutdown();
    LogInfo("model version unloaded", {{"model", name}, {"version", std::to_string(v)}});
  }
  return absl::OkStatus();
}

void ModelManager::UnloadAll() {
  std::vector<std::string> names;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [n, slot] : models_) {
      if (!slot.versions.empty()) names.push_back(n);
    }
  }
  for (const auto& n : names) Unload(n).IgnoreError();
}

absl::StatusOr<std::shared_ptr<ModelVersion>> ModelManager::Get(const std::string& name,
                                                                const std::string& version) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = models_.find(name);
  if (it == models_.end()) {
    return absl::NotFoundError(absl::StrCat("unknown model '", name, "'"));
  }
  const ModelSlot& slot = it->second;
  if (slot.versions.empty()) {
    return absl::UnavailableError(absl::StrCat("model '", name, "' is not ready: ",
                                               slot.state,
                                               slot.reason.empty() ? "" : " (" + slot.reason + ")"));
  }
  if (version.empty()) return slot.versions.rbegin()->second;
  for (const auto& [v, mv] : slot.versions) {
    if (mv->version_string == version) return mv;
  }
  return absl::NotFoundError(absl::StrCat("model '", name, "' has no ready version '", version, "'"));
}

std::vector<std::shared_ptr<ModelVersion>> ModelManager::ReadyVersions(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::shared_ptr<ModelVersion>> out;
  auto it = models_.find(name);
  if (it == models_.end()) return out;
  for (auto v = it->second.versions.rbegin(); v != it->second.versions.rend(); ++v) {
    out.push_back(v->second);
  }
  return out;
}

std::vector<ModelIndexEntry> ModelManager::Index() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ModelIndexEntry> out;
  for (const auto& [name, slot] : models_) {
    if (slot.versions.empty()) {
      out.push_back({name, "", slot.state, slot.reason});
      continue;
    }
    for (const auto& [v, mv] : slot.versions) {
      out.push_back({name, mv->version_string, "READY", slot.reason});
    }
  }
  return out;
}

bool ModelManager::AllReady() const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [name, slot] : models_) {
    if (slot.state != "READY" && slot.reason != "unloaded") return false;
  }
  return true;
}

}  // namespace torii
