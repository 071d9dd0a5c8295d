#include "server/grpc/stream_infer.h"

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "server/grpc/inference_service.h"
#include "server/grpc/wire_request.h"

namespace torii {
namespace {

using grpc::CallbackServerContext;
using inference::ModelStreamInferResponse;

constexpr char kEnableEmptyFinal[] = "triton_enable_empty_final_response";
constexpr char kFinalResponse[] = "triton_final_response";

// What one stream holds: its write queue and the state its requests' sinks
// share. Owned jointly by the reactor and every request of the stream, so a
// sink a runner still holds never touches a reactor gRPC has deleted.
struct StreamState {
  struct Outgoing {
    ModelStreamInferResponse message;
    bool final = false;  // the last message of its request
  };

  std::mutex mu;
  std::condition_variable room;  // signalled when a write completes or the client goes
  // Messages not yet written; the front one is being written.
  std::deque<std::unique_ptr<Outgoing>> writes;
  int open_requests = 0;  // read and not yet answered with their final
  bool writing = false;
  bool reads_done = false;
  bool gone = false;      // the client cancelled, or a write failed
  bool finished = false;  // Finish() was called
  grpc::ServerBidiReactor<inference::ModelInferRequest, ModelStreamInferResponse>* reactor =
      nullptr;
  std::atomic<int64_t>* in_flight = nullptr;
};

// One request of the stream and the sink of its responses.
class Call : public ResponseSink {
 public:
  explicit Call(std::shared_ptr<StreamState> state) : state_(std::move(state)) {}

  std::unique_ptr<InferenceResponse> NewResponse() override {
    if (binding.has_outputs()) return std::make_unique<SharedMemoryWireResponse>(&binding);
    return std::make_unique<WireResponse>();
  }
  void Deliver(std::unique_ptr<InferenceResponse> response, bool final) override;
  bool AwaitCapacity(const InferenceRequest& request) override;

  inference::ModelInferRequest request;
  std::vector<std::string> converted;
  SharedMemoryBinding binding;  // regions the request's tensors live in
  bool empty_final = false;  // the client asked for triton_enable_empty_final_response

 private:
  // Fills the id, model and version the way Triton does for messages that
  // carry no inference result of their own (errors, the empty final).
  void Identify(inference::ModelInferResponse* out) const {
    out->set_id(request.id());
    out->set_model_name(request.model_name());
    out->set_model_version(request.model_version());
  }

