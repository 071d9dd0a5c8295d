#include "server/isolation/runner_host.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/common/logging.h"
#include "server/repository/model_spec_builder.h"
#include "server/runner/runner_library.h"
#include "server/runner/runner_model.h"

namespace torii {
namespace isolation {
namespace {

constexpr int64_t kNoDeadline = INT64_MAX;

struct HostArgs {
  std::string model;
  int control_fd = -1;
  int child_heap_fd = -1;
  int parent_heap_fd = -1;
  std::vector<std::pair<int, int>> instances;  // socket, memfd
};

bool ParseArgs(int argc, char** argv, HostArgs* out, std::string* error) {
  for (int i = 1; i < argc; ++i) {
    const absl::string_view a = argv[i];
    if (absl::StartsWith(a, "--model=")) {
      out->model = std::string(a.substr(8));
    } else if (absl::StartsWith(a, "--control-fd=")) {
      if (!absl::SimpleAtoi(a.substr(13), &out->control_fd)) {
        *error = absl::StrCat("bad ", a);
        return false;
      }
    } else if (absl::StartsWith(a, "--heaps=")) {
      std::vector<absl::string_view> parts = absl::StrSplit(a.substr(8), ':');
      if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &out->child_heap_fd) ||
          !absl::SimpleAtoi(parts[1], &out->parent_heap_fd)) {
        *error = absl::StrCat("bad ", a);
        return false;
      }
    } else if (absl::StartsWith(a, "--instance=")) {
      std::vector<absl::string_view> parts = absl::StrSplit(a.substr(11), ':');
      std::pair<int, int> fds;
      if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &fds.first) ||
          !absl::SimpleAtoi(parts[1], &fds.second)) {
        *error = absl::StrCat("bad ", a);
        return false;
      }
      out->instances.push_back(fds);
    } else {
      *error = absl::StrCat("unknown argument ", a);
      return false;
    }
  }
  if (out->control_fd < 0 || out->child_heap_fd < 0 || out->instances.empty()) {
    *error = "--control-fd, --heaps and at least one --instance are required";
    return false;
  }
  return true;
}

// The channels were inherited across exec; from here on nothing the runner
// starts (a helper process that execs) may inherit them, or the server would
// not see them close when this process dies.
void CloseChannelsOnExec(const HostArgs& args) {
  fcntl(args.control_fd, F_SETFD, FD_CLOEXEC);
  fcntl(args.child_heap_fd, F_SETFD, FD_CLOEXEC);
  fcntl(args.parent_heap_fd, F_SETFD, FD_CLOEXEC);
  for (const auto& [sock, memfd] : args.instances) {
    fcntl(sock, F_SETFD, FD_CLOEXEC);
    fcntl(memfd, F_SETFD, FD_CLOEXEC);
  }
}

// Output buffers of one batch, bump-allocated in the instance's region after
// the inputs. The region never moves when it grows, so buffers handed out
// earlier stay valid.
class RegionArena {
 public:
  RegionArena(SharedRegion* region, size_t start) : region_(region), next_(Align64(start)) {}
  absl::StatusOr<char*> Allocate(size_t n) {
    const size_t at = next_;
    const size_t end = at + Align64(n == 0 ? 1 : n);
    absl::Status s = region_->Reserve(end);
    if (!s.ok()) return s;
    next_ = end;
    return region_->data() + at;
  }

 private:
  SharedRegion* region_;
  size_t next_;
};

class RegionResponse : public InferenceResponse {
 public:
  explicit RegionResponse(RegionArena* arena) : arena_(arena) {}

 protected:
  absl::StatusOr<char*> AllocateBuffer(size_t index) override {
    return arena_->Allocate(outputs()[index].byte_size);
  }

 private:
  RegionArena* arena_;
};

// A response whose outputs live in the child heap, so that it may be sent at
// any time, outlasting the batch: the responses runners build through
// senders. Its blocks are freed when it is destroyed unsent, or when the
// server acknowledges the frame that carried it.
class HeapResponse : public InferenceResponse {
 public:
  explicit HeapResponse(RegionHeap* heap) : heap_(heap) {}
  ~HeapResponse() override {
    for (uint64_t b : blocks_) heap_->Free(b);
  }
  std::vector<uint64_t> Release() { return std::move(blocks_); }
  RegionHeap* heap() const { return heap_; }

 protected:
  absl::StatusOr<char*> AllocateBuffer(size_t index) override {
    auto at = heap_->Allocate(outputs()[index].byte_size);
    if (!at.ok()) return at.status();
    blocks_.push_back(*at);
    return heap_->data() + *at;
  }

 private:
  RegionHeap* heap_;
  std::vector<uint64_t> blocks_;
};

// A call result read in place from the parent heap; destroying it tells the
// server the blocks are free.
class ViewResponse : public InferenceResponse {
 public:
  ViewResponse(ChildEvents* events) : events_(events) {}
  ~ViewResponse() override;
  absl::Status AddView(const std::string& name, ToriiDataType dt, Shape shape, char* data,
                       size_t size, uint64_t offset) {
    next_ = data;
    offsets_.push_back(offset);
    return AddOutput(name, dt, std::move(shape), size).status();
  }

 protected:
  absl::StatusOr<char*> AllocateBuffer(size_t) override { return next_; }

