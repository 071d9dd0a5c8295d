// Prometheus metrics of the HTTP frontend itself (the inference metrics are
// per model and shared with gRPC: server/metrics): requests answered by
// endpoint and status code, and open connections.
#ifndef TORII_SERVER_APP_HTTP_METRICS_H_
#define TORII_SERVER_APP_HTTP_METRICS_H_

#include <prometheus/collectable.h>

#include <vector>

#include "server/http/http_api.h"
#include "server/http/http_server.h"

namespace torii {

class HttpMetricsCollector : public prometheus::Collectable {
 public:
  /// Both must outlive the collector.
  HttpMetricsCollector(const http::HttpApi* api, const http::HttpServer* server)
      : api_(api), server_(server) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const http::HttpApi* api_;
  const http::HttpServer* server_;
};

}  // namespace torii

#endif  // TORII_SERVER_APP_HTTP_METRICS_H_