  std::shared_ptr<StreamState> state_;
};

// Starts the next write, or drops what is left once the client is gone.
// Returns true when the stream should finish now. `s.mu` held.
bool WriteNextLocked(StreamState& s) {
  if (s.gone && !s.writing) {
    for (const auto& w : s.writes) {
      if (w->final) --*s.in_flight;
    }
    s.writes.clear();
  }
  if (!s.writing && !s.writes.empty()) {
    s.writing = true;
    s.reactor->StartWrite(&s.writes.front()->message);
    return false;
  }
  if (s.reads_done && s.open_requests == 0 && !s.writing && s.writes.empty() && !s.finished) {
    s.finished = true;
    return true;
  }
  return false;
}

void Call::Deliver(std::unique_ptr<InferenceResponse> response, bool final) {
  auto out = std::make_unique<StreamState::Outgoing>();
  out->final = final;
  bool write = true;
  // A region truncated under the request: what the runner read or wrote
  // there is lost, so the answer is an error whatever the runner said.
  if (response != nullptr && response->status.ok() && !binding.empty()) {
    absl::Status intact = binding.CheckIntact();
    if (!intact.ok()) response->status = intact;
  }
  if (response != nullptr && response->status.ok()) {
    out->message.mutable_infer_response()->Swap(&static_cast<WireResponse&>(*response).Finish());
  } else if (response != nullptr) {
    out->message.set_error_message(std::string(response->status.message()));
    // Keep the id so a client can match the error to its request.
    Identify(out->message.mutable_infer_response());
  } else if (final && empty_final) {
    Identify(out->message.mutable_infer_response());  // the final flag alone
  } else {
    write = false;  // a final flag alone, which the client did not ask to see
  }
  if (write) {
    // Every message says whether it is its request's last (as Triton does).
    (*out->message.mutable_infer_response()->mutable_parameters())[kFinalResponse]
        .set_bool_param(final);
  }
  StreamState& s = *state_;
  bool finish;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    if (final) --s.open_requests;
    if (write && !s.gone) {
      s.writes.push_back(std::move(out));
    } else if (final) {
      --*s.in_flight;  // nothing to write for this request's end
    }
    finish = WriteNextLocked(s);
  }
  // Finish outside the lock: gRPC may call OnDone (which deletes the
  // reactor) on another thread as soon as Finish is called.
  if (finish) s.reactor->Finish(grpc::Status::OK);
}

bool Call::AwaitCapacity(const InferenceRequest& request) {
  StreamState& s = *state_;
  std::unique_lock<std::mutex> lock(s.mu);
  auto room = [&] { return s.gone || s.writes.size() < kStreamMaxUnwritten; };
  if (request.deadline == InferenceRequest::Clock::time_point::max()) {
    s.room.wait(lock, room);
  } else if (!s.room.wait_until(lock, request.deadline, room)) {
    return false;  // the request's deadline passed while the client did not read
  }
  return !s.gone;
}

// Bidirectional stream: every request is answered on the stream (errors in
// error_message); a bad request never ends the stream. Requests run
// concurrently; a decoupled model's responses are written as they are sent,
// in order per request, each request's after one another in the order they
// were delivered.
class StreamReactor
    : public grpc::ServerBidiReactor<inference::ModelInferRequest, ModelStreamInferResponse> {
 public:
  StreamReactor(InferenceService* service, CallbackServerContext* ctx,
                std::atomic<int64_t>* in_flight)
      : service_(service), ctx_(ctx), state_(std::make_shared<StreamState>()) {
    state_->reactor = this;
    state_->in_flight = in_flight;
    StartRead(&incoming_);
  }

  void OnReadDone(bool ok) override {
    StreamState& s = *state_;
    if (!ok) {
      bool finish;
      {
        std::lock_guard<std::mutex> lock(s.mu);
        s.reads_done = true;
        finish = WriteNextLocked(s);
      }
      if (finish) Finish(grpc::Status::OK);
      return;
    }
    auto call = std::make_shared<Call>(state_);
    call->request = std::move(incoming_);
    incoming_.Clear();
    auto p = call->request.parameters().find(kEnableEmptyFinal);
    call->empty_final = p != call->request.parameters().end() && p->second.bool_param();
    {
      std::lock_guard<std::mutex> lock(s.mu);
      ++s.open_requests;
    }
    ++*s.in_flight;
    StartRead(&incoming_);
    auto r = NewRequest(ctx_, call);
    // Cancelled once the client is gone, whether it said so or stopped
    // taking writes. The context is read under the stream's lock, which
    // OnDone takes before gRPC destroys the context: a request that
    // outlives its stream (a runner still holding it) never touches it.
    r->is_cancelled = [state = state_.get(), ctx = ctx_] {
      std::lock_guard<std::mutex> lock(state->mu);
      return state->gone || state->reactor == nullptr || ctx->IsCancelled();
    };
    absl::Status st =
        UsesSharedMemory(call->request)
            ? RequestFromWireWithSharedMemory(call->request, service_->shared_memory(), r.get(),
                                              &call->converted, &call->binding)
            : RequestFromWire(call->request, r.get(), &call->converted);
    if (!st.ok()) {
      r->RespondError(st);
      return;
    }
    InlineScope may_run_here(service_->inline_budget());
    service_->core().Infer(std::move(r));
  }

  void OnWriteDone(bool ok) override {
    StreamState& s = *state_;
    bool finish;
    {
      std::lock_guard<std::mutex> lock(s.mu);
      if (s.writes.front()->final) --*s.in_flight;
      s.writes.pop_front();
      s.writing = false;
      if (!ok) s.gone = true;
      finish = WriteNextLocked(s);
    }
    s.room.notify_all();
    if (finish) Finish(grpc::Status::OK);
  }

  void OnCancel() override {
    StreamState& s = *state_;
    {
      std::lock_guard<std::mutex> lock(s.mu);
      s.gone = true;
    }
    s.room.notify_all();
  }

  void OnDone() override {
    // Finish() is only called once every request got its final response, so
    // no sink will start a write any more; a runner that kept a sink past
    // that only finds a finished state.
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      state_->reactor = nullptr;
      state_->gone = true;
    }
    state_->room.notify_all();
    delete this;
  }

 private:
  InferenceService* service_;
  CallbackServerContext* ctx_;
  std::shared_ptr<StreamState> state_;
  inference::ModelInferRequest incoming_;
};

}  // namespace

grpc::ServerBidiReactor<inference::ModelInferRequest, ModelStreamInferResponse>*
NewStreamReactor(InferenceService* service, grpc::CallbackServerContext* ctx,
                 std::atomic<int64_t>* in_flight) {
  return new StreamReactor(service, ctx, in_flight);
}

}  // namespace torii