 private:
  ChildEvents* events_;
  char* next_ = nullptr;
  std::vector<uint64_t> offsets_;
};

absl::Status FromCode(int32_t code, const std::string& message) {
  if (code == 0) return absl::OkStatus();
  if (code < 0 || code > static_cast<int32_t>(absl::StatusCode::kUnauthenticated)) {
    return absl::UnknownError(message);
  }
  return absl::Status(static_cast<absl::StatusCode>(code), message);
}

}  // namespace

// Responses a sender may have sent and the server not yet taken, per
// request: the sender's sender_send blocks beyond this (back-pressure).
constexpr int kSenderWindow = 4;

// The sink of one request of a batch. During the batch, a response that is
// final and not built by a sender is kept for the reply frame (the plain
// path); every other response goes to the server on the events channel at
// once, in order.
class ChildSink : public ResponseSink, public std::enable_shared_from_this<ChildSink> {
 public:
  ChildSink(ChildEvents* events, RegionArena* arena, const ModelSpec* spec, RequestHandle handle,
            const char* cancel_flag)
      : events_(events), arena_(arena), spec_(spec), handle_(handle), flag_(cancel_flag) {}

  std::unique_ptr<InferenceResponse> NewResponse() override;
  void Deliver(std::unique_ptr<InferenceResponse> response, bool final) override;
  bool AwaitCapacity(const InferenceRequest& request) override;

  bool Cancelled() const {
    if (cancelled_.load(std::memory_order_relaxed)) return true;
    const char* f = flag_.load(std::memory_order_acquire);
    return f != nullptr && __atomic_load_n(f, __ATOMIC_RELAXED) != 0;
  }

  enum class Outcome { kStashed, kBySender, kNone };
  // After execute (instance thread): how the request was answered.
  // `taken_open`: a sender took it and has not sent the final yet.
  Outcome EndBatch(bool taken_open, std::unique_ptr<InferenceResponse>* stashed);

  void OnAck(bool gone);
  void OnCancel() { cancelled_ = true; }
  void OnClose() {
    std::lock_guard<std::mutex> lock(mu_);
    cv_.notify_all();
  }

 private:
  struct Sent {
    std::vector<uint64_t> blocks;
    bool credit = false;
  };
  void EnsureRegisteredLocked();

  // A lock of a few instructions for what the instance thread and a sender
  // thread may both touch at the batch's end (the plain path takes only
  // this one).
  class SpinLock {
   public:
    explicit SpinLock(std::atomic_flag* f) : f_(f) {
      while (f_->test_and_set(std::memory_order_acquire)) {
      }
    }
    ~SpinLock() { f_->clear(std::memory_order_release); }

   private:
    std::atomic_flag* f_;
  };

  ChildEvents* events_;
  RegionArena* arena_;  // valid while in_batch_
  std::atomic<const InferenceResponse*> region_response_{nullptr};  // the last one made in the batch
  const ModelSpec* spec_;
  const RequestHandle handle_;
  std::atomic<const char*> flag_;  // the batch's cancel flag, while in_batch_
  std::atomic<bool> cancelled_{false};

  std::atomic_flag batch_state_ = ATOMIC_FLAG_INIT;  // guards stashed_, by_sender_
  std::atomic<bool> in_batch_{true};
  bool by_sender_ = false;  // a response went out on the events channel
  std::unique_ptr<InferenceResponse> stashed_;

  std::mutex mu_;  // the sender path: credits, acknowledgements
  std::condition_variable cv_;
  bool registered_ = false;
  bool finished_ = false;
  bool gone_ = false;
  int credits_ = kSenderWindow;
  // Not yet acknowledged, oldest first (a vector: a deque allocates at
  // construction, and every request of the plain path builds a sink).
  std::vector<Sent> sent_;
};

// The child's side of the events channel; one per process, after the load
// (log lines already during it).
class ChildEvents : public host_metrics::Observer {
 public:
  ChildEvents(int fd, SharedRegion child_heap, SharedRegion parent_heap)
      : fd_(fd), child_region_(std::move(child_heap)), parent_heap_(std::move(parent_heap)),
        heap_(&child_region_) {}
  ~ChildEvents() {
    {
      std::lock_guard<std::mutex> lock(results_mu_);
      results_done_ = true;
    }
    results_cv_.notify_all();
    results_thread_.join();
  }

  RegionHeap& heap() { return heap_; }
  bool closing() const { return closing_.load(); }
  void set_ready() { ready_ = true; }

  // Writes one frame; false once the server is gone.
  bool Send(const std::string& frame) {
    std::lock_guard<std::mutex> lock(write_mu_);
    if (write_failed_) return false;
    if (!WriteFrame(fd_, frame).ok()) write_failed_ = true;
    return !write_failed_;
  }

  void Register(const RequestHandle& h, std::shared_ptr<ChildSink> sink) {
    std::lock_guard<std::mutex> lock(mu_);
    open_[h] = std::move(sink);
  }
  void Unregister(const RequestHandle& h) {
    std::shared_ptr<ChildSink> gone;  // destroyed outside the lock
    std::lock_guard<std::mutex> lock(mu_);
    auto it = open_.find(h);
    if (it == open_.end()) return;
    gone = std::move(it->second);
    open_.erase(it);
  }

