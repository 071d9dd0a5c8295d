// torii-server: flags, then RunServer().
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <prometheus/exposer.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <limits.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "server/app/flags.h"
#include "server/common/filesystem.h"
#include "server/common/logging.h"
#include "server/common/status_macros.h"
#include "server/core/model_manager.h"
#include "server/grpc/inference_service.h"
#include "server/metrics/metrics_collector.h"
#include "server/repository/repository_poller.h"

namespace torii {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path, const char* flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("--", flag, "=", path, ": cannot read the file"));
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> TlsCredentials(const ServerFlags& flags) {
  grpc::SslServerCredentialsOptions options(
      flags.grpc_use_ssl_mutual ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  TORII_ASSIGN_OR_RETURN(pair.cert_chain, ReadFile(flags.grpc_server_cert, "grpc-server-cert"));
  TORII_ASSIGN_OR_RETURN(pair.private_key, ReadFile(flags.grpc_server_key, "grpc-server-key"));
  options.pem_key_cert_pairs.push_back(std::move(pair));
  if (!flags.grpc_root_cert.empty()) {
    TORII_ASSIGN_OR_RETURN(options.pem_root_certs, ReadFile(flags.grpc_root_cert, "grpc-root-cert"));
  }
  return grpc::SslServerCredentials(options);
}

// Readiness as seen by grpc.health.v1, kept equal to ServerReady.
void UpdateHealth(grpc::Server* server, const InferenceService& service) {
  auto* health = server->GetHealthCheckService();
  if (health == nullptr) return;
  const bool ready = service.IsReady();
  health->SetServingStatus("", ready);
  health->SetServingStatus("inference.GRPCInferenceService", ready);
  // "liveness": SERVING whenever the process answers RPCs, whatever models do.
  health->SetServingStatus("liveness", true);
}

int RunServer(const ServerFlags& flags) {
  ModelManager::Options mo;
  mo.repository = AbsolutePath(flags.model_repository);
  mo.backend_directories = flags.backend_directories;
  if (mo.backend_directories.empty()) mo.backend_directories.push_back(DefaultBackendDirectory());
  for (auto& d : mo.backend_directories) d = AbsolutePath(d);
  mo.default_max_queue_size = static_cast<size_t>(flags.max_queue_size);
  struct stat_check {};
  if (access(mo.repository.c_str(), R_OK | X_OK) != 0) {
    LogError("cannot read the model repository", {{"path", mo.repository}});
    return 2;
  }
  ModelManager manager(mo);

  InferenceService::Options so;
  so.manager = &manager;
  so.limits.max_input_bytes = static_cast<size_t>(flags.max_request_bytes);
  so.strict_readiness = flags.strict_readiness;
  so.explicit_model_control = flags.model_control_mode == "explicit";
  for (const auto& r : flags.restrictions) {
    for (const auto& p : r.protocols) so.restricted[p] = {r.header, r.value};
  }
  InferenceService service(so);

  // Metrics first: a port clash should stop the server before it loads models.
  std::unique_ptr<prometheus::Exposer> exposer;
  auto collector = std::make_shared<MetricsCollector>(&manager);
  if (flags.allow_metrics) {
    const std::string maddr = absl::StrCat(flags.metrics_address, ":", flags.metrics_port);
    try {
      exposer = std::make_unique<prometheus::Exposer>(maddr);
    } catch (const std::exception& e) {
      LogError("cannot serve metrics", {{"address", maddr}, {"error", e.what()}});
      return 2;
    }
    exposer->RegisterCollectable(collector);
    LogInfo("metrics listening", {{"address", maddr}, {"path", "/metrics"}});
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  const std::string address = absl::StrCat(flags.grpc_address, ":", flags.grpc_port);
  int bound_port = 0;
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  if (flags.grpc_use_ssl) {
    auto creds = TlsCredentials(flags);
    if (!creds.ok()) {
      LogError("cannot set up TLS", {{"reason", std::string(creds.status().message())}});
      return 2;
    }
    credentials = *creds;
  }
  builder.AddListeningPort(address, credentials, &bound_port);
  builder.SetMaxReceiveMessageSize(static_cast<int>(flags.max_request_bytes));
  builder.SetMaxSendMessageSize(-1);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || bound_port == 0) {
    LogError("cannot listen", {{"address", address}});
    return 2;
  }
  // Serve (live, not ready) while models load: a slow model never makes the
  // server look dead.
  UpdateHealth(server.get(), service);
  LogInfo("gRPC server listening", {{"address", absl::StrCat(flags.grpc_address, ":", bound_port)},
                                    {"repository", mo.repository},
                                    {"model_control_mode", flags.model_control_mode}});

  // Signals are taken synchronously by a dedicated thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;
  int stop_signal = 0;
  std::thread signal_thread([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    {
      std::lock_guard<std::mutex> lock(mu);
      stop = true;
      stop_signal = sig;
      cv.notify_all();
    }
    // A second signal means "now": leave without draining.
    sigwait(&signals, &sig);
    LogWarning("second stop signal: exiting without draining", {{"signal", std::to_string(sig)}});
    std::fflush(nullptr);
    std::_Exit(1);
  });
  signal_thread.detach();

  std::map<std::string, std::string> fingerprints;
  std::vector<std::string> initial;
  if (flags.model_control_mode == "explicit") {
    for (const auto& m : flags.load_models) {
      if (m == "*") {
        initial = manager.ScanRepository();
        break;
      }
      initial.push_back(m);
    }
  } else {
    initial = manager.ScanRepository();
    DiffRepository(mo.repository, initial, fingerprints);
  }
  for (const auto& name : initial) {
    manager.Load(name).IgnoreError();  // recorded and logged by the manager
    UpdateHealth(server.get(), service);
  }
  service.SetStarted(true);
  UpdateHealth(server.get(), service);
  LogInfo("server ready", {{"ready", service.IsReady() ? "true" : "false"}});

  // Health follows model state (loads from RepositoryModelLoad included);
  // poll mode rescans the repository every --repository-poll-secs.
  {
    auto next_poll = std::chrono::steady_clock::now() + std::chrono::seconds(flags.repository_poll_secs);
    std::unique_lock<std::mutex> lock(mu);
    while (!stop) {
      cv.wait_for(lock, std::chrono::milliseconds(250));
      if (stop) break;
      lock.unlock();
      if (flags.model_control_mode == "poll" && std::chrono::steady_clock::now() >= next_poll) {
        RepositoryChanges ch = DiffRepository(mo.repository, manager.ScanRepository(), fingerprints);
        for (const auto& n : ch.added) manager.Load(n).IgnoreError();
        for (const auto& n : ch.changed) manager.Load(n).IgnoreError();
        for (const auto& n : ch.removed) manager.Unload(n).IgnoreError();
        next_poll = std::chrono::steady_clock::now() + std::chrono::seconds(flags.repository_poll_secs);
      }
      manager.ReportStuckInstances();
      UpdateHealth(server.get(), service);
      lock.lock();
    }
  }

  LogInfo("shutting down", {{"signal", std::to_string(stop_signal)},
                            {"exit_timeout_secs", std::to_string(flags.exit_timeout_secs)}});
  service.SetShuttingDown();
  UpdateHealth(server.get(), service);
  // Drain while still answering: new requests get UNAVAILABLE (clients
  // retry elsewhere) and accepted ones finish, until the exit timeout. Then
  // leave without gRPC's Shutdown(): in gRPC 1.51 it cancels calls that race
  // with it (clients see CANCELLED), whereas closing the process makes a racing
  // call fail to connect, which clients see as UNAVAILABLE.
  const auto exit_deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(flags.exit_timeout_secs);
  while (service.InFlight() > 0 && std::chrono::steady_clock::now() < exit_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const int64_t abandoned = service.InFlight();
  if (abandoned > 0) {
    // A runner is stuck or the work outlasted the timeout: unloading would
    // wait for it, so leave the models as they are.
    LogWarning("exit timeout reached with requests unanswered",
               {{"unanswered", std::to_string(abandoned)}});
  } else {
    manager.UnloadAll();
  }
  LogInfo("stopped");
  std::fflush(nullptr);
  // Skip destructors of gRPC's threads and the server: nothing is left to do.
  std::_Exit(0);
}
}  // namespace
}  // namespace torii

int main(int argc, char** argv) {
  // Debian's Abseil is built without NDEBUG, which leaves absl::Mutex's
  // lock-order checking on in every process: ~9k instructions per request in
  // gRPC's own locks (measured with callgrind, docs/performance.md).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  // Block the stop signals in every thread; the signal thread waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto flags = torii::ParseServerFlags(argc, argv);
  if (!flags.ok()) {
    std::fprintf(stderr, "torii-server: %s\n", std::string(flags.status().message()).c_str());
    return 2;
  }
  if (flags->help) {
    std::fputs(torii::ServerFlagsHelp().c_str(), stdout);
    return 0;
  }
  torii::LogOptions lo;
  lo.json = flags->log_format == "json";
  lo.verbose = flags->log_verbose;
  torii::SetLogOptions(lo);
  return torii::RunServer(*flags);
}
