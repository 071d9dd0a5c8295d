#include "server/isolation/isolated_runner_model.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>

#include "absl/strings/str_cat.h"
#include "server/common/logging.h"
#include "server/core/datatype.h"
#include "server/core/request_validator.h"
#include "torii/host_checks.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

namespace torii {
namespace {

using Clock = std::chrono::steady_clock;
using isolation::Align64;
using isolation::BatchMessage;
using isolation::BatchReply;
using isolation::MessageType;
using isolation::ReadOutcome;
using isolation::RequestHandle;
using isolation::ResponseMessage;

constexpr size_t kInitialRegion = size_t{1} << 20;
// How often a worker waiting for its batch wakes up to pass on
// cancellations, check the execution timeout and notice a dead child.
constexpr int kWaitSliceMs = 50;
// How long a worker whose child went away waits for the supervisor to learn
// why it ended.
constexpr auto kDeathWait = std::chrono::seconds(2);

int64_t MonotonicNs(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

std::string SignalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev != nullptr ? absl::StrCat("SIG", abbrev) : absl::StrCat("signal ", sig);
}

// "SIGSEGV", "SIGABRT, core dumped", "exit status 3".
std::string DescribeExit(const siginfo_t& info) {
  switch (info.si_code) {
    case CLD_EXITED:
      return absl::StrCat("exit status ", info.si_status);
    case CLD_KILLED:
      return SignalName(info.si_status);
    case CLD_DUMPED:
      return absl::StrCat(SignalName(info.si_status), ", core dumped");
    default:
      return absl::StrCat("ended (code ", info.si_code, ", status ", info.si_status, ")");
  }
}

std::string DescribeStatus(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exit status ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return SignalName(WTERMSIG(status));
  return absl::StrCat("wait status ", status);
}

std::string DefaultHostPath() {
  const char* env = std::getenv("TORII_RUNNER_HOST");
  if (env != nullptr && *env != '\0') return env;
  char buf[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "torii-runner-host";
  std::string exe(buf, static_cast<size_t>(n));
  return exe.substr(0, exe.rfind('/') + 1) + "torii-runner-host";
}

absl::Status ToStatus(int32_t code, const std::string& message) {
  if (code <= 0 || code > static_cast<int32_t>(absl::StatusCode::kUnauthenticated)) {
    return absl::UnknownError(message);
  }
  return absl::Status(static_cast<absl::StatusCode>(code), message);
}

// The heap the server allocates for results of the child's calls.
constexpr size_t kInitialHeap = size_t{1} << 20;
// Call results the child has not released yet, in bytes, beyond which the
// called model's sends wait (back-pressure on a runner that keeps results).
constexpr uint64_t kParentHeapBound = uint64_t{256} << 20;

// Checks outputs a child names (in `base`, a region of the child) against
// the spec and copies them into `response`. `require_all`: every output the
// request asked for must be there (a batch answer; a sender's responses may
// carry any subset, as in process).
absl::Status CopyOutputs(const ModelSpec& spec, const InferenceRequest& q,
                         const std::vector<BatchReply::Output>& outputs, const char* base,
                         bool require_all, InferenceResponse* response) {
  const std::string& model = spec.name;
  std::vector<char> seen(spec.outputs.size(), 0);
  for (const auto& o : outputs) {
    if (o.index >= spec.outputs.size() || seen[o.index]) {
      return absl::InternalError(absl::StrCat(
          "model '", model, "': the runner process named an unknown or repeated output"));
    }
    seen[o.index] = 1;
    const TensorSpec& ts = spec.outputs[o.index];
    if (require_all && !q.output_requested[o.index]) continue;
    const std::string who = absl::StrCat("model '", model, "' output '", ts.name, "'");
    std::string error = host_checks::CheckOutputAllocation(
        who, {ts.datatype, &ts.dims}, spec.batching_enabled() ? q.rows : -1,
        static_cast<ToriiDataType>(o.datatype), o.tensor.shape.data(), o.tensor.shape.size(),
        o.tensor.size);
    if (!error.empty()) return absl::InternalError(error);
    auto dst = response->AddOutput(ts.name, ts.datatype,
                                   Shape(o.tensor.shape.begin(), o.tensor.shape.end()),
                                   o.tensor.size);
    if (!dst.ok()) return dst.status();
    if (o.tensor.size > 0) std::memcpy(*dst, base + o.tensor.offset, o.tensor.size);
    if (ts.datatype == TORII_TYPE_BYTES) {
      int64_t elements = 1;
      for (int64_t d : o.tensor.shape) elements *= d;
      absl::Status s = ValidateBytesBuffer(*dst, o.tensor.size, elements,
                                           absl::StrCat("model '", model, "': runner output '",
                                                        ts.name, "'"));
      if (!s.ok()) return absl::InternalError(s.message());
    }
  }
  for (size_t k = 0; require_all && k < spec.outputs.size(); ++k) {
    if (q.output_requested[k] && !seen[k]) {
      return absl::InternalError(absl::StrCat("model '", model,
                                              "': the runner produced no output '",
                                              spec.outputs[k].name, "'"));
    }
  }
  return absl::OkStatus();
}

// A response to a child's call whose outputs the called model writes
// straight into the parent heap, which the child reads in place.
class ParentHeapResponse : public InferenceResponse {
 public:
  explicit ParentHeapResponse(isolation::RegionHeap* heap) : heap_(heap) {}
  ~ParentHeapResponse() override {
    for (uint64_t b : blocks_) heap_->Free(b);
  }
  isolation::RegionHeap* heap() const { return heap_; }
  std::vector<uint64_t> Release() { return std::move(blocks_); }

 protected:
  absl::StatusOr<char*> AllocateBuffer(size_t index) override {
    auto at = heap_->Allocate(outputs()[index].byte_size);
    if (!at.ok()) return at.status();
    blocks_.push_back(*at);
    return heap_->data() + *at;
  }

 private:
  isolation::RegionHeap* heap_;
  std::vector<uint64_t> blocks_;
};

}  // namespace

// Runs pump tasks: a thread per task that waits, started on demand and
// ending after a while idle, so that a receiver that does not read holds a
// thread (as a blocked sender does in process), never the other requests.
// Shared with its threads: they outlive the model if a receiver blocks them.
class IsolatedRunnerModel::PumpPool : public std::enable_shared_from_this<PumpPool> {
 public:
  void Submit(std::function<void()> task) {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(task));
    if (idle_ > 0) {
      cv_.notify_one();
      return;
    }
    std::thread([self = shared_from_this()] { self->Loop(); }).detach();
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      ++idle_;
      const bool got = cv_.wait_for(lock, std::chrono::seconds(2), [&] { return !queue_.empty(); });
      --idle_;
      if (!got) return;
      std::function<void()> task = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      task();
      lock.lock();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  int idle_ = 0;
};

// A request answered through a sender in the child: its responses arrive
// on the events channel, in order, and are delivered by one pump at a time.
struct IsolatedRunnerModel::OpenRequest {
  RequestHandle handle;
  InferenceRequest* request = nullptr;
  std::unique_ptr<InferenceRequest> owned;  // once its batch handed it over
  bool in_batch = true;                     // guarded by Generation::open_mu
  bool cancel_sent = false;                 // events thread only
  std::mutex mu;                            // guards the rest
  std::deque<ResponseMessage> queue;
  bool pumping = false;
  bool final_delivered = false;
  bool ending = false;
  absl::Status end_with;  // the final error once the child is gone
};

// The metrics a child's runner defined (ABI 1.3), applied in the server's
// registry in the order the child made them. The child checked each
// operation before sending it; what the server still refuses (a name another
// model uses with another kind, the server-wide limits) is logged once per
// family or metric, and its later updates are dropped. Used by the events
// thread only.
class ChildMetrics {
 public:
  ChildMetrics(host_metrics::Registry* registry, std::string model)
      : owner_(registry), model_(std::move(model)) {}

