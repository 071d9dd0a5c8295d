// Running a request on the thread that submitted it
// (docs/scheduling.md#threads-who-runs-a-request).
//
// By default a scheduler hands every request to the worker thread of a runner
// instance: the caller (a frontend's thread) returns at once, and a runner
// that hangs holds only its own worker. The hand-off costs a thread wake-up
// per request, which for a fast model is most of the server's fixed cost.
//
// A frontend whose threads may run requests themselves owns one InlineBudget
// for its pool of threads and wraps each call to InferenceDispatcher::Infer in
// an InlineScope. The scheduler then executes the request on that thread when
// the model has an idle instance and nothing queued (claiming the instance
// exactly as its worker would), instead of waking the worker. The budget caps
// how many of the pool's threads can be inside runners at once, so a runner
// that hangs can hold at most that many and never the whole pool: past the
// cap, requests are handed to the workers as before.
#ifndef TORII_SERVER_SCHEDULER_INLINE_EXECUTION_H_
#define TORII_SERVER_SCHEDULER_INLINE_EXECUTION_H_

#include <atomic>

namespace torii {

/// How many threads of one caller pool may execute requests inline at once.
/// Thread-safe.
class InlineBudget {
 public:
  /// `max_in_flight` < 1 is taken as 1.
  explicit InlineBudget(int max_in_flight) : max_(max_in_flight < 1 ? 1 : max_in_flight) {}
  InlineBudget(const InlineBudget&) = delete;
  InlineBudget& operator=(const InlineBudget&) = delete;

  /// Takes one unit; false when `max_in_flight` threads already hold one.
  bool TryAcquire() {
    int n = in_flight_.load(std::memory_order_relaxed);
    while (n < max_) {
      if (in_flight_.compare_exchange_weak(n, n + 1, std::memory_order_acquire)) return true;
    }
    return false;
  }
  void Release() { in_flight_.fetch_sub(1, std::memory_order_release); }

  int max_in_flight() const { return max_; }
  int in_flight() const { return in_flight_.load(std::memory_order_relaxed); }

 private:
  const int max_;
  std::atomic<int> in_flight_{0};
};

/// While alive, requests this thread submits may execute on it, within
/// `budget` (null: they may not; used to stop nested submissions, e.g. a
/// runner calling another model while it runs inline). Scopes nest: the
/// innermost applies, and the previous one is restored on destruction.
class InlineScope {
 public:
  explicit InlineScope(InlineBudget* budget);
  ~InlineScope();
  InlineScope(const InlineScope&) = delete;
  InlineScope& operator=(const InlineScope&) = delete;

  /// The budget of the innermost scope on this thread, or null.
  static InlineBudget* Current();

 private:
  InlineBudget* const saved_;
};

}  // namespace torii

#endif  // TORII_SERVER_SCHEDULER_INLINE_EXECUTION_H_
