#include "server/grpc/inference_service.h"

#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "server/grpc/status_util.h"
#include "server/grpc/stream_infer.h"
#include "server/grpc/wire_request.h"
#include "server/core/datatype.h"

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

void FillTensorMetadata(const ModelSpec& spec, const TensorSpec& t,
                        inference::ModelMetadataResponse::TensorMetadata* out) {
  out->set_name(t.name);
  out->set_datatype(DataTypeName(t.datatype));
  for (int64_t d : spec.WireShape(t)) out->add_shape(d);
}

void PutDuration(const ModelStatistics::Duration& d, inference::StatisticDuration* out) {
  out->set_count(d.count);
  out->set_ns(d.ns);
}

// Triton's ModelStatistics message from a snapshot (name/version by the caller).
void FillStatistics(const ModelStatistics::Snapshot& snap, inference::ModelStatistics* out) {
  out->set_last_inference(snap.last_inference_ms);
  out->set_inference_count(snap.inference_count);
  out->set_execution_count(snap.execution_count);
  auto* s = out->mutable_inference_stats();
  PutDuration(snap.success, s->mutable_success());
  PutDuration(snap.fail, s->mutable_fail());
  PutDuration(snap.queue, s->mutable_queue());
  PutDuration(snap.compute_input, s->mutable_compute_input());
  PutDuration(snap.compute_infer, s->mutable_compute_infer());
  PutDuration(snap.compute_output, s->mutable_compute_output());
  s->mutable_cache_hit();
  s->mutable_cache_miss();
  for (const auto& [size, b] : snap.batches) {
    auto* bs = out->add_batch_stats();
    bs->set_batch_size(size);
    PutDuration(b.input, bs->mutable_compute_input());
    PutDuration(b.infer, bs->mutable_compute_infer());
    PutDuration(b.output, bs->mutable_compute_output());
  }
}

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

// Where a unary call's one response goes: swapped into the message gRPC
// sends (no copy of the outputs), then the reactor finishes.
class UnarySink : public ResponseSink {
 public:
  UnarySink(ServerUnaryReactor* reactor, inference::ModelInferResponse* wire)
      : reactor_(reactor), wire_(wire) {}
  std::unique_ptr<InferenceResponse> NewResponse() override {
    return std::make_unique<WireResponse>();
  }
  void Deliver(std::unique_ptr<InferenceResponse> response, bool final) override {
    if (!final) return;  // a unary caller takes one response; decoupled models are refused
    if (response != nullptr && response->status.ok()) {
      wire_->Swap(&static_cast<WireResponse&>(*response).Finish());
    }
    // Nothing may touch the reactor after Finish: gRPC may delete it.
    ServerUnaryReactor* reactor = reactor_;
    reactor_ = nullptr;
    reactor->Finish(response == nullptr ? grpc::Status::OK : ToGrpcStatus(response->status));
  }
  std::vector<std::string>* converted() { return &converted_; }

 private:
  ServerUnaryReactor* reactor_;
  inference::ModelInferResponse* wire_;
  std::vector<std::string> converted_;  // typed contents turned into raw bytes
};

// A stream refused before it starts (restricted protocol).
class RefusedStream
    : public grpc::ServerBidiReactor<inference::ModelInferRequest, inference::ModelStreamInferResponse> {
 public:
  explicit RefusedStream(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace

std::unique_ptr<InferenceRequest> NewRequest(const CallbackServerContext* ctx,
                                             std::shared_ptr<ResponseSink> sink) {
  auto r = std::make_unique<InferenceRequest>();
  r->deadline = SteadyDeadline(ctx);
  r->is_cancelled = [ctx] { return ctx->IsCancelled(); };
  r->sink = std::move(sink);
  return r;
}

InferenceRequest::Clock::time_point SteadyDeadline(const CallbackServerContext* ctx) {
  const auto deadline = ctx->deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) {
    return InferenceRequest::Clock::time_point::max();
  }
  const auto left = deadline - std::chrono::system_clock::now();
  return InferenceRequest::Clock::now() +
         std::chrono::duration_cast<InferenceRequest::Clock::duration>(left);
}

// gRPC 1.51 runs callback-API handlers on max(2, min(16, cores / 2))
// threads. Runners may hold at most half of them at once (at least one), so a
// runner that hangs inline always leaves gRPC threads to serve other models.
static int GrpcInlineBudget() {
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  const int callback_threads = std::max(2, std::min(16, cores / 2));
  return std::max(1, callback_threads / 2);
}

InferenceService::InferenceService(Options options)
    : options_(std::move(options)),
      repository_pool_(std::make_unique<TaskPool>(options_.repository_threads,
                                                   /*max_queued=*/64)),
      inline_budget_(GrpcInlineBudget()) {}

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
  if (!started_ || options_.core->shutting_down()) return false;
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
  // Loaded, and its runner can execute (an isolated runner may be
  // restarting). An unknown model or version is "not ready", as in Triton.
  resp->set_ready(mv.ok() && (*mv)->CanServe());
  return Reply(ctx, absl::OkStatus());
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
  const ModelSpec& spec = *m.spec;
  resp->set_name(m.name);
  for (const auto& v : options_.manager->ReadyVersions(m.name)) resp->add_versions(v->version_string);
  const RunnerProvenance& p = m.provenance;
  resp->set_platform(spec.platform.empty() ? p.runner : spec.platform);
  for (const auto& t : spec.inputs) FillTensorMetadata(spec, t, resp->add_inputs());
  for (const auto& t : spec.outputs) FillTensorMetadata(spec, t, resp->add_outputs());
  auto& props = *resp->mutable_properties();
  props["runner"] = p.runner;
  props["runner_version"] = p.runner_version;
  props["runner_build"] = p.runner_build;
  props["runner_abi"] = p.runner_abi;
  for (const auto& [k, v] : p.properties) props[k] = v;
  return Reply(ctx, absl::OkStatus());
}