  void Apply(const isolation::MetricMessage& m) {
    using M = isolation::MetricMessage;
    host_metrics::Result r;
    switch (m.op) {
      case M::kFamilyNew: {
        ToriiMetricFamily* f = nullptr;
        r = owner_.NewFamily(m.name.c_str(), m.help.c_str(), static_cast<ToriiMetricKind>(m.kind),
                             &f);
        if (r.ok()) families_[m.id] = f;
        break;
      }
      case M::kFamilyDelete: {
        auto it = families_.find(m.id);
        if (it == families_.end()) return;
        owner_.DeleteFamily(it->second);
        families_.erase(it);
        return;
      }
      case M::kMetricNew: {
        auto f = families_.find(m.family_id);
        if (f == families_.end()) return;  // its family was refused (logged)
        ToriiMetric* metric = nullptr;
        r = owner_.NewMetric(f->second, m.labels, m.buckets, &metric);
        if (r.ok()) metrics_[m.id] = metric;
        break;
      }
      case M::kMetricDelete: {
        auto it = metrics_.find(m.id);
        if (it == metrics_.end()) return;
        owner_.DeleteMetric(it->second);
        metrics_.erase(it);
        return;
      }
      default: {
        auto it = metrics_.find(m.id);
        if (it == metrics_.end()) return;
        const host_metrics::Op op = m.op == M::kIncrement ? host_metrics::Op::kIncrement
                                    : m.op == M::kSet     ? host_metrics::Op::kSet
                                                          : host_metrics::Op::kObserve;
        r = owner_.Update(it->second, op, m.value);
        break;
      }
    }
    if (!r.ok()) {
      LogWarning("the server does not export a metric the runner defined",
                 {{"model", model_}, {"reason", r.message}});
    }
  }

 private:
  host_metrics::Owner owner_;
  const std::string model_;
  std::map<uint64_t, ToriiMetricFamily*> families_;
  std::map<uint64_t, ToriiMetric*> metrics_;
};

struct IsolatedRunnerModel::Channel {
  int fd = -1;
  isolation::SharedRegion region;
  uint64_t next_batch_id = 1;
  std::string out, in;  // frame buffers, reused
  BatchMessage batch;
  BatchReply reply;
};

// One child process and its channels. Shared with the workers using it, and
// with calls and open requests of it, so a restart never closes a descriptor
// or unmaps a heap under them.
struct IsolatedRunnerModel::Generation {
  pid_t pid = 0;
  int control_fd = -1;  // the load handshake, then the events channel
  std::vector<Channel> channels;
  std::string model_name;
  std::shared_ptr<const ModelSpec> spec;
  std::string instance_tag;  // "0", or "0-3" for a child of several instances
  // Guarded by the slot's mu.
  bool dead = false;
  std::string exit_reason;
  std::string kill_reason;  // set when the server killed it
  std::atomic<bool> gone{false};  // dead, as a flag for other threads

  // The events channel. Written by many threads, read by `reader` only.
  std::mutex write_mu;
  bool write_failed = false;
  isolation::SharedRegion child_heap;   // allocated by the child, followed by `reader`
  isolation::SharedRegion parent_heap_region;
  std::unique_ptr<isolation::RegionHeap> parent_heap;
  std::mutex heap_mu;  // with heap_cv: call results waiting for room
  std::condition_variable heap_cv;
  int out_fd = -1, err_fd = -1;  // the child's stdout and stderr
  std::thread reader;
  std::mutex load_mu;
  std::condition_variable load_cv;
  bool load_done = false;
  absl::StatusOr<isolation::LoadReply> load_reply = absl::UnavailableError("no load reply");

  // Per channel, the batch in flight, published by its worker without a
  // lock (the plain path). The events thread, holding open_mu, claims the
  // batch (sets kClaimed) before it touches one of its requests; a worker
  // whose batch was claimed, or whose reply names requests answered by
  // senders, reconciles under open_mu. A claim that comes after the worker
  // cleared the batch fails: the request is no longer the events thread's.
  static constexpr uint64_t kClaimed = uint64_t{1} << 63;
  struct Current {
    std::atomic<uint64_t> batch{0};
    RequestBatch* requests = nullptr;  // written before `batch` is published
  };
  std::unique_ptr<Current[]> current;
  // Requests answered through senders.
  std::mutex open_mu;
  std::map<RequestHandle, std::shared_ptr<OpenRequest>> open;
  // What the child's runner defined on /metrics (null: no registry).
  // Followed by `reader`; the supervisor takes it once `reader` is joined.
  std::unique_ptr<ChildMetrics> metrics;

  bool Send(const std::string& frame) {
    std::lock_guard<std::mutex> lock(write_mu);
    if (write_failed) return false;
    if (!isolation::WriteFrame(control_fd, frame).ok()) write_failed = true;
    return !write_failed;
  }

  ~Generation() {
    if (reader.joinable()) reader.detach();  // never: joined by the supervisor
    if (control_fd >= 0) close(control_fd);
    if (out_fd >= 0) close(out_fd);
    if (err_fd >= 0) close(err_fd);
    for (auto& c : channels) {
      if (c.fd >= 0) close(c.fd);
    }
  }
};

namespace {

// Where a child's call delivers its responses: into the parent heap, then a
// CallResult frame. Paced by what the child has not released yet.
class ParentCallSink : public ResponseSink {
 public:
  ParentCallSink(std::shared_ptr<IsolatedRunnerModel::Generation> g, uint64_t call_id)
      : g_(std::move(g)), call_id_(call_id) {}
  std::unique_ptr<InferenceResponse> NewResponse() override {
    return std::make_unique<ParentHeapResponse>(g_->parent_heap.get());
  }
  bool AwaitCapacity(const InferenceRequest&) override {
    std::unique_lock<std::mutex> lock(g_->heap_mu);
    g_->heap_cv.wait(lock, [&] {
      return g_->gone.load() || g_->parent_heap->in_use() < kParentHeapBound;
    });
    return !g_->gone.load();
  }
  void Deliver(std::unique_ptr<InferenceResponse> response, bool final) override {
    isolation::CallResultMessage m;
    m.call_id = call_id_;
    m.final = final ? 1 : 0;
    m.has_response = response != nullptr ? 1 : 0;
    std::vector<uint64_t> blocks;
    isolation::RegionHeap& heap = *g_->parent_heap;
    if (response != nullptr) {
      m.code = static_cast<int32_t>(response->status.code());
      m.message = std::string(response->status.message());
      m.model_name = response->model_name;
      m.model_version = response->model_version;
      m.id = response->id;
      auto* in_heap = dynamic_cast<ParentHeapResponse*>(response.get());
      for (const OutputTensor& t : response->outputs()) {
        isolation::NamedTensor& o = m.outputs.emplace_back();
        o.name = t.name;
        o.datatype = static_cast<int32_t>(t.datatype);
        o.tensor.shape.assign(t.shape.begin(), t.shape.end());
        o.tensor.size = t.byte_size;
        if (in_heap != nullptr && in_heap->heap() == &heap) {
          o.tensor.offset = static_cast<uint64_t>(t.data - heap.data());
          continue;
        }
        auto at = heap.Allocate(t.byte_size);
        if (!at.ok()) {
          m.outputs.clear();
          m.code = static_cast<int32_t>(at.status().code());
          m.message = std::string(at.status().message());
          break;
        }
        if (t.byte_size > 0) std::memcpy(heap.data() + *at, t.data, t.byte_size);
        blocks.push_back(*at);
        o.tensor.offset = *at;
      }
      if (in_heap != nullptr) {
        for (uint64_t b : in_heap->Release()) blocks.push_back(b);
      }
    }
    m.heap_size = heap.region_size();
    std::string frame;
    isolation::Encode(m, &frame);
    if (g_->gone.load() || !g_->Send(frame)) {
      for (uint64_t b : blocks) heap.Free(b);  // nobody will release them
    }
  }

