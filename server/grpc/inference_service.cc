#include "server/grpc/inference_service.h"

#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/common/status_macros.h"
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
    if (binding_.has_outputs()) return std::make_unique<SharedMemoryWireResponse>(&binding_);
    return std::make_unique<WireResponse>();
  }
  void Deliver(std::unique_ptr<InferenceResponse> response, bool final) override {
    if (!final) return;  // a unary caller takes one response; decoupled models are refused
    grpc::Status status = response == nullptr ? grpc::Status::OK : ToGrpcStatus(response->status);
    // A region truncated under the request: what the runner read or wrote
    // there is lost, so the answer is an error whatever the runner said.
    if (status.ok() && !binding_.empty()) status = ToGrpcStatus(binding_.CheckIntact());
    if (status.ok() && response != nullptr) {
      wire_->Swap(&static_cast<WireResponse&>(*response).Finish());
    }
    // Nothing may touch the reactor after Finish: gRPC may delete it.
    ServerUnaryReactor* reactor = reactor_;
    reactor_ = nullptr;
    reactor->Finish(status);
  }
  std::vector<std::string>* converted() { return &converted_; }
  SharedMemoryBinding* binding() { return &binding_; }

 private:
  ServerUnaryReactor* reactor_;
  inference::ModelInferResponse* wire_;
  std::vector<std::string> converted_;  // typed contents turned into raw bytes
  SharedMemoryBinding binding_;         // regions the request reads and writes
};

bool HasSharedMemoryParameter(
    const google::protobuf::Map<std::string, inference::InferParameter>& params) {
  for (const auto& [key, value] : params) {
    if (IsSharedMemoryParameter(key)) return true;
  }
  return false;
}

ServerUnaryReactor* Unimplemented(CallbackServerContext* ctx, absl::string_view what) {
  return Reply(ctx, absl::UnimplementedError(
                        absl::StrCat(what, " is not implemented by Torii ", kServerVersion)));
}

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

bool UsesSharedMemory(const inference::ModelInferRequest& wire) {
  for (const auto& in : wire.inputs()) {
    if (HasSharedMemoryParameter(in.parameters())) return true;
  }
  for (const auto& out : wire.outputs()) {
    if (HasSharedMemoryParameter(out.parameters())) return true;
  }
  return false;
}