ServerUnaryReactor* InferenceService::ModelInfer(CallbackServerContext* ctx,
                                                 const inference::ModelInferRequest* req,
                                                 inference::ModelInferResponse* resp) {
  auto* reactor = new InferReactor(&in_flight_);
  if (absl::Status st = CheckRestricted(ctx, "inference"); !st.ok()) {
    reactor->Finish(ToGrpcStatus(st));
    return reactor;
  }
  auto sink = std::make_shared<UnarySink>(reactor, resp);
  std::vector<std::string>* converted = sink->converted();
  auto r = NewRequest(ctx, std::move(sink));
  r->single_response = true;
  absl::Status s = RequestFromWire(*req, r.get(), converted);
  if (!s.ok()) {
    r->RespondError(s);
    return reactor;
  }
  InlineScope may_run_here(&inline_budget_);
  options_.core->Infer(std::move(r));
  return reactor;
}

grpc::ServerBidiReactor<inference::ModelInferRequest, inference::ModelStreamInferResponse>*
InferenceService::ModelStreamInfer(CallbackServerContext* ctx) {
  if (absl::Status st = CheckRestricted(ctx, "inference"); !st.ok()) {
    return new RefusedStream(ToGrpcStatus(st));
  }
  return NewStreamReactor(this, ctx, &in_flight_);
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
    versions = options_.manager->AllReadyVersions();
  } else if (req->version().empty()) {
    versions = options_.manager->ReadyVersions(req->name());
    if (versions.empty()) return Reply(ctx, options_.manager->Get(req->name(), "").status());
  } else {
    auto mv = options_.manager->Get(req->name(), req->version());
    if (!mv.ok()) return Reply(ctx, mv.status());
    versions.push_back(*mv);
  }
  for (const auto& mv : versions) {
    auto* s = resp->add_model_stats();
    s->set_name(mv->name);
    s->set_version(mv->version_string);
    FillStatistics(mv->stats.Read(), s);
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
    if (req->ready() && e.state != ModelState::kReady) continue;
    auto* m = resp->add_models();
    m->set_name(e.name);
    m->set_version(e.version);
    m->set_state(ModelStateName(e.state));
    m->set_reason(e.reason);
  }
  if (!req->ready()) {
    // Models on disk the server has not loaded (explicit mode) are listed too.
    for (const auto& name : options_.manager->repository().List()) {
      if (known.count(name) != 0) continue;
      auto* m = resp->add_models();
      m->set_name(name);
      m->set_state(ModelStateName(ModelState::kUnavailable));
      m->set_reason("not loaded");
    }
  }
  return Reply(ctx, absl::OkStatus());
}

// Load and unload share their checks; the work runs on the repository pool,
// off gRPC's threads, because loading can take seconds.
ServerUnaryReactor* InferenceService::RepositoryAction(
    CallbackServerContext* ctx, const std::string& model_name,
    const google::protobuf::Map<std::string, inference::ModelRepositoryParameter>& parameters,
    bool load, std::function<absl::Status(const std::string&)> action) {
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
  for (const auto& [key, value] : parameters) {
    // Triton's clients always send unload_dependents with an unload.
    if (!load && key == "unload_dependents") continue;
    return Reply(ctx, absl::InvalidArgumentError(absl::StrCat(
                          "repository ", load ? "load" : "unload", " parameter '", key,
                          "' is not supported")));
  }
  ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (!repository_pool_->Submit([reactor, model_name, action = std::move(action)] {
        reactor->Finish(ToGrpcStatus(action(model_name)));
      })) {
    reactor->Finish(ToGrpcStatus(absl::ResourceExhaustedError(
        "too many repository loads and unloads are waiting; retry later")));
  }
  return reactor;
}

ServerUnaryReactor* InferenceService::RepositoryModelLoad(
    CallbackServerContext* ctx, const inference::RepositoryModelLoadRequest* req,
    inference::RepositoryModelLoadResponse*) {
  return RepositoryAction(ctx, req->model_name(), req->parameters(), /*load=*/true,
                          [this](const std::string& name) { return options_.manager->Load(name); });
}

ServerUnaryReactor* InferenceService::RepositoryModelUnload(
    CallbackServerContext* ctx, const inference::RepositoryModelUnloadRequest* req,
    inference::RepositoryModelUnloadResponse*) {
  return RepositoryAction(ctx, req->model_name(), req->parameters(), /*load=*/false,
                          [this](const std::string& name) { return options_.manager->Unload(name); });
}

}  // namespace torii