 private:
  std::shared_ptr<IsolatedRunnerModel::Generation> g_;
  const uint64_t call_id_;
};

// Runs an open request's queued responses, in order: waits for the
// receiver's capacity before each non-final one (back-pressure), delivers,
// acknowledges to the child. One pump per request at a time.
void Pump(std::shared_ptr<IsolatedRunnerModel::Generation> g,
          std::shared_ptr<IsolatedRunnerModel::OpenRequest> e);

// Delivers an open request's final error now, unless a pump will.
void EndOpenRequest(IsolatedRunnerModel::Generation& g, IsolatedRunnerModel::OpenRequest& e,
                    const absl::Status& status) {
  std::lock_guard<std::mutex> lock(e.mu);
  if (e.final_delivered || e.ending) return;
  e.ending = true;
  e.end_with = status;
  if (e.pumping) return;  // the pump delivers it after what is queued
  e.final_delivered = true;
  e.request->RespondError(status);
  (void)g;
}

void Pump(std::shared_ptr<IsolatedRunnerModel::Generation> g,
          std::shared_ptr<IsolatedRunnerModel::OpenRequest> e) {
  for (;;) {
    ResponseMessage m;
    {
      std::lock_guard<std::mutex> lock(e->mu);
      if (e->queue.empty()) {
        e->pumping = false;
        if (e->ending && !e->final_delivered) {
          e->final_delivered = true;
          e->request->RespondError(e->end_with);
        }
        break;
      }
      m = std::move(e->queue.front());
      e->queue.pop_front();
    }
    InferenceRequest& q = *e->request;
    bool gone = false;
    if (!m.final) gone = !q.sink->AwaitCapacity(q);
    std::unique_ptr<InferenceResponse> response;
    if (!gone && m.has_response) {
      response = q.NewResponse();
      if (m.code != 0) {
        response->status = ToStatus(m.code, m.message);
      } else {
        absl::Status s = CopyOutputs(*g->spec, q, m.outputs, g->child_heap.data(),
                                     /*require_all=*/false, response.get());
        if (!s.ok()) {
          response = q.NewResponse();
          response->status = s;
        }
      }
    }
    if (m.final) {
      // Under the lock: once it is delivered, the request (and its
      // receiver) may go at any moment, and the events thread reads its
      // cancellation under this lock.
      std::lock_guard<std::mutex> lock(e->mu);
      e->final_delivered = true;
      q.Respond(std::move(response), /*final=*/true);
    } else if (!gone) {
      q.Respond(std::move(response), /*final=*/false);
    }
    isolation::AckMessage ack;
    ack.handle = m.handle;
    ack.gone = gone ? 1 : 0;
    std::string frame;
    isolation::Encode(ack, &frame);
    g->Send(frame);
  }
  // Finished and handed over by its batch: forget it.
  std::lock_guard<std::mutex> lock(g->open_mu);
  bool done;
  {
    std::lock_guard<std::mutex> elock(e->mu);
    done = e->final_delivered && !e->pumping;
  }
  if (done && !e->in_batch) g->open.erase(e->handle);
}

}  // namespace

// One child process slot: the instances it runs and its supervisor.
struct IsolatedRunnerModel::Slot {
  size_t index = 0;
  uint32_t first_instance = 0;
  uint32_t instance_count = 1;
  mutable std::mutex mu;
  std::condition_variable cv;
  std::shared_ptr<Generation> generation;  // the serving child, or null
  bool stopping = false;
  bool first_load_done = false;
  absl::Status first_load_status;
  std::string last_exit_reason;
  std::atomic<bool> healthy{false};
  std::atomic<uint64_t> restarts{0};
  // The metrics of the child that died, kept until its successor has loaded
  // (and, in its initialize, made the same series again), so that a restart
  // does not reset the runner's counters on /metrics.
  std::unique_ptr<ChildMetrics> retired_metrics;  // supervisor thread only
  std::thread supervisor;
};

IsolatedRunnerModel::IsolatedRunnerModel(Options options)
    : options_(std::move(options)),
      model_name_(options_.name),
      instance_count_(std::max<uint32_t>(1, options_.spec->instance_count)) {}

absl::StatusOr<std::unique_ptr<IsolatedRunnerModel>> IsolatedRunnerModel::Create(Options options) {
  std::unique_ptr<IsolatedRunnerModel> m(new IsolatedRunnerModel(std::move(options)));
  m->pumps_ = std::make_shared<PumpPool>();
  m->host_path_ = m->options_.host_path.empty() ? DefaultHostPath() : m->options_.host_path;
  if (access(m->host_path_.c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "model '", m->model_name_, "': isolation needs torii-runner-host, but ", m->host_path_,
        " is not an executable file (install it beside torii-server, or set TORII_RUNNER_HOST)"));
  }
  const bool per_instance = m->options_.spec->isolation.mode == IsolationMode::kProcessPerInstance;
  const size_t n_slots = per_instance ? m->instance_count_ : 1;
  for (size_t s = 0; s < n_slots; ++s) {
    auto slot = std::make_unique<Slot>();
    slot->index = s;
    slot->first_instance = per_instance ? static_cast<uint32_t>(s) : 0;
    slot->instance_count = per_instance ? 1 : static_cast<uint32_t>(m->instance_count_);
    for (uint32_t i = 0; i < slot->instance_count; ++i) m->instances_.push_back({slot.get(), i});
    m->slots_.push_back(std::move(slot));
  }
  // Slot 0 first: its runner may complete the config the others then get.
  // (Create() is the only writer of options_.spec, before any Execute().)
  // Each supervisor thread starts its child: PR_SET_PDEATHSIG follows the
  // thread that forked, so that thread lives as long as the model.
  for (auto& slot : m->slots_) {
    Slot* s = slot.get();
    s->supervisor = std::thread([p = m.get(), s] { p->Supervise(*s); });
    absl::Status status;
    {
      std::unique_lock<std::mutex> lock(s->mu);
      s->cv.wait(lock, [&] { return s->first_load_done; });
      status = s->first_load_status;
    }
    if (!status.ok()) return status;  // the destructor stops the slots started so far
    m->spec_settled_ = true;
  }
  return m;
}

IsolatedRunnerModel::~IsolatedRunnerModel() {
  for (auto& slot : slots_) {
    std::lock_guard<std::mutex> lock(slot->mu);
    slot->stopping = true;
    // EOF on every channel: the child finishes, unloads the model and exits.
    // The events channel is closed for writing only: the final answers the
    // child sends its open requests while it unloads still arrive.
    if (auto& g = slot->generation) {
      shutdown(g->control_fd, SHUT_WR);
      for (auto& c : g->channels) shutdown(c.fd, SHUT_RDWR);
    }
    slot->cv.notify_all();
  }
  const Clock::time_point deadline = Clock::now() + options_.stop_timeout;
  for (auto& slot : slots_) {
    std::unique_lock<std::mutex> lock(slot->mu);
    std::shared_ptr<Generation> g = slot->generation;
    if (g != nullptr && !slot->cv.wait_until(lock, deadline, [&] { return g->dead; })) {
      KillLocked(*slot, *g, absl::StrCat("it did not exit within ", options_.stop_timeout.count(),
                                         " ms of the unload"));
    }
  }
  for (auto& slot : slots_) {
    if (slot->supervisor.joinable()) slot->supervisor.join();
  }
}

bool IsolatedRunnerModel::healthy() const {
  for (const auto& s : slots_) {
    if (s->healthy.load()) return true;
  }
  return false;
}

bool IsolatedRunnerModel::InstanceReady(size_t instance) const {
  return instance < instances_.size() && instances_[instance].first->healthy.load();
}

uint64_t IsolatedRunnerModel::restarts() const {
  uint64_t n = 0;
  for (const auto& s : slots_) n += s->restarts.load();
  return n;
}

std::vector<std::pair<std::string, int64_t>> IsolatedRunnerModel::RunnerProcesses() const {
  std::vector<std::pair<std::string, int64_t>> out;
  for (const auto& s : slots_) {
    std::lock_guard<std::mutex> lock(s->mu);
    if (s->generation == nullptr || s->generation->dead) continue;
    const std::string label =
        s->instance_count == 1
            ? absl::StrCat("instance ", s->first_instance)
            : absl::StrCat("instances ", s->first_instance, "-",
                           s->first_instance + s->instance_count - 1);
    out.emplace_back(label, s->generation->pid);
  }
  return out;
}

RunnerProvenance IsolatedRunnerModel::provenance() const {
  std::lock_guard<std::mutex> lock(provenance_mu_);
  return provenance_;
}

std::string IsolatedRunnerModel::last_exit_reason() const {
  std::string reason;
  for (const auto& s : slots_) {
    std::lock_guard<std::mutex> lock(s->mu);
    if (!s->last_exit_reason.empty()) reason = s->last_exit_reason;
  }
  return reason;
}

pid_t IsolatedRunnerModel::pid(size_t instance) const {
  if (instance >= instances_.size()) return 0;
  Slot& s = *instances_[instance].first;
  std::lock_guard<std::mutex> lock(s.mu);
  return s.generation != nullptr && !s.generation->dead ? s.generation->pid : 0;
}

void IsolatedRunnerModel::Abort(const std::string& reason) {
  for (auto& slot : slots_) {
    std::lock_guard<std::mutex> lock(slot->mu);
    slot->stopping = true;
    if (slot->generation != nullptr) KillLocked(*slot, *slot->generation, reason);
    slot->cv.notify_all();
  }
}

void IsolatedRunnerModel::KillLocked(Slot& slot, Generation& g, const std::string& reason) {
  // The supervisor reaps only after marking the generation dead (under mu),
  // so while !dead the pid cannot have been reused.
  if (g.dead || g.pid <= 0) return;
  if (g.kill_reason.empty()) g.kill_reason = reason;
  kill(g.pid, SIGKILL);
  slot.healthy = false;
}

absl::StatusOr<std::shared_ptr<IsolatedRunnerModel::Generation>> IsolatedRunnerModel::Spawn(
    Slot& slot) {
  auto g = std::make_shared<Generation>();
  g->model_name = model_name_;
  if (options_.metrics != nullptr) {
    g->metrics = std::make_unique<ChildMetrics>(options_.metrics, model_name_);
  }
  g->spec = options_.spec;
  g->instance_tag = slot.instance_count == 1
                        ? std::to_string(slot.first_instance)
                        : absl::StrCat(slot.first_instance, "-",
                                       slot.first_instance + slot.instance_count - 1);
  const std::string who = absl::StrCat("model '", model_name_, "': ");
  int control[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, control) != 0) {
    return absl::InternalError(absl::StrCat(who, "socketpair: ", std::strerror(errno)));
  }
  g->control_fd = control[0];
  // The child's stdout and stderr: pipes read by the events thread.
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) {
    close(control[1]);
    return absl::InternalError(absl::StrCat(who, "pipe: ", std::strerror(errno)));
  }
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    close(control[1]);
    close(out_pipe[0]);
    close(out_pipe[1]);
    return absl::InternalError(absl::StrCat(who, "pipe: ", std::strerror(errno)));
  }
  g->out_fd = out_pipe[0];
  g->err_fd = err_pipe[0];
  fcntl(g->out_fd, F_SETFL, O_NONBLOCK);
  fcntl(g->err_fd, F_SETFL, O_NONBLOCK);
  const int child_out = out_pipe[1], child_err = err_pipe[1];
  std::vector<int> child_fds = {control[1]};
  std::vector<std::string> args = {host_path_, "--model=" + model_name_,
                                   absl::StrCat("--control-fd=", control[1])};
  absl::Status status;
  // The two heaps of the events channel (protocol.h).
  const std::string short_name = model_name_.substr(0, 200);
  auto child_heap = isolation::SharedRegion::Create("torii-" + short_name + "-child-heap",
                                                    kInitialHeap);
  auto parent_heap = isolation::SharedRegion::Create("torii-" + short_name + "-parent-heap",
                                                     kInitialHeap);
  if (!child_heap.ok() || !parent_heap.ok()) {
    const absl::Status& bad = child_heap.ok() ? parent_heap.status() : child_heap.status();
    status = absl::Status(bad.code(), who + std::string(bad.message()));
  } else {
    g->child_heap = std::move(*child_heap);
    g->parent_heap_region = std::move(*parent_heap);
    g->parent_heap = std::make_unique<isolation::RegionHeap>(&g->parent_heap_region);
    args.push_back(absl::StrCat("--heaps=", g->child_heap.fd(), ":",
                                g->parent_heap_region.fd()));
  }
  const size_t first_channel_fd = child_fds.size();
  g->channels.resize(slot.instance_count);
  for (size_t i = 0; i < slot.instance_count && status.ok(); ++i) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
      status = absl::InternalError(absl::StrCat(who, "socketpair: ", std::strerror(errno)));
      break;
    }
    g->channels[i].fd = sv[0];
    // Reads of replies wake up every kWaitSliceMs (see AwaitReply).
    const timeval slice{0, kWaitSliceMs * 1000};
    setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &slice, sizeof(slice));
    child_fds.push_back(sv[1]);
    // The name only labels /proc/<pid>/fd; memfd names are limited to 249 bytes.
    auto region = isolation::SharedRegion::Create(
        absl::StrCat("torii-", model_name_.substr(0, 200), "-", slot.first_instance + i),
        kInitialRegion);
    if (!region.ok()) {
      status = absl::Status(region.status().code(), who + std::string(region.status().message()));
      break;
    }
    g->channels[i].region = std::move(*region);
    child_fds.push_back(g->channels[i].region.fd());
    args.push_back(absl::StrCat("--instance=", sv[1], ":", g->channels[i].region.fd()));
  }
  auto close_child_ends = [&] {
    // The memfds stay open here (the parent maps them); the rest was the child's.
    for (size_t k = 0; k < child_fds.size(); ++k) {
      if (k < first_channel_fd || (k - first_channel_fd) % 2 == 0) close(child_fds[k]);
    }
    close(child_out);
    close(child_err);
  };
  if (!status.ok()) {
    close_child_ends();
    return status;
  }

  // Everything the child needs is prepared before fork(): after it, only
  // async-signal-safe calls until exec.
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const uint64_t limit_mb = options_.spec->isolation.memory_limit_mb;
  struct rlimit limit;
  limit.rlim_cur = limit.rlim_max = static_cast<rlim_t>(limit_mb) << 20;
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    close_child_ends();
    return absl::ResourceExhaustedError(absl::StrCat(who, "fork: ", std::strerror(errno)));
  }
  if (pid == 0) {
    // Die with the server, even if it is SIGKILLed.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(126);
    // A process group of its own: a terminal's Ctrl-C goes to the server,
    // which drains and then stops us; and when this child ends the server
    // kills the whole group, helpers the runner started included.
    setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    if (limit_mb > 0) setrlimit(RLIMIT_AS, &limit);
    // When memory runs out, the kernel's OOM killer takes the runner
    // process first, not the server (raising the score needs no privilege).
    const int oom = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (oom >= 0) {
      if (write(oom, "1000", 4) < 0) {
      }
      close(oom);
    }
    // Nothing of the server's leaks into the child but our channels.
    if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
      for (int fd = 3; fd < 4096; ++fd) fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    for (int fd : child_fds) fcntl(fd, F_SETFD, 0);
    if (g->child_heap.fd() >= 0) fcntl(g->child_heap.fd(), F_SETFD, 0);
    if (g->parent_heap_region.fd() >= 0) fcntl(g->parent_heap_region.fd(), F_SETFD, 0);
    dup2(child_out, STDOUT_FILENO);
    dup2(child_err, STDERR_FILENO);
    execv(argv[0], argv.data());
    _exit(127);
  }
  g->pid = pid;
  close_child_ends();
  g->current = std::make_unique<Generation::Current[]>(slot.instance_count);
  // From now on one thread reads what the child says: the load reply, log
  // lines, output, and after the load its responses and calls.
  g->reader = std::thread([this, &slot, g] { ReadEvents(slot, g); });

  auto reply = AwaitLoad(slot, *g);
  if (reply.ok() && reply->code == 0) {
    std::lock_guard<std::mutex> lock(provenance_mu_);
    if (slot.index == 0) {
      provenance_.runner = reply->runner;
      provenance_.runner_version = reply->runner_version;
      provenance_.runner_build = reply->runner_build;
      provenance_.runner_abi = reply->runner_abi;
      provenance_.properties = reply->properties;
    }
    return g;
  }
  // The load failed: make sure the child is gone, and say why.
  if (!reply.ok()) kill(pid, SIGKILL);
  int wstatus = 0;
  while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  kill(-pid, SIGKILL);  // helpers it may have started while loading
  g->gone = true;
  g->reader.join();  // it saw the end (its output is logged)
  g->pid = 0;
  if (reply.ok()) return ToStatus(reply->code, reply->message);  // the runner refused
  if (!absl::IsUnavailable(reply.status())) return reply.status();
  if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 127) {
    return absl::FailedPreconditionError(
        absl::StrCat(who, "could not start the runner process ", host_path_));
  }
  return absl::UnavailableError(absl::StrCat(who, "the runner process died while loading the model (",
                                             DescribeStatus(wstatus), ")"));
}

