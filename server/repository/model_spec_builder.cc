#include "server/repository/model_spec_builder.h"

#include <algorithm>
#include <functional>
#include <map>
#include <set>

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
    if (c_.platform() == kEnsembleRunner || c_.has_ensemble_scheduling()) {
      TORII_RETURN_IF_ERROR(CheckEnsemble());
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

  // "step 1 (model 'classify')": how every ensemble error names a step (its
  // index in ensemble_scheduling.step, from 0, as Triton counts).
  std::string StepLabel(size_t i) const {
    return absl::StrCat("step ", i, " (model '", s_.ensemble_steps[i].model_name, "')");
  }

  // An ensemble's own rules (Triton's), checked from its config alone: the
  // composing models are checked when the ensemble loads (ensemble_model.h).
  // Every tensor has exactly one producer (an ensemble input or one step's
  // output), every step input and ensemble output is produced, every
  // produced tensor is used, and the steps form no cycle.
  absl::Status CheckEnsemble() {
    if (c_.platform() != kEnsembleRunner) {
      return Invalid(absl::StrCat("'ensemble_scheduling' is set but 'platform' is \"",
                                  c_.platform(), "\"; an ensemble has platform: \"ensemble\""));
    }
    if (!c_.backend().empty()) {
      return Invalid(absl::StrCat("an ensemble has platform: \"ensemble\" and no 'backend' (it "
                                  "has backend: \"", c_.backend(), "\")"));
    }
    if (s_.ensemble_steps.empty()) {
      return Invalid("an ensemble needs 'ensemble_scheduling' with at least one 'step'");
    }
    if (c_.instance_group_size() > 0) {
      return Invalid("an ensemble has no 'instance_group': its steps run on the instances of "
                     "the models they call");
    }
    if (c_.model_warmup_size() > 0) return Invalid("an ensemble has no 'model_warmup'");
    if (c_.has_optimization()) return Invalid("an ensemble has no 'optimization'");
    // An ensemble is decoupled only through its steps (Triton derives it);
    // steps that are decoupled are refused when the ensemble loads.
    s_.decoupled = false;

    const auto& steps = s_.ensemble_steps;
    for (size_t i = 0; i < steps.size(); ++i) {
      const EnsembleStepSpec& st = steps[i];
      if (st.model_name.empty()) {
        return Invalid(absl::StrCat("step ", i, ": 'model_name' is empty"));
      }
      if (st.model_name == c_.name()) {
        return Invalid(absl::StrCat(StepLabel(i), " calls the ensemble itself"));
      }
      if (st.model_version < -1) {
        return Invalid(absl::StrCat(StepLabel(i), ": 'model_version' is ", st.model_version,
                                    "; it is -1 (the latest ready version) or a version number"));
      }
      if (st.input_map.empty()) {
        return Invalid(absl::StrCat(StepLabel(i), ": 'input_map' is empty; map each input of "
                                    "the model to an ensemble tensor"));
      }
      if (st.output_map.empty()) {
        return Invalid(absl::StrCat(StepLabel(i), ": 'output_map' is empty; map the outputs "
                                    "the ensemble uses to ensemble tensors"));
      }
      for (const auto& [key, tensor] : st.input_map) {
        if (key.empty() || tensor.empty()) {
          return Invalid(absl::StrCat(StepLabel(i), ": 'input_map' has an empty name"));
        }
      }
      for (const auto& [key, tensor] : st.output_map) {
        if (key.empty() || tensor.empty()) {
          return Invalid(absl::StrCat(StepLabel(i), ": 'output_map' has an empty name"));
        }
      }
    }

    // Producers: -1 = the client (an ensemble input), else the step.
    struct Producer {
      int step;
      std::string output;
    };
    std::map<std::string, Producer> producers;
    for (const auto& in : c_.input()) producers[in.name()] = {-1, ""};
    for (size_t i = 0; i < steps.size(); ++i) {
      for (const auto& [output, tensor] : steps[i].output_map) {
        auto [it, inserted] = producers.emplace(tensor, Producer{static_cast<int>(i), output});
        if (inserted) continue;
        if (it->second.step < 0) {
          return Invalid(absl::StrCat("ensemble tensor '", tensor, "' is produced twice: it is "
                                      "an ensemble input and ", StepLabel(i), " maps its output '",
                                      output, "' to it"));
        }
        return Invalid(absl::StrCat("ensemble tensor '", tensor, "' is produced twice: by ",
                                    StepLabel(it->second.step), " output '", it->second.output,
                                    "' and by ", StepLabel(i), " output '", output, "'"));
      }
    }
    std::map<std::string, int> readers;  // tensor -> how many step inputs read it
    for (size_t i = 0; i < steps.size(); ++i) {
      for (const auto& [input, tensor] : steps[i].input_map) {
        if (producers.count(tensor) == 0) {
          return Invalid(absl::StrCat(StepLabel(i), ": input '", input, "' reads ensemble tensor '",
                                      tensor, "', which nothing produces (it is neither an "
                                      "ensemble input nor mapped from any step's output)"));
        }
        ++readers[tensor];
      }
    }
    TORII_RETURN_IF_ERROR(CheckEnsembleAcyclic(producers_of(producers)));
    std::set<std::string> ensemble_outputs;
    for (const auto& out : c_.output()) {
      ensemble_outputs.insert(out.name());
      auto it = producers.find(out.name());
      if (it == producers.end()) {
        return Invalid(absl::StrCat("ensemble output '", out.name(), "' is not mapped: no "
                                    "step's 'output_map' produces it"));
      }
      if (it->second.step < 0) {
        return Invalid(absl::StrCat("ensemble output '", out.name(), "' has the name of an "
                                    "ensemble input; an output must be produced by a step"));
      }
    }
    for (const auto& in : c_.input()) {
      if (readers.count(in.name()) == 0) {
        return Invalid(absl::StrCat("ensemble input '", in.name(), "' is read by no step"));
      }
    }
    for (const auto& [tensor, p] : producers) {
      if (p.step < 0 || readers.count(tensor) != 0 || ensemble_outputs.count(tensor) != 0) continue;
      return Invalid(absl::StrCat("ensemble tensor '", tensor, "' (output '", p.output, "' of ",
                                  StepLabel(p.step), ") is read by no step and is not an "
                                  "ensemble output; remove it from the 'output_map'"));
    }
    return absl::OkStatus();
  }

  // For each step, for each tensor it reads that a step produces: the
  // producing step.
  template <typename Producers>
  std::vector<std::vector<std::pair<int, std::string>>> producers_of(const Producers& producers) {
    std::vector<std::vector<std::pair<int, std::string>>> deps(s_.ensemble_steps.size());
    for (size_t i = 0; i < s_.ensemble_steps.size(); ++i) {
      for (const auto& [input, tensor] : s_.ensemble_steps[i].input_map) {
        const auto& p = producers.at(tensor);
        if (p.step >= 0) deps[i].emplace_back(p.step, tensor);
      }
    }
    return deps;
  }

  // Refuses steps that (directly or through others) wait for their own
  // output, naming the steps and tensors of one such cycle.
  absl::Status CheckEnsembleAcyclic(
      const std::vector<std::vector<std::pair<int, std::string>>>& deps) {
    const size_t n = deps.size();
    // 0 = unvisited, 1 = on the current path, 2 = done.
    std::vector<int> mark(n, 0);
    std::vector<std::pair<int, std::string>> path;  // (step, tensor it reads next)
    std::function<absl::Status(int)> visit = [&](int step) -> absl::Status {
      mark[step] = 1;
      for (const auto& [from, tensor] : deps[step]) {
        path.emplace_back(step, tensor);
        if (mark[from] == 1) {
          // The cycle is the part of the path from `from` on.
          size_t start = 0;
          while (path[start].first != from) ++start;
          std::string text;
          for (size_t k = start; k < path.size(); ++k) {
            const int reader = path[k].first;
            const int producer = k + 1 < path.size() ? path[k + 1].first : from;
            absl::StrAppend(&text, k == start ? StepLabel(reader) : ", which", " reads '",
                            path[k].second, "' from ", StepLabel(producer));
          }
          return Invalid(absl::StrCat("the steps form a cycle: ", text));
        }
        if (mark[from] == 0) TORII_RETURN_IF_ERROR(visit(from));
        path.pop_back();
      }
      mark[step] = 2;
      return absl::OkStatus();
    };
    for (size_t i = 0; i < n; ++i) {
      if (mark[i] == 0) TORII_RETURN_IF_ERROR(visit(static_cast<int>(i)));
    }
    return absl::OkStatus();
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
