// torii-perf's command line (perf_analyzer's flag names where they exist).
#ifndef TORII_BENCH_PERF_CLI_H_
#define TORII_BENCH_PERF_CLI_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "load_generator.h"
#include "measurement.h"
#include "model_inputs.h"
#include "payload.h"

namespace torii::perf {

struct PerfConfig {
  std::string model_name;
  std::string model_version;
  std::string url = "127.0.0.1:8001";  ///< 127.0.0.1:8000 for HTTP unless -u
  Protocol protocol = Protocol::kGrpc;  ///< -i grpc|http
  /// HTTP: --input-tensor-format / --output-tensor-format (perf_analyzer's
  /// names): binary (Triton's binary tensor extension, the default) or json.
  bool http_binary_inputs = true;
  bool http_binary_outputs = true;
  int http_threads = 2;  ///< --http-threads
  bool rate_mode = false;             ///< --request-rate-range given
  std::vector<int> concurrency{1};    ///< --concurrency-range
  std::vector<double> request_rates;  ///< --request-rate-range
  Distribution distribution = Distribution::kConstant;
  MeasureOptions measure;
  bool streaming = false;
  bool typed = false;
  std::vector<InputSpec> inputs;      ///< --input (empty: from metadata)
  std::vector<ShapeOverride> shapes;  ///< --shape
  int64_t batch_size = 1;
  std::string input_data = "random";  ///< random | zero | path to JSON
  int string_length = 16;
  std::vector<std::string> outputs;
  std::string csv_path, json_path, label;
  int channels = 1;
  int64_t request_timeout_ms = 0;
  int max_inflight = 10000;
  uint64_t seed = 1;
  /// > 0: first poll ModelReady until true, for at most this long.
  int64_t wait_ready_ms = 0;
  /// --on-count-start / --on-count-end: shell commands run around the
  /// counted requests of --request-count (see MeasureOptions).
  std::string on_count_start_cmd, on_count_end_cmd;
  bool help = false;
};

/// Parses argv (argv[0] is the program name). Returns the config, or
/// INVALID_ARGUMENT with a message naming the bad flag. May be called more
/// than once per process (tests).
absl::StatusOr<PerfConfig> ParseCommandLine(int argc, char** argv);

/// The --help text.
std::string Usage();

/// A hook for MeasureOptions::on_count_start/on_count_end that runs
/// `command` with /bin/sh and is OK when it exits 0; otherwise the error
/// names `flag`, the command and how it ended. Empty command: no hook.
std::function<absl::Status()> ShellCommandHook(const std::string& flag,
                                               const std::string& command);

}  // namespace torii::perf

#endif  // TORII_BENCH_PERF_CLI_H_
