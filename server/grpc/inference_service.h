// The v2 inference service (KServe Open Inference Protocol + Triton
// extensions) on gRPC's callback API. Translates wire <-> core types and
// absl::Status -> grpc::Status; holds no model state of its own.
#ifndef TORII_SERVER_GRPC_INFERENCE_SERVICE_H_
#define TORII_SERVER_GRPC_INFERENCE_SERVICE_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "inference.grpc.pb.h"
#include "server/common/task_pool.h"
#include "server/grpc/wire_request.h"
#include "server/manager/inference_core.h"
#include "server/manager/model_manager.h"
#include "server/manager/server_readiness.h"
#include "server/manager/system_shared_memory.h"
#include "server/scheduler/inline_execution.h"

namespace torii {

class InferenceService final : public inference::GRPCInferenceService::CallbackService {
 public:
  struct Options {
    ModelManager* manager = nullptr;
    InferenceCore* core = nullptr;
    /// ServerReady's answer, shared with the other frontends; required.
    const ServerReadiness* readiness = nullptr;
    /// RepositoryModelLoad/Unload allowed (--model-control-mode=explicit).
    bool explicit_model_control = false;
    /// Threads that run RepositoryModelLoad/Unload (--model-load-thread-count).
    size_t repository_threads = 2;
    /// Protocol group ("model-repository", "inference", ...) -> the header
    /// (lower case) and value a request must carry (--grpc-restricted-protocol).
    struct Restriction {
      std::string header;
      std::string value;
    };
    std::map<std::string, Restriction> restricted;
    /// Registered system shared-memory regions, shared with the other
    /// frontends; null: the service keeps its own.
    SystemSharedMemory* shared_memory = nullptr;
  };

  explicit InferenceService(Options options);

  bool IsReady() const { return options_.readiness->IsReady(); }
  /// Inference requests received whose answer is not yet sent.
  int64_t InFlight() const { return in_flight_.load(); }

  grpc::ServerUnaryReactor* ServerLive(grpc::CallbackServerContext*, const inference::ServerLiveRequest*,
                                       inference::ServerLiveResponse*) override;
  grpc::ServerUnaryReactor* ServerReady(grpc::CallbackServerContext*, const inference::ServerReadyRequest*,
                                        inference::ServerReadyResponse*) override;
  grpc::ServerUnaryReactor* ModelReady(grpc::CallbackServerContext*, const inference::ModelReadyRequest*,
                                       inference::ModelReadyResponse*) override;
  grpc::ServerUnaryReactor* ServerMetadata(grpc::CallbackServerContext*,
                                           const inference::ServerMetadataRequest*,
                                           inference::ServerMetadataResponse*) override;
  grpc::ServerUnaryReactor* ModelMetadata(grpc::CallbackServerContext*,
                                          const inference::ModelMetadataRequest*,
                                          inference::ModelMetadataResponse*) override;
  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext*, const inference::ModelInferRequest*,
                                       inference::ModelInferResponse*) override;
  grpc::ServerBidiReactor<inference::ModelInferRequest, inference::ModelStreamInferResponse>*
  ModelStreamInfer(grpc::CallbackServerContext*) override;
  grpc::ServerUnaryReactor* ModelConfig(grpc::CallbackServerContext*, const inference::ModelConfigRequest*,
                                        inference::ModelConfigResponse*) override;
  grpc::ServerUnaryReactor* ModelStatistics(grpc::CallbackServerContext*,
                                            const inference::ModelStatisticsRequest*,
                                            inference::ModelStatisticsResponse*) override;
  grpc::ServerUnaryReactor* RepositoryIndex(grpc::CallbackServerContext*,
                                            const inference::RepositoryIndexRequest*,
                                            inference::RepositoryIndexResponse*) override;
  grpc::ServerUnaryReactor* RepositoryModelLoad(grpc::CallbackServerContext*,
                                                const inference::RepositoryModelLoadRequest*,
                                                inference::RepositoryModelLoadResponse*) override;
  grpc::ServerUnaryReactor* RepositoryModelUnload(grpc::CallbackServerContext*,
                                                  const inference::RepositoryModelUnloadRequest*,
                                                  inference::RepositoryModelUnloadResponse*) override;
  grpc::ServerUnaryReactor* SystemSharedMemoryStatus(
      grpc::CallbackServerContext*, const inference::SystemSharedMemoryStatusRequest*,
      inference::SystemSharedMemoryStatusResponse*) override;
  grpc::ServerUnaryReactor* SystemSharedMemoryRegister(
      grpc::CallbackServerContext*, const inference::SystemSharedMemoryRegisterRequest*,
      inference::SystemSharedMemoryRegisterResponse*) override;
  grpc::ServerUnaryReactor* SystemSharedMemoryUnregister(
      grpc::CallbackServerContext*, const inference::SystemSharedMemoryUnregisterRequest*,
      inference::SystemSharedMemoryUnregisterResponse*) override;
  grpc::ServerUnaryReactor* CudaSharedMemoryStatus(
      grpc::CallbackServerContext*, const inference::CudaSharedMemoryStatusRequest*,
      inference::CudaSharedMemoryStatusResponse*) override;
  grpc::ServerUnaryReactor* CudaSharedMemoryRegister(
      grpc::CallbackServerContext*, const inference::CudaSharedMemoryRegisterRequest*,
      inference::CudaSharedMemoryRegisterResponse*) override;
  grpc::ServerUnaryReactor* CudaSharedMemoryUnregister(
      grpc::CallbackServerContext*, const inference::CudaSharedMemoryUnregisterRequest*,
      inference::CudaSharedMemoryUnregisterResponse*) override;
  grpc::ServerUnaryReactor* TraceSetting(grpc::CallbackServerContext*,
                                         const inference::TraceSettingRequest*,
                                         inference::TraceSettingResponse*) override;
  grpc::ServerUnaryReactor* LogSettings(grpc::CallbackServerContext*,
                                        const inference::LogSettingsRequest*,
                                        inference::LogSettingsResponse*) override;

