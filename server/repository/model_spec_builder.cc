#include "server/repository/model_spec_builder.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "server/common/status_macros.h"
#include "server/repository/config_types.h"

namespace torii {
namespace {

class Builder {
 public:
  Builder(const inference::ModelConfig& config, const RunnerManifest& runner,
          const SpecDefaults& defaults)
      : c_(config), runner_(runner), defaults_(defaults) {}

  absl::StatusOr<ModelSpec> Build(bool require_io) {
    s_.name = c_.name();
    s_.runner = runner_.runner;
    s_.platform = c_.platform();
    s_.max_batch_size = c_.max_batch_size();
    if (require_io && c_.input_size() == 0) return Invalid("the model declares no 'input'");
    if (require_io && c_.output_size() == 0) return Invalid("the model declares no 'output'");
    for (const auto& in : c_.input()) {
      s_.inputs.push_back({in.name(), DataTypeFromConfig(in.data_type()),
                           {in.dims().begin(), in.dims().end()}});
    }
    for (const auto& out : c_.output()) {
      s_.outputs.push_back({out.name(), DataTypeFromConfig(out.data_type()),
                            {out.dims().begin(), out.dims().end()}});
    }
    ReadScheduling();
    for (const auto& [k, v] : c_.parameters()) s_.parameters[k] = v.string_value();
    TORII_RETURN_IF_ERROR(ReadTimeoutsAndIsolation());
    s_.decoupled = c_.model_transaction_policy().decoupled();
    for (const auto& step : c_.ensemble_scheduling().step()) {
      EnsembleStepSpec e;
      e.model_name = step.model_name();
      e.model_version = step.model_version() == 0 ? -1 : step.model_version();
      e.input_map.insert(step.input_map().begin(), step.input_map().end());
      e.output_map.insert(step.output_map().begin(), step.output_map().end());
      s_.ensemble_steps.push_back(std::move(e));
    }
    s_.default_model_filename = c_.default_model_filename().empty()
                                    ? runner_.default_model_filename
                                    : c_.default_model_filename();
    s_.config_json = ConfigToJson(c_);
    s_.Finalize();
    return std::move(s_);
  }

 private:
  absl::Status Invalid(const std::string& msg) const {
    return absl::InvalidArgumentError(absl::StrCat("model '", c_.name(), "': ", msg));
  }

  void ReadScheduling() {
    uint32_t instances = 0;
    for (const auto& g : c_.instance_group()) {
      instances += static_cast<uint32_t>(g.count() > 0 ? g.count() : 1);
    }
    s_.instance_count = std::max<uint32_t>(1, instances);
    s_.queue_policy.max_queue_size = defaults_.max_queue_size;
    if (!c_.has_dynamic_batching() || c_.max_batch_size() <= 0) return;
    const auto& db = c_.dynamic_batching();
    s_.batching.dynamic = true;
    s_.batching.preferred_batch_sizes.insert(db.preferred_batch_size().begin(),
                                             db.preferred_batch_size().end());
    s_.batching.max_queue_delay = std::chrono::microseconds(db.max_queue_delay_microseconds());
    const auto& qp = db.default_queue_policy();
    if (qp.max_queue_size() > 0) s_.queue_policy.max_queue_size = qp.max_queue_size();
    s_.queue_policy.default_timeout = std::chrono::microseconds(qp.default_timeout_microseconds());
    s_.queue_policy.allow_timeout_override = qp.allow_timeout_override();
    s_.queue_policy.delay_on_timeout = qp.timeout_action() == inference::ModelQueuePolicy::DELAY;
  }

  // A parameter holding a whole number >= `min`; absent leaves `out` alone.
  absl::Status WholeNumber(const std::string& key, int64_t min, const char* unit, int64_t* out) {
    auto it = c_.parameters().find(key);
    if (it == c_.parameters().end()) return absl::OkStatus();
    int64_t v = 0;
    if (!absl::SimpleAtoi(it->second.string_value(), &v) || v < min) {
      return Invalid(absl::StrCat("parameter ", key, " is \"", it->second.string_value(),
                                  "\"; expected a whole number of ", unit, " >= ", min));
    }
    *out = v;
    return absl::OkStatus();
  }

  absl::Status ReadTimeoutsAndIsolation() {
    int64_t ms = s_.execution_timeout.count();
    TORII_RETURN_IF_ERROR(WholeNumber("execution_timeout_ms", 0, "milliseconds", &ms));
    s_.execution_timeout = std::chrono::milliseconds(ms);

    IsolationSpec& iso = s_.isolation;
    iso.mode = runner_.isolation;
    auto it = c_.parameters().find("isolation");
    if (it != c_.parameters().end()) {
      IsolationMode asked;
      if (!ParseIsolationMode(it->second.string_value(), &asked)) {
        return Invalid(absl::StrCat("parameter isolation is \"", it->second.string_value(),
                                    "\"; expected none, process or process_per_instance"));
      }
      if (asked < runner_.isolation) {
        return Invalid(absl::StrCat("parameter isolation is \"", it->second.string_value(),
                                    "\" but runner '", runner_.runner, "' runs its models with "
                                    "isolation \"", IsolationModeName(runner_.isolation),
                                    "\" at least"));
      }
      iso.mode = asked;
    }
    int64_t mb = 0;
    TORII_RETURN_IF_ERROR(WholeNumber("memory_limit_mb", 1, "MiB", &mb));
    iso.memory_limit_mb = static_cast<uint64_t>(mb);
    int64_t initial = iso.backoff_initial.count(), max = iso.backoff_max.count();
    TORII_RETURN_IF_ERROR(WholeNumber("restart_backoff_ms", 0, "milliseconds", &initial));
    TORII_RETURN_IF_ERROR(WholeNumber("restart_backoff_max_ms", 0, "milliseconds", &max));
    iso.backoff_initial = std::chrono::milliseconds(std::max<int64_t>(1, initial));
    iso.backoff_max = std::max(iso.backoff_initial, std::chrono::milliseconds(max));
    return absl::OkStatus();
  }

  const inference::ModelConfig& c_;
  const RunnerManifest& runner_;
  const SpecDefaults& defaults_;
  ModelSpec s_;
};

}  // namespace

absl::StatusOr<ModelSpec> BuildModelSpec(const inference::ModelConfig& config,
                                         const RunnerManifest& runner,
                                         const SpecDefaults& defaults, bool require_io) {
  return Builder(config, runner, defaults).Build(require_io);
}

std::string ConfigToJson(const inference::ModelConfig& config) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(config, &json, options).ok()) return "{}";
  return json;
}

absl::StatusOr<inference::ModelConfig> ConfigFromJson(const std::string& json,
                                                      const std::string& what) {
  inference::ModelConfig config;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto s = google::protobuf::util::JsonStringToMessage(json, &config, options);
  if (!s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": not a model config in JSON: ", s.message().ToString()));
  }
  return config;
}

}  // namespace torii
