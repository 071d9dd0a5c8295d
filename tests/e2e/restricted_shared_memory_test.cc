// The restricted-protocol group "shared-memory" (Triton's name) covers every
// shared-memory RPC, system and CUDA. Served in process by the gRPC frontend
// itself (InferenceService::Options::restricted), because torii-server's
// --grpc-restricted-protocol flag does not list the group yet.
#include <grpcpp/grpcpp.h>

#include <catch2/catch.hpp>
#include <chrono>

#include "server/grpc/inference_service.h"
#include "server/manager/inference_core.h"
#include "server/manager/model_loader.h"
#include "server/manager/model_manager.h"
#include "tests/util/temp_dir.h"

namespace torii {
namespace testing {
namespace {

TEST_CASE("the shared-memory protocol group restricts every shared-memory RPC") {
  TempDir dir("torii-restricted-");
  ModelRepository repository(ModelRepository::Options{dir.path(), {}});
  ModelLoader loader(ModelLoader::Options{});
  ModelManager manager(&repository, &loader, ModelManager::Options{});
  InferenceCore core(&manager, ValidationLimits{});
  InferenceService::Options so;
  so.manager = &manager;
  so.core = &core;
  so.restricted["shared-memory"] = {"shm-key", "s3cret"};
  InferenceService service(so);
  service.SetStarted(true);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  REQUIRE(server != nullptr);
  auto stub = inference::GRPCInferenceService::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));

  auto call = [&](const char* header_value, auto rpc) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    if (header_value != nullptr) ctx.AddMetadata("shm-key", header_value);
    return rpc(&ctx);
  };
  const std::vector<std::pair<const char*, std::function<grpc::Status(grpc::ClientContext*)>>>
      rpcs = {
          {"SystemSharedMemoryStatus",
           [&](grpc::ClientContext* c) {
             inference::SystemSharedMemoryStatusResponse r;
             return stub->SystemSharedMemoryStatus(c, {}, &r);
           }},
          {"SystemSharedMemoryRegister",
           [&](grpc::ClientContext* c) {
             inference::SystemSharedMemoryRegisterRequest q;
             q.set_name("r");
             q.set_key("/torii-restricted-no-such-object");
             q.set_byte_size(16);
             inference::SystemSharedMemoryRegisterResponse r;
             return stub->SystemSharedMemoryRegister(c, q, &r);
           }},
          {"SystemSharedMemoryUnregister",
           [&](grpc::ClientContext* c) {
             inference::SystemSharedMemoryUnregisterResponse r;
             return stub->SystemSharedMemoryUnregister(c, {}, &r);
           }},
          {"CudaSharedMemoryStatus",
           [&](grpc::ClientContext* c) {
             inference::CudaSharedMemoryStatusResponse r;
             return stub->CudaSharedMemoryStatus(c, {}, &r);
           }},
          {"CudaSharedMemoryRegister",
           [&](grpc::ClientContext* c) {
             inference::CudaSharedMemoryRegisterResponse r;
             return stub->CudaSharedMemoryRegister(c, {}, &r);
           }},
          {"CudaSharedMemoryUnregister",
           [&](grpc::ClientContext* c) {
             inference::CudaSharedMemoryUnregisterResponse r;
             return stub->CudaSharedMemoryUnregister(c, {}, &r);
           }},
      };
  for (const auto& [name, rpc] : rpcs) {
    INFO(name);
    const grpc::Status without = call(nullptr, rpc);
    CHECK(without.error_code() == grpc::PERMISSION_DENIED);
    CHECK_THAT(without.error_message(), Catch::Contains("shared-memory"));
    CHECK(call("wrong", rpc).error_code() == grpc::PERMISSION_DENIED);
    // With the header the RPC runs (and answers what it answers).
    CHECK(call("s3cret", rpc).error_code() != grpc::PERMISSION_DENIED);
  }
  // Other groups are not affected.
  grpc::ClientContext ctx;
  inference::ServerLiveResponse live;
  CHECK(stub->ServerLive(&ctx, {}, &live).ok());
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

}  // namespace
}  // namespace testing
}  // namespace torii
