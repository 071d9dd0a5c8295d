// Parses and checks a model's config.pbtxt (protobuf text format, Triton's
// field names).
#ifndef TORII_SERVER_REPOSITORY_MODEL_CONFIG_PARSER_H_
#define TORII_SERVER_REPOSITORY_MODEL_CONFIG_PARSER_H_

#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/statusor.h"
#include "model_config.pb.h"

namespace torii {

struct ParsedModelConfig {
  inference::ModelConfig config;
  /// One line per field that parsed but that Torii does not implement, e.g.
  /// "field 'optimization.cuda.graphs' is not implemented by Torii and is
  /// ignored".
  std::vector<std::string> warnings;
};

/// Parses `text` (the contents of `file_name`) for the model directory
/// `model_dir_name`. Syntax errors name the file, line, column and field
/// (INVALID_ARGUMENT). The result is also checked with ValidateModelConfig().
/// An empty `name` is filled from `model_dir_name`.
absl::StatusOr<ParsedModelConfig> ParseModelConfig(absl::string_view text,
                                                   absl::string_view file_name,
                                                   absl::string_view model_dir_name);

/// Reads and parses a config.pbtxt file.
absl::StatusOr<ParsedModelConfig> LoadModelConfig(const std::string& path,
                                                  absl::string_view model_dir_name);

/// Semantic checks that protobuf cannot express: names unique and non-empty,
/// datatypes set, dims >= -1, max_batch_size >= 0, batching settings within
/// max_batch_size, instance kinds Torii can run, every string UTF-8, and no
/// field Torii cannot serve correctly without implementing it
/// (`sequence_batching`). Messages name the field. `require_io`: at least one
/// input and one output (false while a runner may still complete the config).
absl::Status ValidateModelConfig(const inference::ModelConfig& config,
                                 absl::string_view file_name, bool require_io = true);

/// A config given as JSON (Triton's repository load override "config":
/// protobuf's JSON mapping of model_config.proto, field names as in
/// config.pbtxt or in lowerCamelCase, enum names in any case), for the model
/// `model_name`: parsed, named, checked as ParseModelConfig does (without
/// requiring inputs and outputs: the caller knows whether the runner can
/// complete them) and warned about. `what` names it in messages.
absl::StatusOr<ParsedModelConfig> ParseModelConfigJson(const std::string& json,
                                                       absl::string_view what,
                                                       absl::string_view model_name);

}  // namespace torii

#endif  // TORII_SERVER_REPOSITORY_MODEL_CONFIG_PARSER_H_
