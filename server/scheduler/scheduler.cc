#include "server/scheduler/scheduler.h"

#include <algorithm>
#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace torii {
namespace {

// Failure reasons of requests the scheduler answers itself (statistics
// labels); compared by address.
constexpr const char* kCancelled = "cancelled";
constexpr const char* kExpired = "expired";
constexpr const char* kQueueTimeout = "queue_timeout";

uint64_t Ns(std::chrono::steady_clock::duration d) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
}

// TORII_SCHEDULER: "handoff", "inline", "drain=US", "spin=US", "inline_max=US".
void ApplyEnvironment(Scheduler::Options& o) {
  const char* env = std::getenv("TORII_SCHEDULER");
  if (env == nullptr) return;
  for (absl::string_view item : absl::StrSplit(env, ',', absl::SkipEmpty())) {
    const size_t eq = item.find('=');
    const absl::string_view key = item.substr(0, eq);
    int64_t us = 0;
    const bool number = eq != absl::string_view::npos && absl::SimpleAtoi(item.substr(eq + 1), &us);
    if (key == "handoff") o.allow_inline = false;
    if (key == "inline") o.allow_inline = true;
    if (key == "drain" && number) o.inline_drain = std::chrono::microseconds(us);
    if (key == "spin" && number) o.worker_spin = std::chrono::microseconds(us);
    if (key == "inline_max" && number) o.inline_max_execution = std::chrono::microseconds(us);
  }
}

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

int64_t SteadyNs(Scheduler::Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

Scheduler::Options Scheduler::FromSpec(const ModelSpec& spec) {
  Options o;
  o.model_name = spec.name;
  o.max_batch_size = spec.max_batch_size;
  o.batching = spec.batching;
  o.queue_policy = spec.queue_policy;
  o.stuck_after = spec.execution_timeout;
  ApplyEnvironment(o);
  return o;
}

Scheduler::Scheduler(Options options, ExecutionBackend* model, ModelStatistics* stats)
    : options_(std::move(options)), model_(model), stats_(stats) {
  instances_ = model_->instance_count();
  instance_.reset(new Instance[instances_]);
  for (size_t i = 0; i < instances_; ++i) {
    workers_.emplace_back([this, i] { WorkerLoop(i); });
  }
  reaper_ = std::thread([this] { ReaperLoop(); });
}

Scheduler::~Scheduler() { Shutdown(); }

bool Scheduler::stopping() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stopping_;
}

absl::Status Scheduler::Enqueue(std::unique_ptr<InferenceRequest>& request) {
  Entry e;
  // Queue policy timeout: the config's default, or a shorter one the request
  // asks for in its "timeout" parameter when allowed.
  const QueuePolicy& policy = options_.queue_policy;
  auto timeout = policy.default_timeout;
  if (policy.allow_timeout_override && request->queue_timeout.count() > 0 &&
      (timeout.count() == 0 || request->queue_timeout < timeout)) {
    timeout = request->queue_timeout;
  }
  if (timeout.count() > 0) e.timeout = request->arrival + timeout;
  // Statistics are recorded when the request is finally answered, wherever
  // that happens (here, in a backend, or later from a decoupled runner).
  InferenceRequest* r = request.get();
  ModelStatistics* stats = stats_;
  r->on_final = [stats, r](const absl::Status& outcome) {
    const Clock::time_point now = Clock::now();
    const Clock::time_point start =
        r->execution_start == Clock::time_point{} ? now : r->execution_start;
    stats->RecordRequest(outcome.ok(), static_cast<uint64_t>(r->rows), Ns(now - r->arrival),
                         Ns(start - r->arrival),
                         outcome.ok() ? nullptr
                                      : ModelStatistics::FailureReason(outcome, r->failure_reason));
  };
  InlineBudget* budget = options_.allow_inline ? InlineScope::Current() : nullptr;
  Instance* wake = nullptr;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (stopping_) {
      r->on_final = nullptr;
      return absl::UnavailableError(
          absl::StrCat("model '", options_.model_name, "' is shutting down"));
    }
    if (budget != nullptr) {
      const size_t instance = InlineInstanceLocked(*r);
      if (instance != kNone && budget->TryAcquire()) {
        ClaimLocked(instance, /*inline_run=*/true);
        lock.unlock();
        e.request = std::move(request);
        RunInline(instance, std::move(e), budget);
        return absl::OkStatus();
      }
    }
    const size_t max_queue = policy.max_queue_size;
    if (max_queue > 0 && queue_.size() + delayed_.size() >= max_queue) {
      r->on_final = nullptr;
      return absl::ResourceExhaustedError(absl::StrCat(
          "model '", options_.model_name, "': the queue is full (max_queue_size ", max_queue,
          "); retry later"));
    }
    const Clock::time_point expiry = std::min(e.timeout, r->deadline);
    e.request = std::move(request);
    queue_.push_back(std::move(e));
    enqueued_.fetch_add(1, std::memory_order_release);
    if (expiry < next_expiry_) {
      next_expiry_ = expiry;
      reaper_cv_.notify_one();
    } else if (!reaper_polling_ && busy_ == instances_) {
      // Every instance is busy, so this request will wait: the reaper
      // watches the queue for cancellations meanwhile. (Not when an instance
      // is free: a worker takes the request at once, and waking the reaper
      // for every request would cost a thread wake-up each.)
      reaper_cv_.notify_one();
    }
    wake = WorkerToWakeLocked();
  }
  if (wake != nullptr) wake->cv.notify_one();
  return absl::OkStatus();
}

