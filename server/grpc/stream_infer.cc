#include "server/grpc/stream_infer.h"

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

// Bidirectional stream: every request is answered on the stream (errors in
// error_message); a bad request never ends the stream. Requests run
// concurrently; writes go out one at a time in completion order.
class StreamReactor
    : public grpc::ServerBidiReactor<inference::ModelInferRequest, inference::ModelStreamInferResponse> {
 public:
  StreamReactor(InferenceService* service, CallbackServerContext* ctx,
                std::atomic<int64_t>* in_flight)
      : service_(service), ctx_(ctx), in_flight_(in_flight) {
    StartRead(&incoming_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      bool finish;
      {
        std::lock_guard<std::mutex> lock(mu_);
        reads_done_ = true;
        finish = ShouldFinishLocked();
      }
      if (finish) Finish(grpc::Status::OK);
      return;
    }
    auto call = std::make_shared<Call>(this);
    call->request = std::move(incoming_);
    incoming_.Clear();
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++pending_;
    }
    ++*in_flight_;
    StartRead(&incoming_);
    auto r = NewRequest(ctx_, call);
    absl::Status s = RequestFromWire(call->request, r.get(), &call->converted);
    if (!s.ok()) {
      r->RespondError(s);
      return;
    }
    InlineScope may_run_here(service_->inline_budget());
    service_->core().Infer(std::move(r));
  }

  void OnWriteDone(bool ok) override {
    bool finish;
    {
      std::lock_guard<std::mutex> lock(mu_);
      writes_.pop_front();
      --*in_flight_;
      writing_ = false;
      if (!ok) write_failed_ = true;
      finish = WriteNextLocked();
    }
    // Finish outside the lock: gRPC may call OnDone (which deletes this) on
    // another thread as soon as Finish is called.
    if (finish) Finish(grpc::Status::OK);
  }

  void OnDone() override {
    // Finish() is only called once no request is pending, so no sink can
    // touch `this` any more.
    delete this;
  }

 private:
  // One request of the stream and the sink of its response.
  struct Call : ResponseSink, std::enable_shared_from_this<Call> {
    explicit Call(StreamReactor* stream) : stream(stream) {}
    std::unique_ptr<InferenceResponse> NewResponse() override {
      return std::make_unique<WireResponse>();
    }
    void Deliver(std::unique_ptr<InferenceResponse> response, bool final) override {
      if (!final) return;
      if (response != nullptr && response->status.ok()) {
        reply.mutable_infer_response()->Swap(&static_cast<WireResponse&>(*response).Finish());
      } else {
        reply.set_error_message(response == nullptr ? "" : std::string(response->status.message()));
        // Keep the id so a client can match the error to its request.
        reply.mutable_infer_response()->set_id(request.id());
        reply.mutable_infer_response()->set_model_name(request.model_name());
      }
      // Kept alive by the write queue until written (the request that
      // holds it goes away when this returns).
      stream->Enqueue(shared_from_this());
    }

    StreamReactor* stream;
    inference::ModelInferRequest request;
    std::vector<std::string> converted;
    inference::ModelStreamInferResponse reply;
  };

  void Enqueue(std::shared_ptr<Call> call) {
    bool finish;
    {
      std::lock_guard<std::mutex> lock(mu_);
      --pending_;
      writes_.push_back(std::move(call));
      finish = writing_ ? false : WriteNextLocked();
    }
    if (finish) Finish(grpc::Status::OK);
  }

  // Starts the next write, or drops what is left after a failed write.
  // Returns true when the stream should finish now.
  bool WriteNextLocked() {
    if (write_failed_) {
      *in_flight_ -= static_cast<int64_t>(writes_.size());
      writes_.clear();
    }
    if (writes_.empty()) return ShouldFinishLocked();
    writing_ = true;
    StartWrite(&writes_.front()->reply);
    return false;
  }

  bool ShouldFinishLocked() {
    if (reads_done_ && pending_ == 0 && !writing_ && writes_.empty() && !finished_) {
      finished_ = true;
      return true;
    }
    return false;
  }

  InferenceService* service_;
  CallbackServerContext* ctx_;
  std::atomic<int64_t>* in_flight_;
  inference::ModelInferRequest incoming_;
  std::mutex mu_;
  // Calls answered and waiting to be written (the front one is being written).
  std::deque<std::shared_ptr<Call>> writes_;
  int pending_ = 0;
  bool writing_ = false;
  bool reads_done_ = false;
  bool write_failed_ = false;
  bool finished_ = false;
};

}  // namespace

grpc::ServerBidiReactor<inference::ModelInferRequest, inference::ModelStreamInferResponse>*
NewStreamReactor(InferenceService* service, grpc::CallbackServerContext* ctx,
                 std::atomic<int64_t>* in_flight) {
  return new StreamReactor(service, ctx, in_flight);
}

}  // namespace torii
