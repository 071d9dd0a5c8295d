// The HTTP/1.1 listener: accepts connections on --http-address:--http-port,
// reads requests with limits and timeouts on --http-thread-count I/O threads,
// hands each well-formed request to an HttpHandler and writes its answer.
// Transport problems (a body over the limit, an oversized header, a request
// that is not HTTP, a slow or idle client) are answered or closed here; the
// endpoints never see them.
#ifndef TORII_SERVER_HTTP_HTTP_SERVER_H_
#define TORII_SERVER_HTTP_HTTP_SERVER_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/http/http_message.h"

namespace torii {
namespace http {

class HttpServer {
 public:
  struct Options {
    std::string address = "0.0.0.0";
    /// 0 picks a free port (see port()).
    int port = 8000;
    int threads = 8;
    /// Largest request body accepted as sent (compressed or not); larger ones
    /// get 413 and the connection is closed.
    uint64_t max_body_bytes = uint64_t{64} << 20;
    /// Largest request line plus headers; larger ones get 431.
    uint32_t max_header_bytes = 64 * 1024;
    /// A connection may wait this long for the next request and for that
    /// request's headers to arrive in full; then it is closed.
    std::chrono::milliseconds idle_timeout{60000};
    /// A request's body must arrive in full within this time.
    std::chrono::milliseconds body_timeout{120000};
    /// A response must be taken by the client within this time.
    std::chrono::milliseconds write_timeout{120000};
  };

  /// Binds and starts serving. Fails, naming the address and the reason, when
  /// the address cannot be resolved or the port is taken (the socket is never
  /// shared: no SO_REUSEPORT). `handler` must outlive the server.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const Options& options,
                                                           HttpHandler* handler);

  /// Graceful stop: stops accepting, closes idle keep-alive connections at
  /// once and the others as soon as the answer they wait for is written
  /// (with `Connection: close`), for at most `grace`; then Stop(). Call it
  /// once the handler has handed over every answer (HttpApi::InFlight() is
  /// 0), so no client loses an answer it was promised.
  void Shutdown(std::chrono::milliseconds grace);

  /// Stops accepting, closes every connection and joins the I/O threads.
  /// Answers sent after this are dropped. Idempotent; the destructor calls it.
  void Stop();
  ~HttpServer();

  /// The port actually bound.
  int port() const { return port_; }

  /// Connections open now. Thread-safe.
  int64_t open_connections() const;

  struct Impl;

 private:
  HttpServer() = default;
  std::shared_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace http
}  // namespace torii

#endif  // TORII_SERVER_HTTP_HTTP_SERVER_H_
