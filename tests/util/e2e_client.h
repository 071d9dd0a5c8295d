// Client calls the end-to-end tests make against a running torii-server:
// gRPC calls with a deadline, polls for readiness and for a line in the
// server's log, repository load/unload, and a plain HTTP GET.
#ifndef TORII_TESTS_UTIL_E2E_CLIENT_H_
#define TORII_TESTS_UTIL_E2E_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <map>
#include <string>

#include "inference.grpc.pb.h"
#include "tests/util/server_process.h"

namespace torii {
namespace testing {

using InferenceStub = inference::GRPCInferenceService::Stub;
using RepositoryParameters = std::map<std::string, inference::ModelRepositoryParameter>;

inline void SetDeadline(grpc::ClientContext& ctx, std::chrono::milliseconds ms) {
  ctx.set_deadline(std::chrono::system_clock::now() + ms);
}

/// ModelInfer with a deadline.
grpc::Status Infer(InferenceStub& stub, const inference::ModelInferRequest& request,
                   inference::ModelInferResponse* response,
                   std::chrono::milliseconds deadline = std::chrono::milliseconds(20000));

/// Whether the server answers ServerLive with live = true within `deadline`.
bool ServerLive(InferenceStub& stub,
                std::chrono::milliseconds deadline = std::chrono::milliseconds(2000));

/// Whether the server answers ModelReady(name) with ready = true within `deadline`.
bool ModelReady(InferenceStub& stub, const std::string& name,
                std::chrono::milliseconds deadline = std::chrono::milliseconds(2000));

/// Polls ModelReady(name) until it is true (then true) or `limit` passes (then false).
bool WaitModelReady(InferenceStub& stub, const std::string& name,
                    std::chrono::milliseconds limit = std::chrono::milliseconds(20000));

/// Polls the server's log until it contains `needle` (then true) or `limit`
/// passes (then false).
bool WaitLog(const ServerProcess& server, const std::string& needle,
             std::chrono::milliseconds limit = std::chrono::milliseconds(20000));

/// RepositoryModelLoad / RepositoryModelUnload of `model`.
grpc::Status LoadModel(InferenceStub& stub, const std::string& model,
                       const RepositoryParameters& parameters = {},
                       std::chrono::milliseconds deadline = std::chrono::milliseconds(60000));
grpc::Status UnloadModel(InferenceStub& stub, const std::string& model,
                         const RepositoryParameters& parameters = {},
                         std::chrono::milliseconds deadline = std::chrono::milliseconds(60000));

/// GET http://127.0.0.1:<port><path> over a plain socket (HTTP/1.0); returns
/// the body. Throws std::runtime_error when the server cannot be reached or
/// the answer has no header end.
std::string HttpGet(int port, const std::string& path);

}  // namespace testing
}  // namespace torii

#endif  // TORII_TESTS_UTIL_E2E_CLIENT_H_