  void StartCall(std::unique_ptr<InferenceRequest> request);
  void FreeResults(const std::vector<uint64_t>& offsets) {
    if (offsets.empty() || closing_) return;
    FreeMessage m;
    m.offsets = offsets;
    std::string frame;
    Encode(m, &frame);
    Send(frame);
  }
  void ForwardLog(const ToriiModel* model, ToriiLogLevel level, const char* message) {
    LogMessage m;
    m.level = static_cast<int32_t>(level);
    m.message = message;
    (void)model;  // the server tags the line with its model
    std::string frame;
    Encode(m, &frame);
    if (!Send(frame)) Log(LogLevel::kInfo, message);
  }

  // The runner's metric operations (ABI 1.3), each already applied to this
  // process's registry, go to the server in the same order (the owner's
  // lock is held while they are written). Fire and forget: the socket keeps
  // them in order and loses none while the server is there.
  void FamilyCreated(uint64_t id, const std::string& name, const std::string& help,
                     ToriiMetricKind kind) override {
    MetricMessage m;
    m.op = MetricMessage::kFamilyNew;
    m.id = id;
    m.name = name;
    m.help = help;
    m.kind = static_cast<int32_t>(kind);
    SendMetric(m);
  }
  void FamilyDeleted(uint64_t id) override {
    MetricMessage m;
    m.op = MetricMessage::kFamilyDelete;
    m.id = id;
    SendMetric(m);
  }
  void MetricCreated(uint64_t id, uint64_t family_id, const host_metrics::Labels& labels,
                     const std::vector<double>& buckets) override {
    MetricMessage m;
    m.op = MetricMessage::kMetricNew;
    m.id = id;
    m.family_id = family_id;
    m.labels = labels;
    m.buckets = buckets;
    SendMetric(m);
  }
  void MetricDeleted(uint64_t id) override {
    MetricMessage m;
    m.op = MetricMessage::kMetricDelete;
    m.id = id;
    SendMetric(m);
  }
  void Updated(uint64_t id, host_metrics::Op op, double value) override {
    MetricMessage m;
    m.op = op == host_metrics::Op::kIncrement ? MetricMessage::kIncrement
           : op == host_metrics::Op::kSet     ? MetricMessage::kSet
                                              : MetricMessage::kObserve;
    m.id = id;
    m.value = value;
    SendMetric(m);
  }

  // The main thread's loop: acknowledgements, cancellations and call results
  // until the server closes its side (the unload). Then Close().
  void Serve();
  // Wakes every waiting sender (their sends fail from now on) and ends every
  // pending call with an error.
  void Close();
  // Waits until every queued call result reached its callback.
  void WaitResultsDelivered() {
    std::unique_lock<std::mutex> lock(results_mu_);
    results_cv_.wait(lock, [&] { return results_.empty() && !delivering_; });
  }

 private:
  void SendMetric(const MetricMessage& m) {
    std::string frame;
    Encode(m, &frame);
    Send(frame);  // false: the server is gone, and /metrics with it
  }
  struct PendingCall {
    std::unique_ptr<InferenceRequest> request;
    std::vector<uint64_t> blocks;  // the inputs in the child heap
  };
  void HandleCallResult(const CallResultMessage& m);
  // Delivers call results to the runners' callbacks, in order, on a thread
  // of its own: a callback that waits (say, in sender_send for credit that
  // only the events thread can bring) must not stop the events thread.
  void DeliverResults();
  struct Result {
    uint64_t call_id = 0;
    std::unique_ptr<InferenceResponse> response;
    bool final = false;
  };
  void Enqueue(Result r) {
    {
      std::lock_guard<std::mutex> lock(results_mu_);
      results_.push_back(std::move(r));
    }
    results_cv_.notify_all();  // the delivery thread, or a waiter of WaitResultsDelivered
  }

  const int fd_;
  SharedRegion child_region_;
  SharedRegion parent_heap_;  // followed by the main thread only
  RegionHeap heap_;
  std::mutex write_mu_;
  bool write_failed_ = false;
  std::atomic<bool> closing_{false};
  std::atomic<bool> ready_{false};
  std::mutex mu_;
  std::map<RequestHandle, std::shared_ptr<ChildSink>> open_;
  std::map<uint64_t, PendingCall> calls_;
  uint64_t next_call_id_ = 1;
  std::mutex results_mu_;
  std::condition_variable results_cv_;
  std::deque<Result> results_;
  bool results_done_ = false;  // guarded by results_mu_
  bool delivering_ = false;     // guarded by results_mu_
  std::thread results_thread_{[this] { DeliverResults(); }};  // last: the above exist
};

namespace {

ChildEvents* g_events = nullptr;

// Calls a runner makes (infer_request_send) go to the server.
class ChildDispatcher : public InferenceDispatcher {
 public:
  void Infer(std::unique_ptr<InferenceRequest> request) override {
    if (g_events == nullptr) {
      request->RespondError(absl::UnavailableError("calls to other models are not available here"));
      return;
    }
    g_events->StartCall(std::move(request));
  }
};

}  // namespace

ViewResponse::~ViewResponse() {
  if (events_ != nullptr) events_->FreeResults(offsets_);
}

