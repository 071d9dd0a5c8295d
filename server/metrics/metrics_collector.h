// Prometheus metrics, computed at scrape time from each served version's
// ModelStatistics and scheduler: the request path pays nothing extra.
#ifndef TORII_SERVER_METRICS_METRICS_COLLECTOR_H_
#define TORII_SERVER_METRICS_METRICS_COLLECTOR_H_

#include <prometheus/collectable.h>

#include <vector>

#include "server/manager/model_manager.h"
#include "torii/metric_registry.h"

namespace torii {

class MetricsCollector : public prometheus::Collectable {
 public:
  /// `manager` and `runner_metrics` (may be null) must outlive the collector.
  explicit MetricsCollector(const ModelManager* manager,
                            const host_metrics::Registry* runner_metrics = nullptr)
      : manager_(manager), runner_metrics_(runner_metrics) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const ModelManager* manager_;
  const host_metrics::Registry* runner_metrics_;
};

}  // namespace torii

#endif  // TORII_SERVER_METRICS_METRICS_COLLECTOR_H_
