#include "server/scheduler/scheduler.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

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

}  // namespace

Scheduler::Options Scheduler::FromSpec(const ModelSpec& spec) {
  Options o;
  o.model_name = spec.name;
  o.max_batch_size = spec.max_batch_size;
  o.batching = spec.batching;
  o.queue_policy = spec.queue_policy;
  o.stuck_after = spec.execution_timeout;
  return o;
}

Scheduler::Scheduler(Options options, ExecutionBackend* model, ModelStatistics* stats)
    : options_(std::move(options)), model_(model), stats_(stats) {
  instances_ = model_->instance_count();
  busy_since_ns_.reset(new std::atomic<int64_t>[instances_]);
  for (size_t i = 0; i < instances_; ++i) busy_since_ns_[i] = 0;
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
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      r->on_final = nullptr;
      return absl::UnavailableError(
          absl::StrCat("model '", options_.model_name, "' is shutting down"));
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
  }
  cv_.notify_one();
  return absl::OkStatus();
}

void Scheduler::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  reaper_cv_.notify_all();
}

bool Scheduler::Drain(Clock::time_point deadline) {
  Stop();
  std::unique_lock<std::mutex> lock(mu_);
  auto done = [&] { return exited_ == workers_.size(); };
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

size_t Scheduler::stuck_instances() const {
  const int64_t now = Clock::now().time_since_epoch().count();
  if (options_.stuck_after.count() == 0) return 0;
  const int64_t limit = std::chrono::duration_cast<Clock::duration>(options_.stuck_after).count();
  size_t stuck = 0;
  for (size_t i = 0; i < instances_; ++i) {
    const int64_t since = busy_since_ns_[i].load();
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

std::vector<Scheduler::Entry> Scheduler::NextBatch(std::unique_lock<std::mutex>& lock) {
  std::vector<Entry> batch;
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || !queue_.empty() || !delayed_.empty(); });
    const Clock::time_point now = Clock::now();
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
    if (q.empty()) return batch;  // stopping and drained

    if (!options_.batching.dynamic) {
      batch.push_back(std::move(q.front()));
      q.pop_front();
      return batch;
    }
    // Gather compatible requests in arrival order up to max_batch_size rows.
    const InferenceRequest& head = *q.front().request;
    int64_t rows = 0;
    std::vector<size_t> picked;
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
    const Clock::time_point ready_at = head.arrival + options_.batching.max_queue_delay;
    if (full || preferred || now >= ready_at || stopping_) {
      // Take picked entries (indices ascending) out of the queue.
      for (size_t k = picked.size(); k-- > 0;) {
        batch.push_back(std::move(q[picked[k]]));
        q.erase(q.begin() + static_cast<std::ptrdiff_t>(picked[k]));
      }
      std::reverse(batch.begin(), batch.end());
      return batch;
    }
    // Wait for more requests or for the head's delay to run out.
    cv_.wait_until(lock, ready_at);
  }
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

RequestBatch Scheduler::DropExpired(std::vector<Entry> batch) {
  const Clock::time_point now = Clock::now();
  RequestBatch keep;
  keep.reserve(batch.size());
  for (Entry& e : batch) {
    if (const char* reason = ExpiredReason(e, now)) {
      AnswerExpired(e, reason, now);
    } else {
      e.request->execution_start = now;
      keep.push_back(std::move(e.request));
    }
  }
  return keep;
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

void Scheduler::WorkerLoop(size_t instance) {
  bool was_busy = false;
  for (;;) {
    std::vector<Entry> entries;
    bool more = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (was_busy) --busy_;
      // An instance whose own runner process is down leaves the work to the
      // others while any of them can take it.
      while (!model_->InstanceReady(instance) && !stopping_) {
        bool other_ready = false;
        for (size_t i = 0; i < instances_ && !other_ready; ++i) {
          other_ready = i != instance && model_->InstanceReady(i);
        }
        if (!other_ready) break;
        cv_.wait_for(lock, std::chrono::milliseconds(20));
      }
      entries = NextBatch(lock);
      if (entries.empty()) {
        ++exited_;
        exited_cv_.notify_all();
        return;
      }
      more = !queue_.empty() || !delayed_.empty();
      ++busy_;
      was_busy = true;
    }
    if (more) cv_.notify_one();  // let an idle peer instance start on the rest
    RequestBatch batch = DropExpired(std::move(entries));
    if (batch.empty()) continue;
    int64_t rows = 0;
    for (const auto& r : batch) rows += r->rows;
    const Clock::time_point start = Clock::now();
    busy_since_ns_[instance] = start.time_since_epoch().count();
    ExecutionBackend::Timing timing;
    model_->Execute(instance, batch, &timing);
    busy_since_ns_[instance] = 0;
    stats_->RecordExecution(static_cast<uint64_t>(rows), timing.input_ns, timing.infer_ns,
                            timing.output_ns);
  }
}

}  // namespace torii
