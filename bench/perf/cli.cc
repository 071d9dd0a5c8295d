#include "cli.h"

#include <getopt.h>
#include <sys/wait.h>

#include <cstdlib>
#include <iostream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "range.h"

namespace torii::perf {
namespace {

enum LongOnly {
  kConcurrencyRange = 1000,
  kRequestRateRange,
  kRequestDistribution,
  kPercentile,
  kWarmup,
  kRequestCount,
  kStreaming,
  kInput,
  kShape,
  kInputData,
  kStringLength,
  kOutput,
  kRaw,
  kTyped,
  kOutputJson,
  kChannels,
  kRequestTimeout,
  kMaxInflight,
  kServerPid,
  kLabel,
  kSeed,
  kWaitReady,
  kWarmupCount,
  kOnCountStart,
  kOnCountEnd,
  kInputTensorFormat,
  kOutputTensorFormat,
  kHttpThreads,
};

const option kOptions[] = {
    {"model-name", required_argument, nullptr, 'm'},
    {"model-version", required_argument, nullptr, 'x'},
    {"url", required_argument, nullptr, 'u'},
    {"protocol", required_argument, nullptr, 'i'},
    {"concurrency-range", required_argument, nullptr, kConcurrencyRange},
    {"request-rate-range", required_argument, nullptr, kRequestRateRange},
    {"request-distribution", required_argument, nullptr, kRequestDistribution},
    {"measurement-interval", required_argument, nullptr, 'p'},
    {"stability-percentage", required_argument, nullptr, 's'},
    {"max-trials", required_argument, nullptr, 'r'},
    {"percentile", required_argument, nullptr, kPercentile},
    {"warmup-interval", required_argument, nullptr, kWarmup},
    {"request-count", required_argument, nullptr, kRequestCount},
    {"warmup-count", required_argument, nullptr, kWarmupCount},
    {"on-count-start", required_argument, nullptr, kOnCountStart},
    {"on-count-end", required_argument, nullptr, kOnCountEnd},
    {"input-tensor-format", required_argument, nullptr, kInputTensorFormat},
    {"output-tensor-format", required_argument, nullptr, kOutputTensorFormat},
    {"http-threads", required_argument, nullptr, kHttpThreads},
    {"streaming", no_argument, nullptr, kStreaming},
    {"input", required_argument, nullptr, kInput},
    {"shape", required_argument, nullptr, kShape},
    {"batch-size", required_argument, nullptr, 'b'},
    {"input-data", required_argument, nullptr, kInputData},
    {"string-length", required_argument, nullptr, kStringLength},
    {"output", required_argument, nullptr, kOutput},
    {"raw", no_argument, nullptr, kRaw},
    {"typed", no_argument, nullptr, kTyped},
    {"output-csv", required_argument, nullptr, 'f'},
    {"output-json", required_argument, nullptr, kOutputJson},
    {"channels", required_argument, nullptr, kChannels},
    {"request-timeout-ms", required_argument, nullptr, kRequestTimeout},
    {"max-inflight", required_argument, nullptr, kMaxInflight},
    {"server-pid", required_argument, nullptr, kServerPid},
    {"label", required_argument, nullptr, kLabel},
    {"seed", required_argument, nullptr, kSeed},
    {"wait-ready", required_argument, nullptr, kWaitReady},
    {"verbose", no_argument, nullptr, 'v'},
    {"help", no_argument, nullptr, 'h'},
    {nullptr, 0, nullptr, 0},
};

template <typename T>
absl::Status Number(const char* flag, const char* text, T* out, T min) {
  bool ok;
  if constexpr (std::is_floating_point_v<T>) {
    ok = absl::SimpleAtod(text, out);
  } else {
    ok = absl::SimpleAtoi(text, out);
  }
  if (!ok || *out < min) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", flag, " '", text, "' is not a number >= ", min));
  }
  return absl::OkStatus();
}

}  // namespace

