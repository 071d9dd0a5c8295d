// Process isolation for runners: a model version's instances run in child
// processes (torii-runner-host), so a runner that segfaults, aborts, exits,
// hangs or is killed for memory costs only the requests it was running.
//
// Two layouts (ModelSpec::isolation.mode):
//   process               one child holds every instance (a thread each);
//   process_per_instance  one child per instance (the Python runner: its own
//                         interpreter, GIL and memory per instance).
// Per instance: a Unix socketpair for control frames (protocol.h) and a
// sealed memfd region for tensors (shared_memory.h).
//
// Nothing of the runner's code runs in the server: the child opens the
// library, checks its ABI and reports its provenance.
//
// Per child, the control socket becomes a full-duplex events channel after
// the load (protocol.h), read by one thread per child together with the
// child's stdout and stderr pipes (each line goes to the log, tagged with the
// model): responses a runner sends through senders reach their requests in
// order (paced by the receiver's AwaitCapacity on a small elastic pool of
// threads, so a slow client never holds up another's responses), calls the
// runner makes go to the InferenceDispatcher, cancellations go back. Batches
// keep their strict frame-for-frame path on the instance channels.
//
// A supervisor thread per child starts it, waits for it to end, records why,
// kills what is left of its process group (helpers the runner started), and
// starts it again with exponential backoff. While a child is down its
// instances are not ready (the scheduler hands work to the others); while no
// child is up, healthy() is false (ModelReady says not ready) and Execute()
// answers UNAVAILABLE at once. See docs/reliability.md.
#ifndef TORII_SERVER_ISOLATION_ISOLATED_RUNNER_MODEL_H_
#define TORII_SERVER_ISOLATION_ISOLATED_RUNNER_MODEL_H_

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "server/core/execution_backend.h"
#include "server/core/inference_dispatcher.h"
#include "server/core/model_spec.h"
#include "server/isolation/protocol.h"
#include "server/isolation/shared_memory.h"
#include "torii/metric_registry.h"

namespace torii {

class IsolatedRunnerModel : public ExecutionBackend {
 public:
  using Duration = std::chrono::milliseconds;
  /// Turns a config the runner completed (serialized inference::ModelConfig)
  /// into the spec to serve with; provided by the loader.
  using CompletedConfigHandler =
      std::function<absl::StatusOr<std::shared_ptr<const ModelSpec>>(const std::string&)>;

  struct Options {
    std::string name;
    int64_t version = 0;
    std::string directory;
    std::string version_directory;
    std::shared_ptr<const ModelSpec> spec;  // isolation, timeouts, instances
    std::string config;                     // serialized inference::ModelConfig
    /// The runner library the children open, and what its manifest says.
    std::string library_path;
    std::string runner;
    std::string default_model_filename;
    /// Where the runner's calls to other models go (null: they fail with
    /// UNAVAILABLE).
    InferenceDispatcher* dispatcher = nullptr;
    /// Where the metrics the runner defines (ABI 1.3) are exported; must
    /// outlive the model (null: the children still accept them, and they
    /// are not exported).
    host_metrics::Registry* metrics = nullptr;
    /// The runner may complete the config at load (its manifest allows it);
    /// `on_completed_config` then receives what it made of it.
    bool allow_config_completion = false;
    CompletedConfigHandler on_completed_config;
    /// torii-runner-host; empty = $TORII_RUNNER_HOST, else the file
    /// torii-runner-host beside the running executable.
    std::string host_path;
    /// Restart backoff goes back to its first value after a child has been up
    /// this long.
    Duration backoff_reset{60000};
    /// How long a child gets to unload and exit at shutdown before SIGKILL.
    Duration stop_timeout{5000};
  };

  /// Starts the children and loads the model in them. A load failure in a
  /// child (runner error, ABI mismatch, missing library, crash while loading)
  /// is returned here, naming the model; nothing is restarted.
  static absl::StatusOr<std::unique_ptr<IsolatedRunnerModel>> Create(Options options);

