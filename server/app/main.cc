// torii-server: flags, then RunServer().
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <prometheus/exposer.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "server/app/flags.h"
#include "server/app/http_metrics.h"
#include "server/common/filesystem.h"
#include "server/common/logging.h"
#include "server/common/status_macros.h"
#include "server/grpc/inference_service.h"
#include "server/http/http_api.h"
#include "server/http/http_server.h"
#include "server/http/manager_model_service.h"
#include "server/manager/inference_core.h"
#include "server/manager/model_loader.h"
#include "server/manager/model_manager.h"
#include "server/manager/server_readiness.h"
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

// Waits for SIGTERM/SIGINT on a thread of its own (the signals are blocked
// everywhere else). The first starts the drain; later ones are logged and
// change nothing: an orchestrator that repeats SIGTERM must not cut the drain
// short (SIGKILL is the way to stop at once).
class StopSignal {
 public:
  StopSignal() {
    thread_ = std::thread([this] {
      sigset_t signals;
      sigemptyset(&signals);
      sigaddset(&signals, SIGINT);
      sigaddset(&signals, SIGTERM);
      int sig = 0;
      sigwait(&signals, &sig);
      {
        std::lock_guard<std::mutex> lock(mu_);
        signal_ = sig;
      }
      cv_.notify_all();
      for (;;) {
        sigwait(&signals, &sig);
        LogWarning("stop signal received again: the drain goes on until it ends or "
                   "--exit-timeout-secs passes (send SIGKILL to stop at once)",
                   {{"signal", std::to_string(sig)}});
      }
    });
    thread_.detach();
  }
  /// Blocks until the first stop signal; returns it.
  int Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return signal_ != 0; });
    return signal_;
  }
  /// Waits up to `d`; true once a stop signal came.
  bool WaitFor(std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, d, [&] { return signal_ != 0; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int signal_ = 0;
  std::thread thread_;
};

// The models to load at startup.
std::vector<std::string> InitialModels(const ServerFlags& flags, const ModelRepository& repo) {
  if (flags.model_control_mode != "explicit") return repo.List();
  std::vector<std::string> out;
  for (const auto& m : flags.load_models) {
    if (m == "*") return repo.List();
    out.push_back(m);
  }
  return out;
}

// The HTTP/REST frontend: the endpoints over the manager and the dispatcher,
// and its listener. Null members when --allow-http=false.
struct HttpFrontend {
  std::unique_ptr<http::ManagerModelService> models;
  std::unique_ptr<http::HttpApi> api;
  std::unique_ptr<http::HttpServer> server;
  // The exposer holds collectables by weak_ptr: this one lives here.
  std::shared_ptr<HttpMetricsCollector> metrics;

  int64_t InFlight() const { return api == nullptr ? 0 : api->InFlight(); }
};

// Binds the HTTP port (a port in use fails here, before any model loads).
absl::Status StartHttp(const ServerFlags& flags, ModelManager* manager, InferenceCore* core,
                       const ServerReadiness* readiness, SystemSharedMemory* shared_memory,
                       HttpFrontend* out) {
  http::ManagerModelService::Options mo;
  mo.manager = manager;
  mo.readiness = readiness;
  mo.explicit_model_control = flags.model_control_mode == "explicit";
  out->models = std::make_unique<http::ManagerModelService>(mo);

  http::HttpApi::Options ao;
  ao.models = out->models.get();
  ao.dispatcher = core;
  ao.max_request_bytes = static_cast<size_t>(flags.max_request_bytes);
  for (const auto& r : flags.http_restrictions) {
    for (const auto& p : r.protocols) ao.restricted[p] = {r.header, r.value};
  }
  ao.server_name = "torii";
  ao.server_version = TORII_SERVER_VERSION;
  ao.repository_threads = static_cast<size_t>(flags.model_load_thread_count);
  ao.log_requests = flags.log_verbose > 0;
  ao.shared_memory = shared_memory;
  out->api = std::make_unique<http::HttpApi>(std::move(ao));

  http::HttpServer::Options so;
  so.address = flags.http_address;
  so.port = flags.http_port;
  so.threads = flags.http_thread_count;
  so.max_body_bytes = static_cast<uint64_t>(flags.max_request_bytes);
  so.idle_timeout = std::chrono::seconds(flags.http_idle_timeout_secs);
  so.body_timeout = std::chrono::seconds(flags.http_io_timeout_secs);
  so.write_timeout = std::chrono::seconds(flags.http_io_timeout_secs);
  TORII_ASSIGN_OR_RETURN(out->server, http::HttpServer::Start(so, out->api.get()));
  return absl::OkStatus();
}

// One line per model after startup: what serves and what does not, and why.
void LogModelTable(const ModelManager& manager) {
  for (const auto& e : manager.Index()) {
    LogInfo("model", {{"name", e.name},
                      {"version", e.version.empty() ? "-" : e.version},
                      {"state", ModelStateName(e.state)},
                      {"reason", e.reason}});
  }
}

int RunServer(const ServerFlags& flags) {
  ModelRepository::Options ro;
  ro.root = AbsolutePath(flags.model_repository);
  ro.backend_directories = flags.backend_directories;
  if (ro.backend_directories.empty()) ro.backend_directories.push_back(DefaultBackendDirectory());
  for (auto& d : ro.backend_directories) d = AbsolutePath(d);
  if (access(ro.root.c_str(), R_OK | X_OK) != 0) {
    LogError("cannot read the model repository", {{"path", ro.root}});
    return 2;
  }
  ModelRepository repository(ro);
  // Runner-defined metrics (ABI 1.3); declared before the loader, so it
  // outlives every model that holds some.
  host_metrics::Registry runner_metrics;
  ModelLoader::Options lo;
  lo.defaults.max_queue_size = static_cast<size_t>(flags.max_queue_size);
  lo.runner_metrics = &runner_metrics;
  ModelLoader loader(lo);
  ModelManager manager(&repository, &loader, ModelManager::Options{});
  ValidationLimits limits;
  limits.max_input_bytes = static_cast<size_t>(flags.max_request_bytes);
  InferenceCore core(&manager, limits);
  // Runners' calls to other models take the same path as clients' requests.
  loader.set_dispatcher(&core);

  // One readiness for every frontend and grpc.health.v1, and one registry
  // of shared-memory regions: a region registered over HTTP serves gRPC
  // requests too.
  ServerReadiness readiness(&manager, &core, flags.strict_readiness);
  SystemSharedMemory shared_memory;

  InferenceService::Options so;
  so.manager = &manager;
  so.core = &core;
  so.readiness = &readiness;
  so.shared_memory = &shared_memory;
  so.explicit_model_control = flags.model_control_mode == "explicit";
  so.repository_threads = static_cast<size_t>(flags.model_load_thread_count);
  for (const auto& r : flags.restrictions) {
    for (const auto& p : r.protocols) so.restricted[p] = {r.header, r.value};
  }
  InferenceService service(so);

  // Metrics first: a port clash should stop the server before it loads models.
  std::unique_ptr<prometheus::Exposer> exposer;
  auto collector = std::make_shared<MetricsCollector>(&manager, &runner_metrics);
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

  // HTTP next, for the same reason.
  HttpFrontend http_frontend;
  if (flags.allow_http) {
    absl::Status started =
        StartHttp(flags, &manager, &core, &readiness, &shared_memory, &http_frontend);
    if (!started.ok()) {
      LogError("cannot serve HTTP", {{"reason", std::string(started.message())}});
      return 2;
    }
    if (exposer != nullptr) {
      http_frontend.metrics = std::make_shared<HttpMetricsCollector>(http_frontend.api.get(),
                                                                     http_frontend.server.get());
      exposer->RegisterCollectable(http_frontend.metrics);
    }
    LogInfo("HTTP server listening",
            {{"address", absl::StrCat(flags.http_address, ":", http_frontend.server->port())}});
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
  // gRPC sets SO_REUSEPORT by default, so a second server on the same port
  // would start and silently share the traffic (Triton: --reuse-grpc-port).
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, flags.reuse_grpc_port ? 1 : 0);
  builder.SetMaxReceiveMessageSize(static_cast<int>(flags.max_request_bytes));
  builder.SetMaxSendMessageSize(-1);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || bound_port == 0) {
    LogError("cannot listen: the address is invalid or the port is in use "
             "(--reuse-grpc-port=true shares a port on purpose)",
             {{"address", address}});
    return 2;
  }
  // Serve (live, not ready) while models load: a slow model never makes the
  // server look dead.
  UpdateHealth(server.get(), service);
  LogInfo("gRPC server listening", {{"address", absl::StrCat(flags.grpc_address, ":", bound_port)},
                                    {"repository", ro.root},
                                    {"model_control_mode", flags.model_control_mode}});

  StopSignal stop;
  std::map<std::string, std::string> fingerprints;
  const std::vector<std::string> initial = InitialModels(flags, repository);
  if (flags.model_control_mode == "poll") DiffRepository(ro.root, initial, fingerprints);
  manager.LoadAll(initial, static_cast<size_t>(flags.model_load_thread_count));
  readiness.SetStarted();
  UpdateHealth(server.get(), service);
  LogModelTable(manager);
  LogInfo("server ready", {{"ready", readiness.IsReady() ? "true" : "false"}});

  // Housekeeping on a thread of its own, never on the one that waits for
  // signals: health follows model state, poll mode rescans the repository
  // every --repository-poll-secs (a reload that drains a stuck version can
  // take a while; shutdown does not wait for it).
  std::thread housekeeping([&] {
    auto next_poll =
        std::chrono::steady_clock::now() + std::chrono::seconds(flags.repository_poll_secs);
    while (!stop.WaitFor(std::chrono::milliseconds(250))) {
      if (flags.model_control_mode == "poll" && std::chrono::steady_clock::now() >= next_poll) {
        RepositoryChanges ch = DiffRepository(ro.root, repository.List(), fingerprints);
        for (const auto& n : ch.added) manager.Load(n).IgnoreError();
        for (const auto& n : ch.changed) manager.Load(n).IgnoreError();
        for (const auto& n : ch.removed) manager.Unload(n).IgnoreError();
        next_poll = std::chrono::steady_clock::now() + std::chrono::seconds(flags.repository_poll_secs);
      }
      manager.ReportStuckInstances();
      UpdateHealth(server.get(), service);
    }
  });
  housekeeping.detach();

  const int stop_signal = stop.Wait();
  LogInfo("shutting down", {{"signal", std::to_string(stop_signal)},
                            {"exit_timeout_secs", std::to_string(flags.exit_timeout_secs)}});
  core.SetShuttingDown();
  UpdateHealth(server.get(), service);
  // Drain while still answering: new requests get UNAVAILABLE (clients
  // retry elsewhere) and accepted ones finish, until the exit timeout. Then
  // leave without gRPC's Shutdown(): in gRPC 1.51 it cancels calls that race
  // with it (clients see CANCELLED), whereas closing the process makes a racing
  // call fail to connect, which clients see as UNAVAILABLE.
  // HTTP keeps answering too (new requests 503, /v2/health/ready 400) until
  // every accepted request has its answer.
  const auto exit_deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(flags.exit_timeout_secs);
  auto in_flight = [&] { return service.InFlight() + http_frontend.InFlight(); };
  while (in_flight() > 0 && std::chrono::steady_clock::now() < exit_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const int64_t abandoned = in_flight();
  if (http_frontend.server != nullptr) {
    // Answers handed over are written before their connections close (a
    // short bound: they are on their way already).
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        exit_deadline - std::chrono::steady_clock::now());
    http_frontend.server->Shutdown(std::clamp(left, std::chrono::milliseconds(200),
                                              std::chrono::milliseconds(2000)));
  }
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
