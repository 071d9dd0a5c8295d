#include "server/metrics/metrics_collector.h"

#include <prometheus/metric_family.h>
#include <unistd.h>

#include <functional>
#include <limits>
#include <set>

#include "server/metrics/process_stats.h"

namespace torii {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

struct Version {
  std::shared_ptr<ModelVersion> model;
  ModelStatistics::Snapshot stats;
};

double Seconds(uint64_t ns) { return static_cast<double>(ns) * 1e-9; }

constexpr const char* kFailureReasons[] = {"invalid", "rejected", "expired", "cancelled",
                                           "queue_timeout", "timeout", "unavailable", "runner"};

MetricFamily Gauge(const char* name, const char* help, double value) {
  MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = MetricType::Gauge;
  ClientMetric m;
  m.gauge.value = value;
  f.metric.push_back(std::move(m));
  return f;
}

// Prometheus' standard process metrics for this process, from /proc.
void AddProcessMetrics(std::vector<MetricFamily>& out) {
  const ProcessStats p = ReadProcessStats(getpid());
  if (!p.ok) return;
  out.push_back(Gauge("process_resident_memory_bytes", "Resident memory size in bytes.",
                      double(p.resident_bytes)));
  out.push_back(Gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                      double(p.virtual_bytes)));
  MetricFamily cpu = Gauge("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                           p.cpu_seconds);
  cpu.type = MetricType::Counter;
  cpu.metric[0].counter.value = p.cpu_seconds;
  out.push_back(std::move(cpu));
  out.push_back(Gauge("process_start_time_seconds",
                      "Start time of the process since unix epoch in seconds.", p.start_time_seconds));
  out.push_back(Gauge("process_open_fds", "Number of open file descriptors.", double(p.open_fds)));
  out.push_back(Gauge("process_max_fds", "Maximum number of open file descriptors.",
                      double(p.max_fds)));
}

// What runners defined (ABI 1.3), under their own names and labels. The
// registry checked names, labels and buckets when they were made.
void AddRunnerMetrics(const host_metrics::Registry& registry, std::vector<MetricFamily>& out) {
  for (const auto& f : registry.Snapshot()) {
    MetricFamily mf;
    mf.name = f.name;
    mf.help = f.help;
    mf.type = f.kind == TORII_METRIC_COUNTER ? MetricType::Counter
              : f.kind == TORII_METRIC_GAUGE ? MetricType::Gauge
                                             : MetricType::Histogram;
    for (const auto& [labels, s] : f.series) {
      ClientMetric m;
      for (const auto& [k, v] : labels) m.label.push_back({k, v});
      if (f.kind == TORII_METRIC_COUNTER) {
        m.counter.value = s->value;
      } else if (f.kind == TORII_METRIC_GAUGE) {
        m.gauge.value = s->value;
      } else {
        uint64_t cumulative = 0;
        for (size_t i = 0; i < s->bounds.size(); ++i) {
          cumulative += s->counts[i];
          m.histogram.bucket.push_back({cumulative, s->bounds[i]});
        }
        cumulative += s->counts.back();
        m.histogram.bucket.push_back({cumulative, std::numeric_limits<double>::infinity()});
        m.histogram.sample_count = s->count;
        m.histogram.sample_sum = s->sum;
      }
      mf.metric.push_back(std::move(m));
    }
    out.push_back(std::move(mf));
  }
}

MetricFamily Family(const char* name, const char* help, MetricType type,
                    const std::vector<Version>& versions,
                    const std::function<void(const Version&, ClientMetric&)>& fill) {
  MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = type;
  for (const auto& v : versions) {
    ClientMetric m;
    m.label = {{"model", v.model->name}, {"version", v.model->version_string}};
    fill(v, m);
    f.metric.push_back(std::move(m));
  }
  return f;
}

}  // namespace