absl::Status RequestFromWireWithSharedMemory(const inference::ModelInferRequest& wire,
                                             const SystemSharedMemory& registry,
                                             InferenceRequest* out,
                                             std::vector<std::string>* converted,
                                             SharedMemoryBinding* binding) {
  auto invalid = [&](absl::string_view msg) {
    return absl::InvalidArgumentError(absl::StrCat("model '", wire.model_name(), "': ", msg));
  };
  // The inputs not in shared memory go through RequestFromWire as usual, as
  // a copy of the request's metadata without the others; raw contents are
  // not copied (placeholders, pointed back at `wire` afterwards).
  inference::ModelInferRequest rest;
  rest.set_model_name(wire.model_name());
  rest.set_model_version(wire.model_version());
  rest.set_id(wire.id());
  *rest.mutable_parameters() = wire.parameters();
  *rest.mutable_outputs() = wire.outputs();
  const bool raw = wire.raw_input_contents_size() > 0;
  std::vector<std::optional<SharedMemoryRef>> refs(wire.inputs_size());
  std::vector<int> raw_index(wire.inputs_size(), -1);
  int raw_count = 0;
  for (int i = 0; i < wire.inputs_size(); ++i) {
    const auto& in = wire.inputs(i);
    Parameters params;
    ParametersFromWire(in.parameters(), &params);
    TORII_ASSIGN_OR_RETURN(refs[i], SharedMemoryRefFromParameters(params, "input", in.name()));
    if (refs[i]) {
      if (in.has_contents()) {
        return invalid(absl::StrCat("input '", in.name(),
                                    "' is in shared memory and also sets contents; use one or "
                                    "the other"));
      }
      continue;
    }
    auto* t = rest.add_inputs();
    t->set_name(in.name());
    t->set_datatype(in.datatype());
    *t->mutable_shape() = in.shape();
    if (raw) {
      raw_index[i] = raw_count++;
      rest.add_raw_input_contents();
    } else {
      *t->mutable_contents() = in.contents();
    }
  }
  if (raw && raw_count != wire.raw_input_contents_size()) {
    return invalid(absl::StrCat("raw_input_contents has ", wire.raw_input_contents_size(),
                                " entries but ", raw_count,
                                " inputs are not in shared memory; it needs one entry per "
                                "input not in shared memory"));
  }
  TORII_RETURN_IF_ERROR(RequestFromWire(rest, out, converted));

  // All inputs, in the request's order.
  std::vector<InferenceInput> others = std::move(out->inputs);
  out->inputs.clear();
  out->inputs.reserve(wire.inputs_size());
  size_t next = 0;
  for (int i = 0; i < wire.inputs_size(); ++i) {
    const auto& in = wire.inputs(i);
    if (!refs[i]) {
      InferenceInput input = std::move(others[next++]);
      if (raw_index[i] >= 0) {
        const std::string& bytes = wire.raw_input_contents(raw_index[i]);
        input.data = bytes.data();
        input.byte_size = bytes.size();
      }
      out->inputs.push_back(std::move(input));
      continue;
    }
    InferenceInput input;
    input.name = in.name();
    input.datatype = DataTypeFromName(in.datatype());
    if (input.datatype == TORII_TYPE_INVALID) {
      return invalid(absl::StrCat("input '", in.name(), "': '", in.datatype(),
                                  "' is not a datatype (BOOL, UINT8..UINT64, INT8..INT64, "
                                  "FP16, FP32, FP64, BF16, BYTES)"));
    }
    input.shape.assign(in.shape().begin(), in.shape().end());
    auto view = binding->Bind(registry, *refs[i]);
    if (!view.ok()) {
      return absl::Status(view.status().code(),
                          absl::StrCat("model '", wire.model_name(), "': input '", in.name(),
                                       "': ", view.status().message()));
    }
    input.data = view->data;
    input.byte_size = view->byte_size;
    out->inputs.push_back(std::move(input));
  }
  for (const auto& o : wire.outputs()) {
    Parameters params;
    ParametersFromWire(o.parameters(), &params);
    TORII_ASSIGN_OR_RETURN(auto ref, SharedMemoryRefFromParameters(params, "output", o.name()));
    if (!ref) continue;
    auto view = binding->Bind(registry, *ref);
    if (!view.ok()) {
      return absl::Status(view.status().code(),
                          absl::StrCat("model '", wire.model_name(), "': output '", o.name(),
                                       "': ", view.status().message()));
    }
    binding->AddOutput(o.name(), *view);
  }
  return absl::OkStatus();
}