std::unique_ptr<InferenceResponse> ChildSink::NewResponse() {
  // The batch's direct response and batch answers: in the batch region.
  // After the batch (a late error from the host), nothing may land there.
  if (in_batch_.load(std::memory_order_acquire)) {
    auto r = std::make_unique<RegionResponse>(arena_);
    region_response_ = r.get();
    return r;
  }
  if (events_ != nullptr) return std::make_unique<HeapResponse>(&events_->heap());
  return std::make_unique<InferenceResponse>();
}

void ChildSink::EnsureRegisteredLocked() {
  if (registered_ || events_ == nullptr) return;
  registered_ = true;
  events_->Register(handle_, shared_from_this());
}

void ChildSink::Deliver(std::unique_ptr<InferenceResponse> response, bool final) {
  if (final && response != nullptr && response.get() == region_response_) {
    // The plain path: a batch answer, kept for the reply frame (unless the
    // batch ended meanwhile, or a sender already answered in part).
    SpinLock spin(&batch_state_);
    if (in_batch_.load(std::memory_order_relaxed) && !by_sender_) {
      stashed_ = std::move(response);
      return;
    }
  }
  std::unique_lock<std::mutex> lock(mu_);
  {
    SpinLock spin(&batch_state_);
    by_sender_ = true;
  }
  if (final) finished_ = true;
  if (events_ == nullptr) return;
  EnsureRegisteredLocked();
  ResponseMessage m;
  m.handle = handle_;
  m.final = final ? 1 : 0;
  m.has_response = response != nullptr ? 1 : 0;
  Sent sent;
  sent.credit = !final;  // a non-final send took a credit in AwaitCapacity
  if (response != nullptr) {
    m.code = static_cast<int32_t>(response->status.code());
    m.message = std::string(response->status.message());
    RegionHeap& heap = events_->heap();
    auto* from_heap = dynamic_cast<HeapResponse*>(response.get());
    for (const OutputTensor& t : response->outputs()) {
      BatchReply::Output& o = m.outputs.emplace_back();
      const int k = spec_->OutputIndex(t.name);
      o.index = static_cast<uint32_t>(k < 0 ? spec_->outputs.size() : k);
      o.datatype = static_cast<int32_t>(t.datatype);
      o.tensor.shape.assign(t.shape.begin(), t.shape.end());
      o.tensor.size = t.byte_size;
      if (from_heap != nullptr && from_heap->heap() == &heap) {
        o.tensor.offset = static_cast<uint64_t>(t.data - heap.data());
        continue;
      }
      // Not built in the heap (the host's own responses): copy it there.
      auto at = heap.Allocate(t.byte_size);
      if (!at.ok()) {
        m.outputs.clear();
        m.code = static_cast<int32_t>(at.status().code());
        m.message = absl::StrCat("model '", spec_->name, "': ", at.status().message());
        break;
      }
      if (t.byte_size > 0) std::memcpy(heap.data() + *at, t.data, t.byte_size);
      sent.blocks.push_back(*at);
      o.tensor.offset = *at;
    }
    if (from_heap != nullptr) {
      for (uint64_t b : from_heap->Release()) sent.blocks.push_back(b);
    }
  }
  m.heap_size = events_->heap().region_size();
  std::string frame;
  Encode(m, &frame);
  sent_.push_back(std::move(sent));
  if (!events_->Send(frame)) {
    // The server is gone: nobody will acknowledge it.
    for (uint64_t b : sent_.back().blocks) events_->heap().Free(b);
    sent_.pop_back();
  }
}

bool ChildSink::AwaitCapacity(const InferenceRequest&) {
  std::unique_lock<std::mutex> lock(mu_);
  if (events_ == nullptr) return true;
  EnsureRegisteredLocked();
  cv_.wait(lock, [&] { return credits_ > 0 || gone_ || events_->closing(); });
  if (gone_ || events_->closing()) return false;
  --credits_;
  return true;
}

ChildSink::Outcome ChildSink::EndBatch(bool taken_open,
                                       std::unique_ptr<InferenceResponse>* stashed) {
  if (const char* f = flag_.exchange(nullptr)) {
    if (__atomic_load_n(f, __ATOMIC_RELAXED) != 0) cancelled_ = true;
  }
  bool by_sender;
  {
    SpinLock spin(&batch_state_);
    in_batch_.store(false, std::memory_order_release);
    if (stashed_ != nullptr) {
      *stashed = std::move(stashed_);
      return Outcome::kStashed;
    }
    by_sender = by_sender_;
  }
  if (by_sender || taken_open) {
    // A sender answers it: acknowledgements and cancellations must find it.
    if (taken_open) {
      std::lock_guard<std::mutex> lock(mu_);
      EnsureRegisteredLocked();
    }
    return Outcome::kBySender;
  }
  return Outcome::kNone;
}

void ChildSink::OnAck(bool gone) {
  bool done = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!sent_.empty()) {
      for (uint64_t b : sent_.front().blocks) events_->heap().Free(b);
      if (sent_.front().credit && !gone) ++credits_;
      sent_.erase(sent_.begin());
    }
    if (gone) {
      gone_ = true;
      cancelled_ = true;
    }
    done = finished_ && sent_.empty() && !in_batch_.load();
    cv_.notify_all();
  }
  if (done) events_->Unregister(handle_);
}

