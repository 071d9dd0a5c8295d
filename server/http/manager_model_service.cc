#include "server/http/manager_model_service.h"

#include <google/protobuf/util/json_util.h>

#include <nlohmann/json.hpp>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace torii {
namespace http {
namespace {

namespace pb = google::protobuf;

// Protobuf's JSON mapping writes int64 and uint64 as strings; Triton writes
// them as numbers. Walks the JSON beside the message's descriptor and turns
// those strings back into numbers.
void NumbersForInt64(const pb::Descriptor* type, nlohmann::json& object) {
  if (!object.is_object()) return;
  for (auto& [key, value] : object.items()) {
    const pb::FieldDescriptor* field = type->FindFieldByName(key);
    if (field == nullptr) continue;
    auto fix_scalar = [&](const pb::FieldDescriptor* f, nlohmann::json& v) {
      if (!v.is_string()) return;
      const std::string& text = v.get_ref<const std::string&>();
      if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_INT64) {
        int64_t n;
        if (absl::SimpleAtoi(text, &n)) v = n;
      } else if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_UINT64) {
        uint64_t n;
        if (absl::SimpleAtoi(text, &n)) v = n;
      }
    };
    auto fix = [&](const pb::FieldDescriptor* f, nlohmann::json& v) {
      if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
        NumbersForInt64(f->message_type(), v);
      } else {
        fix_scalar(f, v);
      }
    };
    if (field->is_map()) {
      // A map's JSON keys are strings either way; only its values change.
      const pb::FieldDescriptor* map_value = field->message_type()->FindFieldByName("value");
      if (map_value == nullptr || !value.is_object()) continue;
      for (auto& [k, v] : value.items()) fix(map_value, v);
    } else if (field->is_repeated()) {
      if (!value.is_array()) continue;
      for (auto& v : value) fix(field, v);
    } else {
      fix(field, value);
    }
  }
}

ModelStats ToModelStats(const ModelVersion& mv) {
  const ModelStatistics::Snapshot snap = mv.stats.Read();
  auto d = [](const ModelStatistics::Duration& x) { return DurationStat{x.count, x.ns}; };
  ModelStats s;
  s.name = mv.name;
  s.version = mv.version_string;
  s.last_inference_ms = snap.last_inference_ms;
  s.inference_count = snap.inference_count;
  s.execution_count = snap.execution_count;
  s.success = d(snap.success);
  s.fail = d(snap.fail);
  s.queue = d(snap.queue);
  s.compute_input = d(snap.compute_input);
  s.compute_infer = d(snap.compute_infer);
  s.compute_output = d(snap.compute_output);
  for (const auto& [size, b] : snap.batches) {
    s.batch_stats.push_back({size, d(b.input), d(b.infer), d(b.output)});
  }
  return s;
}

}  // namespace

std::string TritonConfigJson(const inference::ModelConfig& config) {
  pb::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string text;
  if (!pb::util::MessageToJsonString(config, &text, options).ok()) return "{}";
  nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return text;
  NumbersForInt64(inference::ModelConfig::descriptor(), json);
  return json.dump();
}

bool ManagerModelService::ServerReady() const { return options_.readiness->IsReady(); }

absl::StatusOr<bool> ManagerModelService::ModelReady(const std::string& name,
                                                     const std::string& version) const {
  auto mv = options_.manager->Get(name, version);
  // Unknown model or version: NOT_FOUND (404), as Triton's HTTP endpoint
  // answers. Known but not serving (loading, failed, unloaded): not ready.
  if (absl::IsNotFound(mv.status())) return mv.status();
  return mv.ok() && (*mv)->CanServe();
}

absl::StatusOr<ModelMetadata> ManagerModelService::Metadata(const std::string& name,
                                                            const std::string& version) const {
  auto mv = options_.manager->Get(name, version);
  if (!mv.ok()) return mv.status();
  const ModelVersion& m = **mv;
  const ModelSpec& spec = *m.spec;
  const RunnerProvenance& p = m.provenance;
  ModelMetadata out;
  out.name = m.name;
  for (const auto& v : options_.manager->ReadyVersions(m.name)) out.versions.push_back(v->version_string);
  out.platform = spec.platform.empty() ? p.runner : spec.platform;
  out.max_batch_size = spec.max_batch_size;
  for (const TensorSpec& t : spec.inputs) out.inputs.push_back({t.name, t.datatype, spec.WireShape(t)});
  for (const TensorSpec& t : spec.outputs) out.outputs.push_back({t.name, t.datatype, spec.WireShape(t)});
  out.properties = {{"runner", p.runner},
                    {"runner_version", p.runner_version},
                    {"runner_build", p.runner_build},
                    {"runner_abi", p.runner_abi}};
  for (const auto& [k, v] : p.properties) out.properties.emplace_back(k, v);
  return out;
}

absl::StatusOr<std::string> ManagerModelService::ConfigJson(const std::string& name,
                                                            const std::string& version) const {
  auto mv = options_.manager->Get(name, version);
  if (!mv.ok()) return mv.status();
  // The config as served (completed by the runner), as gRPC's ModelConfig.
  return TritonConfigJson((*mv)->config);
}

absl::StatusOr<std::vector<ModelStats>> ManagerModelService::Statistics(
    const std::string& name, const std::string& version) const {
  // The same selection as gRPC's ModelStatistics.
  std::vector<std::shared_ptr<ModelVersion>> versions;
  if (name.empty()) {
    versions = options_.manager->AllReadyVersions();
  } else if (version.empty()) {
    versions = options_.manager->ReadyVersions(name);
    if (versions.empty()) return options_.manager->Get(name, "").status();
  } else {
    auto mv = options_.manager->Get(name, version);
    if (!mv.ok()) return mv.status();
    versions.push_back(*mv);
  }
  std::vector<ModelStats> out;
  out.reserve(versions.size());
  for (const auto& mv : versions) out.push_back(ToModelStats(*mv));
  return out;
}

std::vector<ModelIndexEntry> ManagerModelService::Index(bool ready_only) const {
  std::vector<ModelIndexEntry> out;
  std::set<std::string> known;
  for (const auto& e : options_.manager->Index()) {
    known.insert(e.name);
    if (ready_only && e.state != ModelState::kReady) continue;
    out.push_back({e.name, e.version, ModelStateName(e.state), e.reason});
  }
  if (!ready_only) {
    // Models on disk the server has not loaded (explicit mode), as gRPC.
    for (const auto& name : options_.manager->repository().List()) {
      if (known.count(name) != 0) continue;
      out.push_back({name, "", ModelStateName(ModelState::kUnavailable), "not loaded"});
    }
  }
  return out;
}

absl::Status ManagerModelService::Load(const std::string& name, const ModelOverride& override) {
  if (!options_.explicit_model_control) {
    return absl::UnavailableError(
        "explicit model load/unload is not allowed; start the server with "
        "--model-control-mode=explicit");
  }
  return options_.manager->Load(name, override);
}

absl::Status ManagerModelService::Unload(const std::string& name, bool /*unload_dependents*/) {
  if (!options_.explicit_model_control) {
    return absl::UnavailableError(
        "explicit model load/unload is not allowed; start the server with "
        "--model-control-mode=explicit");
  }
  // No model depends on another yet (ensembles are not served), so there
  // are no dependents to unload.
  return options_.manager->Unload(name);
}

}  // namespace http
}  // namespace torii