size_t Scheduler::InlineInstanceLocked(const InferenceRequest& request) const {
  if (!queue_.empty() || !delayed_.empty()) return kNone;  // first come, first served
  const int64_t max_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(options_.inline_max_execution).count();
  if (slow_share_.load(std::memory_order_relaxed) > 512) return kNone;
  if (options_.batching.dynamic) {
    // Only a request that may run alone at once: it fills the batch, is a
    // preferred size, or the model does not wait for more.
    const bool alone = options_.batching.max_queue_delay.count() == 0 ||
                       request.rows >= options_.max_batch_size ||
                       options_.batching.preferred_batch_sizes.count(request.rows) != 0;
    if (!alone) return kNone;
  }
  size_t pick = kNone;
  int64_t now_ns = 0;
  for (size_t i = 0; i < instances_; ++i) {
    const Instance& s = instance_[i];
    if (s.busy) {
      if (!s.inline_run) continue;
      // The watchdog: an inline execution of this model has run too long
      // (a hung runner?): more requests must not follow it onto callers'
      // threads.
      if (now_ns == 0) now_ns = SteadyNs(Clock::now());
      const int64_t since = s.busy_since_ns.load(std::memory_order_relaxed);
      if (since != 0 && now_ns - since > max_ns) return kNone;
      continue;
    }
    if (pick == kNone && model_->InstanceReady(i)) pick = i;
  }
  return pick;
}

void Scheduler::ClaimLocked(size_t instance, bool inline_run) {
  Instance& s = instance_[instance];
  s.busy = true;
  s.inline_run = inline_run;
  ++busy_;
  if (inline_run) ++inline_running_;
}

void Scheduler::ReleaseLocked(size_t instance) {
  Instance& s = instance_[instance];
  if (s.inline_run) --inline_running_;
  s.busy = false;
  s.inline_run = false;
  --busy_;
}

Scheduler::Instance* Scheduler::WorkerToWakeLocked() {
  if (queue_.empty() && delayed_.empty()) return nullptr;
  Instance* idle = nullptr;
  Instance* forming = nullptr;
  for (size_t i = 0; i < instances_; ++i) {
    Instance& s = instance_[i];
    if (s.busy) continue;
    switch (s.worker) {
      case WorkerState::kSpinning:
        return nullptr;  // it sees the new work by itself
      case WorkerState::kForming:
        forming = &s;
        break;
      case WorkerState::kIdle:
        // Prefer an instance that can execute (its runner process is up).
        if (idle == nullptr || (model_->InstanceReady(i) && !model_->InstanceReady(
                                    static_cast<size_t>(idle - instance_.get())))) {
          idle = &s;
        }
        break;
      case WorkerState::kBusy:
        break;  // between batches: it looks at the queue before waiting
    }
  }
  if (forming == nullptr) return idle;
  // A worker is waiting for the batching delay of the queue's head: it
  // takes the batch when the delay ends. Wake it earlier only when the queue
  // may hold a full or preferred batch now (it checks exactly), and leave
  // idle peers asleep: they would only wait for the same head.
  if (!options_.batching.preferred_batch_sizes.empty()) return forming;
  int64_t rows = 0;
  for (const Entry& e : queue_) {
    rows += e.request->rows;
    if (rows >= options_.max_batch_size) return forming;
  }
  return nullptr;
}

void Scheduler::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  for (size_t i = 0; i < instances_; ++i) instance_[i].cv.notify_all();
  reaper_cv_.notify_all();
}

