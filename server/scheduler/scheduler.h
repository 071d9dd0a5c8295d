// Per-model scheduler: a bounded queue, one worker thread per runner instance,
// and an optional dynamic batcher (Triton's dynamic_batching semantics).
//
// Thread-safety: Enqueue() and Shutdown() may be called from any thread. Each
// instance is driven by exactly one worker, so an instance never runs two
// batches at once; different instances run in parallel. No lock is held while
// a runner executes.
#ifndef TORII_SERVER_SCHEDULER_SCHEDULER_H_
#define TORII_SERVER_SCHEDULER_SCHEDULER_H_

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "model_config.pb.h"
#include "server/core/inference_request.h"
#include "server/runner/execution_backend.h"
#include "server/scheduler/model_statistics.h"

namespace torii {

class Scheduler {
 public:
  struct Options {
    std::string model_name;
    int32_t max_batch_size = 0;
    bool dynamic_batching = false;
    std::set<int64_t> preferred_batch_sizes;
    std::chrono::microseconds max_queue_delay{0};
    /// Requests waiting at most; beyond it Enqueue() answers
    /// RESOURCE_EXHAUSTED. 0 = unlimited.
    size_t max_queue_size = 0;
    /// Queue policy (Triton's default_queue_policy).
    std::chrono::microseconds default_timeout{0};  // 0 = none
    bool allow_timeout_override = false;
    bool delay_on_timeout = false;  // timeout_action DELAY (else REJECT)
    /// An instance executing one batch longer than this is reported stuck
    /// (model parameter execution_timeout_ms; default 30 s).
    std::chrono::milliseconds stuck_after{30000};
  };

  /// Reads dynamic_batching / max_batch_size from the config;
  /// `default_max_queue_size` applies when the config sets none.
  static Options OptionsFromConfig(const inference::ModelConfig& config,
                                   size_t default_max_queue_size);

  /// Starts one worker per instance of `model` (which must outlive this).
  Scheduler(Options options, ExecutionBackend* model, ModelStatistics* stats);
  /// Shuts down (draining the queue) if Shutdown() was not called.
  ~Scheduler();

  /// Queues a validated request (taking it from `request`). On error (queue
  /// full: RESOURCE_EXHAUSTED; shutting down: UNAVAILABLE) the request stays
  /// with the caller, `done` is not called, and the caller answers or retries.
  absl::Status Enqueue(std::unique_ptr<InferenceRequest>& request);

  /// True once Shutdown() began: a caller may retry on a newer version.
  bool stopping() const;

  /// Stops accepting, executes everything already queued, joins the workers.
  void Shutdown();

  /// Requests queued and not yet handed to an instance.
  size_t pending() const;

  /// Instances whose current batch has run longer than Options::stuck_after.
  /// A runner that hangs keeps its instance (and the requests of that batch);
  /// the other instances and models keep serving.
  size_t stuck_instances() const;

 private:
  using Clock = InferenceRequest::Clock;
  struct Entry {
    std::unique_ptr<InferenceRequest> request;
    Clock::time_point timeout = Clock::time_point::max();  // queue policy
  };

  void WorkerLoop(size_t instance);
  // Takes the next batch off the queue (lock held); empty when stopping and
  // drained. May wait for the batching delay.
  std::vector<Entry> NextBatch(std::unique_lock<std::mutex>& lock);
  // Answers requests that must not run: cancelled, past deadline, rejected on
  // queue timeout. Returns the ones to execute.
  std::vector<Entry> DropExpired(std::vector<Entry> batch);
  static bool Compatible(const InferenceRequest& a, const InferenceRequest& b);
  void Finish(InferenceRequest& r, const absl::Status& status, Clock::time_point start_exec);

  const Options options_;
  ExecutionBackend* const model_;
  ModelStatistics* const stats_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Entry> queue_;
  std::deque<Entry> delayed_;  // timed out under timeout_action DELAY
  bool stopping_ = false;
  std::vector<std::thread> workers_;
  // Per instance: steady-clock ns when its current batch started, 0 if idle.
  std::unique_ptr<std::atomic<int64_t>[]> busy_since_ns_;
  size_t instances_ = 0;
};

}  // namespace torii

#endif  // TORII_SERVER_SCHEDULER_SCHEDULER_H_
