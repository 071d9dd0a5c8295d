#include "tests/util/e2e_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>

namespace torii {
namespace testing {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

grpc::Status Infer(InferenceStub& stub, const inference::ModelInferRequest& request,
                   inference::ModelInferResponse* response, milliseconds deadline) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, deadline);
  return stub.ModelInfer(&ctx, request, response);
}

bool ServerLive(InferenceStub& stub, milliseconds deadline) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, deadline);
  inference::ServerLiveResponse r;
  return stub.ServerLive(&ctx, {}, &r).ok() && r.live();
}

bool ModelReady(InferenceStub& stub, const std::string& name, milliseconds deadline) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, deadline);
  inference::ModelReadyRequest q;
  q.set_name(name);
  inference::ModelReadyResponse r;
  return stub.ModelReady(&ctx, q, &r).ok() && r.ready();
}

bool WaitModelReady(InferenceStub& stub, const std::string& name, milliseconds limit) {
  const auto until = Clock::now() + limit;
  while (Clock::now() < until) {
    if (ModelReady(stub, name)) return true;
    std::this_thread::sleep_for(milliseconds(20));
  }
  return false;
}

bool WaitLog(const ServerProcess& server, const std::string& needle, milliseconds limit) {
  const auto until = Clock::now() + limit;
  while (Clock::now() < until) {
    if (server.Log().find(needle) != std::string::npos) return true;
    std::this_thread::sleep_for(milliseconds(50));
  }
  return false;
}

grpc::Status LoadModel(InferenceStub& stub, const std::string& model,
                       const RepositoryParameters& parameters, milliseconds deadline) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, deadline);
  inference::RepositoryModelLoadRequest q;
  q.set_model_name(model);
  for (const auto& [k, v] : parameters) (*q.mutable_parameters())[k] = v;
  inference::RepositoryModelLoadResponse r;
  return stub.RepositoryModelLoad(&ctx, q, &r);
}

grpc::Status UnloadModel(InferenceStub& stub, const std::string& model,
                         const RepositoryParameters& parameters, milliseconds deadline) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, deadline);
  inference::RepositoryModelUnloadRequest q;
  q.set_model_name(model);
  for (const auto& [k, v] : parameters) (*q.mutable_parameters())[k] = v;
  inference::RepositoryModelUnloadResponse r;
  return stub.RepositoryModelUnload(&ctx, q, &r);
}

std::string HttpGet(int port, const std::string& path) {
  const std::string where = "GET 127.0.0.1:" + std::to_string(port) + path;
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error(where + ": socket: " + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int err = errno;
    close(fd);
    throw std::runtime_error(where + ": connect: " + std::strerror(err));
  }
  const std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    close(fd);
    throw std::runtime_error(where + ": the request was not written whole");
  }
  std::string resp;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) resp.append(buf, static_cast<size_t>(n));
  close(fd);
  const size_t body = resp.find("\r\n\r\n");
  if (body == std::string::npos) {
    throw std::runtime_error(where + ": expected an HTTP answer with headers, got " +
                             std::to_string(resp.size()) + " bytes: " + resp.substr(0, 200));
  }
  return resp.substr(body + 4);
}

}  // namespace testing
}  // namespace torii
