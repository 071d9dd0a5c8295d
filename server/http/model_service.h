// What the HTTP endpoints need from the model manager, besides inference
// (which goes through InferenceDispatcher). Stage 2 implements this over the
// manager; tests implement it with a fake. All methods are thread-safe and
// may be called from the HTTP I/O threads, except Load and Unload, which may
// take seconds and are called from a thread of their own.
#ifndef TORII_SERVER_HTTP_MODEL_SERVICE_H_
#define TORII_SERVER_HTTP_MODEL_SERVICE_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/repository/model_override.h"
#include "torii/runner_abi.h"

namespace torii {
namespace http {

struct TensorMetadata {
  std::string name;
  ToriiDataType datatype = TORII_TYPE_INVALID;
  /// As clients see it: -1 for a variable dimension, a leading -1 for the
  /// batch dimension of a batching model (ModelSpec::WireShape).
  std::vector<int64_t> shape;
};

struct ModelMetadata {
  std::string name;
  /// The versions served (ready), as strings.
  std::vector<std::string> versions;
  std::string platform;
  /// 0 when the model does not batch; else the leading -1 of every tensor's
  /// shape is the batch dimension. Not part of the JSON answer.
  int64_t max_batch_size = 0;
  std::vector<TensorMetadata> inputs;
  std::vector<TensorMetadata> outputs;
  /// Torii's extra facts (runner, runner_version, runner_build, runner_abi),
  /// as the gRPC ModelMetadata properties.
  std::vector<std::pair<std::string, std::string>> properties;
};

/// Count and total nanoseconds (the v2 statistics extension's duration).
struct DurationStat {
  uint64_t count = 0;
  uint64_t ns = 0;
};

struct BatchStat {
  uint64_t batch_size = 0;
  DurationStat compute_input, compute_infer, compute_output;
};

/// One model version's statistics (the statistics extension's $model_stat).
struct ModelStats {
  std::string name;
  std::string version;
  uint64_t last_inference_ms = 0;  // since the epoch
  uint64_t inference_count = 0;
  uint64_t execution_count = 0;
  DurationStat success, fail, queue, compute_input, compute_infer, compute_output, cache_hit,
      cache_miss;
  std::vector<BatchStat> batch_stats;
};

/// One row of the repository index.
struct ModelIndexEntry {
  std::string name;
  std::string version;  // may be empty (a model on disk that is not loaded)
  std::string state;    // READY, UNAVAILABLE, LOADING, UNLOADING
  std::string reason;
};

class ModelService {
 public:
  virtual ~ModelService() = default;

  /// Whether the server takes traffic (started, not shutting down and, with
  /// --strict-readiness, every model ready).
  virtual bool ServerReady() const = 0;

  /// `version` empty: the version the server would choose. A known model
  /// that is not ready is `false`, not an error; an unknown model or
  /// version is NOT_FOUND.
  virtual absl::StatusOr<bool> ModelReady(const std::string& name,
                                          const std::string& version) const = 0;

  /// NOT_FOUND for an unknown model or version, UNAVAILABLE when not ready.
  virtual absl::StatusOr<ModelMetadata> Metadata(const std::string& name,
                                                 const std::string& version) const = 0;

  /// The model configuration as a JSON object (ModelSpec::config_json).
  virtual absl::StatusOr<std::string> ConfigJson(const std::string& name,
                                                 const std::string& version) const = 0;

  /// `name` empty: every ready version of every model. `version` empty: every
  /// ready version of `name`. NOT_FOUND for an unknown model or version.
  virtual absl::StatusOr<std::vector<ModelStats>> Statistics(const std::string& name,
                                                             const std::string& version) const = 0;

  /// Every model the server knows, and (unless `ready_only`) every model in
  /// the repository it has not loaded.
  virtual std::vector<ModelIndexEntry> Index(bool ready_only) const = 0;

  /// Loads or reloads `name` (a plain directory name: the caller has checked
  /// it), as `override` describes it when it is not empty (a config given as
  /// JSON, and files; its views stay valid until this returns). Blocks until
  /// done. UNAVAILABLE when the server does not run with
  /// --model-control-mode=explicit.
  virtual absl::Status Load(const std::string& name, const ModelOverride& override) = 0;

  /// Unloads `name` (and, with `unload_dependents`, the ensembles that use it).
  virtual absl::Status Unload(const std::string& name, bool unload_dependents) = 0;
};

}  // namespace http
}  // namespace torii

#endif  // TORII_SERVER_HTTP_MODEL_SERVICE_H_