bool Scheduler::Drain(Clock::time_point deadline) {
  Stop();
  std::unique_lock<std::mutex> lock(mu_);
  auto done = [&] { return exited_ == workers_.size() && inline_running_ == 0; };
  if (deadline == Clock::time_point::max()) {
    exited_cv_.wait(lock, done);
  } else if (!exited_cv_.wait_until(lock, deadline, done)) {
    return false;
  }
  lock.unlock();
  for (auto& w : workers_) {
    if (w.joinable()) w.join();
  }
  if (reaper_.joinable()) reaper_.join();
  return true;
}

void Scheduler::FailQueued(const absl::Status& status) {
  std::deque<Entry> queued;
  {
    std::lock_guard<std::mutex> lock(mu_);
    queued.swap(queue_);
    for (auto& e : delayed_) queued.push_back(std::move(e));
    delayed_.clear();
  }
  for (auto& e : queued) e.request->RespondError(status);
}

void Scheduler::Shutdown() { Drain(Clock::time_point::max()); }

size_t Scheduler::busy_instances() const {
  std::lock_guard<std::mutex> lock(mu_);
  return busy_;
}

size_t Scheduler::stuck_instances() const {
  if (options_.stuck_after.count() == 0) return 0;
  const int64_t now = SteadyNs(Clock::now());
  const int64_t limit =
      std::chrono::duration_cast<std::chrono::nanoseconds>(options_.stuck_after).count();
  size_t stuck = 0;
  for (size_t i = 0; i < instances_; ++i) {
    const int64_t since = instance_[i].busy_since_ns.load();
    if (since != 0 && now - since > limit) ++stuck;
  }
  return stuck;
}

size_t Scheduler::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size() + delayed_.size();
}

bool Scheduler::Compatible(const InferenceRequest& a, const InferenceRequest& b) {
  for (size_t i = 0; i < a.inputs.size(); ++i) {
    const auto& sa = a.inputs[i].shape;
    const auto& sb = b.inputs[i].shape;
    if (sa.size() != sb.size() || !std::equal(sa.begin() + 1, sa.end(), sb.begin() + 1)) {
      return false;
    }
  }
  return true;
}

void Scheduler::TakeBatchLocked(Clock::time_point now, std::vector<Entry>& batch,
                                Clock::time_point* ready_at) {
  if (ready_at != nullptr) *ready_at = Clock::time_point::max();
  // Queue-policy DELAY: timed-out requests wait behind the rest.
  if (options_.queue_policy.delay_on_timeout) {
    for (auto it = queue_.begin(); it != queue_.end();) {
      if (it->timeout <= now) {
        delayed_.push_back(std::move(*it));
        it = queue_.erase(it);
      } else {
        ++it;
      }
    }
  }
  std::deque<Entry>& q = !queue_.empty() ? queue_ : delayed_;
  if (q.empty()) return;

  if (!options_.batching.dynamic) {
    batch.push_back(std::move(q.front()));
    q.pop_front();
    return;
  }
  // Gather compatible requests in arrival order up to max_batch_size rows.
  const InferenceRequest& head = *q.front().request;
  int64_t rows = 0;
  std::vector<size_t>& picked = picked_;
  picked.clear();
  for (size_t i = 0; i < q.size(); ++i) {
    const InferenceRequest& r = *q[i].request;
    if (!Compatible(head, r)) continue;
    if (rows + r.rows > options_.max_batch_size) break;
    rows += r.rows;
    picked.push_back(i);
  }
  const bool full = rows >= options_.max_batch_size;
  // Triton's rule: run now if a preferred size can be formed; take the
  // largest preferred size the gathered requests add up to exactly.
  if (!full && !options_.batching.preferred_batch_sizes.empty()) {
    int64_t prefix = 0;
    size_t cut = 0;
    for (size_t k = 0; k < picked.size(); ++k) {
      prefix += q[picked[k]].request->rows;
      if (options_.batching.preferred_batch_sizes.count(prefix) != 0) cut = k + 1;
    }
    if (cut > 0) picked.resize(cut);
  }
  int64_t picked_rows = 0;
  for (size_t k : picked) picked_rows += q[k].request->rows;
  const bool preferred = options_.batching.preferred_batch_sizes.count(picked_rows) != 0;
  const Clock::time_point head_ready = head.arrival + options_.batching.max_queue_delay;
  if (full || preferred || now >= head_ready || stopping_) {
    // Take picked entries (indices ascending) out of the queue.
    for (size_t k = picked.size(); k-- > 0;) {
      batch.push_back(std::move(q[picked[k]]));
      q.erase(q.begin() + static_cast<std::ptrdiff_t>(picked[k]));
    }
    std::reverse(batch.begin(), batch.end());
    return;
  }
  if (ready_at != nullptr) *ready_at = head_ready;
}

