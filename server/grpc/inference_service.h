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

#include "inference.grpc.pb.h"
#include "server/common/task_pool.h"
#include "server/manager/inference_core.h"
#include "server/manager/model_manager.h"
#include "server/scheduler/inline_execution.h"

namespace torii {

class InferenceService final : public inference::GRPCInferenceService::CallbackService {
 public:
  struct Options {
    ModelManager* manager = nullptr;
    InferenceCore* core = nullptr;
    /// Readiness requires every model ready (--strict-readiness).
    bool strict_readiness = true;
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
  };

  explicit InferenceService(Options options);

  /// Marks the end of startup loading.
  void SetStarted(bool started) { started_ = started; }
  bool IsReady() const;
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

  /// PERMISSION_DENIED unless `ctx` carries the header `protocol` requires.
  absl::Status CheckRestricted(const grpc::CallbackServerContext* ctx, const char* protocol) const;
  InferenceCore& core() const { return *options_.core; }
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
  std::atomic<bool> started_{false};
  std::atomic<int64_t> in_flight_{0};
  std::unique_ptr<TaskPool> repository_pool_;
  InlineBudget inline_budget_;
};

/// The client's deadline on the steady clock the scheduler uses.
InferenceRequest::Clock::time_point SteadyDeadline(const grpc::CallbackServerContext* ctx);

/// A core request for an RPC: the client's deadline, a cancellation probe
/// and `sink`. The caller fills the rest and keeps the wire storage alive
/// until the final response.
std::unique_ptr<InferenceRequest> NewRequest(const grpc::CallbackServerContext* ctx,
                                             std::shared_ptr<ResponseSink> sink);

}  // namespace torii

#endif  // TORII_SERVER_GRPC_INFERENCE_SERVICE_H_