void ChildEvents::StartCall(std::unique_ptr<InferenceRequest> request) {
  if (!ready_ || closing_) {
    request->RespondError(absl::UnavailableError(
        closing_ ? "the model is being unloaded: calls to other models are closed"
                 : "calls to other models are not available while the model loads"));
    return;
  }
  CallMessage m;
  m.model = request->model_name;
  if (!request->model_version.empty() && !absl::SimpleAtoi(request->model_version, &m.version)) {
    m.version = -1;
  }
  m.id = request->id;
  m.parameters = request->parameters;
  if (request->deadline != InferenceRequest::Clock::time_point::max()) {
    m.deadline_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                        request->deadline.time_since_epoch())
                        .count();
  }
  for (const auto& o : request->requested_outputs) m.outputs.push_back(o.name);
  PendingCall call;
  for (const InferenceInput& in : request->inputs) {
    auto at = heap_.Allocate(in.byte_size);
    if (!at.ok()) {
      for (uint64_t b : call.blocks) heap_.Free(b);
      request->RespondError(absl::ResourceExhaustedError(absl::StrCat(
          "input '", in.name, "' of a call to model '", m.model, "': ", at.status().message())));
      return;
    }
    call.blocks.push_back(*at);
    if (in.byte_size > 0) std::memcpy(heap_.data() + *at, in.data, in.byte_size);
    NamedTensor& t = m.inputs.emplace_back();
    t.name = in.name;
    t.datatype = static_cast<int32_t>(in.datatype);
    t.tensor.shape.assign(in.shape.begin(), in.shape.end());
    t.tensor.offset = *at;
    t.tensor.size = in.byte_size;
  }
  m.heap_size = heap_.region_size();
  {
    std::lock_guard<std::mutex> lock(mu_);
    m.call_id = next_call_id_++;
    call.request = std::move(request);
    calls_[m.call_id] = std::move(call);
  }
  std::string frame;
  Encode(m, &frame);
  if (!Send(frame)) {
    PendingCall failed;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = calls_.find(m.call_id);
      if (it == calls_.end()) return;
      failed = std::move(it->second);
      calls_.erase(it);
    }
    for (uint64_t b : failed.blocks) heap_.Free(b);
    failed.request->RespondError(absl::UnavailableError("the server closed the runner's channel"));
  }
}

void ChildEvents::HandleCallResult(const CallResultMessage& m) {
  std::unique_ptr<InferenceResponse> response;
  if (m.has_response) {
    auto view = std::make_unique<ViewResponse>(this);
    view->model_name = m.model_name;
    view->model_version = m.model_version;
    view->id = m.id;
    view->status = FromCode(m.code, m.message);
    // Mapped here, on the one thread that follows the parent heap.
    absl::Status s = parent_heap_.Follow(m.heap_size);
    if (s.ok()) s = CheckBounds(m.outputs, parent_heap_.size());
    for (size_t i = 0; s.ok() && i < m.outputs.size(); ++i) {
      const NamedTensor& t = m.outputs[i];
      s = view->AddView(t.name, static_cast<ToriiDataType>(t.datatype),
                        Shape(t.tensor.shape.begin(), t.tensor.shape.end()),
                        parent_heap_.data() + t.tensor.offset, t.tensor.size, t.tensor.offset);
    }
    if (!s.ok()) {
      std::vector<uint64_t> offsets;
      for (const auto& t : m.outputs) offsets.push_back(t.tensor.offset);
      FreeResults(offsets);
      view = std::make_unique<ViewResponse>(nullptr);
      view->model_name = m.model_name;
      view->status = absl::Status(s.code(), absl::StrCat("the result of a call to model '",
                                                         m.model_name, "': ", s.message()));
    }
    response = std::move(view);
  }
  Enqueue({m.call_id, std::move(response), m.final != 0});
}

void ChildEvents::DeliverResults() {
  std::unique_lock<std::mutex> lock(results_mu_);
  for (;;) {
    results_cv_.wait(lock, [&] { return results_done_ || !results_.empty(); });
    if (results_.empty()) return;
    Result r = std::move(results_.front());
    results_.pop_front();
    delivering_ = true;
    lock.unlock();
    InferenceRequest* request = nullptr;
    {
      std::lock_guard<std::mutex> calls(mu_);
      auto it = calls_.find(r.call_id);
      if (it != calls_.end()) request = it->second.request.get();
    }
    if (request != nullptr) {
      request->sink->Deliver(std::move(r.response), r.final);
      if (r.final) {
        PendingCall done;
        {
          std::lock_guard<std::mutex> calls(mu_);
          auto it = calls_.find(r.call_id);
          if (it != calls_.end()) {
            done = std::move(it->second);
            calls_.erase(it);
          }
        }
        for (uint64_t b : done.blocks) heap_.Free(b);
      }
    }
    r.response.reset();  // a result nobody takes: its blocks go back now
    lock.lock();
    delivering_ = false;
    results_cv_.notify_all();
  }
}

