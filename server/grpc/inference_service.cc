#include "server/grpc/inference_service.h"

#include <deque>
#include <memory>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "server/grpc/status_util.h"
#include "torii/runner.h"

namespace torii {
namespace {

using grpc::CallbackServerContext;
using grpc::ServerUnaryReactor;

constexpr char kServerName[] = "torii";
constexpr char kServerVersion[] = "0.1.0";

ServerUnaryReactor* Reply(CallbackServerContext* ctx, const absl::Status& s) {
  ServerUnaryReactor* r = ctx->DefaultReactor();
  r->Finish(ToGrpcStatus(s));
  return r;
}

// The client's deadline on the steady clock the scheduler uses.
InferenceRequest::Clock::time_point SteadyDeadline(const CallbackServerContext* ctx) {
  const auto deadline = ctx->deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) {
    return InferenceRequest::Clock::time_point::max();
  }
  const auto left = deadline - std::chrono::system_clock::now();
  return InferenceRequest::Clock::now() +
         std::chrono::duration_cast<InferenceRequest::Clock::duration>(left);
}

void FillTensorMetadata(const ModelSignature& sig, const TensorSignature& t,
                        inference::ModelMetadataResponse::TensorMetadata* out) {
  out->set_name(t.name);
  out->set_datatype(DataTypeName(t.datatype));
  for (int64_t d : sig.WireShape(t)) out->add_shape(d);
}

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
      std::lock_guard<std::mutex> lock(mu_);
      reads_done_ = true;
      MaybeFinishLocked();
      return;
    }
    auto call = std::make_shared<Call>();
    call->request = std::move(incoming_);
    incoming_.Clear();
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++pending_;
    }
    ++*in_flight_;
    StartRead(&incoming_);
    service_->Infer(ctx_, &call->request, call->response.mutable_infer_response(),
                    [this, call](const absl::Status& s) {
                      if (!s.ok()) {
                        call->response.clear_infer_response();
                        call->response.set_error_message(std::string(s.message()));
                        // Keep the id so a client can match the error to its request.
                        call->response.mutable_infer_response()->set_id(call->request.id());
                        call->response.mutable_infer_response()->set_model_name(
                            call->request.model_name());
                      }
                      std::lock_guard<std::mutex> lock(mu_);
                      --pending_;
                      writes_.push_back(call);
                      if (!writing_) WriteNextLocked();
                    });
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    writes_.pop_front();
    --*in_flight_;
    writing_ = false;
    if (!ok) write_failed_ = true;
    if (!writes_.empty() && !write_failed_) {
      WriteNextLocked();
    } else {
      if (write_failed_) {
        *in_flight_ -= static_cast<int64_t>(writes_.size());
        writes_.clear();
      }
      MaybeFinishLocked();
    }
  }

  void OnDone() override {
    // Finish() is only called once no request is pending, so no callback can
    // touch `this` any more.
    delete this;
  }

 private:
  struct Call {
    inference::ModelInferRequest request;
    inference::ModelStreamInferResponse response;
  };

  void WriteNextLocked() {
    if (write_failed_) {
      *in_flight_ -= static_cast<int64_t>(writes_.size());
      writes_.clear();
      MaybeFinishLocked();
      return;
    }
    writing_ = true;
    StartWrite(&writes_.front()->response);
  }

  void MaybeFinishLocked() {
    if (reads_done_ && pending_ == 0 && !writing_ && writes_.empty() && !finished_) {
      finished_ = true;
      Finish(grpc::Status::OK);
    }
  }

  InferenceService* service_;
  CallbackServerContext* ctx_;
  std::atomic<int64_t>* in_flight_;
  inference::ModelInferRequest incoming_;
  std::mutex mu_;
  std::deque<std::shared_ptr<Call>> writes_;
  int pending_ = 0;
  bool writing_ = false;
  bool reads_done_ = false;
  bool write_failed_ = false;
  bool finished_ = false;
};

