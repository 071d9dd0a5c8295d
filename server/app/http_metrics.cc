#include "server/app/http_metrics.h"

#include <prometheus/metric_family.h>

#include <string>

namespace torii {

std::vector<prometheus::MetricFamily> HttpMetricsCollector::Collect() const {
  std::vector<prometheus::MetricFamily> out;
  prometheus::MetricFamily requests;
  requests.name = "torii_http_requests_total";
  requests.help =
      "HTTP requests answered, by endpoint (infer, health_ready, ...; none: no such path) and "
      "status code (other: a code not listed separately).";
  requests.type = prometheus::MetricType::Counter;
  for (const auto& c : api_->RequestCounts()) {
    prometheus::ClientMetric m;
    m.label = {{"endpoint", c.endpoint},
               {"code", c.status == 0 ? std::string("other") : std::to_string(c.status)}};
    m.counter.value = static_cast<double>(c.count);
    requests.metric.push_back(std::move(m));
  }
  out.push_back(std::move(requests));

  prometheus::MetricFamily connections;
  connections.name = "torii_http_connections";
  connections.help = "HTTP connections open now.";
  connections.type = prometheus::MetricType::Gauge;
  prometheus::ClientMetric m;
  m.gauge.value = static_cast<double>(server_->open_connections());
  connections.metric.push_back(std::move(m));
  out.push_back(std::move(connections));
  return out;
}

}  // namespace torii