void ChildEvents::Serve() {
  FrameReader reader;
  std::string error;
  for (;;) {
    MessageType type;
    absl::string_view body;
    ReadOutcome out;
    while ((out = reader.Next(&type, &body, &error)) == ReadOutcome::kFrame) {
      absl::Status s;
      switch (type) {
        case MessageType::kAck: {
          AckMessage m;
          s = Decode(body, &m);
          if (!s.ok()) break;
          std::shared_ptr<ChildSink> sink;
          {
            std::lock_guard<std::mutex> lock(mu_);
            auto it = open_.find(m.handle);
            if (it != open_.end()) sink = it->second;
          }
          if (sink != nullptr) sink->OnAck(m.gone != 0);
          break;
        }
        case MessageType::kCancel: {
          CancelMessage m;
          s = Decode(body, &m);
          if (!s.ok()) break;
          std::lock_guard<std::mutex> lock(mu_);
          auto it = open_.find(m.handle);
          if (it != open_.end()) it->second->OnCancel();
          break;
        }
        case MessageType::kCallResult: {
          CallResultMessage m;
          s = Decode(body, &m);
          if (s.ok()) HandleCallResult(m);
          break;
        }
        default:
          s = absl::InternalError(absl::StrCat("unexpected message type ",
                                               static_cast<uint32_t>(type)));
      }
      if (!s.ok()) {
        LogError("runner host events channel broken", {{"reason", std::string(s.message())}});
        std::_Exit(5);
      }
    }
    if (out == ReadOutcome::kError) break;
    out = reader.Fill(fd_, /*block=*/true, &error);
    if (out == ReadOutcome::kClosed || out == ReadOutcome::kError) break;
  }
  Close();
}

void ChildEvents::Close() {
  closing_ = true;
  std::vector<std::shared_ptr<ChildSink>> sinks;
  std::vector<uint64_t> calls;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [h, sink] : open_) sinks.push_back(sink);
    for (auto& [id, call] : calls_) calls.push_back(id);
  }
  for (auto& sink : sinks) sink->OnClose();
  // Pending calls end after the results already queued for them.
  for (uint64_t id : calls) {
    auto error = std::make_unique<InferenceResponse>();
    error->status = absl::UnavailableError(
        "the server closed the runner's channel (the model is being unloaded)");
    Enqueue({id, std::move(error), true});
  }
}

namespace {
}  // namespace

absl::Status InstanceServer::Serve() {
  std::string in, out;
  for (;;) {
    MessageType type;
    absl::string_view body;
    std::string error;
    switch (ReadFrame(fd_, &in, &type, &body, &error)) {
      case ReadOutcome::kClosed:
        return absl::OkStatus();
      case ReadOutcome::kTimeout:  // no receive timeout is set here
        continue;
      case ReadOutcome::kError:
        return absl::InternalError(error);
      case ReadOutcome::kFrame:
        break;
    }
    if (type != MessageType::kBatch) {
      return absl::InternalError(absl::StrCat("unexpected message type ", static_cast<uint32_t>(type)));
    }
    absl::Status s = HandleBatch(body, &out);
    if (!s.ok()) return s;
    s = WriteFrame(fd_, out);
    if (!s.ok()) return absl::OkStatus();  // the server went away
  }
}

absl::Status InstanceServer::HandleBatch(absl::string_view body, std::string* reply_frame) {
  absl::Status s = Decode(body, &batch_);
  if (!s.ok()) return s;
  s = region_.Follow(batch_.region_size);
  if (absl::IsResourceExhausted(s)) {
    // Too big for this child's memory limit: fail the batch, keep serving.
    reply_.batch_id = batch_.batch_id;
    reply_.region_size = region_.size();
    reply_.results.assign(batch_.requests.size(), BatchReply::Result{});
    for (auto& res : reply_.results) {
      res.code = static_cast<int32_t>(s.code());
      res.message = absl::StrCat("model '", spec_->name, "': ", s.message());
    }
    Encode(reply_, reply_frame);
    return absl::OkStatus();
  }
  if (s.ok()) s = CheckBounds(batch_, region_.size());
  if (!s.ok()) return s;
  const size_t n = batch_.requests.size();
  const size_t n_in = spec_->inputs.size();
  const size_t n_out = spec_->outputs.size();
  if (n == 0) return absl::InternalError("a batch with no requests");

  RegionArena arena(&region_, batch_.outputs_offset);
  std::vector<std::shared_ptr<ChildSink>> sinks(n);
  RequestBatch requests(n);
  for (size_t r = 0; r < n; ++r) {
    BatchMessage::Request& m = batch_.requests[r];
    if (m.inputs.size() != n_in || m.requested.size() != n_out) {
      return absl::InternalError("a batch request does not match the model's signature");
    }
    auto q = std::make_unique<InferenceRequest>();
    q->model_name = spec_->name;
    q->id = std::move(m.id);
    q->parameters = std::move(m.parameters);
    q->inputs.resize(n_in);
    for (size_t i = 0; i < n_in; ++i) {
      InferenceInput& in = q->inputs[i];
      in.name = spec_->inputs[i].name;
      in.datatype = spec_->inputs[i].datatype;
      in.shape.assign(m.inputs[i].shape.begin(), m.inputs[i].shape.end());
      in.data = region_.data() + m.inputs[i].offset;
      in.byte_size = m.inputs[i].size;
    }
    q->output_requested.assign(m.requested.begin(), m.requested.end());
    q->rows = m.rows;
    q->deadline = m.deadline_ns == kNoDeadline
                      ? InferenceRequest::Clock::time_point::max()
                      : InferenceRequest::Clock::time_point(std::chrono::nanoseconds(m.deadline_ns));
    const char* flag = region_.data() + batch_.cancel_offset + r;
    sinks[r] = std::make_shared<ChildSink>(
        events_, &arena, spec_.get(),
        RequestHandle{static_cast<uint32_t>(instance_), batch_.batch_id, static_cast<uint32_t>(r)},
        flag);
    q->is_cancelled = [s = sinks[r].get()] { return s->Cancelled(); };
    q->sink = sinks[r];
    requests[r] = std::move(q);
  }

  model_->Execute(instance_, requests, nullptr);

  reply_.batch_id = batch_.batch_id;
  reply_.results.resize(n);
  for (size_t r = 0; r < n; ++r) {
    BatchReply::Result& res = reply_.results[r];
    res.outputs.clear();
    res.message.clear();
    res.code = 0;
    std::unique_ptr<InferenceResponse> resp;
    const ChildSink::Outcome outcome = sinks[r]->EndBatch(requests[r] == nullptr, &resp);
    if (outcome == ChildSink::Outcome::kBySender) {
      res.code = kAnsweredBySender;
      continue;
    }
    if (resp == nullptr) {
      res.code = static_cast<int32_t>(absl::StatusCode::kInternal);
      res.message = absl::StrCat("model '", spec_->name, "': the runner did not answer the request");
      continue;
    }
    if (!resp->status.ok()) {
      res.code = static_cast<int32_t>(resp->status.code());
      res.message = std::string(resp->status.message());
      continue;
    }
    for (const OutputTensor& t : resp->outputs()) {
      BatchReply::Output& o = res.outputs.emplace_back();
      const int k = spec_->OutputIndex(t.name);
      o.index = static_cast<uint32_t>(k < 0 ? 0 : k);
      o.datatype = static_cast<int32_t>(t.datatype);
      o.tensor.shape.assign(t.shape.begin(), t.shape.end());
      o.tensor.offset = static_cast<uint64_t>(t.data - region_.data());
      o.tensor.size = t.byte_size;
    }
  }
  reply_.region_size = region_.size();
  Encode(reply_, reply_frame);
  return absl::OkStatus();
}