// A stream refused before it starts (restricted protocol).
class RefusedStream
    : public grpc::ServerBidiReactor<inference::ModelInferRequest, inference::ModelStreamInferResponse> {
 public:
  explicit RefusedStream(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace

absl::Status InferenceService::CheckRestricted(const CallbackServerContext* ctx,
                                              const char* protocol) const {
  auto it = options_.restricted.find(protocol);
  if (it == options_.restricted.end()) return absl::OkStatus();
  const auto& md = ctx->client_metadata();
  auto found = md.find(it->second.header);
  if (found != md.end() &&
      absl::string_view(found->second.data(), found->second.size()) == it->second.value) {
    return absl::OkStatus();
  }
  return absl::PermissionDeniedError(absl::StrCat(
      "this API (", protocol, ") is restricted: the request needs the header '",
      it->second.header, "' with the configured value"));
}

bool InferenceService::IsReady() const {
  if (!started_ || shutting_down_) return false;
  return !options_.strict_readiness || options_.manager->AllReady();
}

ServerUnaryReactor* InferenceService::ServerLive(CallbackServerContext* ctx,
                                                 const inference::ServerLiveRequest*,
                                                 inference::ServerLiveResponse* resp) {
  if (absl::Status st = CheckRestricted(ctx, "health"); !st.ok()) return Reply(ctx, st);
  // Live whenever the process serves RPCs, whatever models are doing.
  resp->set_live(true);
  return Reply(ctx, absl::OkStatus());
}

ServerUnaryReactor* InferenceService::ServerReady(CallbackServerContext* ctx,
                                                  const inference::ServerReadyRequest*,
                                                  inference::ServerReadyResponse* resp) {
  if (absl::Status st = CheckRestricted(ctx, "health"); !st.ok()) return Reply(ctx, st);
  resp->set_ready(IsReady());
  return Reply(ctx, absl::OkStatus());
}

ServerUnaryReactor* InferenceService::ModelReady(CallbackServerContext* ctx,
                                                 const inference::ModelReadyRequest* req,
                                                 inference::ModelReadyResponse* resp) {
  if (absl::Status st = CheckRestricted(ctx, "health"); !st.ok()) return Reply(ctx, st);
  auto mv = options_.manager->Get(req->name(), req->version());
  if (mv.ok()) {
    // Loaded, and its runner can execute (an isolated runner may be restarting).
    resp->set_ready((*mv)->CanServe());
    return Reply(ctx, absl::OkStatus());
  }
  // A known model that is not ready is "not ready", not an error.
  if (absl::IsUnavailable(mv.status())) {
    resp->set_ready(false);
    return Reply(ctx, absl::OkStatus());
  }
  return Reply(ctx, mv.status());
}

ServerUnaryReactor* InferenceService::ServerMetadata(CallbackServerContext* ctx,
                                                     const inference::ServerMetadataRequest*,
                                                     inference::ServerMetadataResponse* resp) {
  if (absl::Status st = CheckRestricted(ctx, "metadata"); !st.ok()) return Reply(ctx, st);
  resp->set_name(kServerName);
  resp->set_version(kServerVersion);
  for (const char* ext : {"model_configuration", "statistics", "model_repository",
                          "schedule_policy"}) {
    resp->add_extensions(ext);
  }
  return Reply(ctx, absl::OkStatus());
}

ServerUnaryReactor* InferenceService::ModelMetadata(CallbackServerContext* ctx,
                                                    const inference::ModelMetadataRequest* req,
                                                    inference::ModelMetadataResponse* resp) {
  if (absl::Status st = CheckRestricted(ctx, "metadata"); !st.ok()) return Reply(ctx, st);
  auto mv = options_.manager->Get(req->name(), req->version());
  if (!mv.ok()) return Reply(ctx, mv.status());
  const ModelVersion& m = **mv;
  resp->set_name(m.name);
  for (const auto& v : options_.manager->ReadyVersions(m.name)) resp->add_versions(v->version_string);
  const RunnerProvenance& p = m.library->provenance();
  resp->set_platform(m.config.platform().empty() ? p.runner : m.config.platform());
  for (const auto& t : m.signature->inputs()) FillTensorMetadata(*m.signature, t, resp->add_inputs());
  for (const auto& t : m.signature->outputs()) FillTensorMetadata(*m.signature, t, resp->add_outputs());
  auto& props = *resp->mutable_properties();
  props["runner"] = p.runner;
  props["runner_version"] = p.runner_version;
  props["runner_build"] = p.runner_build;
  props["runner_abi"] = p.runner_abi;
  return Reply(ctx, absl::OkStatus());
}

void InferenceService::Infer(CallbackServerContext* ctx, const inference::ModelInferRequest* req,
                             inference::ModelInferResponse* resp,
                             std::function<void(const absl::Status&)> done) {
  if (shutting_down_) {
    done(absl::UnavailableError("the server is shutting down; retry on another replica"));
    return;
  }
  // A version may start draining between lookup and enqueue during a reload;
  // look it up again then, so a reload never fails a request.
  for (int attempt = 0;; ++attempt) {
    auto mv = options_.manager->Get(req->model_name(), req->model_version());
    if (!mv.ok()) {
      done(mv.status());
      return;
    }
    std::shared_ptr<ModelVersion> model = *std::move(mv);
    auto ir = std::make_unique<InferenceRequest>();
    ir->arrival = InferenceRequest::Clock::now();
    absl::Status s = ValidateRequest(model->name, *model->signature, *req, options_.limits, ir.get());
    // Failures before the queue count as failed requests of the model too.
    auto fail = [&](const absl::Status& st) {
      const uint64_t ns = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                    InferenceRequest::Clock::now() - ir->arrival)
                                                    .count());
      model->stats.RecordRequest(false, 0, ns, 0);
      done(st);
    };
    if (!s.ok()) {
      fail(s);
      return;
    }
    resp->Clear();
    resp->set_model_name(model->name);
    resp->set_model_version(model->version_string);
    resp->set_id(req->id());
    ir->response = resp;
    ir->deadline = SteadyDeadline(ctx);
    ir->is_cancelled = [ctx] { return ctx->IsCancelled(); };
    // The handle rides with the request: the version stays alive until done.
    ir->done = [done, model](const absl::Status& st) { done(st); };
    s = model->scheduler->Enqueue(ir);
    if (s.ok()) return;
    if (absl::IsUnavailable(s) && model->scheduler->stopping() && attempt < 3 && !shutting_down_) {
      continue;
    }
    fail(s);
    return;
  }
}

