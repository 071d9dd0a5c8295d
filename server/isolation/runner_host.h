// The runner host process (torii-runner-host): the child side of process
// isolation. It loads one model version with the same code the server uses
// in-process (RunnerLibrary + RunnerModel), then serves each instance on its
// own thread: it reads a batch frame, builds InferenceRequests whose inputs
// point into the instance's shared region, runs RunnerModel::Execute, copies
// every output into the shared region and answers with one reply frame.
//
// Started only by IsolatedRunnerModel (isolated_runner_model.h), which passes
// inherited file descriptors on the command line:
//   torii-runner-host --model=<name> --control-fd=<fd> --instance=<sock>:<memfd> ...
#ifndef TORII_SERVER_ISOLATION_RUNNER_HOST_H_
#define TORII_SERVER_ISOLATION_RUNNER_HOST_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "inference.pb.h"
#include "server/core/inference_request.h"
#include "server/core/model_signature.h"
#include "server/isolation/protocol.h"
#include "server/isolation/shared_memory.h"
#include "server/runner/runner_model.h"

namespace torii {
namespace isolation {

/// Serves one instance's channel: batch frames in, reply frames out.
class InstanceServer {
 public:
  InstanceServer(ExecutionBackend* model, const ModelSignature* signature, size_t instance, int fd,
                 SharedRegion region)
      : model_(model), signature_(signature), instance_(instance), fd_(fd),
        region_(std::move(region)) {}

  /// Serves until the server closes the socket (OK) or sends something
  /// malformed (the error). Never throws.
  absl::Status Serve();

  /// Handles one decoded batch frame body and fills `reply_frame`. Public for
  /// tests.
  absl::Status HandleBatch(absl::string_view body, std::string* reply_frame);

 private:
  ExecutionBackend* model_;
  const ModelSignature* signature_;
  size_t instance_;
  int fd_;
  SharedRegion region_;
  // Reused across batches.
  BatchMessage batch_;
  BatchReply reply_;
  std::vector<InferenceRequest> requests_;
  std::vector<inference::ModelInferResponse> responses_;
  std::vector<inference::ModelInferRequest> wires_;
  inference::ModelInferRequest empty_wire_;
  std::vector<InferenceRequest*> pointers_;
};

/// main() of torii-runner-host.
int RunnerHostMain(int argc, char** argv);

}  // namespace isolation
}  // namespace torii

#endif  // TORII_SERVER_ISOLATION_RUNNER_HOST_H_
