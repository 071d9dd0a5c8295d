// The bare gRPC echo: GRPCInferenceService with no validation and no work,
// the honest ceiling every Torii benchmark is compared against in the same
// run. Callback API, like the Torii frontend.
#ifndef TORII_BENCH_ECHO_ECHO_SERVICE_H_
#define TORII_BENCH_ECHO_ECHO_SERVICE_H_

#include <string>

#include "inference.grpc.pb.h"

namespace torii::bench {

/// Output name for an input: "INPUT0" → "OUTPUT0", "INPUT__0" → "OUTPUT__0";
/// a name without the INPUT prefix gets "OUTPUT<position>".
std::string EchoOutputName(const std::string& input_name, int position);

/// Fills `response` with the request's inputs as outputs: same datatypes,
/// shapes, typed contents and raw bytes, and the request's model name,
/// version and id.
void Echo(const inference::ModelInferRequest& request,
          inference::ModelInferResponse* response);

/// ModelInfer and ModelStreamInfer echo; ServerLive/ServerReady/ModelReady
/// are true; ServerMetadata and ModelMetadata are minimal (no tensors, as
/// the echo serves any). Everything else is UNIMPLEMENTED. Thread-safe.
class EchoService final
    : public inference::GRPCInferenceService::CallbackService {
 public:
  grpc::ServerUnaryReactor* ServerLive(
      grpc::CallbackServerContext* ctx, const inference::ServerLiveRequest*,
      inference::ServerLiveResponse* response) override;
  grpc::ServerUnaryReactor* ServerReady(
      grpc::CallbackServerContext* ctx, const inference::ServerReadyRequest*,
      inference::ServerReadyResponse* response) override;
  grpc::ServerUnaryReactor* ModelReady(
      grpc::CallbackServerContext* ctx, const inference::ModelReadyRequest*,
      inference::ModelReadyResponse* response) override;
  grpc::ServerUnaryReactor* ServerMetadata(
      grpc::CallbackServerContext* ctx,
      const inference::ServerMetadataRequest*,
      inference::ServerMetadataResponse* response) override;
  grpc::ServerUnaryReactor* ModelMetadata(
      grpc::CallbackServerContext* ctx,
      const inference::ModelMetadataRequest* request,
      inference::ModelMetadataResponse* response) override;
  grpc::ServerUnaryReactor* ModelInfer(
      grpc::CallbackServerContext* ctx,
      const inference::ModelInferRequest* request,
      inference::ModelInferResponse* response) override;
  grpc::ServerBidiReactor<inference::ModelInferRequest,
                          inference::ModelStreamInferResponse>*
  ModelStreamInfer(grpc::CallbackServerContext* ctx) override;
};

}  // namespace torii::bench

#endif  // TORII_BENCH_ECHO_ECHO_SERVICE_H_