std::string Usage() {
  return R"(torii-perf: load generator for any KServe v2 / Triton inference server (gRPC or HTTP).

Usage: torii-perf -m MODEL [options]

Target
  -m, --model-name NAME          model to infer (required)
  -x, --model-version V          version (default: the server's choice)
  -u, --url HOST:PORT            server (default 127.0.0.1:8001; HTTP 127.0.0.1:8000)
  -i, --protocol grpc|http       gRPC (default) or HTTP/1.1 REST, one keep-alive
                                 connection per request slot
      --input-tensor-format binary|json   HTTP: inputs as raw bytes after the
                                 JSON (binary_data_size, default) or JSON data
      --output-tensor-format binary|json  HTTP: outputs asked as raw bytes
                                 (binary_data_output, default) or JSON data
      --http-threads N           HTTP client threads (default 2)
      --channels N               gRPC channels, each its own TCP connection;
                                 request slot i uses channel i % N (default 1:
                                 one shared HTTP/2 connection)
      --streaming                ModelStreamInfer streams (one per slot, one
                                 request in flight each) instead of unary
      --request-timeout-ms MS    per-request deadline, unary only (default none)
      --wait-ready MS            first poll ModelReady until true (up to MS)
Load
      --concurrency-range S[:E[:STEP]]  closed loop, STEP additive (default 1)
      --request-rate-range S[:E[:STEP]] open loop, requests/s
      --request-distribution constant|poisson   rate mode gaps (default constant)
      --max-inflight N           rate mode cap on requests in flight (10000)
Measurement
  -p, --measurement-interval MS  window length (default 5000)
  -s, --stability-percentage P   windows are stable when the last 3 have
                                 throughput and latency within P% of their
                                 mean (default 10)
  -r, --max-trials N             windows before giving up on stability (10)
      --percentile P             use pP latency for stability (default avg)
      --warmup-interval MS       load before the first window (default 500)
      --request-count N          instead of windows: exactly N requests
      --warmup-count N           with --request-count: N requests first, on
                                 the same connection, not counted (default 0)
      --on-count-start CMD       with --request-count: shell command run after
                                 the warm-up, just before the first counted
                                 request (e.g. zero a profiler's counters)
      --on-count-end CMD         ...and right after the last counted response,
                                 before the connection closes; a command that
                                 fails fails the run (exit 1)
      --server-pid PID           also report that process's CPU per request
Payload
      --input NAME:DATATYPE:SHAPE   e.g. INPUT0:FP32:1,256 (repeatable); without
                                 it the inputs come from ModelMetadata
      --shape NAME:SHAPE         override one input's shape (repeatable)
  -b, --batch-size N             leading -1 of metadata shapes (default 1)
      --input-data random|zero|FILE.json   (default random; JSON format in
                                 bench/README.md)
      --string-length N          random BYTES element length (default 16)
      --output NAME              request only these outputs (repeatable)
      --raw | --typed            raw_input_contents (default) or typed contents
      --seed N                   random data and Poisson gaps (default 1)
Output
  -f, --output-csv FILE          CSV, one row per point (as perf_analyzer -f)
      --output-json FILE         JSON with run settings, every window, CPU
      --label TEXT               recorded in the JSON (e.g. torii, echo)
  -v, --verbose                  print every window
  -h, --help

Exit status: 0 all requests succeeded; 1 bad flags or setup failure;
2 some requests failed (figures are still printed and written).
)";
}

absl::StatusOr<PerfConfig> ParseCommandLine(int argc, char** argv) {
  PerfConfig c;
  bool url_given = false, tensor_format_given = false;
  optind = 0;  // glibc: full re-initialisation, so parsing may repeat
  opterr = 0;
  int opt;
  int index = 0;
  while ((opt = getopt_long(argc, argv, ":m:x:u:i:p:s:r:b:f:vh", kOptions,
                            &index)) != -1) {
    absl::Status s;
    switch (opt) {
      case 'm': c.model_name = optarg; break;
      case 'x': c.model_version = optarg; break;
      case 'u':
        c.url = optarg;
        url_given = true;
        break;
      case 'i': {
        const std::string p = absl::AsciiStrToLower(optarg);
        if (p == "grpc") {
          c.protocol = Protocol::kGrpc;
        } else if (p == "http") {
          c.protocol = Protocol::kHttp;
        } else {
          s = absl::InvalidArgumentError(
              absl::StrCat("--protocol '", optarg, "' is not grpc|http"));
        }
        break;
      }
      case kInputTensorFormat:
      case kOutputTensorFormat: {
        const std::string f = optarg;
        const char* flag = opt == kInputTensorFormat ? "input-tensor-format"
                                                     : "output-tensor-format";
        bool& binary = opt == kInputTensorFormat ? c.http_binary_inputs
                                                 : c.http_binary_outputs;
        if (f == "binary") {
          binary = true;
        } else if (f == "json") {
          binary = false;
        } else {
          s = absl::InvalidArgumentError(
              absl::StrCat("--", flag, " '", f, "' is not binary|json"));
        }
        tensor_format_given = true;
        break;
      }
      case kHttpThreads:
        s = Number<int>("http-threads", optarg, &c.http_threads, 1);
        break;
      case kConcurrencyRange: {
        auto r = ParseConcurrencyRange(optarg);
        if (r.ok()) c.concurrency = *r; else s = r.status();
        break;
      }
      case kRequestRateRange: {
        auto r = ParseRequestRateRange(optarg);
        if (r.ok()) {
          c.request_rates = *r;
          c.rate_mode = true;
        } else {
          s = r.status();
        }
        break;
      }
      case kRequestDistribution:
        if (std::string(optarg) == "constant") {
          c.distribution = Distribution::kConstant;
        } else if (std::string(optarg) == "poisson") {
          c.distribution = Distribution::kPoisson;
        } else {
          s = absl::InvalidArgumentError(absl::StrCat(
              "--request-distribution '", optarg, "' is not constant|poisson"));
        }
        break;
      case 'p':
        s = Number<int64_t>("measurement-interval", optarg,
                            &c.measure.measurement_interval_ms, 1);
        break;
      case 's':
        s = Number<double>("stability-percentage", optarg,
                           &c.measure.stability_percentage, 0.0);
        break;
      case 'r':
        s = Number<int>("max-trials", optarg, &c.measure.max_trials, 1);
        break;
      case kPercentile:
        s = Number<double>("percentile", optarg, &c.measure.percentile, 0.0);
        if (s.ok() && c.measure.percentile > 100) {
          s = absl::InvalidArgumentError("--percentile must be <= 100");
        }
        break;
      case kWarmup:
        s = Number<int64_t>("warmup-interval", optarg, &c.measure.warmup_ms, 0);
        break;
      case kRequestCount:
        s = Number<uint64_t>("request-count", optarg,
                             &c.measure.request_count, 1);
        break;
      case kWarmupCount:
        s = Number<uint64_t>("warmup-count", optarg, &c.measure.warmup_count,
                             0);
        break;
      case kOnCountStart: c.on_count_start_cmd = optarg; break;
      case kOnCountEnd: c.on_count_end_cmd = optarg; break;
      case kStreaming: c.streaming = true; break;
      case kInput: {
        auto spec = ParseInputSpec(optarg);
        if (spec.ok()) c.inputs.push_back(*spec); else s = spec.status();
        break;
      }
      case kShape: {
        auto shape = ParseShapeFlag(optarg);
        if (shape.ok()) c.shapes.push_back(*shape); else s = shape.status();
        break;
      }
      case 'b':
        s = Number<int64_t>("batch-size", optarg, &c.batch_size, 1);
        break;
      case kInputData: c.input_data = optarg; break;
      case kStringLength:
        s = Number<int>("string-length", optarg, &c.string_length, 0);
        break;
      case kOutput: c.outputs.push_back(optarg); break;
      case kRaw: c.typed = false; break;
      case kTyped: c.typed = true; break;
      case 'f': c.csv_path = optarg; break;
      case kOutputJson: c.json_path = optarg; break;
      case kChannels:
        s = Number<int>("channels", optarg, &c.channels, 1);
        break;
      case kRequestTimeout:
        s = Number<int64_t>("request-timeout-ms", optarg,
                            &c.request_timeout_ms, 0);
        break;
      case kMaxInflight:
        s = Number<int>("max-inflight", optarg, &c.max_inflight, 1);
        break;
      case kServerPid:
        s = Number<int>("server-pid", optarg, &c.measure.server_pid, 1);
        break;
      case kLabel: c.label = optarg; break;
      case kSeed: s = Number<uint64_t>("seed", optarg, &c.seed, 0); break;
      case kWaitReady:
        s = Number<int64_t>("wait-ready", optarg, &c.wait_ready_ms, 0);
        break;
      case 'v': c.measure.verbose = true; break;
      case 'h': c.help = true; break;
      case ':':
        s = absl::InvalidArgumentError(
            absl::StrCat(argv[optind - 1], " needs a value"));
        break;
      default:
        s = absl::InvalidArgumentError(
            absl::StrCat("unknown option ", argv[optind - 1], " (see --help)"));
        break;
    }
    if (!s.ok()) return s;
  }
  if (optind < argc) {
    return absl::InvalidArgumentError(
        absl::StrCat("unexpected argument '", argv[optind], "'"));
  }
  if (c.help) return c;
  if (c.protocol == Protocol::kHttp) {
    if (!url_given) c.url = "127.0.0.1:8000";
    if (c.streaming) {
      return absl::InvalidArgumentError("--streaming needs -i grpc");
    }
    if (c.typed) {
      return absl::InvalidArgumentError(
          "--typed is gRPC's; over HTTP use --input-tensor-format=json");
    }
  } else if (tensor_format_given) {
    return absl::InvalidArgumentError(
        "--input-tensor-format/--output-tensor-format need -i http");
  }
  if (c.model_name.empty()) {
    return absl::InvalidArgumentError("-m/--model-name is required");
  }
  if (c.rate_mode && c.measure.request_count > 0) {
    return absl::InvalidArgumentError(
        "--request-count works with --concurrency-range only");
  }
  if (c.measure.request_count == 0 &&
      (c.measure.warmup_count > 0 || !c.on_count_start_cmd.empty() ||
       !c.on_count_end_cmd.empty())) {
    return absl::InvalidArgumentError(
        "--warmup-count, --on-count-start and --on-count-end need "
        "--request-count");
  }
  return c;
}

std::function<absl::Status()> ShellCommandHook(const std::string& flag,
                                               const std::string& command) {
  if (command.empty()) return nullptr;
  return [flag, command]() -> absl::Status {
    std::cout.flush();  // the command's output follows ours, in order
    const int status = std::system(command.c_str());
    if (status == 0) return absl::OkStatus();
    std::string how =
        status == -1 ? std::string("could not be started")
        : WIFEXITED(status)
            ? absl::StrCat("exited with status ", WEXITSTATUS(status))
            : absl::StrCat("was killed by signal ", WTERMSIG(status));
    return absl::InternalError(absl::StrCat("--", flag, " '", command, "' ",
                                            how, " (expected status 0)"));
  };
}

}  // namespace torii::perf