namespace {

// A unary inference call, counted in flight until gRPC reports the response
// sent (OnDone), so shutdown never exits with an answer still unsent.
class InferReactor : public ServerUnaryReactor {
 public:
  explicit InferReactor(std::atomic<int64_t>* in_flight) : in_flight_(in_flight) { ++*in_flight_; }
  void OnDone() override {
    --*in_flight_;
    delete this;
  }

 private:
  std::atomic<int64_t>* in_flight_;
};

}  // namespace

ServerUnaryReactor* InferenceService::ModelInfer(CallbackServerContext* ctx,
                                                 const inference::ModelInferRequest* req,
                                                 inference::ModelInferResponse* resp) {
  auto* reactor = new InferReactor(&in_flight_);
  if (absl::Status st = CheckRestricted(ctx, "inference"); !st.ok()) {
    reactor->Finish(ToGrpcStatus(st));
    return reactor;
  }
  Infer(ctx, req, resp, [reactor](const absl::Status& s) { reactor->Finish(ToGrpcStatus(s)); });
  return reactor;
}

grpc::ServerBidiReactor<inference::ModelInferRequest, inference::ModelStreamInferResponse>*
InferenceService::ModelStreamInfer(CallbackServerContext* ctx) {
  if (absl::Status st = CheckRestricted(ctx, "inference"); !st.ok()) {
    return new RefusedStream(ToGrpcStatus(st));
  }
  return new StreamReactor(this, ctx, &in_flight_);
}

ServerUnaryReactor* InferenceService::ModelConfig(CallbackServerContext* ctx,
                                                  const inference::ModelConfigRequest* req,
                                                  inference::ModelConfigResponse* resp) {
  if (absl::Status st = CheckRestricted(ctx, "model-config"); !st.ok()) return Reply(ctx, st);
  auto mv = options_.manager->Get(req->name(), req->version());
  if (!mv.ok()) return Reply(ctx, mv.status());
  *resp->mutable_config() = (*mv)->config;
  return Reply(ctx, absl::OkStatus());
}