namespace {

struct LoadedModel {
  std::shared_ptr<const ModelSpec> spec;
  std::unique_ptr<RunnerModel> model;
};

// Loads the model the server asked for; fills `reply` either way.
LoadedModel Load(const LoadMessage& load, InferenceDispatcher* dispatcher,
                 host_metrics::Registry* metrics, host_metrics::Observer* metric_observer,
                 LoadReply* reply) {
  LoadedModel out;
  reply->pid = getpid();
  auto fail = [&](const absl::Status& s) {
    reply->code = static_cast<int32_t>(s.code());
    reply->message = std::string(s.message());
    return std::move(out);
  };
  inference::ModelConfig config;
  if (!config.ParseFromString(load.config)) {
    return fail(absl::InternalError("the model config did not reach the runner host intact"));
  }
  RunnerManifest manifest;
  manifest.runner = load.runner;
  manifest.default_model_filename = load.default_model_filename;
  const bool may_complete = load.allow_config_completion != 0;
  auto spec = BuildModelSpec(config, manifest, SpecDefaults{}, /*require_io=*/!may_complete);
  if (!spec.ok()) return fail(spec.status());
  // The ABI check runs here, in the child: a runner whose library cannot be
  // opened, or whose static initialisers crash, never touches the server.
  auto library = RunnerLibrary::Open(load.library_path);
  if (!library.ok()) {
    return fail(absl::Status(library.status().code(),
                             absl::StrCat("model '", load.name, "': ", library.status().message())));
  }
  const RunnerProvenance& p = (*library)->provenance();
  reply->runner = p.runner;
  reply->runner_version = p.runner_version;
  reply->runner_build = p.runner_build;
  reply->runner_abi = p.runner_abi;

  RunnerModel::Options o;
  o.name = load.name;
  o.version = load.version;
  o.directory = load.directory;
  o.version_directory = load.version_directory;
  o.spec = std::make_shared<const ModelSpec>(std::move(*spec));
  o.first_instance = load.first_instance;
  o.instance_count = load.instance_count;
  o.dispatcher = dispatcher;
  o.metrics = metrics;
  o.metric_observer = metric_observer;
  inference::ModelConfig completed;
  bool was_completed = false;
  if (may_complete) {
    o.complete_config = [&](const std::string& json)
        -> absl::StatusOr<std::shared_ptr<const ModelSpec>> {
      auto c = ConfigFromJson(json, absl::StrCat("model '", load.name, "': completed config"));
      if (!c.ok()) return c.status();
      if (c->name().empty()) c->set_name(load.name);
      auto s = BuildModelSpec(*c, manifest, SpecDefaults{});
      if (!s.ok()) return s.status();
      completed = std::move(*c);
      was_completed = true;
      return std::make_shared<const ModelSpec>(std::move(*s));
    };
  }
  auto created = RunnerModel::Create(*library, std::move(o));
  if (!created.ok()) return fail(created.status());
  out.model = std::move(*created);
  out.spec = out.model->spec();
  if (out.spec->inputs.empty() || out.spec->outputs.empty()) {
    out.model.reset();
    return fail(absl::InvalidArgumentError(absl::StrCat(
        "model '", load.name, "': the config declares no ",
        out.spec->inputs.empty() ? "'input'" : "'output'", " and the runner did not complete it")));
  }
  reply->properties = out.model->provenance().properties;
  if (was_completed) completed.SerializeToString(&reply->completed_config);
  return out;
}

}  // namespace

