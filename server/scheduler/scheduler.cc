#include "server/scheduler/scheduler.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace torii {
namespace {

uint64_t Ns(std::chrono::steady_clock::duration d) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
}

}  // namespace

Scheduler::Options Scheduler::OptionsFromConfig(const inference::ModelConfig& config,
                                                size_t default_max_queue_size) {
  Options o;
  o.model_name = config.name();
  o.max_batch_size = config.max_batch_size();
  o.max_queue_size = default_max_queue_size;
  if (config.has_dynamic_batching() && config.max_batch_size() > 0) {
    const auto& db = config.dynamic_batching();
    o.dynamic_batching = true;
    o.preferred_batch_sizes.insert(db.preferred_batch_size().begin(),
                                   db.preferred_batch_size().end());
    o.max_queue_delay = std::chrono::microseconds(db.max_queue_delay_microseconds());
    const auto& qp = db.default_queue_policy();
    if (qp.max_queue_size() > 0) o.max_queue_size = qp.max_queue_size();
    o.default_timeout = std::chrono::microseconds(qp.default_timeout_microseconds());
    o.allow_timeout_override = qp.allow_timeout_override();
    o.delay_on_timeout = qp.timeout_action() == inference::ModelQueuePolicy::DELAY;
  }
  auto it = config.parameters().find("execution_timeout_ms");
  int64_t ms = 0;
  if (it != config.parameters().end() && absl::SimpleAtoi(it->second.string_value(), &ms) && ms > 0) {
    o.stuck_after = std::chrono::milliseconds(ms);
  }
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
}

Scheduler::~Scheduler() { Shutdown(); }

bool Scheduler::stopping() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stopping_;
}

absl::Status Scheduler::Enqueue(std::unique_ptr<InferenceRequest>& request) {
  Entry e;
  // Queue policy timeout: the config's default, or a shorter one the request
  // asks for in its "timeout" parameter (microseconds) when allowed.
  auto timeout = options_.default_timeout;
  if (options_.allow_timeout_override && request->wire != nullptr) {
    auto it = request->wire->parameters().find("timeout");
    if (it != request->wire->parameters().end() && it->second.has_int64_param() &&
        it->second.int64_param() > 0) {
      const std::chrono::microseconds asked(it->second.int64_param());
      if (timeout.count() == 0 || asked < timeout) timeout = asked;
    }
  }
  if (timeout.count() > 0) e.timeout = request->arrival + timeout;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      return absl::UnavailableError(
          absl::StrCat("model '", options_.model_name, "' is shutting down"));
    }
    if (options_.max_queue_size > 0 && queue_.size() + delayed_.size() >= options_.max_queue_size) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "model '", options_.model_name, "': the queue is full (max_queue_size ",
          options_.max_queue_size, "); retry later"));
    }
    e.request = std::move(request);
    queue_.push_back(std::move(e));
  }
  cv_.notify_one();
  return absl::OkStatus();
}

void Scheduler::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && workers_.empty()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& w : workers_) {
    if (w.joinable()) w.join();
  }
  workers_.clear();
}

size_t Scheduler::stuck_instances() const {
  const int64_t now = Clock::now().time_since_epoch().count();
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
    if (options_.delay_on_timeout) {
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

    if (!options_.dynamic_batching) {
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
    if (!full && !options_.preferred_batch_sizes.empty()) {
      int64_t prefix = 0;
      size_t cut = 0;
      for (size_t k = 0; k < picked.size(); ++k) {
        prefix += q[picked[k]].request->rows;
        if (options_.preferred_batch_sizes.count(prefix) != 0) cut = k + 1;
      }
      if (cut > 0) picked.resize(cut);
    }
    int64_t picked_rows = 0;
    for (size_t k : picked) picked_rows += q[k].request->rows;
    const bool preferred = options_.preferred_batch_sizes.count(picked_rows) != 0;
    const Clock::time_point ready_at = head.arrival + options_.max_queue_delay;
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

std::vector<Scheduler::Entry> Scheduler::DropExpired(std::vector<Entry> batch) {
  const Clock::time_point now = Clock::now();
  std::vector<Entry> keep;
  keep.reserve(batch.size());
  for (Entry& e : batch) {
    InferenceRequest& r = *e.request;
    if (r.is_cancelled && r.is_cancelled()) {
      Finish(r, absl::CancelledError(absl::StrCat("model '", options_.model_name,
                                                  "': the request was cancelled while queued")),
             now);
    } else if (r.deadline <= now) {
      Finish(r, absl::DeadlineExceededError(absl::StrCat(
                    "model '", options_.model_name,
                    "': the client deadline passed while the request was queued")),
             now);
    } else if (!options_.delay_on_timeout && e.timeout <= now) {
      Finish(r, absl::UnavailableError(absl::StrCat(
                    "model '", options_.model_name,
                    "': request timeout expired in the queue (queue policy REJECT)")),
             now);
    } else {
      keep.push_back(std::move(e));
    }
  }
  return keep;
}

void Scheduler::Finish(InferenceRequest& r, const absl::Status& status,
                       Clock::time_point start_exec) {
  const Clock::time_point now = Clock::now();
  stats_->RecordRequest(status.ok(), static_cast<uint64_t>(r.rows), Ns(now - r.arrival),
                        Ns(start_exec - r.arrival));
  r.done(status);
}

void Scheduler::WorkerLoop(size_t instance) {
  std::vector<InferenceRequest*> requests;
  for (;;) {
    std::vector<Entry> batch;
    bool more = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      batch = NextBatch(lock);
      if (batch.empty()) return;
      more = !queue_.empty() || !delayed_.empty();
    }
    if (more) cv_.notify_one();  // let an idle peer instance start on the rest
    batch = DropExpired(std::move(batch));
    if (batch.empty()) continue;
    requests.clear();
    int64_t rows = 0;
    for (auto& e : batch) {
      requests.push_back(e.request.get());
      rows += e.request->rows;
    }
    const Clock::time_point start = Clock::now();
    busy_since_ns_[instance] = start.time_since_epoch().count();
    ExecutionBackend::Timing timing;
    std::vector<absl::Status> statuses = model_->Execute(instance, requests, &timing);
    busy_since_ns_[instance] = 0;
    stats_->RecordExecution(static_cast<uint64_t>(rows), timing.input_ns, timing.infer_ns,
                            timing.output_ns);
    for (size_t i = 0; i < batch.size(); ++i) Finish(*batch[i].request, statuses[i], start);
  }
}

}  // namespace torii
