// torii-perf's HTTP/1.1 client (Boost.Beast over Asio): a few threads run
// every connection; each request slot owns one keep-alive connection and
// sends prebuilt request bytes (BuildHttpRequest) on it, one at a time.
#ifndef TORII_BENCH_PERF_HTTP_TRANSPORT_H_
#define TORII_BENCH_PERF_HTTP_TRANSPORT_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "load_generator.h"

namespace torii::perf {

class HttpTransport {
 public:
  /// Resolves `url` (host:port) and checks that it accepts a connection
  /// within `connect_timeout_ms`; starts `threads` client threads.
  static absl::StatusOr<std::unique_ptr<HttpTransport>> Create(const std::string& url,
                                                               int threads,
                                                               int64_t connect_timeout_ms);
  /// Stops the threads; every slot must be gone first.
  ~HttpTransport();

  /// A slot on a connection of its own (opened at its first Send). Its
  /// answers go to `gen`: OK for status 200, else the error code
  /// "HTTP <status>" with the body as the message. `requests` outlives it.
  std::unique_ptr<Slot> NewSlot(LoadGenerator* gen, const std::vector<std::string>* requests);

  struct Impl;

 private:
  HttpTransport() = default;
  std::unique_ptr<Impl> impl_;
};

/// One blocking GET (metadata, readiness): the status and body, or an
/// error when the server cannot be reached within `timeout_ms`.
absl::StatusOr<std::pair<int, std::string>> HttpGet(const std::string& url,
                                                     const std::string& path,
                                                     int64_t timeout_ms);

}  // namespace torii::perf

#endif  // TORII_BENCH_PERF_HTTP_TRANSPORT_H_
