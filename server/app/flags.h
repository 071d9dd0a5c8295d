// Command-line flags with Triton's names (--model-repository, --grpc-port, ...).
// Abseil flags cannot spell dashes, so Torii parses its own small table.
#ifndef TORII_SERVER_APP_FLAGS_H_
#define TORII_SERVER_APP_FLAGS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace torii {

struct ServerFlags {
  std::string model_repository;
  std::string grpc_address = "0.0.0.0";
  int grpc_port = 8001;
  std::vector<std::string> backend_directories;  // empty: <exe>/../lib/torii
  int log_verbose = 0;
  std::string log_format = "default";            // default | json
  std::string model_control_mode = "none";       // none | poll | explicit
  int repository_poll_secs = 15;
  std::vector<std::string> load_models;          // explicit mode; "*" = all
  bool strict_readiness = true;
  int exit_timeout_secs = 30;
  int64_t max_queue_size = 10000;                // default per-model queue bound
  int64_t max_request_bytes = int64_t{64} << 20; // gRPC message and input size cap
  bool reuse_grpc_port = false;
  int model_load_thread_count = 4;
  bool allow_metrics = true;
  std::string metrics_address = "0.0.0.0";
  int metrics_port = 8002;
  // TLS (Triton's names).
  bool grpc_use_ssl = false;
  bool grpc_use_ssl_mutual = false;
  std::string grpc_server_cert;
  std::string grpc_server_key;
  std::string grpc_root_cert;
  // --grpc-restricted-protocol=<protocol>[,<protocol>...]:<header>=<value>
  struct Restriction {
    std::vector<std::string> protocols;  // health, metadata, inference, model-config,
                                         // model-repository, statistics
    std::string header;                  // lower case
    std::string value;
  };
  std::vector<Restriction> restrictions;
  // HTTP/REST (Triton's names). --http-restricted-api takes the same groups
  // and syntax as --grpc-restricted-protocol.
  bool allow_http = true;
  std::string http_address = "0.0.0.0";
  int http_port = 8000;                          // 0 picks a free port
  int http_thread_count = 8;
  // Torii's: a keep-alive connection waiting for its next request, or for a
  // request's headers, is closed after this; a body must arrive, and an
  // answer be taken, within http_io_timeout_secs.
  int http_idle_timeout_secs = 60;
  int http_io_timeout_secs = 120;
  std::vector<Restriction> http_restrictions;
  bool help = false;
};

/// Parses argv. Unknown flags, missing values and bad values are errors that
/// name the flag and what it accepts.
absl::StatusOr<ServerFlags> ParseServerFlags(int argc, char** argv);

/// The --help text.
std::string ServerFlagsHelp();

}  // namespace torii

#endif  // TORII_SERVER_APP_FLAGS_H_
