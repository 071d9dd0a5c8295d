// End-to-end: requests run on gRPC's own threads when a model is idle
// (docs/scheduling.md#threads), so runners that hang there must never hold all
// of them. The bound is the gRPC frontend's inline budget: past it, requests
// go to the models' worker threads as before.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <thread>

#include "tests/e2e/e2e_util.h"
#include "tests/util/server_process.h"

namespace torii {
namespace testing {
namespace {

using std::chrono::milliseconds;

// gRPC 1.51 runs callback handlers on max(2, min(16, cores / 2)) threads.
int GrpcCallbackThreads() {
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  return std::max(2, std::min(16, cores / 2));
}

TEST_CASE("runners hung on gRPC's threads never hold them all: other models still answer") {
  // One hung request per model, on more models than gRPC has callback
  // threads: without a bound each would hold one of them and the server
  // would stop answering anything.
  const int hung = GrpcCallbackThreads() + 2;
  TempRepository repo;
  for (int i = 0; i < hung; ++i) {
    const std::string name = "hang" + std::to_string(i);
    repo.Write(name + "/config.pbtxt", "backend: \"probe\" max_batch_size: 4\n"
               "input [ { name: \"INPUT0\" data_type: TYPE_FP32 dims: [ -1 ] } ]\n"
               "output [ { name: \"OUTPUT0\" data_type: TYPE_FP32 dims: [ -1 ] } ]\n");
    repo.Write(name + "/1/README", "");
    std::filesystem::copy_file(TORII_PROBE_RUNNER, repo.path() + "/" + name + "/libtorii_probe.so");
  }
  auto server = StartServer(repo);

  // Each probe request sleeps 5 s in its runner; they are all in flight at once.
  std::atomic<int> answered{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < hung; ++i) {
    clients.emplace_back([&, i] {
      auto stub = server->Stub();
      auto req = IdentityRequest({1}, "hang" + std::to_string(i));
      (*req.mutable_parameters())["sleep_ms"].set_int64_param(5000);
      grpc::ClientContext ctx;
      SetDeadline(ctx, milliseconds(20000));
      inference::ModelInferResponse r;
      if (stub->ModelInfer(&ctx, req, &r).ok()) ++answered;
    });
  }
  std::this_thread::sleep_for(milliseconds(500));  // every probe is asleep in its runner

  auto stub = server->Stub();
  {
    grpc::ClientContext ctx;
    SetDeadline(ctx, milliseconds(1500));
    inference::ServerLiveResponse r;
    CHECK(stub->ServerLive(&ctx, {}, &r).ok());
  }
  for (int k = 0; k < 20; ++k) {
    grpc::ClientContext ctx;
    SetDeadline(ctx, milliseconds(1500));
    inference::ModelInferResponse r;
    const grpc::Status s = stub->ModelInfer(&ctx, IdentityRequest({float(k)}), &r);
    INFO("identity request " << k << ": " << s.error_message());
    CHECK(s.ok());
    if (!s.ok()) break;  // (no REQUIRE: the client threads must be joined)
    CHECK(r.raw_output_contents_size() == 1);
    if (r.raw_output_contents_size() == 1) {
      CHECK(Fp32Values(r.raw_output_contents(0)) == std::vector<float>{float(k)});
    }
  }
  // The hung requests were still running meanwhile, and all finish.
  CHECK(answered.load() == 0);
  for (auto& t : clients) t.join();
  CHECK(answered.load() == hung);
}

}  // namespace
}  // namespace testing
}  // namespace torii