absl::StatusOr<char*> SharedMemoryWireResponse::AllocateBuffer(size_t index) {
  const OutputTensor& o = outputs()[index];
  TORII_ASSIGN_OR_RETURN(char* region, binding_->OutputBuffer(o.name, o.byte_size));
  if (region == nullptr) return WireResponse::AllocateBuffer(index);
  // An empty entry keeps raw_output_contents(k) the bytes of output k.
  message().add_raw_output_contents();
  return region;
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
      inline_budget_(GrpcInlineBudget()) {
  shared_memory_ = options_.shared_memory;
  if (shared_memory_ == nullptr) {
    own_shared_memory_ = std::make_unique<SystemSharedMemory>();
    shared_memory_ = own_shared_memory_.get();
  }
}

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
                          "schedule_policy", "system_shared_memory"}) {
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
  SharedMemoryBinding* binding = sink->binding();
  auto r = NewRequest(ctx, std::move(sink));
  r->single_response = true;
  absl::Status s = UsesSharedMemory(*req)
                       ? RequestFromWireWithSharedMemory(*req, *shared_memory_, r.get(),
                                                         converted, binding)
                       : RequestFromWire(*req, r.get(), converted);
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
// off gRPC's threads, because loading can take seconds. Errors start with
// "failed to load 'm'" / "failed to unload 'm'", as Triton's do (Triton's
// clients and scripts look for it).
ServerUnaryReactor* InferenceService::RepositoryAction(
    CallbackServerContext* ctx, const std::string& model_name,
    const google::protobuf::Map<std::string, inference::ModelRepositoryParameter>& parameters,
    bool load, std::function<absl::Status(const std::string&)> action) {
  if (absl::Status st = CheckRestricted(ctx, "model-repository"); !st.ok()) return Reply(ctx, st);
  const std::string failed =
      absl::StrCat("failed to ", load ? "load" : "unload", " '", model_name, "': ");
  auto fail = [&](const absl::Status& s) {
    return Reply(ctx, absl::Status(s.code(), absl::StrCat(failed, s.message())));
  };
  if (!options_.explicit_model_control) {
    return fail(absl::UnavailableError(
        "explicit model load/unload is not allowed; start the server with "
        "--model-control-mode=explicit"));
  }
  if (!IsPlainName(model_name)) {
    return fail(absl::InvalidArgumentError(absl::StrCat(
        "model name '", model_name, "' must be a plain directory name in the repository")));
  }
  for (const auto& [key, value] : parameters) {
    using P = inference::ModelRepositoryParameter;
    // Triton's clients always send unload_dependents with an unload. Torii
    // loads no dependent models on a model's behalf, so there is nothing
    // more to unload.
    if (!load && key == "unload_dependents") {
      if (value.parameter_choice_case() != P::kBoolParam) {
        return fail(absl::InvalidArgumentError(
            "unload parameter 'unload_dependents' must be a bool (bool_param)"));
      }
      continue;
    }
    if (load && key == "config") {
      if (value.parameter_choice_case() != P::kStringParam) {
        return fail(absl::InvalidArgumentError(
            "load parameter 'config' must be a string (string_param) holding the model config "
            "as JSON"));
      }
      continue;
    }
    if (load && absl::StartsWith(key, kOverrideFilePrefix)) {
      if (value.parameter_choice_case() != P::kBytesParam) {
        return fail(absl::InvalidArgumentError(absl::StrCat(
            "load parameter '", key, "' must be bytes (bytes_param) holding the file")));
      }
      continue;
    }
    return fail(absl::InvalidArgumentError(absl::StrCat(
        "unknown ", load ? "load" : "unload", " parameter '", key, "' (accepted: ",
        load ? "'config' and 'file:<version>/<name>'" : "'unload_dependents'", ")")));
  }
  ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (!repository_pool_->Submit([reactor, model_name, failed, action = std::move(action)] {
        absl::Status s = action(model_name);
        if (!s.ok()) s = absl::Status(s.code(), absl::StrCat(failed, s.message()));
        reactor->Finish(ToGrpcStatus(s));
      })) {
    reactor->Finish(ToGrpcStatus(absl::ResourceExhaustedError(
        "too many repository loads and unloads are waiting; retry later")));
  }
  return reactor;
}

ServerUnaryReactor* InferenceService::RepositoryModelLoad(
    CallbackServerContext* ctx, const inference::RepositoryModelLoadRequest* req,
    inference::RepositoryModelLoadResponse*) {
  // The override views the request's bytes: gRPC keeps the request until the
  // reactor finishes, which is after the load.
  ModelOverride override;
  for (const auto& [key, value] : req->parameters()) {
    if (key == "config" && value.has_string_param()) override.config_json = value.string_param();
    if (absl::StartsWith(key, kOverrideFilePrefix) && value.has_bytes_param()) {
      override.files.emplace_back(key.substr(std::strlen(kOverrideFilePrefix)),
                                  value.bytes_param());
    }
  }
  return RepositoryAction(ctx, req->model_name(), req->parameters(), /*load=*/true,
                          [this, override = std::move(override)](const std::string& name) {
                            return options_.manager->Load(name, override);
                          });
}

ServerUnaryReactor* InferenceService::RepositoryModelUnload(
    CallbackServerContext* ctx, const inference::RepositoryModelUnloadRequest* req,
    inference::RepositoryModelUnloadResponse*) {
  return RepositoryAction(ctx, req->model_name(), req->parameters(), /*load=*/false,
                          [this](const std::string& name) { return options_.manager->Unload(name); });
}

// --- Shared memory ------------------------------------------------------------
// Triton's restricted-protocol group for all of these is "shared-memory".

ServerUnaryReactor* InferenceService::SystemSharedMemoryStatus(
    CallbackServerContext* ctx, const inference::SystemSharedMemoryStatusRequest* req,
    inference::SystemSharedMemoryStatusResponse* resp) {
  if (absl::Status st = CheckRestricted(ctx, "shared-memory"); !st.ok()) return Reply(ctx, st);
  auto regions = shared_memory_->Status(req->name());
  if (!regions.ok()) return Reply(ctx, regions.status());
  for (const auto& r : *regions) {
    auto& out = (*resp->mutable_regions())[r.name];
    out.set_name(r.name);
    out.set_key(r.key);
    out.set_offset(r.offset);
    out.set_byte_size(r.byte_size);
  }
  return Reply(ctx, absl::OkStatus());
}

ServerUnaryReactor* InferenceService::SystemSharedMemoryRegister(
    CallbackServerContext* ctx, const inference::SystemSharedMemoryRegisterRequest* req,
    inference::SystemSharedMemoryRegisterResponse*) {
  if (absl::Status st = CheckRestricted(ctx, "shared-memory"); !st.ok()) return Reply(ctx, st);
  return Reply(ctx, shared_memory_->Register(req->name(), req->key(), req->offset(),
                                             req->byte_size()));
}

ServerUnaryReactor* InferenceService::SystemSharedMemoryUnregister(
    CallbackServerContext* ctx, const inference::SystemSharedMemoryUnregisterRequest* req,
    inference::SystemSharedMemoryUnregisterResponse*) {
  if (absl::Status st = CheckRestricted(ctx, "shared-memory"); !st.ok()) return Reply(ctx, st);
  return Reply(ctx, shared_memory_->Unregister(req->name()));
}

// CUDA shared memory as Triton answers it when built without GPU support:
// registering is refused, and since nothing can be registered, the status
// lists nothing and unregistering has nothing to do (Triton's examples call
// both first, to clean up).
ServerUnaryReactor* InferenceService::CudaSharedMemoryStatus(
    CallbackServerContext* ctx, const inference::CudaSharedMemoryStatusRequest* req,
    inference::CudaSharedMemoryStatusResponse*) {
  if (absl::Status st = CheckRestricted(ctx, "shared-memory"); !st.ok()) return Reply(ctx, st);
  if (!req->name().empty()) {
    return Reply(ctx, absl::NotFoundError(absl::StrCat(
                          "no CUDA shared memory region '", req->name(),
                          "' is registered: Torii runs on the CPU and has no CUDA support")));
  }
  return Reply(ctx, absl::OkStatus());
}

ServerUnaryReactor* InferenceService::CudaSharedMemoryRegister(
    CallbackServerContext* ctx, const inference::CudaSharedMemoryRegisterRequest* req,
    inference::CudaSharedMemoryRegisterResponse*) {
  if (absl::Status st = CheckRestricted(ctx, "shared-memory"); !st.ok()) return Reply(ctx, st);
  return Reply(ctx, absl::InvalidArgumentError(absl::StrCat(
                        "failed to register CUDA shared memory region '", req->name(),
                        "': GPUs not supported: Torii runs on the CPU and has no CUDA support; "
                        "use system shared memory (SystemSharedMemoryRegister) instead")));
}

ServerUnaryReactor* InferenceService::CudaSharedMemoryUnregister(
    CallbackServerContext* ctx, const inference::CudaSharedMemoryUnregisterRequest*,
    inference::CudaSharedMemoryUnregisterResponse*) {
  if (absl::Status st = CheckRestricted(ctx, "shared-memory"); !st.ok()) return Reply(ctx, st);
  return Reply(ctx, absl::OkStatus());
}

// --- Not implemented ----------------------------------------------------------
// gRPC's generated default answers UNIMPLEMENTED with an empty message; these
// say what is missing.

ServerUnaryReactor* InferenceService::TraceSetting(CallbackServerContext* ctx,
                                                   const inference::TraceSettingRequest*,
                                                   inference::TraceSettingResponse*) {
  if (absl::Status st = CheckRestricted(ctx, "trace"); !st.ok()) return Reply(ctx, st);
  return Unimplemented(ctx, "TraceSetting (request tracing)");
}

ServerUnaryReactor* InferenceService::LogSettings(CallbackServerContext* ctx,
                                                  const inference::LogSettingsRequest*,
                                                  inference::LogSettingsResponse*) {
  if (absl::Status st = CheckRestricted(ctx, "logging"); !st.ok()) return Reply(ctx, st);
  return Unimplemented(ctx,
                       "LogSettings (changing log settings at run time; start the server with "
                       "--log-verbose and --log-format instead)");
}

}  // namespace torii