  /// PERMISSION_DENIED unless `ctx` carries the header `protocol` requires.
  absl::Status CheckRestricted(const grpc::CallbackServerContext* ctx, const char* protocol) const;
  InferenceCore& core() const { return *options_.core; }
  /// The shared-memory regions requests may name.
  SystemSharedMemory& shared_memory() const { return *shared_memory_; }
  /// Inference requests run on the gRPC thread that received them when the
  /// model has an idle instance and nothing queued, within this budget
  /// (docs/scheduling.md#threads-who-runs-a-request).
  InlineBudget* inline_budget() { return &inline_budget_; }

 private:
  grpc::ServerUnaryReactor* RepositoryAction(
      grpc::CallbackServerContext* ctx, const std::string& model_name,
      const google::protobuf::Map<std::string, inference::ModelRepositoryParameter>& parameters,
      bool load, std::function<absl::Status(const std::string&)> action);

  Options options_;
  std::atomic<int64_t> in_flight_{0};
  std::unique_ptr<TaskPool> repository_pool_;
  std::unique_ptr<SystemSharedMemory> own_shared_memory_;
  SystemSharedMemory* shared_memory_ = nullptr;
  InlineBudget inline_budget_;
};

/// The client's deadline on the steady clock the scheduler uses.
InferenceRequest::Clock::time_point SteadyDeadline(const grpc::CallbackServerContext* ctx);

/// A core request for an RPC: the client's deadline, a cancellation probe
/// and `sink`. The caller fills the rest and keeps the wire storage alive
/// until the final response.
std::unique_ptr<InferenceRequest> NewRequest(const grpc::CallbackServerContext* ctx,
                                             std::shared_ptr<ResponseSink> sink);

/// True when an input or requested output of `wire` carries a
/// shared_memory_* parameter.
bool UsesSharedMemory(const inference::ModelInferRequest& wire);

/// RequestFromWire (wire_request.h) for a request whose inputs or outputs
/// name shared-memory regions, as Triton defines it: an input whose
/// parameters name a region is a view into the region (no copy) and carries
/// no contents; raw_input_contents then hold one entry per input that is
/// not in shared memory, in order. Requested outputs that name a region are
/// bound in `binding`, which must outlive the request (as `converted`);
/// responses from SharedMemoryWireResponse write them there.
/// INVALID_ARGUMENT for an unknown region, a window outside it, bad
/// parameters, or contents set for an input in shared memory.
absl::Status RequestFromWireWithSharedMemory(const inference::ModelInferRequest& wire,
                                             const SystemSharedMemory& registry,
                                             InferenceRequest* out,
                                             std::vector<std::string>* converted,
                                             SharedMemoryBinding* binding);

/// A WireResponse whose outputs bound to a shared-memory region are
/// written into the region; the message then carries an empty
/// raw_output_contents entry for them (so entry k stays output k, as
/// Triton's clients expect). `binding` must outlive the response.
class SharedMemoryWireResponse : public WireResponse {
 public:
  explicit SharedMemoryWireResponse(const SharedMemoryBinding* binding) : binding_(binding) {}

 protected:
  absl::StatusOr<char*> AllocateBuffer(size_t index) override;

 private:
  const SharedMemoryBinding* binding_;
};

}  // namespace torii

#endif  // TORII_SERVER_GRPC_INFERENCE_SERVICE_H_
