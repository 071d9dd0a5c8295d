// torii-perf's outputs: the console summary, CSV (-f) and JSON.
#ifndef TORII_BENCH_PERF_REPORT_H_
#define TORII_BENCH_PERF_REPORT_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "measurement.h"

namespace torii::perf {

/// What was run, recorded next to the figures so a result file explains
/// itself.
struct RunInfo {
  std::string label;  ///< --label, e.g. "torii" or "echo"
  std::string url, model_name, model_version;
  std::string protocol = "grpc";  ///< "grpc" or "http"
  std::string api;  ///< "unary" or "streaming"
  std::string contents;  ///< gRPC "raw" or "typed"; HTTP inputs "binary" or "json"
  std::string output_format;  ///< HTTP outputs "binary" or "json"
  std::string inputs;  ///< "INPUT0:FP32:1,256 ..." 
  uint64_t payload_bytes = 0;  ///< raw input bytes per request
  int channels = 1;
  int64_t measurement_interval_ms = 0;
  double stability_percentage = 0;
  int max_trials = 0;
  double percentile = -1;
  std::string command_line;
};

/// The perf_analyzer-style block for one point.
void PrintPoint(std::ostream& out, const PointResult& r, double percentile);
/// One line per point, for the end of a sweep.
void PrintSweep(std::ostream& out, const std::vector<PointResult>& results);

/// CSV with a header row; latencies in microseconds.
std::string CsvReport(const std::vector<PointResult>& results);
/// A JSON document {"tool", "run": {...}, "results": [...]}; latencies in
/// microseconds, throughput in inferences per second.
std::string JsonReport(const RunInfo& info,
                       const std::vector<PointResult>& results);

/// `s` as a JSON string literal, quotes included.
std::string JsonString(const std::string& s);

}  // namespace torii::perf

#endif  // TORII_BENCH_PERF_REPORT_H_
