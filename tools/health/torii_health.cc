// torii-health: asks a server's grpc.health.v1 service whether it is SERVING.
//
// Container health checks (ECS `healthCheck`, Docker `HEALTHCHECK`, Kubernetes
// `exec` probes) run a command inside the container and read its exit code,
// so this is deliberately tiny: one Check call with a deadline, one line of
// output, exit 0 when SERVING and 1 otherwise. Docker reserves exit code 2, so
// usage errors also exit 1.
//
//   torii-health [--address=127.0.0.1:8001] [--service=] [--timeout-ms=2000]

#include <grpcpp/grpcpp.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "health.grpc.pb.h"
#include "health.pb.h"

namespace {

constexpr int kExitServing = 0;
constexpr int kExitUnhealthy = 1;

struct Options {
  std::string address = "127.0.0.1:8001";
  std::string service;  // "" = the whole server (Torii: ready to take traffic).
  long timeout_ms = 2000;
};

constexpr const char kUsage[] =
    "usage: torii-health [--address=HOST:PORT] [--service=NAME] [--timeout-ms=N]\n"
    "Calls grpc.health.v1.Health/Check and exits 0 if the status is SERVING, 1 otherwise.\n"
    "  --address     server to ask (default 127.0.0.1:8001)\n"
    "  --service     service name to ask about (default \"\": the whole server, i.e. ready)\n"
    "  --timeout-ms  deadline for connecting and answering (default 2000)\n";

// Accepts `--name=value` (Triton's style) and `--name value`. Returns false on
// anything it does not understand, with the reason in *error.
bool ParseArgs(int argc, char** argv, Options* options, bool* help, std::string* error) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      *help = true;
      return true;
    }
    std::string name = arg;
    std::string value;
    bool has_value = false;
    const auto eq = arg.find('=');
    if (eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    if (name != "--address" && name != "--service" && name != "--timeout-ms") {
      *error = "unknown argument '" + arg + "'";
      return false;
    }
    if (!has_value) {
      if (i + 1 >= argc) {
        *error = "missing value for " + name;
        return false;
      }
      value = argv[++i];
    }
    if (name == "--address") {
      if (value.empty()) {
        *error = "--address must not be empty";
        return false;
      }
      options->address = value;
    } else if (name == "--service") {
      options->service = value;
    } else {
      char* end = nullptr;
      errno = 0;
      const long ms = std::strtol(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || errno != 0 || ms <= 0 || ms > 3600 * 1000) {
        *error = "--timeout-ms must be a whole number of milliseconds in [1, 3600000], got '" +
                 value + "'";
        return false;
      }
      options->timeout_ms = ms;
    }
  }
  return true;
}

const char* StatusName(grpc::health::v1::HealthCheckResponse::ServingStatus status) {
  switch (status) {
    case grpc::health::v1::HealthCheckResponse::SERVING:
      return "SERVING";
    case grpc::health::v1::HealthCheckResponse::NOT_SERVING:
      return "NOT_SERVING";
    case grpc::health::v1::HealthCheckResponse::SERVICE_UNKNOWN:
      return "SERVICE_UNKNOWN";
    default:
      return "UNKNOWN";
  }
}

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    default:
      return "ERROR";
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  bool help = false;
  std::string error;
  if (!ParseArgs(argc, argv, &options, &help, &error)) {
    std::fprintf(stderr, "torii-health: %s\n%s", error.c_str(), kUsage);
    return kExitUnhealthy;
  }
  if (help) {
    std::fputs(kUsage, stdout);
    return kExitServing;
  }

  grpc::ChannelArguments args;
  // A health check of the local process must never be routed through an
  // http(s)_proxy that the container environment happens to set.
  args.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
  auto channel =
      grpc::CreateCustomChannel(options.address, grpc::InsecureChannelCredentials(), args);
  auto stub = grpc::health::v1::Health::NewStub(channel);

  grpc::ClientContext context;
  const auto start = std::chrono::steady_clock::now();
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(options.timeout_ms));
  // Fail fast (not wait-for-ready) when nothing listens: a refused connection
  // is already the answer, and every orchestrator retries on its own schedule.
  context.set_wait_for_ready(false);

  grpc::health::v1::HealthCheckRequest request;
  request.set_service(options.service);
  grpc::health::v1::HealthCheckResponse response;
  const grpc::Status status = stub->Check(&context, request, &response);
  const long elapsed_ms = static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                std::chrono::steady_clock::now() - start)
                                                .count());

  if (!status.ok()) {
    // NOT_FOUND is how the health service says "no such service name".
    std::printf("%s: %s service=\"%s\": %s (%ld ms)\n", CodeName(status.error_code()),
                options.address.c_str(), options.service.c_str(),
                status.error_message().c_str(), elapsed_ms);
    return kExitUnhealthy;
  }
  std::printf("%s: %s service=\"%s\" (%ld ms)\n", StatusName(response.status()),
              options.address.c_str(), options.service.c_str(), elapsed_ms);
  return response.status() == grpc::health::v1::HealthCheckResponse::SERVING ? kExitServing
                                                                              : kExitUnhealthy;
}
