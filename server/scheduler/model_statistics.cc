#include "server/scheduler/model_statistics.h"

#include <chrono>

namespace torii {
namespace {

void Put(const ModelStatistics::Duration& d, inference::StatisticDuration* out) {
  out->set_count(d.count);
  out->set_ns(d.ns);
}

}  // namespace

void ModelStatistics::RecordRequest(bool success, uint64_t rows, uint64_t total_ns,
                                    uint64_t queue_ns) {
  const uint64_t now_ms = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::system_clock::now().time_since_epoch())
          .count());
  std::lock_guard<std::mutex> lock(mu_);
  (success ? success_ : fail_).Add(total_ns);
  if (success) {
    queue_.Add(queue_ns);
    inference_count_ += rows;
  }
  last_inference_ms_ = now_ms;
}

void ModelStatistics::RecordExecution(uint64_t batch_size, uint64_t input_ns, uint64_t infer_ns,
                                      uint64_t output_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  ++execution_count_;
  compute_input_.Add(input_ns);
  compute_infer_.Add(infer_ns);
  compute_output_.Add(output_ns);
  Batch& b = batches_[batch_size];
  b.input.Add(input_ns);
  b.infer.Add(infer_ns);
  b.output.Add(output_ns);
}

void ModelStatistics::Fill(inference::ModelStatistics* out) const {
  std::lock_guard<std::mutex> lock(mu_);
  out->set_last_inference(last_inference_ms_);
  out->set_inference_count(inference_count_);
  out->set_execution_count(execution_count_);
  auto* s = out->mutable_inference_stats();
  Put(success_, s->mutable_success());
  Put(fail_, s->mutable_fail());
  Put(queue_, s->mutable_queue());
  Put(compute_input_, s->mutable_compute_input());
  Put(compute_infer_, s->mutable_compute_infer());
  Put(compute_output_, s->mutable_compute_output());
  s->mutable_cache_hit();
  s->mutable_cache_miss();
  for (const auto& [size, b] : batches_) {
    auto* bs = out->add_batch_stats();
    bs->set_batch_size(size);
    Put(b.input, bs->mutable_compute_input());
    Put(b.infer, bs->mutable_compute_infer());
    Put(b.output, bs->mutable_compute_output());
  }
}

}  // namespace torii
