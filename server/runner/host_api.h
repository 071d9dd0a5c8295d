// The server's side of the runner ABI: the objects behind the opaque handles
// and the ToriiHostApi function table handed to every runner.
#ifndef TORII_SERVER_RUNNER_HOST_API_H_
#define TORII_SERVER_RUNNER_HOST_API_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "server/core/inference_request.h"
#include "server/core/model_signature.h"
#include "torii/runner_abi.h"

struct ToriiError {
  ToriiStatusCode code;
  std::string message;
};

struct ToriiModel {
  std::string name;
  int64_t version = 0;
  std::string directory;
  std::string version_directory;
  std::string config_json;
  std::map<std::string, std::string> parameters;
  const torii::ModelSignature* signature = nullptr;
};

struct ToriiBatch {
  struct Input {
    std::vector<int64_t> shape;
    const char* data = nullptr;
    size_t byte_size = 0;
    std::string merged;  // owns the bytes when several requests were merged
  };
  struct Output {
    bool allocated = false;
    ToriiDataType datatype = TORII_TYPE_INVALID;
    std::vector<int64_t> shape;
    std::string buffer;
  };

  const ToriiModel* model = nullptr;
  const std::vector<torii::InferenceRequest*>* requests = nullptr;
  int64_t total_rows = 0;
  std::vector<Input> inputs;        // in declared input order
  std::vector<Output> outputs;      // in declared output order
  std::vector<bool> requested;      // some request asked for output k
  std::vector<absl::Status> failed; // per request; OK = not failed
  uint64_t deadline_ns = 0;
};

namespace torii {

/// The host function table (static storage, thread-safe).
const ToriiHostApi* HostApi();

/// Converts a runner error to a status and releases it. NULL -> OK.
absl::Status ConsumeRunnerError(ToriiError* error, absl::string_view context);

}  // namespace torii

#endif  // TORII_SERVER_RUNNER_HOST_API_H_