// Why `e` must not run now: nullptr while it may.
const char* Scheduler::ExpiredReason(const Entry& e, Clock::time_point now) const {
  const InferenceRequest& r = *e.request;
  if (r.Cancelled()) return kCancelled;
  if (r.deadline <= now) return kExpired;
  if (!options_.queue_policy.delay_on_timeout && e.timeout <= now) return kQueueTimeout;
  return nullptr;
}

void Scheduler::AnswerExpired(Entry& e, const char* reason, Clock::time_point now) {
  InferenceRequest& r = *e.request;
  r.execution_start = now;
  const std::string model = absl::StrCat("model '", options_.model_name, "': ");
  if (reason == kCancelled) {
    r.RespondError(absl::CancelledError(model + "the request was cancelled while queued"), reason);
  } else if (reason == kExpired) {
    r.RespondError(absl::DeadlineExceededError(
                       model + "the client deadline passed while the request was queued"),
                   reason);
  } else {
    r.RespondError(absl::UnavailableError(
                       model + "request timeout expired in the queue (queue policy REJECT)"),
                   reason);
  }
}

void Scheduler::DropExpired(std::vector<Entry>& entries, RequestBatch& keep) {
  const Clock::time_point now = Clock::now();
  for (Entry& e : entries) {
    if (const char* reason = ExpiredReason(e, now)) {
      AnswerExpired(e, reason, now);
    } else {
      e.request->execution_start = now;
      keep.push_back(std::move(e.request));
    }
  }
  entries.clear();
}

// Answers queued requests as soon as they must not run any more (their
// client's deadline passed, the client went away, or the queue policy's
// timeout rejects them) instead of when a worker reaches them: under
// overload the workers are busy for a long time, and meanwhile the client
// waits for an answer it could already have and the request holds a queue
// slot. Cancellation has no notification, so a non-empty queue is also looked
// at every kCancelPoll.
void Scheduler::ReaperLoop() {
  constexpr auto kCancelPoll = std::chrono::milliseconds(100);
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    const bool idle = queue_.empty() && delayed_.empty();
    Clock::time_point wake = next_expiry_;
    if (!idle) wake = std::min(wake, Clock::now() + kCancelPoll);
    reaper_polling_ = !idle;
    if (wake == Clock::time_point::max()) {
      reaper_cv_.wait(lock, [&] {
        return stopping_ || next_expiry_ != Clock::time_point::max() || !queue_.empty() ||
               !delayed_.empty();
      });
    } else {
      reaper_cv_.wait_until(lock, wake);
    }
    if (stopping_) return;  // what is left is drained or failed by the owner
    const Clock::time_point now = Clock::now();
    std::vector<std::pair<Entry, const char*>> expired;
    next_expiry_ = Clock::time_point::max();
    for (std::deque<Entry>* q : {&queue_, &delayed_}) {
      for (auto it = q->begin(); it != q->end();) {
        if (const char* reason = ExpiredReason(*it, now)) {
          expired.emplace_back(std::move(*it), reason);
          it = q->erase(it);
          continue;
        }
        if (q == &queue_ && options_.queue_policy.delay_on_timeout && it->timeout <= now) {
          // DELAY: timed-out requests wait behind the rest.
          delayed_.push_back(std::move(*it));
          it = q->erase(it);
          continue;
        }
        const Clock::time_point t =
            q == &queue_ ? std::min(it->timeout, it->request->deadline) : it->request->deadline;
        next_expiry_ = std::min(next_expiry_, t);
        ++it;
      }
    }
    if (expired.empty()) continue;
    // Answer outside the lock: a sink may do real work.
    lock.unlock();
    for (auto& [e, reason] : expired) AnswerExpired(e, reason, now);
    lock.lock();
  }
}

bool Scheduler::OtherInstanceReady(size_t instance) const {
  for (size_t i = 0; i < instances_; ++i) {
    if (i != instance && model_->InstanceReady(i)) return true;
  }
  return false;
}

