#include "server/manager/model_manager.h"

#include <algorithm>
#include <atomic>
#include <functional>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/message_differencer.h"
#include "server/common/filesystem.h"
#include "server/common/logging.h"
#include "server/common/status_macros.h"

namespace torii {
namespace {

std::string Ms(std::chrono::steady_clock::duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

}  // namespace

const char* ModelStateName(ModelState state) {
  switch (state) {
    case ModelState::kUnavailable: return "UNAVAILABLE";
    case ModelState::kLoading: return "LOADING";
    case ModelState::kReady: return "READY";
    case ModelState::kUnloading: return "UNLOADING";
  }
  return "UNAVAILABLE";
}

ModelManager::ModelManager(ModelRepository* repository, ModelLoader* loader, Options options)
    : repository_(repository), loader_(loader), options_(options),
      overrides_(options_.overrides) {
  // Ensembles check their steps against the models this manager serves.
  loader_->set_composing_models(this);
}

ModelManager::~ModelManager() { UnloadAll(); }

std::shared_ptr<std::mutex> ModelManager::ModelLock(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& m = model_locks_[name];
  if (m == nullptr) m = std::make_shared<std::mutex>();
  return m;
}

absl::StatusOr<std::vector<std::shared_ptr<ModelVersion>>> ModelManager::BuildVersions(
    const ModelSource& source, const std::map<int64_t, std::shared_ptr<ModelVersion>>& serving) {
  std::vector<std::shared_ptr<ModelVersion>> out;
  for (const VersionSource& v : source.versions) {
    // A version whose config and files are unchanged keeps serving as it is:
    // no second copy in memory, no warm-up, statistics kept.
    auto old = serving.find(v.version);
    if (old != serving.end() && old->second->fingerprint == v.fingerprint &&
        google::protobuf::util::MessageDifferencer::Equals(old->second->source_config,
                                                           source.config)) {
      out.push_back(old->second);
      continue;
    }
    auto mv = loader_->Load(source, v);
    if (!mv.ok()) return mv.status();
    out.push_back(std::move(*mv));
  }
  return out;
}

void ModelManager::RecordFailure(const std::string& name, const absl::Status& status) {
  std::lock_guard<std::mutex> lock(mu_);
  ModelSlot& slot = models_[name];
  // The versions already serving (if any) keep serving.
  slot.state = slot.versions.empty() ? ModelState::kUnavailable : ModelState::kReady;
  slot.reason = std::string(status.message());
}

absl::Status ModelManager::Load(const std::string& name) {
  return LoadWith(name, [&] { return repository_->Read(name); }, nullptr);
}

absl::Status ModelManager::Load(const std::string& name, const ModelOverride& override) {
  if (override.empty()) return Load(name);
  if (!IsPlainName(name)) return repository_->Read(name).status();
  if (!override.config_json) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model '", name, "': the load request carries files but no 'config' parameter; a model "
        "loaded from files needs its config"));
  }
  TORII_ASSIGN_OR_RETURN(ParsedModelConfig config,
                         ParseModelConfigJson(*override.config_json, "config override", name));
  std::shared_ptr<const OverrideDirectory> files;
  if (!override.files.empty()) {
    TORII_ASSIGN_OR_RETURN(files, overrides_.Write(name, config.config.DebugString(),
                                                   override.files));
  }
  const std::string directory = files == nullptr ? std::string() : files->path();
  return LoadWith(
      name, [&] { return repository_->ReadOverride(name, config, directory); }, std::move(files));
}

absl::Status ModelManager::LoadWith(const std::string& name,
                                    const std::function<absl::StatusOr<ModelSource>()>& read,
                                    std::shared_ptr<const OverrideDirectory> files) {
  auto model_lock = ModelLock(name);
  std::lock_guard<std::mutex> serialise(*model_lock);
  return LoadLocked(name, read, std::move(files));
}