int RunnerHostMain(int argc, char** argv) {
  HostArgs args;
  std::string error;
  if (!ParseArgs(argc, argv, &args, &error)) {
    std::fprintf(stderr,
                 "torii-runner-host: %s\n"
                 "torii-runner-host is started by torii-server for isolated models; it is not "
                 "run by hand.\n",
                 error.c_str());
    return 2;
  }
  CloseChannelsOnExec(args);
  signal(SIGPIPE, SIG_IGN);

  // Reserved address space counts against RLIMIT_AS (memory_limit_mb): a
  // limited child reserves a quarter of its limit for all its regions (the
  // instances' and the two heaps).
  size_t max_region = SharedRegion::kDefaultMaxSize;
  struct rlimit limit;
  if (getrlimit(RLIMIT_AS, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    max_region = std::min<size_t>(max_region, std::max<size_t>(size_t{4} << 20,
        static_cast<size_t>(limit.rlim_cur) / 4 / (args.instances.size() + 2)));
  }
  auto child_heap = SharedRegion::Adopt(args.child_heap_fd, max_region);
  auto parent_heap = SharedRegion::Adopt(args.parent_heap_fd, max_region);
  if (!child_heap.ok() || !parent_heap.ok()) {
    LogError("runner host cannot map its shared heaps", {{"model", args.model}});
    return 4;
  }
  // The events channel exists from the start: the runner's log lines during
  // the load already go to the server.
  ChildEvents events(args.control_fd, std::move(*child_heap), std::move(*parent_heap));
  g_events = &events;
  SetRunnerLogForwarder([](const ToriiModel* m, ToriiLogLevel level, const char* message) {
    g_events->ForwardLog(m, level, message);
  });
  SetSenderResponseFactory([] { return std::make_unique<HeapResponse>(&g_events->heap()); });
  ChildDispatcher dispatcher;
  // This process's view of the runner's metrics: it checks each operation
  // and answers metric_value without a round trip; the server's registry
  // gets every operation through `events`.
  host_metrics::Registry metrics;

  // The load request.
  FrameReader control;
  std::string frame;
  MessageType type;
  absl::string_view body;
  LoadMessage load;
  ReadOutcome got;
  while ((got = control.Next(&type, &body, &error)) == ReadOutcome::kTimeout) {
    got = control.Fill(args.control_fd, /*block=*/true, &error);
    if (got == ReadOutcome::kClosed || got == ReadOutcome::kError) return 3;
  }
  if (got != ReadOutcome::kFrame || type != MessageType::kLoad || !Decode(body, &load).ok()) {
    return 3;  // the server went away before asking for anything
  }
  LoadReply reply;
  LoadedModel loaded;
  if (load.instance_count != args.instances.size()) {
    reply.code = static_cast<int32_t>(absl::StatusCode::kInternal);
    reply.message = "instance count and channels differ";
  } else {
    loaded = Load(load, &dispatcher, &metrics, &events, &reply);
  }
  // Calls to other models work from the first batch on, which may come as
  // soon as the reply is out (calls during the load itself are refused).
  if (reply.code == 0) events.set_ready();
  Encode(reply, &frame);
  if (!events.Send(frame) || reply.code != 0) return reply.code != 0 ? 1 : 3;

  std::vector<std::unique_ptr<InstanceServer>> servers;
  for (size_t i = 0; i < args.instances.size(); ++i) {
    auto region = SharedRegion::Adopt(args.instances[i].second, max_region);
    if (!region.ok()) {
      LogError("runner host cannot map its shared region",
               {{"model", load.name}, {"reason", std::string(region.status().message())}});
      return 4;
    }
    servers.push_back(std::make_unique<InstanceServer>(
        loaded.model.get(), loaded.spec, i, args.instances[i].first, std::move(*region), &events));
  }
  std::vector<std::thread> threads;
  for (auto& s : servers) {
    threads.emplace_back([&s, &load] {
      absl::Status st = s->Serve();
      if (!st.ok()) {
        LogError("runner host instance stopped",
                 {{"model", load.name}, {"reason", std::string(st.message())}});
        // The server cannot use this instance any more: leave, so it restarts us.
        std::_Exit(5);
      }
    });
  }
  // Acknowledgements, cancellations and call results, until the server
  // closes its side of the events channel: the unload.
  events.Serve();
  for (const auto& a : args.instances) shutdown(a.first, SHUT_RDWR);
  for (auto& t : threads) t.join();
  // Every call the runner made has had its last callback before the model
  // goes away.
  events.WaitResultsDelivered();
  // Destroys the instances and unloads the model; requests still open get
  // their final error on the events channel, which the server still reads.
  loaded.model.reset();
  // Leave without running other libraries' exit-time destructors (a runner
  // may have left threads behind): the model is unloaded, nothing is lost.
  std::fflush(nullptr);
  std::_Exit(0);
}

}  // namespace isolation
}  // namespace torii