std::vector<MetricFamily> MetricsCollector::Collect() const {
  std::vector<Version> versions;
  for (auto& mv : manager_->AllReadyVersions()) versions.push_back({mv, mv->stats.Read()});
  auto counter = [&](const char* name, const char* help, std::function<double(const Version&)> value) {
    return Family(name, help, MetricType::Counter, versions,
                  [&](const Version& v, ClientMetric& m) { m.counter.value = value(v); });
  };
  std::vector<MetricFamily> out;
  out.push_back(counter("torii_inference_request_success_total",
                        "Inference requests answered successfully.",
                        [](const Version& v) { return double(v.stats.success.count); }));
  {
    // One series per reason, zeros included, so rates and alerts never see
    // a series appear from nowhere.
    MetricFamily f;
    f.name = "torii_inference_request_failure_total";
    f.help = "Inference requests that failed, by reason: invalid (rejected by validation), "
             "rejected (queue full), expired (client deadline passed in the queue), cancelled "
             "(client went away while queued), queue_timeout (queue policy REJECT), timeout "
             "(execution_timeout_ms), unavailable (runner process down, model unloading), "
             "runner (the runner failed it).";
    f.type = MetricType::Counter;
    for (const auto& v : versions) {
      for (const char* reason : kFailureReasons) {
        ClientMetric m;
        m.label = {{"model", v.model->name}, {"version", v.model->version_string},
                   {"reason", reason}};
        auto it = v.stats.failures_by_reason.find(reason);
        m.counter.value = it == v.stats.failures_by_reason.end() ? 0 : double(it->second);
        f.metric.push_back(std::move(m));
      }
    }
    out.push_back(std::move(f));
  }
  out.push_back(counter("torii_inference_count_total",
                        "Inferences performed (batch rows of successful requests).",
                        [](const Version& v) { return double(v.stats.inference_count); }));
  out.push_back(counter("torii_inference_exec_count_total",
                        "Runner executions (batches).",
                        [](const Version& v) { return double(v.stats.execution_count); }));
  out.push_back(counter("torii_inference_queue_duration_seconds_total",
                        "Time successful requests waited in the queue.",
                        [](const Version& v) { return Seconds(v.stats.queue.ns); }));
  out.push_back(counter("torii_inference_compute_input_duration_seconds_total",
                        "Time spent gathering batch inputs.",
                        [](const Version& v) { return Seconds(v.stats.compute_input.ns); }));
  out.push_back(counter("torii_inference_compute_infer_duration_seconds_total",
                        "Time spent inside the runner's execute.",
                        [](const Version& v) { return Seconds(v.stats.compute_infer.ns); }));
  out.push_back(counter("torii_inference_compute_output_duration_seconds_total",
                        "Time spent writing outputs into responses.",
                        [](const Version& v) { return Seconds(v.stats.compute_output.ns); }));
  out.push_back(Family("torii_inference_pending_requests",
                       "Requests waiting in the model's queue.", MetricType::Gauge, versions,
                       [](const Version& v, ClientMetric& m) {
                         m.gauge.value = double(v.model->scheduler ? v.model->scheduler->pending() : 0);
                       }));
  out.push_back(Family(
      "torii_inference_request_duration_seconds",
      "End-to-end latency of queued requests (arrival to answer), successful or not.",
      MetricType::Histogram, versions, [](const Version& v, ClientMetric& m) {
        const auto& bounds = ModelStatistics::LatencyBuckets();
        uint64_t cumulative = 0;
        for (size_t i = 0; i < bounds.size(); ++i) {
          cumulative += v.stats.latency_buckets[i];
          m.histogram.bucket.push_back({cumulative, bounds[i]});
        }
        cumulative += v.stats.latency_buckets.back();
        m.histogram.bucket.push_back({cumulative, std::numeric_limits<double>::infinity()});
        m.histogram.sample_count = cumulative;
        m.histogram.sample_sum = Seconds(v.stats.latency_ns_sum);
      }));
  out.push_back(Family("torii_runner_instances_stuck",
                       "Instances whose current batch has run longer than execution_timeout_ms.",
                       MetricType::Gauge, versions, [](const Version& v, ClientMetric& m) {
                         m.gauge.value = double(v.model->scheduler->stuck_instances());
                       }));
  out.push_back(counter("torii_runner_restarts_total",
                        "Restarts of the runner process of a model with isolation: process.",
                        [](const Version& v) { return double(v.model->backend->restarts()); }));
  // Model state, including models that failed to load.
  MetricFamily ready;
  ready.name = "torii_model_ready";
  ready.help = "1 when the model version serves requests, 0 when it failed to load or is loading.";
  ready.type = MetricType::Gauge;
  for (const auto& e : manager_->Index()) {
    ClientMetric m;
    m.label = {{"model", e.name}, {"version", e.version}};
    m.gauge.value = e.state == ModelState::kReady ? 1 : 0;
    ready.metric.push_back(std::move(m));
  }
  out.push_back(std::move(ready));

  // The runner processes of isolated models (Python models: one per
  // instance), so their memory shows next to the server's.
  MetricFamily child_rss;
  child_rss.name = "torii_runner_process_resident_memory_bytes";
  child_rss.help = "Resident memory of each runner process of an isolated model.";
  child_rss.type = MetricType::Gauge;
  for (const auto& v : versions) {
    for (const auto& [label, pid] : v.model->backend->RunnerProcesses()) {
      const ProcessStats p = ReadProcessStats(static_cast<pid_t>(pid));
      if (!p.ok) continue;
      ClientMetric m;
      m.label = {{"model", v.model->name}, {"version", v.model->version_string},
                 {"process", label}};
      m.gauge.value = double(p.resident_bytes);
      child_rss.metric.push_back(std::move(m));
    }
  }
  out.push_back(std::move(child_rss));
  AddProcessMetrics(out);
  if (runner_metrics_ != nullptr) AddRunnerMetrics(*runner_metrics_, out);
  return out;
}

}  // namespace torii
