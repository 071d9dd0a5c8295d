#include "server/scheduler/model_statistics.h"

#include <algorithm>
#include <chrono>

namespace torii {

const char* ModelStatistics::FailureReason(const absl::Status& status,
                                           const char* explicit_reason) {
  if (explicit_reason != nullptr) return explicit_reason;
  switch (status.code()) {
    case absl::StatusCode::kDeadlineExceeded: return "timeout";
    case absl::StatusCode::kUnavailable: return "unavailable";
    default: return "runner";
  }
}

void ModelStatistics::RecordRequest(bool success, uint64_t rows, uint64_t total_ns,
                                    uint64_t queue_ns, const char* failure_reason) {
  const uint64_t now_ms = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::system_clock::now().time_since_epoch())
          .count());
  const auto& bounds = LatencyBuckets();
  const double seconds = static_cast<double>(total_ns) * 1e-9;
  const size_t bucket = static_cast<size_t>(
      std::lower_bound(bounds.begin(), bounds.end(), seconds) - bounds.begin());
  std::lock_guard<std::mutex> lock(mu_);
  (success ? s_.success : s_.fail).Add(total_ns);
  if (!success) ++s_.failures_by_reason[failure_reason != nullptr ? failure_reason : "runner"];
  if (success) {
    s_.queue.Add(queue_ns);
    s_.inference_count += rows;
  }
  s_.last_inference_ms = now_ms;
  if (s_.latency_buckets.empty()) s_.latency_buckets.assign(bounds.size() + 1, 0);
  ++s_.latency_buckets[bucket];
  s_.latency_ns_sum += total_ns;
}

const std::vector<double>& ModelStatistics::LatencyBuckets() {
  static const auto* b = new std::vector<double>{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                 0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                                 1,      2.5,     5,      10};
  return *b;
}

ModelStatistics::Snapshot ModelStatistics::Read() const {
  std::lock_guard<std::mutex> lock(mu_);
  Snapshot copy = s_;
  if (copy.latency_buckets.empty()) copy.latency_buckets.assign(LatencyBuckets().size() + 1, 0);
  return copy;
}

void ModelStatistics::RecordExecution(uint64_t batch_size, uint64_t input_ns, uint64_t infer_ns,
                                      uint64_t output_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  ++s_.execution_count;
  s_.compute_input.Add(input_ns);
  s_.compute_infer.Add(infer_ns);
  s_.compute_output.Add(output_ns);
  Batch& b = s_.batches[batch_size];
  b.input.Add(input_ns);
  b.infer.Add(infer_ns);
  b.output.Add(output_ns);
}

}  // namespace torii
