// Process isolation for runners (`parameters { key: "isolation" value {
// string_value: "process" } }`): the model version's instances run in a child
// process, torii-runner-host, so a runner that segfaults, aborts, exits or is
// killed for memory costs only the requests it was running.
//
// One child per model version, holding every instance (each on its own
// thread there), loaded with the same RunnerLibrary + RunnerModel code as
// in-process. Per instance: a Unix socketpair for control frames
// (protocol.h) and a memfd region for tensors (shared_memory.h).
//
// A supervisor thread (one per model version) starts the child, waits for it
// to end, records why, and starts it again with exponential backoff. While
// the child is down, healthy() is false (ModelReady says not ready) and
// Execute() answers UNAVAILABLE at once. See docs/reliability.md.
#ifndef TORII_SERVER_ISOLATION_ISOLATED_RUNNER_MODEL_H_
#define TORII_SERVER_ISOLATION_ISOLATED_RUNNER_MODEL_H_

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "model_config.pb.h"
#include "server/isolation/protocol.h"
#include "server/isolation/shared_memory.h"
#include "server/runner/execution_backend.h"
#include "server/runner/runner_model.h"

namespace torii {

class IsolatedRunnerModel : public ExecutionBackend {
 public:
  using Duration = std::chrono::milliseconds;

  struct Options {
    /// What RunnerModel::Create gets in the child (config and signature must
    /// outlive this object).
    RunnerModel::Options model;
    /// The runner library the child opens.
    std::string library_path;
    /// torii-runner-host; empty = $TORII_RUNNER_HOST, else the file
    /// torii-runner-host beside the running executable.
    std::string host_path;
    /// A batch running longer than this gets DEADLINE_EXCEEDED and the child
    /// is killed and restarted (parameter execution_timeout_ms; the default
    /// is the scheduler's stuck threshold, 30 s; 0 = never kill).
    Duration execution_timeout{30000};
    /// RLIMIT_AS of the child in MiB; 0 = inherited (parameter memory_limit_mb).
    uint64_t memory_limit_mb = 0;
    /// Restart backoff: first delay, doubling up to the maximum; back to the
    /// first after the child has been up for `backoff_reset`.
    Duration backoff_initial{100};   // parameter restart_backoff_ms
    Duration backoff_max{10000};     // parameter restart_backoff_max_ms
    Duration backoff_reset{60000};
    /// How long the child gets to unload and exit at shutdown before SIGKILL.
    Duration stop_timeout{5000};
  };

  /// Options from the model config's parameters (execution_timeout_ms,
  /// memory_limit_mb, restart_backoff_ms, restart_backoff_max_ms). A bad
  /// value is INVALID_ARGUMENT naming the parameter.
  static absl::StatusOr<Options> OptionsFromConfig(const inference::ModelConfig& config,
                                                   const RunnerModel::Options& model,
                                                   const std::string& library_path);

  /// Starts the child and loads the model in it. A load failure in the child
  /// (runner error, missing library, crash while loading) is returned here,
  /// naming the model; nothing is restarted.
  static absl::StatusOr<std::unique_ptr<IsolatedRunnerModel>> Create(Options options);

  /// Closes the channels (the child unloads the model and exits), SIGKILL
  /// after stop_timeout. No Execute() may be running.
  ~IsolatedRunnerModel() override;

  size_t instance_count() const override { return instance_count_; }
  std::vector<absl::Status> Execute(size_t instance, const std::vector<InferenceRequest*>& requests,
                                    Timing* timing) override;
  /// False while the child is down or restarting.
  bool healthy() const override { return healthy_.load(); }

  /// How many times a child was started again after the first (for the
  /// torii_runner_restarts_total metric).
  uint64_t restarts() const override { return restarts_.load(); }
  /// Why the last child ended ("SIGSEGV", "exit status 3", ...); empty if
  /// none has.
  std::string last_exit_reason() const;
  /// The current child's pid; 0 while there is none.
  pid_t pid() const;

 private:
  struct Channel {
    int fd = -1;
    isolation::SharedRegion region;
    uint64_t next_batch_id = 1;
    std::string out, in;  // frame buffers, reused
    isolation::BatchMessage batch;
    isolation::BatchReply reply;
  };
  // One child process and its channels. Shared with the workers using it, so
  // a restart never closes a descriptor under them.
  struct Generation {
    pid_t pid = 0;
    int control_fd = -1;
    std::vector<Channel> channels;
    // Guarded by mu_.
    bool dead = false;
    std::string exit_reason;
    std::string kill_reason;  // set when the server killed it
    ~Generation();
  };

  explicit IsolatedRunnerModel(Options options);

  void Supervise();
  absl::StatusOr<std::shared_ptr<Generation>> Spawn();
  // Sends SIGKILL to `g` unless it already died (mu_ held).
  void KillLocked(Generation& g, const std::string& reason);
  // The status for requests whose child died under them; waits (bounded) for
  // the supervisor to learn why.
  absl::Status DeathStatus(const std::shared_ptr<Generation>& g);
  std::vector<absl::Status> FailAll(size_t n, const absl::Status& s) const;

  const Options options_;
  const std::string model_name_;
  const size_t instance_count_;
  std::string host_path_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::shared_ptr<Generation> generation_;  // the serving child, or null
  bool stopping_ = false;
  bool first_load_done_ = false;
  absl::Status first_load_status_;
  std::string last_exit_reason_;
  std::atomic<bool> healthy_{false};
  std::atomic<uint64_t> restarts_{0};
  std::thread supervisor_;
};

}  // namespace torii

#endif  // TORII_SERVER_ISOLATION_ISOLATED_RUNNER_MODEL_H_
