#include "echo_service.h"

namespace torii::bench {
namespace {

grpc::ServerUnaryReactor* Ok(grpc::CallbackServerContext* ctx) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

// Reads a request, writes its echo, reads the next: one request at a time,
// as a minimal streaming server would.
class EchoStream final
    : public grpc::ServerBidiReactor<inference::ModelInferRequest,
                                     inference::ModelStreamInferResponse> {
 public:
  EchoStream() { StartRead(&request_); }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::OK);
      return;
    }
    response_.Clear();
    Echo(request_, response_.mutable_infer_response());
    StartWrite(&response_);
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::CANCELLED);
      return;
    }
    StartRead(&request_);
  }
  void OnDone() override { delete this; }

 private:
  inference::ModelInferRequest request_;
  inference::ModelStreamInferResponse response_;
};

}  // namespace

std::string EchoOutputName(const std::string& input_name, int position) {
  if (input_name.rfind("INPUT", 0) == 0) {
    return "OUTPUT" + input_name.substr(5);
  }
  return "OUTPUT" + std::to_string(position);
}

void Echo(const inference::ModelInferRequest& request,
          inference::ModelInferResponse* response) {
  response->set_model_name(request.model_name());
  response->set_model_version(request.model_version());
  response->set_id(request.id());
  for (int i = 0; i < request.inputs_size(); ++i) {
    const auto& input = request.inputs(i);
    auto* output = response->add_outputs();
    output->set_name(EchoOutputName(input.name(), i));
    output->set_datatype(input.datatype());
    *output->mutable_shape() = input.shape();
    if (input.has_contents()) *output->mutable_contents() = input.contents();
  }
  *response->mutable_raw_output_contents() = request.raw_input_contents();
}

grpc::ServerUnaryReactor* EchoService::ServerLive(
    grpc::CallbackServerContext* ctx, const inference::ServerLiveRequest*,
    inference::ServerLiveResponse* response) {
  response->set_live(true);
  return Ok(ctx);
}

grpc::ServerUnaryReactor* EchoService::ServerReady(
    grpc::CallbackServerContext* ctx, const inference::ServerReadyRequest*,
    inference::ServerReadyResponse* response) {
  response->set_ready(true);
  return Ok(ctx);
}

grpc::ServerUnaryReactor* EchoService::ModelReady(
    grpc::CallbackServerContext* ctx, const inference::ModelReadyRequest*,
    inference::ModelReadyResponse* response) {
  response->set_ready(true);
  return Ok(ctx);
}

grpc::ServerUnaryReactor* EchoService::ServerMetadata(
    grpc::CallbackServerContext* ctx, const inference::ServerMetadataRequest*,
    inference::ServerMetadataResponse* response) {
  response->set_name("torii-echo-server");
  response->set_version("0");
  return Ok(ctx);
}

grpc::ServerUnaryReactor* EchoService::ModelMetadata(
    grpc::CallbackServerContext* ctx,
    const inference::ModelMetadataRequest* request,
    inference::ModelMetadataResponse* response) {
  response->set_name(request->name());
  response->add_versions("1");
  response->set_platform("echo");
  return Ok(ctx);
}

grpc::ServerUnaryReactor* EchoService::ModelInfer(
    grpc::CallbackServerContext* ctx, const inference::ModelInferRequest* request,
    inference::ModelInferResponse* response) {
  Echo(*request, response);
  return Ok(ctx);
}

grpc::ServerBidiReactor<inference::ModelInferRequest,
                        inference::ModelStreamInferResponse>*
EchoService::ModelStreamInfer(grpc::CallbackServerContext*) {
  return new EchoStream();
}

}  // namespace torii::bench
