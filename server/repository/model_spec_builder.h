// config.pbtxt (inference::ModelConfig) -> ModelSpec, with one parse rule per
// field. The only place that reads scheduling, isolation and timeout settings
// out of a config; everything below the repository sees only the ModelSpec.
#ifndef TORII_SERVER_REPOSITORY_MODEL_SPEC_BUILDER_H_
#define TORII_SERVER_REPOSITORY_MODEL_SPEC_BUILDER_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "model_config.pb.h"
#include "server/core/model_spec.h"
#include "server/repository/runner_catalog.h"

namespace torii {

struct SpecDefaults {
  /// max_queue_size when the config sets none (--max-queue-size); 0 = none.
  size_t max_queue_size = 0;
};

/// Builds the spec of a model run by `runner` (its manifest's isolation
/// floor and default model file apply). Errors are INVALID_ARGUMENT naming
/// the model and the field or parameter, what it is and what is accepted.
/// `require_io`: the config must declare inputs and outputs (false while a
/// runner may still auto-complete them).
absl::StatusOr<ModelSpec> BuildModelSpec(const inference::ModelConfig& config,
                                         const RunnerManifest& runner,
                                         const SpecDefaults& defaults, bool require_io = true);

/// The config as JSON (protobuf JSON mapping, config.pbtxt field names), as
/// runners and the HTTP frontend see it.
std::string ConfigToJson(const inference::ModelConfig& config);
/// The reverse: a config given as JSON (a runner's auto-complete, a
/// repository load override). INVALID_ARGUMENT naming `what` on bad JSON.
absl::StatusOr<inference::ModelConfig> ConfigFromJson(const std::string& json,
                                                      const std::string& what);

}  // namespace torii

#endif  // TORII_SERVER_REPOSITORY_MODEL_SPEC_BUILDER_H_
