// Starts the real torii-server binary for an end-to-end test: picks free
// loopback ports (gRPC, HTTP, metrics), waits until the server answers
// ServerLive, and always stops the process (SIGTERM, then SIGKILL) when the
// object goes away.
#ifndef TORII_TESTS_UTIL_SERVER_PROCESS_H_
#define TORII_TESTS_UTIL_SERVER_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/security/credentials.h>

#include "inference.grpc.pb.h"

namespace torii {
namespace testing {

/// A free TCP port on 127.0.0.1 (bound and released; good enough for tests).
int FreeLoopbackPort();

class ServerProcess {
 public:
  struct Options {
    std::string repository;
    std::vector<std::string> extra_args;
    /// How long to wait for ServerLive (and, if wait_ready, ServerReady).
    std::chrono::seconds start_timeout{60};
    bool wait_ready = true;
    /// stderr of the server goes here (appended); empty = a temp file.
    std::string log_file;
    /// How the probes and Stub() connect (default: insecure).
    std::shared_ptr<grpc::ChannelCredentials> credentials;
  };

  /// Starts the server; throws std::runtime_error (with the log tail) when it
  /// exits or does not become live in time.
  static std::unique_ptr<ServerProcess> Start(Options options);

  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  int port() const { return port_; }
  int metrics_port() const { return metrics_port_; }
  /// The HTTP port passed as --http-port (extra_args may override it).
  int http_port() const { return http_port_; }
  std::string http_address() const { return "127.0.0.1:" + std::to_string(http_port_); }
  pid_t pid() const { return pid_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::unique_ptr<inference::GRPCInferenceService::Stub> Stub() const;

  /// Sends `sig` and waits up to `timeout` for the exit; returns the exit
  /// status as waitpid() gives it, or -1 on timeout.
  int Signal(int sig, std::chrono::seconds timeout);
  /// The server's log so far.
  std::string Log() const;

 private:
  ServerProcess() = default;
  pid_t pid_ = -1;
  int port_ = 0;
  int metrics_port_ = 0;
  int http_port_ = 0;
  std::shared_ptr<grpc::ChannelCredentials> credentials_;
  std::string log_file_;
  bool owns_log_ = false;
};

/// The path of the built torii-server (set by CMake).
std::string ServerBinary();

}  // namespace testing
}  // namespace torii

#endif  // TORII_TESTS_UTIL_SERVER_PROCESS_H_