absl::StatusOr<isolation::LoadReply> IsolatedRunnerModel::AwaitLoad(Slot& slot, Generation& g) {
  const std::string who = absl::StrCat("model '", model_name_, "': ");
  isolation::LoadMessage load;
  load.name = options_.name;
  load.version = options_.version;
  load.directory = options_.directory;
  load.version_directory = options_.version_directory;
  load.library_path = options_.library_path;
  load.runner = options_.runner;
  load.default_model_filename = options_.default_model_filename;
  load.config = options_.config;
  load.first_instance = slot.first_instance;
  load.instance_count = slot.instance_count;
  load.allow_config_completion = options_.allow_config_completion ? 1 : 0;
  std::string frame;
  isolation::Encode(load, &frame);
  if (!g.Send(frame)) return absl::UnavailableError("the runner process is gone");
  // The events thread hands over the reply; meanwhile watch for the model
  // being unloaded.
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(g.load_mu);
      if (g.load_cv.wait_for(lock, std::chrono::milliseconds(100), [&] { return g.load_done; })) {
        absl::StatusOr<isolation::LoadReply> reply = std::move(g.load_reply);
        if (!reply.ok()) return reply.status();
        // Only the first load of the first child may change the spec: later
        // children and restarts get the completed config and serve with it.
        if (reply->code == 0 && !reply->completed_config.empty() && !spec_settled_) {
          if (!options_.on_completed_config) {
            return absl::InternalError(who + "the runner completed the config unasked");
          }
          auto spec = options_.on_completed_config(reply->completed_config);
          if (!spec.ok()) return spec.status();
          options_.spec = std::move(*spec);
          options_.config = reply->completed_config;
          g.spec = options_.spec;
        }
        return reply;
      }
    }
    std::lock_guard<std::mutex> lock(slot.mu);
    if (slot.stopping) {
      return absl::CancelledError(absl::StrCat(who, "unloaded while the runner process loaded it"));
    }
  }
}

