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
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "server/core/execution_backend.h"
#include "server/core/inference_request.h"
#include "server/core/model_spec.h"
#include "server/scheduler/model_statistics.h"

namespace torii {

class Scheduler {
 public:
  using Clock = InferenceRequest::Clock;

  struct Options {
    std::string model_name;
    int32_t max_batch_size = 0;
    BatchingSpec batching;
    QueuePolicy queue_policy;
    /// An instance executing one batch longer than this is reported stuck
    /// (execution_timeout_ms); 0 = never.
    std::chrono::milliseconds stuck_after{30000};
  };

  static Options FromSpec(const ModelSpec& spec);

  /// Starts one worker per instance of `model` (which, like `stats`, must
  /// outlive this).
  Scheduler(Options options, ExecutionBackend* model, ModelStatistics* stats);
  /// Shuts down (draining the queue) if Shutdown() was not called.
  ~Scheduler();

  /// Queues a validated request (taking it from `request`). On error (queue
  /// full: RESOURCE_EXHAUSTED; shutting down: UNAVAILABLE) the request stays
  /// with the caller, unanswered, and the caller answers or retries.
  absl::Status Enqueue(std::unique_ptr<InferenceRequest>& request);

  /// True once Shutdown() began: a caller may retry on a newer version.
  bool stopping() const;

  /// Stops accepting: Enqueue() answers UNAVAILABLE from now on.
  void Stop();
  /// Stops accepting, lets the workers execute what is queued, and joins
  /// them; false when they are not done by `deadline` (a stuck runner): the
  /// workers are then left running and this object must stay alive.
  bool Drain(Clock::time_point deadline);
  /// Answers every request still queued with `status`.
  void FailQueued(const absl::Status& status);
  /// Drain() without a deadline.
  void Shutdown();

  /// Requests queued and not yet handed to an instance.
  size_t pending() const;

  /// Instances whose current batch has run longer than Options::stuck_after.
  /// A runner that hangs keeps its instance (and the requests of that batch);
  /// the other instances and models keep serving.
  size_t stuck_instances() const;

 private:
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
  RequestBatch DropExpired(std::vector<Entry> batch);
  const char* ExpiredReason(const Entry& e, Clock::time_point now) const;
  void AnswerExpired(Entry& e, const char* reason, Clock::time_point now);
  void ReaperLoop();
  static bool Compatible(const InferenceRequest& a, const InferenceRequest& b);

  const Options options_;
  ExecutionBackend* const model_;
  ModelStatistics* const stats_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Entry> queue_;
  std::deque<Entry> delayed_;  // timed out under timeout_action DELAY
  bool stopping_ = false;
  std::vector<std::thread> workers_;
  size_t exited_ = 0;  // workers that left their loop
  std::condition_variable exited_cv_;
  // The reaper answers queued requests that expire (ReaperLoop).
  std::thread reaper_;
  std::condition_variable reaper_cv_;
  Clock::time_point next_expiry_ = Clock::time_point::max();  // earliest queued expiry
  bool reaper_polling_ = false;  // the reaper looks at the queue every 100 ms
  size_t busy_ = 0;              // workers executing a batch
  // Per instance: steady-clock ns when its current batch started, 0 if idle.
  std::unique_ptr<std::atomic<int64_t>[]> busy_since_ns_;
  size_t instances_ = 0;
};

}  // namespace torii

#endif  // TORII_SERVER_SCHEDULER_SCHEDULER_H_
