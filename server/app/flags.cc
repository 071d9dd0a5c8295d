#include "server/app/flags.h"

#include <functional>

#include "absl/strings/numbers.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace torii {
namespace {

struct FlagSpec {
  const char* name;
  const char* value_hint;  // nullptr for a boolean
  const char* help;
  std::function<absl::Status(ServerFlags&, const std::string&)> set;
};

absl::Status Bad(const char* flag, const std::string& value, const char* want) {
  return absl::InvalidArgumentError(
      absl::StrCat("--", flag, "=", value, " is invalid: expected ", want));
}

std::function<absl::Status(ServerFlags&, const std::string&)> BoolFlag(const char* name,
                                                                       bool ServerFlags::*field) {
  return [=](ServerFlags& f, const std::string& v) {
    if (v == "true" || v == "1") {
      f.*field = true;
    } else if (v == "false" || v == "0") {
      f.*field = false;
    } else {
      return Bad(name, v, "true or false");
    }
    return absl::OkStatus();
  };
}

template <typename Int>
std::function<absl::Status(ServerFlags&, const std::string&)> IntFlag(const char* name, Int ServerFlags::*field,
                                                                      Int min, Int max) {
  return [=](ServerFlags& f, const std::string& v) {
    int64_t n;
    if (!absl::SimpleAtoi(v, &n) || n < static_cast<int64_t>(min) || n > static_cast<int64_t>(max)) {
      return Bad(name, v, absl::StrCat("an integer in ", min, "..", max).c_str());
    }
    f.*field = static_cast<Int>(n);
    return absl::OkStatus();
  };
}

// "<p1>,<p2>:<header>=<value>" (Triton), also accepting "<p1>,<header>=<value>".
// Shared by --grpc-restricted-protocol and --http-restricted-api.
absl::Status ParseRestriction(const char* flag, std::vector<ServerFlags::Restriction>& out,
                              const std::string& v) {
  // Triton's protocol groups.
  static const char* kKnown[] = {"health",           "metadata",   "inference",     "model-config",
                                 "model-repository", "statistics", "shared-memory", "trace",
                                 "logging"};
  const char* want = "PROTOCOL[,PROTOCOL...]:HEADER=VALUE with protocols among health, metadata, "
                     "inference, model-config, model-repository, statistics, shared-memory, "
                     "trace, logging";
  const size_t eq = v.rfind('=');
  if (eq == std::string::npos) return Bad(flag, v, want);
  size_t sep = v.rfind(':', eq);
  if (sep == std::string::npos) sep = v.rfind(',', eq);
  if (sep == std::string::npos || sep == 0 || eq == sep + 1) {
    return Bad(flag, v, want);
  }
  ServerFlags::Restriction r;
  r.header = absl::AsciiStrToLower(v.substr(sep + 1, eq - sep - 1));
  r.value = v.substr(eq + 1);
  for (absl::string_view p : absl::StrSplit(v.substr(0, sep), ',')) {
    bool known = false;
    for (const char* k : kKnown) known = known || p == k;
    if (!known) return Bad(flag, v, want);
    r.protocols.emplace_back(p);
  }
  out.push_back(std::move(r));
  return absl::OkStatus();
}

const std::vector<FlagSpec>& Specs() {
  static const auto* specs = new std::vector<FlagSpec>{
      {"model-repository", "DIR", "Model repository directory (required).",
       [](ServerFlags& f, const std::string& v) {
         if (v.empty()) return Bad("model-repository", v, "a directory");
         f.model_repository = v;
         return absl::OkStatus();
       }},
      {"grpc-address", "ADDR", "Address the gRPC server binds (default 0.0.0.0).",
       [](ServerFlags& f, const std::string& v) {
         if (v.empty()) return Bad("grpc-address", v, "an IP address or host name");
         f.grpc_address = v;
         return absl::OkStatus();
       }},
      {"grpc-port", "PORT", "gRPC port (default 8001; 0 picks a free port).",
       IntFlag<int>("grpc-port", &ServerFlags::grpc_port, 0, 65535)},
      {"backend-directory", "DIR",
       "Directory of bundled runners (libtorii_<name>.so); repeatable. Default: "
       "<executable>/../lib/torii, which works in the build and install trees.",
       [](ServerFlags& f, const std::string& v) {
         if (v.empty()) return Bad("backend-directory", v, "a directory");
         f.backend_directories.push_back(v);
         return absl::OkStatus();
       }},
      {"log-verbose", "N", "Verbose logging level (default 0).",
       IntFlag<int>("log-verbose", &ServerFlags::log_verbose, 0, 10)},
      {"log-format", "FORMAT", "Log line format: default or json.",
       [](ServerFlags& f, const std::string& v) {
         if (v != "default" && v != "json") return Bad("log-format", v, "default or json");
         f.log_format = v;
         return absl::OkStatus();
       }},
      {"model-control-mode", "MODE",
       "none (load everything at start), poll (also reload on repository changes), or "
       "explicit (load what --load-model names and what RepositoryModelLoad asks for).",
       [](ServerFlags& f, const std::string& v) {
         if (v != "none" && v != "poll" && v != "explicit") {
           return Bad("model-control-mode", v, "none, poll or explicit");
         }
         f.model_control_mode = v;
         return absl::OkStatus();
       }},
      {"repository-poll-secs", "SECS", "Seconds between repository polls in poll mode (default 15).",
       IntFlag<int>("repository-poll-secs", &ServerFlags::repository_poll_secs, 1, 86400)},
      {"load-model", "NAME", "Model to load at start in explicit mode; repeatable; * = all.",
       [](ServerFlags& f, const std::string& v) {
         if (v.empty()) return Bad("load-model", v, "a model name or *");
         f.load_models.push_back(v);
         return absl::OkStatus();
       }},
      {"strict-readiness", "BOOL", "Readiness requires every model ready (default true).",
       BoolFlag("strict-readiness", &ServerFlags::strict_readiness)},
      {"allow-metrics", "BOOL", "Serve Prometheus metrics (default true).",
       BoolFlag("allow-metrics", &ServerFlags::allow_metrics)},
      {"metrics-address", "ADDR", "Address the metrics endpoint binds (default 0.0.0.0).",
       [](ServerFlags& f, const std::string& v) {
         if (v.empty()) return Bad("metrics-address", v, "an IP address or host name");
         f.metrics_address = v;
         return absl::OkStatus();
       }},
      {"metrics-port", "PORT", "Port of the Prometheus text endpoint /metrics (default 8002).",
       IntFlag<int>("metrics-port", &ServerFlags::metrics_port, 1, 65535)},
      {"exit-timeout-secs", "SECS",
       "On SIGTERM/SIGINT, seconds to finish in-flight and queued requests (default 30).",
       IntFlag<int>("exit-timeout-secs", &ServerFlags::exit_timeout_secs, 0, 86400)},
      {"grpc-use-ssl", "BOOL", "Serve gRPC over TLS (needs --grpc-server-cert and --grpc-server-key).",
       BoolFlag("grpc-use-ssl", &ServerFlags::grpc_use_ssl)},
      {"grpc-use-ssl-mutual", "BOOL",
       "Mutual TLS: clients must present a certificate signed by --grpc-root-cert.",
       BoolFlag("grpc-use-ssl-mutual", &ServerFlags::grpc_use_ssl_mutual)},
      {"grpc-server-cert", "FILE", "PEM certificate chain of the server.",
       [](ServerFlags& f, const std::string& v) {
         f.grpc_server_cert = v;
         return absl::OkStatus();
       }},
      {"grpc-server-key", "FILE", "PEM private key of the server.",
       [](ServerFlags& f, const std::string& v) {
         f.grpc_server_key = v;
         return absl::OkStatus();
       }},
      {"grpc-root-cert", "FILE", "PEM root certificates that sign client certificates (mutual TLS).",
       [](ServerFlags& f, const std::string& v) {
         f.grpc_root_cert = v;
         return absl::OkStatus();
       }},
      {"grpc-restricted-protocol", "PROTOCOLS:HEADER=VALUE",
       "Restrict RPC groups (health, metadata, inference, model-config, model-repository, "
       "statistics, shared-memory, trace, logging) to requests carrying the header, e.g. "
       "model-repository:admin-key=secret. "
       "Repeatable.",
       [](ServerFlags& f, const std::string& v) {
         return ParseRestriction("grpc-restricted-protocol", f.restrictions, v);
       }},
      {"allow-http", "BOOL", "Serve the KServe v2 REST API over HTTP (default true).",
       BoolFlag("allow-http", &ServerFlags::allow_http)},
      {"http-address", "ADDR", "Address the HTTP server binds (default 0.0.0.0).",
       [](ServerFlags& f, const std::string& v) {
         if (v.empty()) return Bad("http-address", v, "an IP address or host name");
         f.http_address = v;
         return absl::OkStatus();
       }},
      {"http-port", "PORT", "HTTP port (default 8000; 0 picks a free port).",
       IntFlag<int>("http-port", &ServerFlags::http_port, 0, 65535)},
      {"http-thread-count", "N",
       "Threads that read, parse and answer HTTP requests (default 8).",
       IntFlag<int>("http-thread-count", &ServerFlags::http_thread_count, 1, 1024)},
      {"http-idle-timeout-secs", "SECS",
       "Close an HTTP connection that waits this long for its next request, or for a "
       "request's headers to arrive in full (default 60).",
       IntFlag<int>("http-idle-timeout-secs", &ServerFlags::http_idle_timeout_secs, 1, 86400)},
      {"http-io-timeout-secs", "SECS",
       "Close an HTTP connection whose request body does not arrive in full, or whose client "
       "does not take the answer, within this time (default 120).",
       IntFlag<int>("http-io-timeout-secs", &ServerFlags::http_io_timeout_secs, 1, 86400)},
      {"http-restricted-api", "PROTOCOLS:HEADER=VALUE",
       "Restrict HTTP endpoint groups (the groups of --grpc-restricted-protocol) to requests "
       "carrying the header, e.g. model-repository:admin-key=secret. Repeatable.",
       [](ServerFlags& f, const std::string& v) {
         return ParseRestriction("http-restricted-api", f.http_restrictions, v);
       }},
      {"max-queue-size", "N",
       "Per-model queue bound when config.pbtxt sets no max_queue_size (default 10000; 0 = unbounded).",
       IntFlag<int64_t>("max-queue-size", &ServerFlags::max_queue_size, 0, int64_t{1} << 30)},
      {"max-request-bytes", "BYTES",
       "Largest request accepted, in bytes (default 67108864).",
       IntFlag<int64_t>("max-request-bytes", &ServerFlags::max_request_bytes, 1024,
                        int64_t{2047} << 20)},
      {"reuse-grpc-port", "BOOL",
       "Let another process bind the same gRPC port at the same time (SO_REUSEPORT; default "
       "false: a port in use stops the server).",
       BoolFlag("reuse-grpc-port", &ServerFlags::reuse_grpc_port)},
      {"model-load-thread-count", "N",
       "Models loaded in parallel at startup, and repository loads/unloads run at once "
       "(default 4).",
       IntFlag<int>("model-load-thread-count", &ServerFlags::model_load_thread_count, 1, 256)},
  };
  return *specs;
}

}  // namespace