  /// Closes the channels (the children unload the model and exit), SIGKILL
  /// after stop_timeout. No Execute() may be running.
  ~IsolatedRunnerModel() override;

  size_t instance_count() const override { return instance_count_; }
  void Execute(size_t instance, RequestBatch& requests, Timing* timing) override;
  /// False while no child is up.
  bool healthy() const override;
  bool InstanceReady(size_t instance) const override;
  /// How many times a child was started again after the first (for the
  /// torii_runner_restarts_total metric).
  uint64_t restarts() const override;
  /// One entry per child: label "instance <i>" (process_per_instance) or
  /// "instances 0-<n-1>".
  std::vector<std::pair<std::string, int64_t>> RunnerProcesses() const override;
  RunnerProvenance provenance() const override;

  /// The spec the children run with (the runner may have completed it).
  std::shared_ptr<const ModelSpec> spec() const { return options_.spec; }
  /// Why the last child ended ("SIGSEGV", "exit status 3", ...); empty if
  /// none has.
  std::string last_exit_reason() const;
  /// The pid of the child running `instance`; 0 while there is none.
  pid_t pid(size_t instance = 0) const;
  /// Kills every child now (an unload that cannot wait for a stuck batch);
  /// the requests they were running fail with UNAVAILABLE naming `reason`.
  void Abort(const std::string& reason) override;

 public:
  // Implementation types (isolated_runner_model.cc).
  struct Channel;
  struct Generation;
  struct Slot;
  struct OpenRequest;
  class PumpPool;

 private:

  explicit IsolatedRunnerModel(Options options);

  void Supervise(Slot& slot);
  absl::StatusOr<std::shared_ptr<Generation>> Spawn(Slot& slot);
  absl::StatusOr<isolation::LoadReply> AwaitLoad(Slot& slot, Generation& g);
  // Sends SIGKILL to `g` unless it already died (slot.mu held).
  void KillLocked(Slot& slot, Generation& g, const std::string& reason);
  // The status for requests whose child died under them; waits (bounded) for
  // the supervisor to learn why.
  absl::Status DeathStatus(Slot& slot, const std::shared_ptr<Generation>& g);
  // Writes one batch into the channel's region and frame.
  // (and publishes it as the channel's batch in flight, without a lock).
  absl::Status SendBatch(Generation& g, size_t channel, Channel& ch, RequestBatch& requests);
  // Waits for the batch's reply, passing on cancellations and enforcing the
  // execution timeout.
  absl::Status AwaitReply(Slot& slot, const std::shared_ptr<Generation>& g, Channel& ch,
                          const RequestBatch& requests, size_t instance);
  // Checks the child's outputs against the spec and answers each request
  // the reply answers.
  void Answer(Channel& ch, RequestBatch& requests);
  // After a batch (answered, or failed with `failure`): requests answered
  // through senders move out of `requests` into the generation's open
  // requests. True when the child broke the protocol doing so.
  bool Reconcile(Generation& g, size_t channel, uint64_t batch_id, RequestBatch& requests,
                 const isolation::BatchReply* reply, const absl::Status& failure);
  // The events thread of one child: frames, output lines, cancellations.
  void ReadEvents(Slot& slot, std::shared_ptr<Generation> g);
  // Ends every open request of `g` (the child is gone) with `status`.
  void EndOpenRequests(Generation& g, const absl::Status& status);

  Options options_;
  const std::string model_name_;
  const size_t instance_count_;
  std::string host_path_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::vector<std::pair<Slot*, size_t>> instances_;  // instance -> (slot, channel)
  std::atomic<bool> spec_settled_{false};  // set by Create() once slot 0 has loaded
  std::shared_ptr<PumpPool> pumps_;
  mutable std::mutex provenance_mu_;
  RunnerProvenance provenance_;
};

}  // namespace torii

#endif  // TORII_SERVER_ISOLATION_ISOLATED_RUNNER_MODEL_H_
