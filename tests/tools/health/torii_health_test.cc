// Exercises the real torii-health binary (exit codes and its one line of
// output) against gRPC's built-in health service on a loopback port, the
// same service torii-server answers with.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "inference.grpc.pb.h"

namespace {

struct RunResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
  long elapsed_ms = 0;
};

// Runs torii-health with `args` (already shell-safe) and waits for it.
RunResult RunHealth(const std::string& args) {
  const std::string command = std::string("'") + TORII_HEALTH_BIN + "' " + args + " 2>&1";
  RunResult result;
  const auto start = std::chrono::steady_clock::now();
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[512];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) result.output.append(buffer, n);
  const int status = pclose(pipe);
  result.elapsed_ms = static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                            std::chrono::steady_clock::now() - start)
                                            .count());
  REQUIRE(WIFEXITED(status));
  result.exit_code = WEXITSTATUS(status);
  UNSCOPED_INFO("torii-health " << args << " -> " << result.exit_code << ": " << result.output);
  return result;
}

// A gRPC server on 127.0.0.1 with gRPC's default health service beside an
// (unimplemented) callback inference service, as torii-server is built. gRPC
// refuses to start a server whose only service is the default health one.
class HealthServer {
 public:
  HealthServer() {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    builder.RegisterService(&inference_);
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    server_ = builder.BuildAndStart();
    REQUIRE(server_ != nullptr);
    REQUIRE(port_ > 0);
    REQUIRE(server_->GetHealthCheckService() != nullptr);
  }
  ~HealthServer() { server_->Shutdown(std::chrono::system_clock::now()); }

  void Set(const std::string& service, bool serving) {
    server_->GetHealthCheckService()->SetServingStatus(service, serving);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int port_ = 0;
  inference::GRPCInferenceService::CallbackService inference_;
  std::unique_ptr<grpc::Server> server_;
};

// A loopback TCP socket that is bound but, depending on `listen_backlog`,
// either refuses connections (no listen) or accepts them at the TCP level and
// never speaks HTTP/2 (listen, never accept). Holding the socket keeps the
// port from being reused by anyone else during the test.
class SilentPort {
 public:
  explicit SilentPort(bool listening) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    if (listening) REQUIRE(listen(fd_, 16) == 0);
  }
  ~SilentPort() { close(fd_); }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  int port_ = 0;
};

}  // namespace

TEST_CASE("torii-health exits 0 when the whole server is SERVING", "[tools][health]") {
  HealthServer server;
  server.Set("", true);
  const RunResult r = RunHealth("--address=" + server.address());
  CHECK(r.exit_code == 0);
  CHECK(r.output.rfind("SERVING: ", 0) == 0);
  CHECK(r.output.find('\n') == r.output.size() - 1);  // exactly one line
}

TEST_CASE("torii-health exits 1 when the server is NOT_SERVING", "[tools][health]") {
  HealthServer server;
  server.Set("", false);
  const RunResult r = RunHealth("--address=" + server.address());
  CHECK(r.exit_code == 1);
  CHECK(r.output.rfind("NOT_SERVING: ", 0) == 0);
}

TEST_CASE("torii-health follows a status change", "[tools][health]") {
  HealthServer server;
  server.Set("", true);
  CHECK(RunHealth("--address=" + server.address()).exit_code == 0);
  server.Set("", false);
  CHECK(RunHealth("--address=" + server.address()).exit_code == 1);
  server.Set("", true);
  CHECK(RunHealth("--address=" + server.address()).exit_code == 0);
}

TEST_CASE("torii-health asks about the named service", "[tools][health]") {
  HealthServer server;
  server.Set("", false);
  server.Set("liveness", true);
  // Both flag spellings work.
  CHECK(RunHealth("--address=" + server.address() + " --service=liveness").exit_code == 0);
  CHECK(RunHealth("--address " + server.address() + " --service liveness").exit_code == 0);
  CHECK(RunHealth("--address=" + server.address() + " --service=").exit_code == 1);
  const RunResult unknown = RunHealth("--address=" + server.address() + " --service=no.such.Svc");
  CHECK(unknown.exit_code == 1);
  CHECK(unknown.output.rfind("NOT_FOUND: ", 0) == 0);
}

TEST_CASE("torii-health exits 1 promptly when nothing listens", "[tools][health]") {
  SilentPort port(/*listening=*/false);
  const RunResult r = RunHealth("--address=" + port.address() + " --timeout-ms=5000");
  CHECK(r.exit_code == 1);
  CHECK(r.output.rfind("UNAVAILABLE: ", 0) == 0);
  // A refused connection is an answer: no need to wait for the deadline.
  CHECK(r.elapsed_ms < 4000);
}

TEST_CASE("torii-health gives up at its deadline when the peer never answers",
          "[tools][health]") {
  SilentPort port(/*listening=*/true);
  const RunResult r = RunHealth("--address=" + port.address() + " --timeout-ms=300");
  CHECK(r.exit_code == 1);
  CHECK(r.output.rfind("DEADLINE_EXCEEDED: ", 0) == 0);
  CHECK(r.elapsed_ms >= 250);
  CHECK(r.elapsed_ms < 5000);
}

TEST_CASE("torii-health rejects bad usage with exit 1, never 2", "[tools][health]") {
  for (const char* args : {"--bogus", "--timeout-ms=0", "--timeout-ms=abc", "--address=",
                           "--address"}) {
    const RunResult r = RunHealth(args);
    CHECK(r.exit_code == 1);
    CHECK(r.output.find("usage: torii-health") != std::string::npos);
  }
  const RunResult help = RunHealth("--help");
  CHECK(help.exit_code == 0);
  CHECK(help.output.find("--timeout-ms") != std::string::npos);
}
