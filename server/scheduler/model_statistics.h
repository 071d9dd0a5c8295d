// Per model-version counters behind ModelStatistics (Triton's fields).
#ifndef TORII_SERVER_SCHEDULER_MODEL_STATISTICS_H_
#define TORII_SERVER_SCHEDULER_MODEL_STATISTICS_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/status.h"
#include <mutex>
#include <vector>


namespace torii {

class ModelStatistics {
 public:
  struct Duration {
    uint64_t count = 0;
    uint64_t ns = 0;
    void Add(uint64_t n) { ++count; ns += n; }
  };

  /// One request of `rows` inferences finished (successfully or not) after
  /// `total_ns` end to end, `queue_ns` of it waiting. A failure names its
  /// reason (FailureReason()).
  void RecordRequest(bool success, uint64_t rows, uint64_t total_ns, uint64_t queue_ns,
                     const char* failure_reason = nullptr);

  /// The reason label of a failed request: `explicit_reason` when the code
  /// that failed it said (the scheduler's "expired", "cancelled",
  /// "queue_timeout"; the dispatcher's "invalid", "rejected"), else from the
  /// status: DEADLINE_EXCEEDED "timeout", UNAVAILABLE "unavailable",
  /// anything else "runner".
  static const char* FailureReason(const absl::Status& status, const char* explicit_reason);
  /// One runner call over `batch_size` rows.
  void RecordExecution(uint64_t batch_size, uint64_t input_ns, uint64_t infer_ns,
                       uint64_t output_ns);

  /// Upper bounds (seconds) of the request latency histogram buckets.
  static const std::vector<double>& LatencyBuckets();

  struct Batch { Duration input, infer, output; };
  /// A consistent copy of every counter, for metrics.
  struct Snapshot {
    Duration success, fail, queue, compute_input, compute_infer, compute_output;
    uint64_t inference_count = 0;
    uint64_t execution_count = 0;
    uint64_t last_inference_ms = 0;
    std::map<uint64_t, Batch> batches;
    std::vector<uint64_t> latency_buckets;  // per bucket (not cumulative) + overflow
    uint64_t latency_ns_sum = 0;
    std::map<std::string, uint64_t> failures_by_reason;
  };
  Snapshot Read() const;

 private:
  mutable std::mutex mu_;
  Snapshot s_;
};

}  // namespace torii

#endif  // TORII_SERVER_SCHEDULER_MODEL_STATISTICS_H_
