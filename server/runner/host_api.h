// The server's side of the runner ABI: the objects behind the opaque handles
// and the ToriiHostApi function table handed to every runner. Used in the
// server process (in-process runners) and in torii-runner-host children
// (isolated runners) alike.
#ifndef TORII_SERVER_RUNNER_HOST_API_H_
#define TORII_SERVER_RUNNER_HOST_API_H_

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/core/execution_backend.h"
#include "server/core/inference_dispatcher.h"
#include "server/core/model_spec.h"
#include "torii/metric_registry.h"
#include "torii/runner_abi.h"

namespace torii {
/// Turns a completed config (JSON, from a runner's model_set_config_json)
/// into the model's new spec, or says why it cannot be used. Provided by the
/// layer that knows how to parse configs (the loader, or the runner host).
using ConfigCompleter =
    std::function<absl::StatusOr<std::shared_ptr<const ModelSpec>>(const std::string& json)>;
}  // namespace torii

struct ToriiError {
  ToriiStatusCode code;
  std::string message;
};

struct ToriiModel {
  std::string name;
  int64_t version = 0;
  std::string directory;
  std::string version_directory;
  /// Replaced (during model_load only) by model_set_config_json.
  std::shared_ptr<const torii::ModelSpec> spec;
  /// Where model calls (infer_request_send) go; null: not available.
  torii::InferenceDispatcher* dispatcher = nullptr;
  torii::ConfigCompleter complete_config;
  /// True during torii_runner_model_load.
  bool loading = false;
  /// The runner's metric handles (ABI 1.3), released after model_unload;
  /// null: this host exports no runner metrics (metric_family_new fails).
  std::unique_ptr<torii::host_metrics::Owner> metrics;

  mutable std::mutex mu;
  std::vector<std::pair<std::string, std::string>> properties;  // guarded by mu
  std::vector<std::weak_ptr<ToriiResponseSender>> senders;      // guarded by mu
};

struct ToriiBatch {
  struct Input {
    torii::Shape shape;
    const char* data = nullptr;
    size_t byte_size = 0;
    std::unique_ptr<char[]> merged;  // owns the bytes when several requests were merged
  };
  struct Output {
    bool allocated = false;
    ToriiDataType datatype = TORII_TYPE_INVALID;
    torii::Shape shape;
    char* data = nullptr;
    size_t byte_size = 0;
    std::unique_ptr<char[]> scratch;  // owns the bytes unless written into a response
  };

  const ToriiModel* model = nullptr;
  torii::RequestBatch* requests = nullptr;
  int64_t total_rows = 0;
  std::vector<Input> inputs;        // in declared input order
  std::vector<Output> outputs;      // in declared output order
  std::vector<char> requested;      // some request asked for output k
  std::vector<absl::Status> failed; // per request; OK = not failed
  uint64_t deadline_ns = 0;
  /// A batch of one request writes its outputs straight into its response.
  std::unique_ptr<torii::InferenceResponse> direct_response;
  /// Per request: the sender that took it over (ABI 1.2), or null.
  std::vector<std::shared_ptr<ToriiResponseSender>> senders;
};

namespace torii {

/// The host function table (static storage, thread-safe).
const ToriiHostApi* HostApi();

/// Converts a runner error to a status and releases it. NULL -> OK.
/// Codes outside gRPC's range become UNKNOWN; a failure reported with OK,
/// INTERNAL.
absl::Status ConsumeRunnerError(ToriiError* error, absl::string_view context);

/// Finishes every response sender of `model` that its runner never finished,
/// with an INTERNAL error (called when the model is unloaded).
void AbandonSenders(const ToriiModel* model);

/// After execute: requests taken over by a sender and not yet finished move
/// from the batch into their senders, which keep them until the final send
/// (their entries in *b->requests become null).
void HandOverTakenRequests(ToriiBatch* b);

/// Requests a runner took over with a sender and has not finished yet.
size_t OpenSenders(const ToriiModel* model);

/// Where ToriiHostApi.log lines go instead of the process's log (the runner
/// host forwards them to the server, which logs them in its own format).
/// Set once, before any model loads; empty: the process's log.
using RunnerLogForwarder =
    std::function<void(const ToriiModel* model, ToriiLogLevel level, const char* message)>;
void SetRunnerLogForwarder(RunnerLogForwarder forwarder);

/// Where responses made through senders (response_new) allocate their
/// outputs; empty: the request's sink, as for batch outputs. The runner host
/// sets it so that a response sent during or after execute never lands in
/// the instance's batch region (server/isolation/runner_host.cc). Set once,
/// before any model loads.
using SenderResponseFactory = std::function<std::unique_ptr<InferenceResponse>()>;
void SetSenderResponseFactory(SenderResponseFactory factory);

}  // namespace torii

#endif  // TORII_SERVER_RUNNER_HOST_API_H_
