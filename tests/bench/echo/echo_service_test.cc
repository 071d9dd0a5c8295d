#include "echo_service.h"

#include <catch2/catch.hpp>

#include "../bench_server.h"

namespace torii::bench {
namespace {

TEST_CASE("output names mirror input names", "[bench][echo]") {
  CHECK(EchoOutputName("INPUT0", 0) == "OUTPUT0");
  CHECK(EchoOutputName("INPUT__3", 3) == "OUTPUT__3");
  CHECK(EchoOutputName("x", 2) == "OUTPUT2");
}

TEST_CASE("the echo server returns the inputs as outputs", "[bench][echo]") {
  EchoService service;
  testing::InProcessServer server(&service);
  auto stub = inference::GRPCInferenceService::NewStub(grpc::CreateChannel(
      server.address(), grpc::InsecureChannelCredentials()));
  auto deadline = [] {
    return std::chrono::system_clock::now() + std::chrono::seconds(10);
  };

  inference::ModelInferRequest request;
  request.set_model_name("identity");
  request.set_id("req-7");
  auto* in0 = request.add_inputs();
  in0->set_name("INPUT0");
  in0->set_datatype("FP32");
  in0->add_shape(1);
  in0->add_shape(2);
  request.add_raw_input_contents(std::string(8, '\x2a'));
  inference::ModelInferResponse response;
  grpc::ClientContext ctx;
  ctx.set_deadline(deadline());
  REQUIRE(stub->ModelInfer(&ctx, request, &response).ok());
  CHECK(response.id() == "req-7");
  CHECK(response.model_name() == "identity");
  REQUIRE(response.outputs_size() == 1);
  CHECK(response.outputs(0).name() == "OUTPUT0");
  CHECK(response.outputs(0).datatype() == "FP32");
  CHECK(response.outputs(0).shape_size() == 2);
  REQUIRE(response.raw_output_contents_size() == 1);
  CHECK(response.raw_output_contents(0) == std::string(8, '\x2a'));

  grpc::ClientContext live_ctx;
  live_ctx.set_deadline(deadline());
  inference::ServerLiveResponse live;
  REQUIRE(stub->ServerLive(&live_ctx, {}, &live).ok());
  CHECK(live.live());
  grpc::ClientContext ready_ctx;
  ready_ctx.set_deadline(deadline());
  inference::ServerReadyResponse ready;
  REQUIRE(stub->ServerReady(&ready_ctx, {}, &ready).ok());
  CHECK(ready.ready());

  grpc::ClientContext stream_ctx;
  stream_ctx.set_deadline(deadline());
  auto stream = stub->ModelStreamInfer(&stream_ctx);
  for (int i = 0; i < 3; ++i) {
    request.set_id("s" + std::to_string(i));
    REQUIRE(stream->Write(request));
    inference::ModelStreamInferResponse streamed;
    REQUIRE(stream->Read(&streamed));
    CHECK(streamed.error_message().empty());
    CHECK(streamed.infer_response().id() == "s" + std::to_string(i));
    CHECK(streamed.infer_response().raw_output_contents(0) ==
          request.raw_input_contents(0));
  }
  stream->WritesDone();
  CHECK(stream->Finish().ok());
}

}  // namespace
}  // namespace torii::bench