ServerUnaryReactor* InferenceService::ModelStatistics(CallbackServerContext* ctx,
                                                      const inference::ModelStatisticsRequest* req,
                                                      inference::ModelStatisticsResponse* resp) {
  if (absl::Status st = CheckRestricted(ctx, "statistics"); !st.ok()) return Reply(ctx, st);
  std::vector<std::shared_ptr<ModelVersion>> versions;
  if (req->name().empty()) {
    for (const auto& e : options_.manager->Index()) {
      if (e.state != "READY") continue;
      auto mv = options_.manager->Get(e.name, e.version);
      if (mv.ok()) versions.push_back(*mv);
    }
  } else {
    if (req->version().empty()) {
      versions = options_.manager->ReadyVersions(req->name());
      if (versions.empty()) {
        auto mv = options_.manager->Get(req->name(), "");
        return Reply(ctx, mv.status());
      }
    } else {
      auto mv = options_.manager->Get(req->name(), req->version());
      if (!mv.ok()) return Reply(ctx, mv.status());
      versions.push_back(*mv);
    }
  }
  for (const auto& mv : versions) {
    auto* s = resp->add_model_stats();
    s->set_name(mv->name);
    s->set_version(mv->version_string);
    mv->stats.Fill(s);
  }
  return Reply(ctx, absl::OkStatus());
}

ServerUnaryReactor* InferenceService::RepositoryIndex(CallbackServerContext* ctx,
                                                      const inference::RepositoryIndexRequest* req,
                                                      inference::RepositoryIndexResponse* resp) {
  if (absl::Status st = CheckRestricted(ctx, "model-repository"); !st.ok()) return Reply(ctx, st);
  std::set<std::string> known;
  for (const auto& e : options_.manager->Index()) {
    known.insert(e.name);
    if (req->ready() && e.state != "READY") continue;
    auto* m = resp->add_models();
    m->set_name(e.name);
    m->set_version(e.version);
    m->set_state(e.state);
    m->set_reason(e.reason);
  }
  if (!req->ready()) {
    // Models on disk the server has not loaded (explicit mode) are listed too.
    for (const auto& name : options_.manager->ScanRepository()) {
      if (known.count(name) != 0) continue;
      auto* m = resp->add_models();
      m->set_name(name);
      m->set_state("UNAVAILABLE");
      m->set_reason("not loaded");
    }
  }
  return Reply(ctx, absl::OkStatus());
}

// Load and unload share their checks; the work runs off the gRPC callback
// thread because loading can take seconds.
ServerUnaryReactor* InferenceService::RepositoryAction(
    CallbackServerContext* ctx, const std::string& model_name, bool has_parameters,
    std::function<absl::Status(const std::string&)> action) {
  if (absl::Status st = CheckRestricted(ctx, "model-repository"); !st.ok()) return Reply(ctx, st);
  if (!options_.explicit_model_control) {
    return Reply(ctx, absl::UnavailableError(
                          "explicit model load/unload is not allowed; start the server with "
                          "--model-control-mode=explicit"));
  }
  if (!IsPlainName(model_name)) {
    return Reply(ctx, absl::InvalidArgumentError(absl::StrCat(
                          "model name '", model_name,
                          "' must be a plain directory name in the repository")));
  }
  if (has_parameters) {
    return Reply(ctx, absl::InvalidArgumentError(
                          "repository load/unload parameters (config or file overrides) are not "
                          "supported"));
  }
  ServerUnaryReactor* reactor = ctx->DefaultReactor();
  std::thread([reactor, model_name, action = std::move(action)] {
    reactor->Finish(ToGrpcStatus(action(model_name)));
  }).detach();
  return reactor;
}

ServerUnaryReactor* InferenceService::RepositoryModelLoad(
    CallbackServerContext* ctx, const inference::RepositoryModelLoadRequest* req,
    inference::RepositoryModelLoadResponse*) {
  return RepositoryAction(ctx, req->model_name(), !req->parameters().empty(),
                          [this](const std::string& name) { return options_.manager->Load(name); });
}

ServerUnaryReactor* InferenceService::RepositoryModelUnload(
    CallbackServerContext* ctx, const inference::RepositoryModelUnloadRequest* req,
    inference::RepositoryModelUnloadResponse*) {
  return RepositoryAction(ctx, req->model_name(), !req->parameters().empty(),
                          [this](const std::string& name) { return options_.manager->Unload(name); });
}

}  // namespace torii
