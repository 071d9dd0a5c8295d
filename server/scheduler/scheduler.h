// Per-model scheduler: a bounded queue, one worker thread per runner instance,
// and an optional dynamic batcher (Triton's dynamic_batching semantics).
// A request submitted under an InlineScope may instead run on the submitting
// thread, when an instance is idle and nothing is queued (inline_execution.h).
//
// Thread-safety: Enqueue() and Shutdown() may be called from any thread. An
// instance runs one batch at a time, taken either by its worker or by a caller
// running inline, both claiming the instance under the scheduler's lock;
// different instances run in parallel. No lock is held while a runner
// executes.
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
#include "server/scheduler/inline_execution.h"
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
    /// Requests submitted under an InlineScope may run on the caller's
    /// thread. Off: every request is handed to a worker.
    bool allow_inline = true;
    /// Requests run inline only while most of the model's recent executions
    /// took at most this long, and not while one of its inline executions
    /// has already run longer (a runner that hangs inline stops its model
    /// from taking more caller threads).
    std::chrono::microseconds inline_max_execution{1000};
    /// After its own batch, a caller running inline goes on executing queued
    /// batches (that arrived meanwhile) for up to this long before handing
    /// the rest to the worker; 0: hand it over at once.
    std::chrono::microseconds inline_drain{200};
    /// An idle worker polls for new work this long before sleeping (saves
    /// the wake-up when work comes soon, at the cost of a busy CPU); 0: it
    /// sleeps at once.
    std::chrono::microseconds worker_spin{0};
  };

  /// The options of `spec`. The environment variable TORII_SCHEDULER, a
  /// measuring aid (docs/performance.md), overrides the threading choices:
  /// comma-separated "handoff" (never inline), "inline" (the default),
  /// "drain=US", "spin=US", "inline_max=US".
  static Options FromSpec(const ModelSpec& spec);

  /// Starts one worker per instance of `model` (which, like `stats`, must
  /// outlive this).
  Scheduler(Options options, ExecutionBackend* model, ModelStatistics* stats);
  /// Shuts down (draining the queue) if Shutdown() was not called.
  ~Scheduler();

  /// Queues a validated request (taking it from `request`), or executes it
  /// on this thread before returning when the thread is in an InlineScope
  /// whose budget allows it, an instance is idle and nothing is queued. On
  /// error (queue full: RESOURCE_EXHAUSTED; shutting down: UNAVAILABLE) the
  /// request stays with the caller, unanswered, and the caller answers or
  /// retries.
  absl::Status Enqueue(std::unique_ptr<InferenceRequest>& request);

  /// True once Shutdown() began: a caller may retry on a newer version.
  bool stopping() const;

  /// Stops accepting: Enqueue() answers UNAVAILABLE from now on.
  void Stop();
  /// Stops accepting, lets the workers execute what is queued, waits for
  /// batches running inline, and joins the workers; false when they are not
  /// done by `deadline` (a stuck runner): the workers are then left running
  /// and this object must stay alive.
  bool Drain(Clock::time_point deadline);
  /// Answers every request still queued with `status`.
  void FailQueued(const absl::Status& status);
  /// Drain() without a deadline.
  void Shutdown();

  /// Requests queued and not yet handed to an instance.
  size_t pending() const;

  /// Instances running a batch now (on their worker or on a caller's thread).
  size_t busy_instances() const;

  /// Instances whose current batch has run longer than Options::stuck_after.
  /// A runner that hangs keeps its instance (and the requests of that batch);
  /// the other instances and models keep serving.
  size_t stuck_instances() const;

 private:
  struct Entry {
    std::unique_ptr<InferenceRequest> request;
    Clock::time_point timeout = Clock::time_point::max();  // queue policy
  };
  // What an instance's worker is doing (guarded by mu_).
  enum class WorkerState { kBusy, kIdle, kSpinning, kForming };
  struct Instance {
    std::condition_variable cv;  // its worker waits here
    WorkerState worker = WorkerState::kBusy;
    bool busy = false;         // a batch runs on it, by its worker or inline
    bool inline_run = false;   // ... by a caller's thread
    // Steady-clock ns when its current batch started, 0 if idle (read
    // without the lock by stuck_instances()).
    std::atomic<int64_t> busy_since_ns{0};
    // The batch being taken and run, reused from batch to batch (only the
    // thread that claims the instance touches them).
    std::vector<Entry> entries;
    RequestBatch batch;
  };
  static constexpr size_t kNone = static_cast<size_t>(-1);

  void WorkerLoop(size_t instance);
  // Moves the next batch off the queue into `out` (empty) if one may run
  // now; otherwise leaves it empty and sets *ready_at to when the batching
  // delay releases the head (max when nothing is queued).
  void TakeBatchLocked(Clock::time_point now, std::vector<Entry>& out,
                       Clock::time_point* ready_at);
  // The idle instance a request may run inline on, or kNone.
  size_t InlineInstanceLocked(const InferenceRequest& request) const;
  // Executes `entry` and, within Options::inline_drain, batches queued
  // meanwhile, on the calling thread; `instance` was claimed for it.
  void RunInline(size_t instance, Entry entry, InlineBudget* budget);
  // Runs the instance's `entries` (claimed by the caller) and clears them.
  void ExecuteBatch(size_t instance);
  void ClaimLocked(size_t instance, bool inline_run);
  void ReleaseLocked(size_t instance);
  // The worker to notify so that queued work finds an instance; null when
  // none is needed (all busy, one spinning, or one forming a batch that is
  // not ready yet).
  Instance* WorkerToWakeLocked();
  bool OtherInstanceReady(size_t instance) const;
  // Answers requests of `entries` that must not run: cancelled, past
  // deadline, rejected on queue timeout. Moves the others into `keep`.
  void DropExpired(std::vector<Entry>& entries, RequestBatch& keep);
  const char* ExpiredReason(const Entry& e, Clock::time_point now) const;
  void AnswerExpired(Entry& e, const char* reason, Clock::time_point now);
  void ReaperLoop();
  static bool Compatible(const InferenceRequest& a, const InferenceRequest& b);

  const Options options_;
  ExecutionBackend* const model_;
  ModelStatistics* const stats_;

  mutable std::mutex mu_;
  std::deque<Entry> queue_;
  std::deque<Entry> delayed_;  // timed out under timeout_action DELAY
  std::vector<size_t> picked_;  // TakeBatchLocked's scratch
  bool stopping_ = false;
  std::vector<std::thread> workers_;
  size_t exited_ = 0;  // workers that left their loop
  size_t inline_running_ = 0;  // callers executing inline
  std::condition_variable exited_cv_;
  // The reaper answers queued requests that expire (ReaperLoop).
  std::thread reaper_;
  std::condition_variable reaper_cv_;
  Clock::time_point next_expiry_ = Clock::time_point::max();  // earliest queued expiry
  bool reaper_polling_ = false;  // the reaper looks at the queue every 100 ms
  size_t busy_ = 0;              // instances executing a batch
  std::unique_ptr<Instance[]> instance_;
  size_t instances_ = 0;
  // Bumped by every Enqueue that queues: what a spinning worker watches.
  std::atomic<uint64_t> enqueued_{0};
  // The share of recent executions longer than Options::inline_max_execution,
  // a moving average over about 8 executions in 1/1024ths: above one half,
  // the model's median execution is too long to run inline. (The share, not
  // the average time, so a few executions stretched by preemption on a busy
  // machine do not turn inline execution off.)
  std::atomic<int32_t> slow_share_{0};
};

}  // namespace torii

#endif  // TORII_SERVER_SCHEDULER_SCHEDULER_H_