std::string ServerFlagsHelp() {
  std::string out =
      "Usage: torii-server --model-repository=DIR [flags]\n\n"
      "Torii serves the models of a repository over the KServe v2 protocol (gRPC and HTTP/REST).\n\n"
      "Flags:\n";
  for (const auto& s : Specs()) {
    absl::StrAppend(&out, "  --", s.name, "=", s.value_hint, "\n      ", s.help, "\n");
  }
  absl::StrAppend(&out, "  --help\n      Print this help and exit.\n");
  return out;
}

absl::StatusOr<ServerFlags> ParseServerFlags(int argc, char** argv) {
  ServerFlags flags;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      flags.help = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", arg,
                                                     "'; flags look like --name=value (see --help)"));
    }
    std::string name = arg.substr(2), value;
    bool has_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    const FlagSpec* spec = nullptr;
    for (const auto& s : Specs()) {
      if (name == s.name) spec = &s;
    }
    if (spec == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name, " (see --help)"));
    }
    if (!has_value) {
      if (i + 1 >= argc) {
        return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value: --", name, "=",
                                                       spec->value_hint));
      }
      value = argv[++i];
    }
    absl::Status s = spec->set(flags, value);
    if (!s.ok()) return s;
  }
  if (!flags.help && flags.model_repository.empty()) {
    return absl::InvalidArgumentError("--model-repository=DIR is required (see --help)");
  }
  if (flags.allow_http && flags.http_port != 0) {
    if (flags.http_port == flags.grpc_port) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--http-port and --grpc-port are both ", flags.http_port, ": give each its own port"));
    }
    if (flags.allow_metrics && flags.http_port == flags.metrics_port) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--http-port and --metrics-port are both ", flags.http_port, ": give each its own port"));
    }
  }
  if (flags.grpc_use_ssl_mutual) flags.grpc_use_ssl = true;
  if (flags.grpc_use_ssl && (flags.grpc_server_cert.empty() || flags.grpc_server_key.empty())) {
    return absl::InvalidArgumentError(
        "--grpc-use-ssl needs --grpc-server-cert=FILE and --grpc-server-key=FILE");
  }
  if (flags.grpc_use_ssl_mutual && flags.grpc_root_cert.empty()) {
    return absl::InvalidArgumentError(
        "--grpc-use-ssl-mutual needs --grpc-root-cert=FILE to verify client certificates");
  }
  return flags;
}

}  // namespace torii