absl::Status ModelManager::LoadLocked(const std::string& name,
                                      const std::function<absl::StatusOr<ModelSource>()>& read,
                                      std::shared_ptr<const OverrideDirectory> files) {
  const auto start = std::chrono::steady_clock::now();
  auto source = read();
  if (!source.ok()) {
    LogError("model load failed", {{"model", name}, {"reason", std::string(source.status().message())}});
    std::lock_guard<std::mutex> lock(mu_);
    // Only a model the server knows gets an entry (a missing directory is
    // not a model).
    auto it = models_.find(name);
    if (it != models_.end()) {
      it->second.reason = std::string(source.status().message());
      if (it->second.versions.empty()) it->second.state = ModelState::kUnavailable;
    } else if (IsPlainName(name) && IsDirectory(repository_->root() + "/" + name)) {
      // A model directory that does not load is a model that failed; a name
      // with no directory is not a model at all.
      ModelSlot& slot = models_[name];
      slot.reason = std::string(source.status().message());
    }
    return source.status();
  }
  for (const auto& w : source->warnings) LogWarning(w, {{"model", name}});
  LogInfo("model load started", {{"model", name}});
  std::map<int64_t, std::shared_ptr<ModelVersion>> serving;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ModelSlot& slot = models_[name];
    if (slot.versions.empty()) slot.state = ModelState::kLoading;
    slot.unloaded = false;
    serving = slot.versions;
  }
  // An ensemble's steps are checked against the models serving them, so
  // those load first.
  absl::Status composing = source->runner.manifest.runner == kEnsembleRunner
                               ? LoadComposingModels(*source)
                               : absl::OkStatus();
  using Built = absl::StatusOr<std::vector<std::shared_ptr<ModelVersion>>>;
  Built built = composing.ok() ? BuildVersions(*source, serving) : Built(composing);
  if (!built.ok()) {
    LogError("model load failed", {{"model", name},
                                    {"duration_ms", Ms(std::chrono::steady_clock::now() - start)},
                                    {"reason", std::string(built.status().message())}});
    RecordFailure(name, built.status());
    return built.status();
  }
  std::map<int64_t, std::shared_ptr<ModelVersion>> old;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ModelSlot& slot = models_[name];
    old.swap(slot.versions);
    // The replaced directory (if any) goes once the old versions have
    // drained, at the end of this function.
    files.swap(slot.override_files);
    for (auto& v : *built) slot.versions[v->version] = v;
    slot.state = ModelState::kReady;
    slot.reason.clear();
  }
  for (const auto& v : *built) {
    auto it = old.find(v->version);
    if (it != old.end() && it->second == v) {
      old.erase(it);  // unchanged: kept serving, not unloaded
      continue;
    }
    const RunnerProvenance& p = v->provenance;
    LogFields fields = {{"model", name},
                        {"version", v->version_string},
                        {"duration_ms", Ms(std::chrono::steady_clock::now() - start)},
                        {"runner", p.runner},
                        {"runner_version", p.runner_version},
                        {"runner_build", p.runner_build},
                        {"runner_abi", p.runner_abi}};
    for (const auto& [k, val] : p.properties) fields.emplace_back(k, val);
    LogInfo("model ready", fields);
  }
  // Old versions drain after the swap; requests holding them finish first.
  Retire(name, std::move(old));
  return absl::OkStatus();
}

std::vector<std::string> ModelManager::StepModels(const std::string& name) const {
  std::vector<std::string> out;
  auto add = [&](const std::string& m) {
    if (std::find(out.begin(), out.end(), m) == out.end()) out.push_back(m);
  };
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = models_.find(name);
    if (it != models_.end() && !it->second.versions.empty()) {
      for (const auto& st : it->second.versions.rbegin()->second->spec->ensemble_steps) {
        add(st.model_name);
      }
      return out;
    }
  }
  auto source = repository_->Read(name);
  if (!source.ok()) return out;
  for (const auto& st : source->config.ensemble_scheduling().step()) add(st.model_name());
  return out;
}