void Scheduler::ExecuteBatch(size_t instance) {
  Instance& s = instance_[instance];
  RequestBatch& batch = s.batch;
  DropExpired(s.entries, batch);
  if (batch.empty()) return;
  int64_t rows = 0;
  for (const auto& r : batch) rows += r->rows;
  const Clock::time_point start = Clock::now();
  s.busy_since_ns = SteadyNs(start);
  ExecutionBackend::Timing timing;
  model_->Execute(instance, batch, &timing);
  batch.clear();  // the requests are answered (or moved out by a decoupled runner)
  const int64_t took = SteadyNs(Clock::now()) - s.busy_since_ns.load(std::memory_order_relaxed);
  s.busy_since_ns = 0;
  stats_->RecordExecution(static_cast<uint64_t>(rows), timing.input_ns, timing.infer_ns,
                          timing.output_ns);
  // Over about the last 8 executions, whoever ran them (races between
  // instances lose an update now and then: it is a heuristic).
  const int32_t slow =
      took > std::chrono::duration_cast<std::chrono::nanoseconds>(options_.inline_max_execution)
                 .count()
          ? 1024
          : 0;
  const int32_t share = slow_share_.load(std::memory_order_relaxed);
  slow_share_.store(share + (slow - share) / 8, std::memory_order_relaxed);
}

void Scheduler::RunInline(size_t instance, Entry entry, InlineBudget* budget) {
  // A runner that calls another model from here hands that request to a
  // worker: one caller thread runs one batch at a time.
  InlineScope no_nesting(nullptr);
  const Clock::time_point start = Clock::now();
  std::vector<Entry>& entries = instance_[instance].entries;
  entries.push_back(std::move(entry));
  Instance* wake = nullptr;
  bool drained = false;
  for (;;) {
    ExecuteBatch(instance);
    std::lock_guard<std::mutex> lock(mu_);
    // Requests that queued while this batch ran: take the next batch here
    // rather than wake the worker, for a short while.
    const Clock::time_point now = Clock::now();
    if (!stopping_ && now - start < options_.inline_drain &&
        (!queue_.empty() || !delayed_.empty()) && model_->InstanceReady(instance)) {
      TakeBatchLocked(now, entries, nullptr);
      if (!entries.empty()) {
        // A peer instance may start on the rest meanwhile.
        Instance* peer = WorkerToWakeLocked();
        if (peer != nullptr) peer->cv.notify_one();
        continue;
      }
    }
    ReleaseLocked(instance);
    wake = WorkerToWakeLocked();
    drained = stopping_ && inline_running_ == 0;
    break;
  }
  budget->Release();
  if (wake != nullptr) wake->cv.notify_one();
  if (drained) exited_cv_.notify_all();
}

void Scheduler::WorkerLoop(size_t instance) {
  Instance& s = instance_[instance];
  std::unique_lock<std::mutex> lock(mu_);
  bool spun = false;
  for (;;) {
    const bool work = !queue_.empty() || !delayed_.empty();
    if (!work && stopping_) break;
    if (s.busy || !work) {
      // Nothing this instance can take (or a caller runs a batch on it).
      if (!s.busy && !spun && options_.worker_spin.count() > 0) {
        // Poll a little before sleeping: work that comes soon needs no
        // wake-up. Enqueue sees kSpinning and does not notify.
        spun = true;
        s.worker = WorkerState::kSpinning;
        const uint64_t seen = enqueued_.load(std::memory_order_acquire);
        lock.unlock();
        const Clock::time_point until = Clock::now() + options_.worker_spin;
        while (enqueued_.load(std::memory_order_acquire) == seen && Clock::now() < until) {
          CpuRelax();
        }
        lock.lock();
        s.worker = WorkerState::kBusy;
        continue;
      }
      s.worker = WorkerState::kIdle;
      s.cv.wait(lock);
      s.worker = WorkerState::kBusy;
      continue;
    }
    // An instance whose own runner process is down leaves the work to the
    // others while any of them can take it.
    if (!stopping_ && !model_->InstanceReady(instance) && OtherInstanceReady(instance)) {
      s.worker = WorkerState::kIdle;
      s.cv.wait_for(lock, std::chrono::milliseconds(20));
      s.worker = WorkerState::kBusy;
      continue;
    }
    Clock::time_point ready_at;
    TakeBatchLocked(Clock::now(), s.entries, &ready_at);
    if (s.entries.empty()) {
      // The batcher waits for more requests or for the head's delay.
      s.worker = WorkerState::kForming;
      s.cv.wait_until(lock, ready_at);
      s.worker = WorkerState::kBusy;
      continue;
    }
    ClaimLocked(instance, /*inline_run=*/false);
    Instance* peer = WorkerToWakeLocked();  // an idle peer may start on the rest
    lock.unlock();
    if (peer != nullptr) peer->cv.notify_one();
    ExecuteBatch(instance);
    lock.lock();
    ReleaseLocked(instance);
    spun = false;
  }
  ++exited_;
  lock.unlock();
  exited_cv_.notify_all();
}

}  // namespace torii
