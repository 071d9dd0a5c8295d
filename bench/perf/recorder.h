// Thread-safe collection of request outcomes for one measurement window.
#ifndef TORII_BENCH_PERF_RECORDER_H_
#define TORII_BENCH_PERF_RECORDER_H_

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

namespace torii::perf {

/// Name of a gRPC status code as the gRPC docs spell it ("UNAVAILABLE").
std::string StatusCodeName(int code);

/// The outcomes recorded between two Take() calls.
struct WindowData {
  std::vector<int64_t> latencies_ns;  ///< successful requests only
  uint64_t success = 0;
  /// Failed requests by gRPC code name; "STREAM_ERROR" counts streamed
  /// responses that carried an error_message on an OK stream.
  std::map<std::string, uint64_t> errors;
  std::string first_error;  ///< code and message of the first failure

  uint64_t error_count() const;
  /// Appends `other` (latencies, counts, first error if none yet).
  void Merge(const WindowData& other);
};

/// Collects outcomes from the gRPC callback threads. Thread-safe: Record*
/// may be called concurrently from any thread, Take() from another.
class Recorder {
 public:
  void RecordSuccess(int64_t latency_ns);
  void RecordError(absl::string_view code_name, absl::string_view message);
  /// Returns everything recorded since the last Take() and starts afresh.
  WindowData Take();

 private:
  std::mutex mu_;
  WindowData current_;
};

}  // namespace torii::perf

#endif  // TORII_BENCH_PERF_RECORDER_H_