absl::Status ModelManager::LoadComposingModels(const ModelSource& ensemble) {
  // The ensemble's own rules first: a broken graph loads nothing.
  TORII_RETURN_IF_ERROR(loader_->Spec(ensemble, ensemble.config, /*require_io=*/true).status());
  std::vector<std::string> direct;
  std::vector<size_t> first_step;
  const auto& steps = ensemble.config.ensemble_scheduling().step();
  for (int i = 0; i < steps.size(); ++i) {
    const std::string& m = steps[i].model_name();
    if (m.empty() || std::find(direct.begin(), direct.end(), m) != direct.end()) continue;
    direct.push_back(m);
    first_step.push_back(static_cast<size_t>(i));
  }
  // Ensembles that call each other in a cycle would each wait for the
  // other's load (and then call each other forever): refuse them first.
  std::vector<std::string> path = {ensemble.name};
  std::set<std::string> cleared;
  std::function<absl::Status(const std::string&)> visit = [&](const std::string& m) {
    if (std::find(path.begin(), path.end(), m) != path.end()) {
      std::string cycle;
      for (auto it = std::find(path.begin(), path.end(), m); it != path.end(); ++it) {
        absl::StrAppend(&cycle, *it, " -> ");
      }
      return absl::InvalidArgumentError(absl::StrCat(
          "model '", ensemble.name, "': ensembles call each other in a cycle: ", cycle, m));
    }
    if (cleared.count(m) != 0) return absl::OkStatus();
    path.push_back(m);
    for (const auto& next : StepModels(m)) {
      absl::Status s = visit(next);
      if (!s.ok()) return s;
    }
    path.pop_back();
    cleared.insert(m);
    return absl::OkStatus();
  };
  for (const auto& m : direct) {
    absl::Status s = visit(m);
    if (!s.ok()) return s;
  }
  auto serving = [&](const std::string& m) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = models_.find(m);
    return it != models_.end() && !it->second.versions.empty();
  };
  for (size_t k = 0; k < direct.size(); ++k) {
    const std::string& m = direct[k];
    if (serving(m)) continue;
    // Another thread may be loading it (LoadAll): wait for that, then load
    // it only if it still serves nothing.
    auto model_lock = ModelLock(m);
    std::lock_guard<std::mutex> serialise(*model_lock);
    if (serving(m)) continue;
    LogInfo("loading a composing model of an ensemble",
            {{"model", m}, {"ensemble", ensemble.name}});
    absl::Status s = LoadLocked(m, [&] { return repository_->Read(m); }, nullptr);
    if (!s.ok()) {
      return absl::Status(s.code(), absl::StrCat("model '", ensemble.name, "': step ",
                                                 first_step[k], " (model '", m,
                                                 "') cannot run: model '", m,
                                                 "' did not load: ", s.message()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const ModelSpec>> ModelManager::ServingSpec(
    const std::string& name, int64_t version) const {
  auto found = Get(name, version < 0 ? std::string() : std::to_string(version));
  if (!found.ok()) return found.status();
  const ModelVersion& mv = **found;
  if (const auto* ensemble = dynamic_cast<const EnsembleModel*>(mv.backend.get())) {
    absl::Status s = ensemble->Availability();
    if (!s.ok()) return absl::UnavailableError(s.message());
  } else if (!mv.CanServe()) {
    return absl::UnavailableError(absl::StrCat(
        "model '", name, "' version ", mv.version_string,
        " cannot serve now (its runner process is restarting or every instance is stuck)"));
  }
  return mv.spec;
}

void ModelManager::LoadAll(const std::vector<std::string>& names, size_t threads) {
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i; (i = next.fetch_add(1)) < names.size();) Load(names[i]).IgnoreError();
  };
  std::vector<std::thread> pool;
  const size_t n = std::max<size_t>(1, std::min(threads, names.size()));
  for (size_t t = 1; t < n; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
}

void ModelManager::Retire(const std::string& name,
                          std::map<int64_t, std::shared_ptr<ModelVersion>> old) {
  for (auto& [v, mv] : old) {
    if (!mv->Retire(options_.drain_timeout)) {
      LogError("model version stuck in its runner: abandoned (its memory and threads stay until "
               "the server restarts)",
               {{"model", name}, {"version", std::to_string(v)}});
      std::lock_guard<std::mutex> lock(mu_);
      abandoned_.push_back(mv);
      continue;
    }
    LogInfo("model version unloaded", {{"model", name}, {"version", std::to_string(v)}});
  }
}

absl::Status ModelManager::Unload(const std::string& name) {
  auto model_lock = ModelLock(name);
  std::lock_guard<std::mutex> serialise(*model_lock);
  std::shared_ptr<const OverrideDirectory> files;
  std::map<int64_t, std::shared_ptr<ModelVersion>> old;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = models_.find(name);
    if (it == models_.end()) {
      return absl::NotFoundError(absl::StrCat("model '", name, "' is not loaded"));
    }
    old.swap(it->second.versions);
    files = std::move(it->second.override_files);  // removed after the drain
    it->second.state = old.empty() ? ModelState::kUnavailable : ModelState::kUnloading;
    it->second.reason = "unloaded";
    it->second.unloaded = true;
  }
  Retire(name, std::move(old));
  std::lock_guard<std::mutex> lock(mu_);
  ModelSlot& slot = models_[name];
  if (slot.versions.empty()) slot.state = ModelState::kUnavailable;
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
  // In parallel: one model's drain does not hold up the others'.
  std::vector<std::thread> threads;
  for (const auto& n : names) threads.emplace_back([this, n] { Unload(n).IgnoreError(); });
  for (auto& t : threads) t.join();
}

absl::StatusOr<std::shared_ptr<ModelVersion>> ModelManager::Get(const std::string& name,
                                                                const std::string& version) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = models_.find(name);
  if (it == models_.end()) {
    // Triton's words: its example clients check that the message starts so.
    return absl::NotFoundError(absl::StrCat("Request for unknown model: '", name, "' is not found"));
  }
  const ModelSlot& slot = it->second;
  if (slot.versions.empty()) {
    return absl::UnavailableError(absl::StrCat("model '", name, "' is not ready: ",
                                               ModelStateName(slot.state),
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

std::vector<std::shared_ptr<ModelVersion>> ModelManager::AllReadyVersions() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::shared_ptr<ModelVersion>> out;
  for (const auto& [name, slot] : models_) {
    for (const auto& [v, mv] : slot.versions) out.push_back(mv);
  }
  return out;
}

std::vector<ModelIndexEntry> ModelManager::Index() const {
  std::vector<ModelIndexEntry> out;
  std::vector<std::pair<size_t, std::shared_ptr<ModelVersion>>> ensembles;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [name, slot] : models_) {
      if (slot.versions.empty()) {
        out.push_back({name, "", slot.state, slot.reason});
        continue;
      }
      for (const auto& [v, mv] : slot.versions) {
        if (mv->spec->is_ensemble()) ensembles.emplace_back(out.size(), mv);
        out.push_back({name, mv->version_string, ModelState::kReady, slot.reason});
      }
    }
  }
  // Outside the lock: an ensemble looks its composing models up.
  for (const auto& [i, mv] : ensembles) {
    const auto* ensemble = dynamic_cast<const EnsembleModel*>(mv->backend.get());
    if (ensemble == nullptr) continue;
    absl::Status s = ensemble->Availability();
    if (s.ok()) continue;
    out[i].state = ModelState::kUnavailable;
    out[i].reason = std::string(s.message());
  }
  return out;
}

bool ModelManager::AllReady() const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [name, slot] : models_) {
    if (slot.state != ModelState::kReady && !slot.unloaded) return false;
  }
  return true;
}

void ModelManager::ReportStuckInstances() {
  for (const auto& mv : AllReadyVersions()) {
    const size_t stuck = mv->scheduler->stuck_instances();
    const size_t before = mv->reported_stuck.exchange(stuck);
    if (stuck == before) continue;
    const LogFields fields = {{"model", mv->name},
                              {"version", mv->version_string},
                              {"stuck_instances", std::to_string(stuck)},
                              {"instances", std::to_string(mv->backend->instance_count())}};
    if (stuck > before) {
      LogWarning("runner instance stuck: a batch has run longer than execution_timeout_ms", fields);
    } else {
      LogInfo("runner instance recovered", fields);
    }
  }
}

}  // namespace torii
