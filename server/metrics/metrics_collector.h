// Prometheus metrics, computed at scrape time from each served version's
// ModelStatistics and scheduler: the request path pays nothing extra.
#ifndef TORII_SERVER_METRICS_METRICS_COLLECTOR_H_
#define TORII_SERVER_METRICS_METRICS_COLLECTOR_H_

#include <prometheus/collectable.h>

#include <vector>

#include "server/manager/model_manager.h"

namespace torii {

class MetricsCollector : public prometheus::Collectable {
 public:
  /// `manager` must outlive the collector.
  explicit MetricsCollector(const ModelManager* manager) : manager_(manager) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const ModelManager* manager_;
};

}  // namespace torii

#endif  // TORII_SERVER_METRICS_METRICS_COLLECTOR_H_
