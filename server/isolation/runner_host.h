// The runner host process (torii-runner-host): the child side of process
// isolation. It loads one model version (or, for process-per-instance models,
// one instance of it) with the same code the server uses in process
// (RunnerLibrary + RunnerModel), then serves each instance on its own thread:
// it reads a batch frame, builds InferenceRequests whose inputs view the
// instance's shared region, runs RunnerModel::Execute with responses whose
// output buffers are allocated in that same region (the runner writes its
// outputs straight into shared memory), and answers with one reply frame.
//
// Everything else crosses the events channel (the control socket after the
// load; protocol.h), served by ChildEvents on the main thread: responses a
// runner sends through a sender (outputs in the child heap, freed when the
// server acknowledges them, which also paces the sender), cancellations,
// calls to other models (inputs copied into the child heap; results read in
// place from the parent heap) and the runner's log lines.
//
// Started only by IsolatedRunnerModel (isolated_runner_model.h), which passes
// inherited file descriptors on the command line:
//   torii-runner-host --model=<name> --control-fd=<fd> --instance=<sock>:<memfd> ...
#ifndef TORII_SERVER_ISOLATION_RUNNER_HOST_H_
#define TORII_SERVER_ISOLATION_RUNNER_HOST_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "server/core/execution_backend.h"
#include "server/core/model_spec.h"
#include "server/isolation/protocol.h"
#include "server/isolation/shared_memory.h"

namespace torii {
namespace isolation {

class ChildEvents;

/// Serves one instance's channel: batch frames in, reply frames out.
class InstanceServer {
 public:
  /// `events` may be null (tests): responses sent through senders then fail.
  InstanceServer(ExecutionBackend* model, std::shared_ptr<const ModelSpec> spec, size_t instance,
                 int fd, SharedRegion region, ChildEvents* events = nullptr)
      : model_(model), spec_(std::move(spec)), instance_(instance), fd_(fd),
        region_(std::move(region)), events_(events) {}

  /// Serves until the server closes the socket (OK) or sends something
  /// malformed (the error). Never throws.
  absl::Status Serve();

  /// Handles one decoded batch frame body and fills `reply_frame`. Public for
  /// tests.
  absl::Status HandleBatch(absl::string_view body, std::string* reply_frame);

  SharedRegion& region() { return region_; }

 private:
  ExecutionBackend* model_;
  std::shared_ptr<const ModelSpec> spec_;
  size_t instance_;
  int fd_;
  SharedRegion region_;
  ChildEvents* events_;
  BatchMessage batch_;  // reused across batches
  BatchReply reply_;
};

/// main() of torii-runner-host.
int RunnerHostMain(int argc, char** argv);

}  // namespace isolation
}  // namespace torii

#endif  // TORII_SERVER_ISOLATION_RUNNER_HOST_H_