void IsolatedRunnerModel::Supervise(Slot& slot) {
  auto backoff = options_.spec->isolation.backoff_initial;
  bool first = true;
  auto wait_backoff = [&](Duration d) {
    std::unique_lock<std::mutex> lock(slot.mu);
    return !slot.cv.wait_for(lock, d, [&] { return slot.stopping; });
  };
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(slot.mu);
      if (slot.stopping) {
        if (first) {
          slot.first_load_status = absl::CancelledError("unloaded");
          slot.first_load_done = true;
          slot.cv.notify_all();
        }
        return;
      }
    }
    auto spawned = Spawn(slot);
    if (!spawned.ok()) {
      {
        std::lock_guard<std::mutex> lock(slot.mu);
        if (first) {
          slot.first_load_status = spawned.status();
          slot.first_load_done = true;
          slot.cv.notify_all();
          return;
        }
        if (slot.stopping) return;
        slot.last_exit_reason = std::string(spawned.status().message());
      }
      LogError("runner process restart failed",
               {{"model", model_name_},
                {"reason", std::string(spawned.status().message())},
                {"retry_in_ms", std::to_string(backoff.count())}});
      if (!wait_backoff(backoff)) return;
      backoff = std::min(backoff * 2, options_.spec->isolation.backoff_max);
      ++slot.restarts;
      continue;
    }
    std::shared_ptr<Generation> g = *spawned;
    const Clock::time_point started = Clock::now();
    bool unloaded;
    {
      std::lock_guard<std::mutex> lock(slot.mu);
      // Unloaded while this child was loading: it never serves.
      unloaded = slot.stopping;
      if (!unloaded) {
        slot.generation = g;
        slot.healthy = true;
      }
      if (first) {
        slot.first_load_done = true;
        slot.first_load_status =
            unloaded ? absl::CancelledError("unloaded while loading") : absl::OkStatus();
      }
    }
    if (unloaded) {
      kill(-g->pid, SIGKILL);
      waitpid(g->pid, nullptr, 0);
      g->gone = true;
      g->reader.join();
      g->metrics.reset();
      slot.cv.notify_all();
      return;
    }
    slot.cv.notify_all();
    // The new child has made its series again (in its load): its
    // predecessor's references may go.
    slot.retired_metrics.reset();
    if (!first) {
      LogInfo("runner process restarted",
              {{"model", model_name_}, {"pid", std::to_string(g->pid)},
               {"restarts", std::to_string(slot.restarts.load())}});
    }
    first = false;

    // Wait for the child's end without reaping it yet (WNOWAIT): until it is
    // marked dead below, its pid (and process group id) stays valid for kill().
    siginfo_t info;
    std::memset(&info, 0, sizeof(info));
    int rc;
    while ((rc = waitid(P_PID, static_cast<id_t>(g->pid), &info, WEXITED | WNOWAIT)) != 0 &&
           errno == EINTR) {
    }
    std::string reason;
    if (rc == 0) {
      reason = DescribeExit(info);
    } else {
      // Someone else reaps our children (SIGCHLD set to SIG_IGN somewhere in
      // the process): we cannot learn the status, only the end.
      const std::string why = std::strerror(errno);
      while (kill(g->pid, 0) == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      reason = "ended; exit status unknown (waitid: " + why + ")";
    }
    // Whatever the runner started goes with it: helpers must not outlive it
    // (nor hold copies of its channels).
    kill(-g->pid, SIGKILL);
    bool stopping;
    {
      std::lock_guard<std::mutex> lock(slot.mu);
      if (!g->kill_reason.empty()) {
        reason += ", sent by the server: " + g->kill_reason;
      } else if (info.si_code == CLD_KILLED && info.si_status == SIGKILL) {
        reason += ", from outside the server (the kernel's out-of-memory killer?)";
      }
      g->dead = true;
      g->gone = true;
      g->exit_reason = reason;
      slot.healthy = false;
      slot.generation.reset();
      stopping = slot.stopping;
      if (!stopping) slot.last_exit_reason = reason;
    }
    slot.cv.notify_all();
    {
      std::lock_guard<std::mutex> lock(g->heap_mu);
      g->heap_cv.notify_all();
    }
    // What the child said before it ended is delivered first (the events
    // thread reads to the end), then its open requests end.
    g->reader.join();
    if (stopping) {
      g->metrics.reset();  // the unload: the runner's metrics leave /metrics
    } else {
      slot.retired_metrics = std::move(g->metrics);
    }
    EndOpenRequests(*g, stopping ? absl::UnavailableError(absl::StrCat(
                                       "model '", model_name_,
                                       "' was unloaded before its runner finished this request "
                                       "(the runner process ended: ", reason, ")"))
                                 : absl::UnavailableError(absl::StrCat(
                                       "model '", model_name_, "' runner process died (", reason,
                                       "); restarting")));
    waitpid(g->pid, nullptr, 0);
    if (stopping) return;
    if (Clock::now() - started >= options_.backoff_reset) {
      backoff = options_.spec->isolation.backoff_initial;
    }
    LogError("runner process died", {{"model", model_name_},
                                     {"pid", std::to_string(g->pid)},
                                     {"reason", reason},
                                     {"restart_in_ms", std::to_string(backoff.count())}});
    if (!wait_backoff(backoff)) return;
    backoff = std::min(backoff * 2, options_.spec->isolation.backoff_max);
    ++slot.restarts;
  }
}

