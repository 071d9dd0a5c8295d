#include "tests/util/server_process.h"

#include "tests/util/temp_dir.h"

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace torii {
namespace testing {

std::string ServerBinary() {
  // Override to run the same tests against another build or an install.
  const char* other = std::getenv("TORII_TEST_SERVER_BINARY");
  return other != nullptr && *other != '\0' ? other : TORII_SERVER_BINARY;
}

int FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0) close(fd);
    throw std::runtime_error("cannot find a free loopback port");
  }
  const int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

std::unique_ptr<ServerProcess> ServerProcess::Start(Options options) {
  std::unique_ptr<ServerProcess> p(new ServerProcess());
  p->port_ = FreeLoopbackPort();
  p->metrics_port_ = FreeLoopbackPort();
  // Parallel tests must not meet on the default HTTP port 8000.
  p->http_port_ = FreeLoopbackPort();
  p->credentials_ = options.credentials ? options.credentials : grpc::InsecureChannelCredentials();
  p->log_file_ = options.log_file;
  if (p->log_file_.empty()) {
    std::string tmpl = TempRoot() + "/torii-server-log-XXXXXX";
    const int fd = mkstemp(tmpl.data());
    if (fd >= 0) close(fd);
    p->log_file_ = tmpl;
    p->owns_log_ = true;
  }
  std::vector<std::string> args = {ServerBinary(), "--model-repository=" + options.repository,
                                   "--grpc-address=127.0.0.1",
                                   "--grpc-port=" + std::to_string(p->port_),
                                   "--metrics-address=127.0.0.1",
                                   "--metrics-port=" + std::to_string(p->metrics_port_),
                                   "--http-address=127.0.0.1",
                                   "--http-port=" + std::to_string(p->http_port_)};
  args.insert(args.end(), options.extra_args.begin(), options.extra_args.end());
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    // Child: stderr and stdout to the log file; die with the test process.
    FILE* log = std::fopen(p->log_file_.c_str(), "a");
    if (log != nullptr) {
      dup2(fileno(log), STDERR_FILENO);
      dup2(fileno(log), STDOUT_FILENO);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  p->pid_ = pid;

  const auto deadline = std::chrono::steady_clock::now() + options.start_timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    // A fresh channel per probe, with its own subchannel: a shared one would
    // sit in reconnect backoff (seconds) after the first refused connection.
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    auto stub = inference::GRPCInferenceService::NewStub(
        grpc::CreateCustomChannel(p->address(), p->credentials_, args));
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      p->pid_ = -1;
      throw std::runtime_error("torii-server exited during start:\n" + p->Log());
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
    if (options.wait_ready) {
      inference::ServerReadyResponse resp;
      if (stub->ServerReady(&ctx, {}, &resp).ok() && resp.ready()) return p;
    } else {
      inference::ServerLiveResponse resp;
      if (stub->ServerLive(&ctx, {}, &resp).ok() && resp.live()) return p;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  throw std::runtime_error("torii-server did not become ready in time:\n" + p->Log());
}

std::unique_ptr<inference::GRPCInferenceService::Stub> ServerProcess::Stub() const {
  return inference::GRPCInferenceService::NewStub(grpc::CreateChannel(address(), credentials_));
}

int ServerProcess::Signal(int sig, std::chrono::seconds timeout) {
  if (pid_ <= 0) return -1;
  kill(pid_, sig);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return status;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

std::string ServerProcess::Log() const {
  std::ifstream in(log_file_);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0 && Signal(SIGTERM, std::chrono::seconds(15)) == -1 && pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (owns_log_) unlink(log_file_.c_str());
}

}  // namespace testing
}  // namespace torii
