// The restricted-protocol group "shared-memory" (Triton's name) covers every
// shared-memory RPC, system and CUDA: torii-server started with
// --grpc-restricted-protocol=shared-memory:shm-key=s3cret.
#include <grpcpp/grpcpp.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <functional>

#include "tests/e2e/e2e_util.h"
#include "tests/util/server_process.h"

namespace torii {
namespace testing {
namespace {

TEST_CASE("the shared-memory protocol group restricts every shared-memory RPC") {
  TempRepository repo;
  auto server = StartServer(repo, {"--grpc-restricted-protocol=shared-memory:shm-key=s3cret"});
  auto stub = server->Stub();

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
}

}  // namespace
}  // namespace testing
}  // namespace torii