void IsolatedRunnerModel::ReadEvents(Slot& slot, std::shared_ptr<Generation> g) {
  isolation::FrameReader reader;
  std::string error;
  bool events_open = true, out_open = true, err_open = true;
  std::string out_buf, err_buf;
  const std::string version = std::to_string(options_.version);
  auto tags = [&](const char* stream) {
    LogFields f = {{"model", model_name_}, {"version", version}, {"instance", g->instance_tag}};
    if (stream != nullptr) f.emplace_back("stream", stream);
    return f;
  };
  // Output of the child's file descriptors 1 and 2, line by line.
  auto emit = [&](std::string& buf, bool is_err, bool all) {
    size_t start = 0;
    for (size_t nl; (nl = buf.find('\n', start)) != std::string::npos; start = nl + 1) {
      Log(is_err ? LogLevel::kWarning : LogLevel::kInfo,
          absl::string_view(buf).substr(start, nl - start), tags(is_err ? "stderr" : "stdout"));
    }
    buf.erase(0, start);
    if ((all || buf.size() > 65536) && !buf.empty()) {
      Log(is_err ? LogLevel::kWarning : LogLevel::kInfo, buf, tags(is_err ? "stderr" : "stdout"));
      buf.clear();
    }
  };
  auto drain = [&](int fd, std::string& buf, bool is_err, bool& open) {
    char chunk[4096];
    for (;;) {
      const ssize_t n = read(fd, chunk, sizeof(chunk));
      if (n > 0) {
        buf.append(chunk, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) open = false;
      break;
    }
    emit(buf, is_err, !open);
  };
  auto broken = [&](const std::string& why) {
    LogError("runner process broke the protocol; killing it",
             {{"model", model_name_}, {"reason", why}});
    std::lock_guard<std::mutex> lock(slot.mu);
    KillLocked(slot, *g, "protocol error: " + why);
  };
  auto ack_gone = [&](const RequestHandle& h) {
    isolation::AckMessage ack;
    ack.handle = h;
    ack.gone = 1;
    std::string frame;
    isolation::Encode(ack, &frame);
    g->Send(frame);
  };
  auto on_response = [&](ResponseMessage m) {
    absl::Status s = g->child_heap.Follow(m.heap_size);
    if (s.ok()) s = isolation::CheckBounds(m.outputs, g->child_heap.size());
    if (!s.ok()) return broken(std::string(s.message()));
    std::shared_ptr<OpenRequest> e;
    {
      std::lock_guard<std::mutex> lock(g->open_mu);
      auto it = g->open.find(m.handle);
      if (it != g->open.end()) {
        e = it->second;
      } else if (m.handle.channel < g->channels.size() && m.handle.batch_id != 0 &&
                 (m.handle.batch_id & Generation::kClaimed) == 0) {
        Generation::Current& c = g->current[m.handle.channel];
        uint64_t v = c.batch.load(std::memory_order_acquire);
        while (v == m.handle.batch_id &&
               !c.batch.compare_exchange_weak(v, v | Generation::kClaimed,
                                              std::memory_order_acq_rel)) {
        }
        const bool claimed =
            v == m.handle.batch_id || v == (m.handle.batch_id | Generation::kClaimed);
        if (claimed && m.handle.index < c.requests->size() &&
            (*c.requests)[m.handle.index] != nullptr) {
          e = std::make_shared<OpenRequest>();
          e->handle = m.handle;
          e->request = (*c.requests)[m.handle.index].get();
          g->open[m.handle] = e;
        }
      }
    }
    if (e == nullptr) return ack_gone(m.handle);  // its request has ended already
    bool inline_final = false, submit = false;
    {
      std::lock_guard<std::mutex> lock(e->mu);
      if (e->final_delivered) {
        e.reset();
      } else {
        const bool final = m.final != 0;
        e->queue.push_back(std::move(m));
        if (!e->pumping) {
          e->pumping = true;
          inline_final = final && e->queue.size() == 1;
          submit = !inline_final;
        }
      }
    }
    if (e == nullptr) return ack_gone(m.handle);
    // A final response never waits for capacity: deliver it here.
    if (inline_final) Pump(g, e);
    if (submit) pumps_->Submit([g, e] { Pump(g, e); });
  };
  auto on_call = [&](isolation::CallMessage m) {
    absl::Status s = g->child_heap.Follow(m.heap_size);
    if (s.ok()) s = isolation::CheckBounds(m.inputs, g->child_heap.size());
    if (!s.ok()) return broken(std::string(s.message()));
    auto q = std::make_unique<InferenceRequest>();
    q->model_name = std::move(m.model);
    if (m.version > 0) q->model_version = std::to_string(m.version);
    q->id = std::move(m.id);
    q->parameters = std::move(m.parameters);
    for (const auto& t : m.inputs) {
      InferenceInput& in = q->inputs.emplace_back();
      in.name = t.name;
      in.datatype = static_cast<ToriiDataType>(t.datatype);
      in.shape.assign(t.tensor.shape.begin(), t.tensor.shape.end());
      in.data = g->child_heap.data() + t.tensor.offset;
      in.byte_size = t.tensor.size;
    }
    for (auto& o : m.outputs) q->requested_outputs.push_back({std::move(o), {}});
    if (m.deadline_ns != INT64_MAX) {
      q->deadline = Clock::time_point(std::chrono::nanoseconds(m.deadline_ns));
    }
    Generation* gp = g.get();  // the sink keeps it alive as long as the request
    q->is_cancelled = [gp] { return gp->gone.load(); };
    q->sink = std::make_shared<ParentCallSink>(g, m.call_id);
    q->arrival = Clock::now();
    if (options_.dispatcher == nullptr) {
      q->RespondError(absl::UnavailableError("calls to other models are not available in this "
                                             "server"));
      return;
    }
    options_.dispatcher->Infer(std::move(q));
  };
  auto dispatch = [&](MessageType type, absl::string_view body) {
    absl::Status s;
    switch (type) {
      case MessageType::kLoadReply: {
        isolation::LoadReply reply;
        s = isolation::Decode(body, &reply);
        if (!s.ok()) break;
        std::lock_guard<std::mutex> lock(g->load_mu);
        g->load_reply = std::move(reply);
        g->load_done = true;
        g->load_cv.notify_all();
        break;
      }
      case MessageType::kMetric: {
        isolation::MetricMessage m;
        s = isolation::Decode(body, &m);
        if (s.ok() && g->metrics != nullptr) g->metrics->Apply(m);
        break;
      }
      case MessageType::kLog: {
        isolation::LogMessage m;
        s = isolation::Decode(body, &m);
        if (!s.ok()) break;
        const LogLevel level = m.level == TORII_LOG_ERROR     ? LogLevel::kError
                               : m.level == TORII_LOG_WARNING ? LogLevel::kWarning
                               : m.level == TORII_LOG_INFO    ? LogLevel::kInfo
                                                              : LogLevel::kVerbose;
        Log(level, m.message, tags(nullptr));
        break;
      }
      case MessageType::kResponse: {
        ResponseMessage m;
        s = isolation::Decode(body, &m);
        if (s.ok()) on_response(std::move(m));
        break;
      }
      case MessageType::kCall: {
        isolation::CallMessage m;
        s = isolation::Decode(body, &m);
        if (s.ok()) on_call(std::move(m));
        break;
      }
      case MessageType::kFreeResult: {
        isolation::FreeMessage m;
        s = isolation::Decode(body, &m);
        if (!s.ok()) break;
        for (uint64_t o : m.offsets) g->parent_heap->Free(o);
        std::lock_guard<std::mutex> lock(g->heap_mu);
        g->heap_cv.notify_all();
        break;
      }
      default:
        s = absl::InternalError(absl::StrCat("unexpected message type ",
                                             static_cast<uint32_t>(type)));
    }
    if (!s.ok()) {
      broken(std::string(s.message()));
      return false;
    }
    return true;
  };
  auto scan_cancellations = [&] {
    std::vector<RequestHandle> cancelled;
    {
      std::lock_guard<std::mutex> lock(g->open_mu);
      for (auto& [h, e] : g->open) {
        if (e->cancel_sent) continue;
        std::lock_guard<std::mutex> elock(e->mu);
        if (e->final_delivered || e->request == nullptr) continue;
        if (e->request->Cancelled()) {
          e->cancel_sent = true;
          cancelled.push_back(h);
        }
      }
    }
    for (const auto& h : cancelled) {
      isolation::CancelMessage m;
      m.handle = h;
      std::string frame;
      isolation::Encode(m, &frame);
      g->Send(frame);
    }
  };

  Clock::time_point next_scan = Clock::now() + std::chrono::milliseconds(kWaitSliceMs);
  while (events_open || out_open || err_open) {
    pollfd fds[3];
    int n = 0, ev = -1, out = -1, err = -1;
    if (events_open) {
      fds[n] = {g->control_fd, POLLIN, 0};
      ev = n++;
    }
    if (out_open) {
      fds[n] = {g->out_fd, POLLIN, 0};
      out = n++;
    }
    if (err_open) {
      fds[n] = {g->err_fd, POLLIN, 0};
      err = n++;
    }
    const int r = poll(fds, static_cast<nfds_t>(n), kWaitSliceMs);
    if (r < 0 && errno != EINTR) break;
    bool any = false;
    if (r > 0 && ev >= 0 && fds[ev].revents != 0) {
      any = true;
      ReadOutcome got = reader.Fill(g->control_fd, /*block=*/false, &error);
      if (got == ReadOutcome::kClosed || got == ReadOutcome::kError) events_open = false;
      MessageType type;
      absl::string_view body;
      ReadOutcome next;
      while ((next = reader.Next(&type, &body, &error)) == ReadOutcome::kFrame) {
        if (!dispatch(type, body)) break;
      }
      if (next == ReadOutcome::kError) {
        broken(error);
        events_open = false;
      }
    }
    if (r > 0 && out >= 0 && fds[out].revents != 0) {
      any = true;
      drain(g->out_fd, out_buf, false, out_open);
    }
    if (r > 0 && err >= 0 && fds[err].revents != 0) {
      any = true;
      drain(g->err_fd, err_buf, true, err_open);
    }
    // A dead child's channels are read to the end above; helpers it left
    // holding them are killed with its process group, but do not wait on
    // them for ever.
    if (!any && g->gone.load()) break;
    if (Clock::now() >= next_scan) {
      scan_cancellations();
      next_scan = Clock::now() + std::chrono::milliseconds(kWaitSliceMs);
    }
  }
  emit(out_buf, false, true);
  emit(err_buf, true, true);
  std::lock_guard<std::mutex> lock(g->load_mu);
  if (!g->load_done) {
    g->load_done = true;
    g->load_cv.notify_all();
  }
}

absl::Status IsolatedRunnerModel::DeathStatus(Slot& slot, const std::shared_ptr<Generation>& g) {
  std::unique_lock<std::mutex> lock(slot.mu);
  if (!slot.cv.wait_for(lock, kDeathWait, [&] { return g->dead; })) {
    // It closed its channel but lives on: it is of no use any more.
    KillLocked(slot, *g, "it closed its channel");
    slot.cv.wait_for(lock, kDeathWait, [&] { return g->dead; });
  }
  const std::string reason = g->dead ? g->exit_reason : "no exit status yet";
  return absl::UnavailableError(absl::StrCat("model '", model_name_, "' runner process died (",
                                             reason, "); restarting"));
}

absl::Status IsolatedRunnerModel::SendBatch(Generation& g, size_t channel, Channel& ch,
                                            RequestBatch& requests) {
  // Layout: one cancel flag per request, then every input, 64-byte aligned.
  const size_t n = requests.size();
  BatchMessage& b = ch.batch;
  b.batch_id = ch.next_batch_id++;
  b.cancel_offset = 0;
  b.requests.resize(n);
  size_t offset = Align64(n);
  for (size_t r = 0; r < n; ++r) {
    const InferenceRequest& q = *requests[r];
    BatchMessage::Request& m = b.requests[r];
    m.rows = q.rows;
    m.deadline_ns = q.deadline == Clock::time_point::max() ? INT64_MAX : MonotonicNs(q.deadline);
    m.id = q.id;
    m.inputs.resize(q.inputs.size());
    for (size_t i = 0; i < q.inputs.size(); ++i) {
      m.inputs[i].shape.assign(q.inputs[i].shape.begin(), q.inputs[i].shape.end());
      m.inputs[i].offset = offset;
      m.inputs[i].size = q.inputs[i].byte_size;
      offset += Align64(q.inputs[i].byte_size);
    }
    m.requested.assign(q.output_requested.begin(), q.output_requested.end());
    m.parameters = q.parameters;
  }
  b.outputs_offset = offset;
  absl::Status s = ch.region.Reserve(offset);
  if (!s.ok()) return absl::Status(s.code(), absl::StrCat("model '", model_name_, "': ", s.message()));
  char* base = ch.region.data();
  std::memset(base, 0, n);
  for (size_t r = 0; r < n; ++r) {
    const InferenceRequest& q = *requests[r];
    for (size_t i = 0; i < q.inputs.size(); ++i) {
      if (q.inputs[i].byte_size > 0) {
        std::memcpy(base + b.requests[r].inputs[i].offset, q.inputs[i].data, q.inputs[i].byte_size);
      }
    }
  }
  b.region_size = ch.region.size();
  isolation::Encode(b, &ch.out);
  // Responses a sender sends during the batch find their requests here.
  Generation::Current& c = g.current[channel];
  c.requests = &requests;
  c.batch.store(b.batch_id, std::memory_order_release);
  return isolation::WriteFrame(ch.fd, ch.out);
}

absl::Status IsolatedRunnerModel::AwaitReply(Slot& slot, const std::shared_ptr<Generation>& g,
                                            Channel& ch, const RequestBatch& requests,
                                            size_t instance) {
  // The socket's receive timeout (kWaitSliceMs) wakes us now and then to pass
  // on cancellations, to enforce the execution timeout, and to notice a dead
  // child even when something it started still holds its end of the socket.
  const auto timeout = options_.spec->execution_timeout;
  const bool timed = timeout.count() > 0;
  const Clock::time_point kill_at = Clock::now() + timeout;
  MessageType type;
  absl::string_view body;
  std::string error;
  ReadOutcome out;
  while ((out = isolation::ReadFrame(ch.fd, &ch.in, &type, &body, &error)) == ReadOutcome::kTimeout) {
    {
      std::lock_guard<std::mutex> lock(slot.mu);
      if (g->dead) break;
    }
    if (timed && Clock::now() >= kill_at) {
      {
        std::lock_guard<std::mutex> lock(slot.mu);
        KillLocked(slot, *g, absl::StrCat("instance ", instance,
                                          " exceeded execution_timeout_ms ", timeout.count()));
      }
      LogError("runner execution timed out; killing the runner process",
               {{"model", model_name_}, {"instance", std::to_string(instance)},
                {"execution_timeout_ms", std::to_string(timeout.count())}});
      return absl::DeadlineExceededError(absl::StrCat(
          "model '", model_name_, "': execution exceeded execution_timeout_ms (", timeout.count(),
          " ms); the runner process was killed and restarts"));
    }
    char* flags = ch.region.data() + ch.batch.cancel_offset;
    for (size_t q = 0; q < requests.size(); ++q) {
      if (__atomic_load_n(flags + q, __ATOMIC_RELAXED) == 0 && requests[q]->Cancelled()) {
        __atomic_store_n(flags + q, static_cast<char>(1), __ATOMIC_RELAXED);
      }
    }
  }
  if (out == ReadOutcome::kTimeout || out == ReadOutcome::kClosed) return DeathStatus(slot, g);
  absl::Status s;
  if (out == ReadOutcome::kFrame) {
    s = type == MessageType::kBatchReply ? isolation::Decode(body, &ch.reply)
                                         : absl::InternalError("unexpected message type");
    if (s.ok() && (ch.reply.batch_id != ch.batch.batch_id ||
                   ch.reply.results.size() != requests.size())) {
      s = absl::InternalError("the reply does not answer this batch");
    }
    if (s.ok()) s = ch.region.Follow(ch.reply.region_size);
    if (s.ok()) s = isolation::CheckBounds(ch.reply, ch.region.size());
  } else {
    s = absl::InternalError(error);
  }
  if (!s.ok()) {
    // A child that breaks the protocol cannot be trusted with the next batch.
    {
      std::lock_guard<std::mutex> lock(slot.mu);
      KillLocked(slot, *g, absl::StrCat("protocol error: ", s.message()));
    }
    return absl::UnavailableError(absl::StrCat("model '", model_name_,
                                               "': the runner process broke the protocol (",
                                               s.message(), "); restarting"));
  }
  return absl::OkStatus();
}

void IsolatedRunnerModel::Answer(Channel& ch, RequestBatch& requests) {
  const ModelSpec& spec = *options_.spec;
  const char* base = ch.region.data();
  for (size_t r = 0; r < requests.size(); ++r) {
    if (requests[r] == nullptr) continue;  // answered through a sender
    InferenceRequest& q = *requests[r];
    const BatchReply::Result& res = ch.reply.results[r];
    if (res.code != 0) {
      q.RespondError(ToStatus(res.code, res.message));
      continue;
    }
    // The child is not trusted: every output is checked against the spec
    // before a client sees it, and copied before it is checked, so the child
    // cannot change it in between.
    std::unique_ptr<InferenceResponse> response = q.NewResponse();
    absl::Status s = CopyOutputs(spec, q, res.outputs, base, /*require_all=*/true, response.get());
    if (s.ok()) {
      q.Respond(std::move(response), /*final=*/true);
    } else {
      q.RespondError(s);
    }
  }
}

bool IsolatedRunnerModel::Reconcile(Generation& g, size_t channel, uint64_t batch_id,
                                    RequestBatch& requests, const BatchReply* reply,
                                    const absl::Status& failure) {
  Generation::Current& c = g.current[channel];
  bool taken_any = false;
  if (reply != nullptr) {
    for (const auto& res : reply->results) taken_any |= res.code == isolation::kAnsweredBySender;
  }
  if (!taken_any && failure.ok()) {
    // The plain path: unless the events thread claimed this batch, nothing
    // but this worker ever touched its requests.
    const uint64_t prev = c.batch.exchange(0, std::memory_order_acq_rel);
    if ((prev & Generation::kClaimed) == 0) return false;
  }
  bool broke = false;
  std::vector<std::shared_ptr<OpenRequest>> to_end;
  {
    std::lock_guard<std::mutex> lock(g.open_mu);
    // Cleared under the lock: the events thread finds the requests named by
    // senders either here or, from now on, among the open ones.
    c.batch.store(0, std::memory_order_release);
    for (size_t r = 0; r < requests.size(); ++r) {
      const RequestHandle h{static_cast<uint32_t>(channel), batch_id, static_cast<uint32_t>(r)};
      const bool taken =
          reply != nullptr && reply->results[r].code == isolation::kAnsweredBySender;
      auto it = g.open.find(h);
      std::shared_ptr<OpenRequest> e;
      if (it != g.open.end()) {
        e = it->second;
        // Responses came through a sender: whatever the reply says, the
        // sender answers it (a reply that answers it too is a broken child).
        if (reply != nullptr && !taken) broke = true;
      } else if (taken) {
        e = std::make_shared<OpenRequest>();
        e->handle = h;
        e->request = requests[r].get();
        g.open[h] = e;
      } else {
        continue;
      }
      e->in_batch = false;
      e->owned = std::move(requests[r]);
      bool done;
      {
        std::lock_guard<std::mutex> elock(e->mu);
        done = e->final_delivered && !e->pumping;
      }
      if (done) {
        g.open.erase(h);
      } else if (!failure.ok()) {
        to_end.push_back(e);
      }
    }
  }
  for (auto& e : to_end) {
    EndOpenRequest(g, *e, failure);
    std::lock_guard<std::mutex> lock(g.open_mu);
    std::lock_guard<std::mutex> elock(e->mu);
    if (e->final_delivered && !e->pumping) g.open.erase(e->handle);
  }
  return broke;
}

void IsolatedRunnerModel::EndOpenRequests(Generation& g, const absl::Status& status) {
  std::vector<std::shared_ptr<OpenRequest>> open;
  {
    std::lock_guard<std::mutex> lock(g.open_mu);
    for (auto& [h, e] : g.open) {
      if (!e->in_batch) open.push_back(e);  // a worker ends those of its batch
    }
  }
  for (auto& e : open) {
    EndOpenRequest(g, *e, status);
    std::lock_guard<std::mutex> lock(g.open_mu);
    std::lock_guard<std::mutex> elock(e->mu);
    if (e->final_delivered && !e->pumping) g.open.erase(e->handle);
  }
}

void IsolatedRunnerModel::Execute(size_t instance, RequestBatch& requests, Timing* timing) {
  const Clock::time_point t0 = Clock::now();
  auto fail_all = [&](const absl::Status& s) {
    for (auto& r : requests) {
      if (r != nullptr) r->RespondError(s);
    }
    if (timing != nullptr) *timing = Timing::Between(t0, t0, t0, Clock::now());
  };
  if (instance >= instances_.size() || requests.empty()) {
    return fail_all(absl::InternalError("bad instance index"));
  }
  Slot& slot = *instances_[instance].first;
  std::shared_ptr<Generation> g;
  {
    std::lock_guard<std::mutex> lock(slot.mu);
    if (slot.healthy) g = slot.generation;
    if (g == nullptr) {
      return fail_all(absl::UnavailableError(absl::StrCat(
          "model '", model_name_, "' runner process is restarting",
          slot.last_exit_reason.empty() ? "" : " (last exit: " + slot.last_exit_reason + ")",
          "; retry later")));
    }
  }
  const size_t channel = instances_[instance].second;
  Channel& ch = g->channels[channel];
  absl::Status s = SendBatch(*g, channel, ch, requests);
  if (!s.ok()) s = absl::IsUnavailable(s) ? DeathStatus(slot, g) : s;
  const Clock::time_point t1 = Clock::now();
  if (s.ok()) s = AwaitReply(slot, g, ch, requests, instance);
  if (!s.ok()) {
    // Requests a sender answered in part are ended with the others.
    Reconcile(*g, channel, ch.batch.batch_id, requests, nullptr, s);
    for (auto& r : requests) {
      if (r != nullptr) r->RespondError(s);
    }
    if (timing != nullptr) *timing = Timing::Between(t0, t0, t0, Clock::now());
    return;
  }
  const Clock::time_point t2 = Clock::now();
  if (Reconcile(*g, channel, ch.batch.batch_id, requests, &ch.reply, absl::OkStatus())) {
    std::lock_guard<std::mutex> lock(slot.mu);
    KillLocked(slot, *g, "protocol error: a request answered both by a sender and by the batch");
  }
  Answer(ch, requests);
  if (timing != nullptr) *timing = Timing::Between(t0, t1, t2, Clock::now());
}

}  // namespace torii
