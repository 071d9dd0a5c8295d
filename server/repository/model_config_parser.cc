#include "server/repository/model_config_parser.h"

#include <cctype>
#include <cstdint>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/reflection.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/json_util.h"
#include "server/common/status_macros.h"

namespace torii {
namespace {

namespace pb = google::protobuf;

// Collects the text-format parser's messages; protobuf's line and column are
// 0-based.
class ErrorCollector : public pb::io::ErrorCollector {
 public:
  void AddError(int line, pb::io::ColumnNumber column,
                const std::string& message) override {
    if (first_.empty()) {
      line_ = line;
      column_ = column;
      first_ = absl::StrCat("line ", line + 1, ", column ", column + 1, ": ",
                            message);
    }
  }
  const std::string& first() const { return first_; }
  int line() const { return line_; }
  int column() const { return column_; }

 private:
  std::string first_;
  int line_ = 0;
  int column_ = 0;
};

bool IsIdentChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// The field an error at (line, column) is about: the last `name:` or
// `name {` at or before that position. Protobuf's messages for bad values
// ("Expected integer, got ...") do not say which field they mean.
std::string FieldAt(absl::string_view text, int line, int column) {
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  for (int l = std::min<int>(line, static_cast<int>(lines.size()) - 1); l >= 0; --l) {
    absl::string_view s = lines[l];
    if (l == line) s = s.substr(0, std::min<size_t>(s.size(), static_cast<size_t>(column)));
    std::string found;
    for (size_t i = 0; i < s.size(); ++i) {
      if (!IsIdentChar(s[i]) || (i > 0 && IsIdentChar(s[i - 1]))) continue;
      size_t j = i;
      while (j < s.size() && IsIdentChar(s[j])) ++j;
      size_t k = j;
      while (k < s.size() && (s[k] == ' ' || s[k] == '\t')) ++k;
      if (k < s.size() && (s[k] == ':' || s[k] == '{') && !std::isdigit(static_cast<unsigned char>(s[i]))) {
        found = std::string(s.substr(i, j - i));
      }
    }
    if (!found.empty()) return found;
  }
  return "";
}

// Field paths (without indices) that Torii acts on. Anything else that is set
// in a config parses, is ignored, and is named in a warning.
const std::set<std::string>& ImplementedFields() {
  static const auto* fields = new std::set<std::string>{
      "name",
      "platform",
      "backend",
      "max_batch_size",
      "version_policy",
      "version_policy.latest",
      "version_policy.latest.num_versions",
      "version_policy.all",
      "version_policy.specific",
      "version_policy.specific.versions",
      "input",
      "input.name",
      "input.data_type",
      "input.dims",
      "output",
      "output.name",
      "output.data_type",
      "output.dims",
      "instance_group",
      "instance_group.name",
      "instance_group.count",
      "instance_group.kind",
      "dynamic_batching",
      "dynamic_batching.preferred_batch_size",
      "dynamic_batching.max_queue_delay_microseconds",
      "dynamic_batching.default_queue_policy",
      "dynamic_batching.default_queue_policy.timeout_action",
      "dynamic_batching.default_queue_policy.default_timeout_microseconds",
      "dynamic_batching.default_queue_policy.allow_timeout_override",
      "dynamic_batching.default_queue_policy.max_queue_size",
      "default_model_filename",
      "parameters",
      // Interpreted by runners (the TorchScript runner warms up from it).
      "model_warmup",
      // Decoupled models answer through the runner's own responses.
      "model_transaction_policy",
      "model_transaction_policy.decoupled",
      // Ensembles (platform: "ensemble"). `step.model_namespace` and
      // `max_inflight_requests` are not acted on and stay warned.
      "ensemble_scheduling",
      "ensemble_scheduling.step",
      "ensemble_scheduling.step.model_name",
      "ensemble_scheduling.step.model_version",
      "ensemble_scheduling.step.input_map",
      "ensemble_scheduling.step.output_map",
  };
  return *fields;
}

// Walks every set field of `msg` and records the ones not implemented. Map
// entries and the contents of runner-interpreted fields are not descended.
void CollectUnimplemented(const pb::Message& msg, const std::string& prefix,
                          std::set<std::string>& out) {
  const pb::Reflection* refl = msg.GetReflection();
  std::vector<const pb::FieldDescriptor*> fields;
  refl->ListFields(msg, &fields);
  for (const pb::FieldDescriptor* f : fields) {
    const std::string path = prefix.empty() ? f->name() : prefix + "." + f->name();
    if (ImplementedFields().count(path) == 0) {
      out.insert(path);
      continue;
    }
    if (f->cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE || f->is_map() ||
        path == "parameters" || path == "model_warmup") {
      continue;
    }
    if (f->is_repeated()) {
      for (int i = 0; i < refl->FieldSize(msg, f); ++i) {
        CollectUnimplemented(refl->GetRepeatedMessage(msg, f, i), path, out);
      }
    } else {
      CollectUnimplemented(refl->GetMessage(msg, f), path, out);
    }
  }
}

absl::Status Invalid(absl::string_view file, const std::string& msg) {
  return absl::InvalidArgumentError(absl::StrCat(file, ": ", msg));
}

// Strict UTF-8 (no overlong forms, surrogates or code points past
// U+10FFFF): what proto3 requires of string fields.
bool IsValidUtf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t n;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (s.size() - i <= n) return false;
    for (size_t k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

// The path (without indices) of the first string field of `msg` that is not
// UTF-8, or "". Text format takes any bytes between quotes, but such a config
// cannot be serialized to a runner host, and its JSON form (what runners
// read) silently drops the bytes (found by fuzzing).
std::string NonUtf8Field(const pb::Message& msg, const std::string& prefix) {
  const pb::Reflection* refl = msg.GetReflection();
  std::vector<const pb::FieldDescriptor*> fields;
  refl->ListFields(msg, &fields);
  for (const pb::FieldDescriptor* f : fields) {
    const std::string path = prefix.empty() ? f->name() : prefix + "." + f->name();
    if (f->type() == pb::FieldDescriptor::TYPE_STRING) {
      const int n = f->is_repeated() ? refl->FieldSize(msg, f) : 1;
      for (int i = 0; i < n; ++i) {
        const std::string v =
            f->is_repeated() ? refl->GetRepeatedString(msg, f, i) : refl->GetString(msg, f);
        if (!IsValidUtf8(v)) return path;
      }
    } else if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
      const int n = f->is_repeated() ? refl->FieldSize(msg, f) : 1;
      for (int i = 0; i < n; ++i) {
        const pb::Message& m =
            f->is_repeated() ? refl->GetRepeatedMessage(msg, f, i) : refl->GetMessage(msg, f);
        std::string bad = NonUtf8Field(m, path);
        if (!bad.empty()) return bad;
      }
    }
  }
  return "";
}

template <typename Tensors>
absl::Status CheckTensors(const Tensors& tensors, absl::string_view kind,
                          absl::string_view file) {
  std::set<std::string> seen;
  for (int i = 0; i < tensors.size(); ++i) {
    const auto& t = tensors[i];
    const std::string where = absl::StrCat(kind, "[", i, "]");
    if (t.name().empty()) return Invalid(file, where + ": 'name' is empty");
    if (!seen.insert(t.name()).second) {
      return Invalid(file, absl::StrCat(kind, " '", t.name(), "' is declared twice"));
    }
    if (t.data_type() == inference::TYPE_INVALID) {
      return Invalid(file, absl::StrCat(kind, " '", t.name(), "': 'data_type' is missing"));
    }
    // proto3 enums are open: text format accepts `data_type: 42` (found by fuzzing).
    if (!inference::DataType_IsValid(t.data_type())) {
      return Invalid(file, absl::StrCat(kind, " '", t.name(), "': 'data_type' ",
                                        static_cast<int>(t.data_type()), " is not a TYPE_* value"));
    }
    for (int64_t d : t.dims()) {
      if (d < -1) {
        return Invalid(file, absl::StrCat(kind, " '", t.name(), "': 'dims' has ", d,
                                          "; a dimension is -1 (variable) or >= 0"));
      }
    }
  }
  return absl::OkStatus();
}

// The steps after the syntax: the name (filled in, or checked against the
// model's), the semantic checks, the warnings for unimplemented fields.
absl::Status FinishParsed(absl::string_view file_name, absl::string_view model_name,
                          absl::string_view model_is, bool require_io,
                          ParsedModelConfig* parsed) {
  if (parsed->config.name().empty()) {
    parsed->config.set_name(std::string(model_name));
  } else if (parsed->config.name() != model_name) {
    return Invalid(file_name, absl::StrCat("'name' is \"", parsed->config.name(), "\" but ",
                                           model_is, " is \"", model_name,
                                           "\"; they must agree"));
  }
  TORII_RETURN_IF_ERROR(ValidateModelConfig(parsed->config, file_name, require_io));
  std::set<std::string> unimplemented;
  CollectUnimplemented(parsed->config, "", unimplemented);
  for (const auto& path : unimplemented) {
    parsed->warnings.push_back(absl::StrCat(
        file_name, ": field '", path, "' is not implemented by Torii and is ignored"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateModelConfig(const inference::ModelConfig& config,
                                 absl::string_view file, bool require_io) {
  if (config.max_batch_size() < 0) {
    return Invalid(file, absl::StrCat("'max_batch_size' is ", config.max_batch_size(),
                                      "; it must be >= 0"));
  }
  if (require_io && config.input_size() == 0) {
    return Invalid(file, "the model declares no 'input'");
  }
  if (require_io && config.output_size() == 0) {
    return Invalid(file, "the model declares no 'output'");
  }
  TORII_RETURN_IF_ERROR(CheckTensors(config.input(), "input", file));
  TORII_RETURN_IF_ERROR(CheckTensors(config.output(), "output", file));
  for (const auto& g : config.instance_group()) {
    if (g.count() < 0) {
      return Invalid(file, absl::StrCat("'instance_group.count' is ", g.count(),
                                        "; it must be >= 0"));
    }
    if (!inference::ModelInstanceGroup::Kind_IsValid(g.kind())) {
      return Invalid(file, absl::StrCat("'instance_group.kind' ", static_cast<int>(g.kind()),
                                        " is not a KIND_* value"));
    }
    if (g.kind() == inference::ModelInstanceGroup::KIND_GPU) {
      return Invalid(file, "'instance_group.kind: KIND_GPU' is not supported; Torii "
                           "runs instances on the CPU (use KIND_CPU or KIND_AUTO)");
    }
  }
  // Refused rather than warned: without a sequence batcher the requests of
  // one sequence would run on any instance, with no start/end/correlation
  // controls and no implicit state, so a stateful model would answer wrongly
  // instead of failing.
  if (config.has_sequence_batching()) {
    return Invalid(file, "'sequence_batching' is not supported: Torii has no sequence "
                         "batcher yet, and serving a stateful model as if it were "
                         "stateless would give wrong answers (remove the field only if "
                         "the model keeps no state between requests)");
  }
  if (config.has_dynamic_batching()) {
    if (config.max_batch_size() == 0) {
      return Invalid(file, "'dynamic_batching' needs 'max_batch_size' > 0");
    }
    for (int32_t p : config.dynamic_batching().preferred_batch_size()) {
      if (p < 1 || p > config.max_batch_size()) {
        return Invalid(file, absl::StrCat("'dynamic_batching.preferred_batch_size' ", p,
                                          " is outside 1..max_batch_size (",
                                          config.max_batch_size(), ")"));
      }
    }
  }
  if (config.version_policy().has_latest() &&
      config.version_policy().latest().num_versions() == 0) {
    return Invalid(file, "'version_policy.latest.num_versions' must be >= 1");
  }
  const std::string non_utf8 = NonUtf8Field(config, "");
  if (!non_utf8.empty()) {
    return Invalid(file, absl::StrCat("field '", non_utf8,
                                      "' is not valid UTF-8; config strings must be UTF-8 "
                                      "(save the file as UTF-8)"));
  }
  const std::string& backend = config.backend();
  if (backend.find_first_of("/\\") != std::string::npos || backend == "." ||
      backend == "..") {
    return Invalid(file, absl::StrCat("'backend' \"", backend,
                                      "\" must be a plain runner name"));
  }
  return absl::OkStatus();
}

absl::StatusOr<ParsedModelConfig> ParseModelConfig(absl::string_view text,
                                                   absl::string_view file_name,
                                                   absl::string_view model_dir_name) {
  ParsedModelConfig parsed;
  ErrorCollector errors;
  pb::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(std::string(text), &parsed.config)) {
    std::string msg = errors.first().empty() ? "cannot parse" : errors.first();
    const std::string field = FieldAt(text, errors.line(), errors.column());
    if (!field.empty() && msg.find("\"" + field + "\"") == std::string::npos) {
      absl::StrAppend(&msg, " (field '", field, "')");
    }
    return Invalid(file_name, msg);
  }
  TORII_RETURN_IF_ERROR(FinishParsed(file_name, model_dir_name, "the model directory",
                                     /*require_io=*/true, &parsed));
  return parsed;
}

absl::StatusOr<ParsedModelConfig> ParseModelConfigJson(const std::string& json,
                                                       absl::string_view what,
                                                       absl::string_view model_name) {
  ParsedModelConfig parsed;
  pb::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  // As Triton: "type_fp32" or "TYPE_FP32".
  options.case_insensitive_enum_parsing = true;
  auto s = pb::util::JsonStringToMessage(json, &parsed.config, options);
  if (!s.ok()) {
    return Invalid(what, absl::StrCat("not a model config in JSON: ", s.message().ToString()));
  }
  TORII_RETURN_IF_ERROR(FinishParsed(what, model_name, "the model", /*require_io=*/false,
                                     &parsed));
  return parsed;
}

absl::StatusOr<ParsedModelConfig> LoadModelConfig(const std::string& path,
                                                  absl::string_view model_dir_name) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::ostringstream text;
  text << in.rdbuf();
  return ParseModelConfig(text.str(), path, model_dir_name);
}

}  // namespace torii
