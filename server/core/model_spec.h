// A model version's validated specification: everything the request path,
// the scheduler, the runners and isolation need to know about a model, read
// from its config.pbtxt once (server/repository/model_spec_builder.h, one
// parse rule per field) and passed down. No layer below the repository reads
// the config proto.
#ifndef TORII_SERVER_CORE_MODEL_SPEC_H_
#define TORII_SERVER_CORE_MODEL_SPEC_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "torii/runner_abi.h"

namespace torii {

/// A declared input or output.
struct TensorSpec {
  std::string name;
  ToriiDataType datatype = TORII_TYPE_INVALID;
  std::vector<int64_t> dims;  // without the batch dimension; -1 = variable
};

/// Triton's default_queue_policy.
struct QueuePolicy {
  /// Requests waiting at most; beyond it new requests get RESOURCE_EXHAUSTED.
  /// 0 = unlimited.
  size_t max_queue_size = 0;
  /// 0 = none.
  std::chrono::microseconds default_timeout{0};
  bool allow_timeout_override = false;
  /// timeout_action DELAY (else REJECT).
  bool delay_on_timeout = false;
};

/// dynamic_batching (only for max_batch_size > 0).
struct BatchingSpec {
  bool dynamic = false;
  std::set<int64_t> preferred_batch_sizes;
  std::chrono::microseconds max_queue_delay{0};
};

/// Where a model's instances run.
enum class IsolationMode {
  kNone,                // in the server process (default)
  kProcess,             // one child process for all instances of a version
  kProcessPerInstance,  // one child process per instance (Python models)
};

struct IsolationSpec {
  IsolationMode mode = IsolationMode::kNone;
  /// RLIMIT_AS of each child in MiB; 0 = inherited (memory_limit_mb).
  uint64_t memory_limit_mb = 0;
  /// Restart backoff: first delay, doubling up to the maximum
  /// (restart_backoff_ms, restart_backoff_max_ms).
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{10000};
};

/// One step of an ensemble (Triton's ensemble_scheduling.step).
struct EnsembleStepSpec {
  std::string model_name;
  int64_t model_version = -1;  // -1 = the latest ready version
  /// Step input name -> ensemble tensor name.
  std::map<std::string, std::string> input_map;
  /// Step output name -> ensemble tensor name.
  std::map<std::string, std::string> output_map;
};

class ModelSpec {
 public:
  std::string name;
  /// The runner that executes it ("identity", "torchscript", "python"), or
  /// "ensemble" for an ensemble.
  std::string runner;
  /// As the config says it (reported in metadata), may be empty.
  std::string platform;
  int32_t max_batch_size = 0;
  std::vector<TensorSpec> inputs;
  std::vector<TensorSpec> outputs;
  BatchingSpec batching;
  QueuePolicy queue_policy;
  /// Instances in all instance groups (>= 1).
  uint32_t instance_count = 1;
  /// `parameters` of the config, as strings.
  std::map<std::string, std::string> parameters;
  /// A batch running longer than this makes its instance stuck (in process)
  /// or gets its child killed (isolated). 0 = never (execution_timeout_ms).
  std::chrono::milliseconds execution_timeout{30000};
  IsolationSpec isolation;
  /// model_transaction_policy.decoupled: any number of responses per request.
  bool decoupled = false;
  /// Non-empty for platform "ensemble".
  std::vector<EnsembleStepSpec> ensemble_steps;
  /// default_model_filename, or the runner's default.
  std::string default_model_filename;
  /// The whole config as JSON (protobuf JSON mapping, config.pbtxt field
  /// names): what runners read through model_config_json.
  std::string config_json;

  bool batching_enabled() const { return max_batch_size > 0; }
  bool is_ensemble() const { return !ensemble_steps.empty(); }

  /// Index into inputs()/outputs(), or -1. Valid after Finalize().
  int InputIndex(absl::string_view name) const;
  int OutputIndex(absl::string_view name) const;

  /// The shape clients see in metadata: dims with a leading -1 when batching.
  std::vector<int64_t> WireShape(const TensorSpec& t) const;

  /// Builds the name indexes; call once after filling inputs and outputs.
  void Finalize();

 private:
  absl::flat_hash_map<std::string, int> input_index_;
  absl::flat_hash_map<std::string, int> output_index_;
};

}  // namespace torii

#endif  // TORII_SERVER_CORE_MODEL_SPEC_H_
