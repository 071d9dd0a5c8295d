// The KServe v2 REST endpoints with Triton's extensions: routing, the
// restricted-API rule, request bodies and answers. Transport (sockets, limits,
// timeouts) is HttpServer's; models are reached through ModelService and
// inference through InferenceDispatcher. docs/http.md lists the endpoints.
#ifndef TORII_SERVER_HTTP_HTTP_API_H_
#define TORII_SERVER_HTTP_HTTP_API_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "server/common/task_pool.h"
#include "server/core/inference_dispatcher.h"
#include "server/http/http_message.h"
#include "server/http/model_service.h"
#include "server/manager/system_shared_memory.h"

namespace torii {
namespace http {

class HttpApi final : public HttpHandler {
 public:
  struct Options {
    ModelService* models = nullptr;          // required, outlives the API
    InferenceDispatcher* dispatcher = nullptr;  // required, outlives the API
    /// Bound on a body after Content-Encoding and on the tensor data decoded
    /// from JSON (--max-request-bytes).
    size_t max_request_bytes = size_t{64} << 20;
    /// Protocol group (health, metadata, inference, model-config,
    /// model-repository, statistics) -> the header (lower case) and value a
    /// request must carry (--http-restricted-api).
    struct Restriction {
      std::string header;
      std::string value;
    };
    std::map<std::string, Restriction> restricted;
    std::string server_name = "torii";
    std::string server_version = "0.1.0";
    /// Threads that run repository loads and unloads, which may take
    /// seconds, off the I/O threads (--model-load-thread-count).
    size_t repository_threads = 2;
    /// One log line per request (method, path, status, microseconds), as
    /// Triton logs HTTP requests with --log-verbose.
    bool log_requests = false;
    /// Registered system shared-memory regions, shared with the gRPC
    /// frontend (outlives the API); null: the API keeps its own.
    SystemSharedMemory* shared_memory = nullptr;
  };

  explicit HttpApi(Options options);

  void Handle(std::unique_ptr<HttpRequest> request,
              std::shared_ptr<HttpResponder> responder) override;

  /// Inference requests received whose answer is not yet handed to the
  /// server for sending.
  int64_t InFlight() const { return in_flight_->load(); }

  /// The server metadata extensions this frontend reports.
  static const char* const kExtensions[];

  /// Requests answered, by endpoint and HTTP status, for metrics.
  struct RequestCount {
    const char* endpoint;  // "infer", "health_ready", ... ("none": no such path)
    int status;            // 0: a status not in the list below
    uint64_t count;
  };
  /// Every (endpoint, status) pair answered at least once. Thread-safe.
  std::vector<RequestCount> RequestCounts() const;

  /// The statuses counted one by one; any other counts as 0.
  static constexpr std::array<int, 10> kCountedStatuses = {200, 400, 403, 404, 405,
                                                           413, 415, 500, 501, 503};
  static constexpr size_t kEndpoints = 22;

  /// Back-pressure of generate_stream: at most this many events of one
  /// request wait to be written (the one being written included); a
  /// runner's next non-final send waits meanwhile. As gRPC's
  /// kStreamMaxUnwritten.
  static constexpr size_t kGenerateStreamMaxUnwritten = 16;
  using Counters =
      std::array<std::array<std::atomic<uint64_t>, kCountedStatuses.size() + 1>, kEndpoints>;

 private:
  struct Route;
  void Dispatch(const Route& route, std::unique_ptr<HttpRequest> request,
                const std::shared_ptr<HttpResponder>& responder);
  void Infer(const Route& route, std::unique_ptr<HttpRequest> request,
             const std::shared_ptr<HttpResponder>& responder);
  /// Triton's generate extension: /generate (one JSON answer) and, with
  /// `stream`, /generate_stream (server-sent events).
  void Generate(const Route& route, std::unique_ptr<HttpRequest> request,
                const std::shared_ptr<HttpResponder>& responder, bool stream);
  void RepositoryAction(const Route& route, const HttpRequest& request,
                        const std::shared_ptr<HttpResponder>& responder);
  void SharedMemoryAction(const Route& route, const HttpRequest& request,
                          const std::shared_ptr<HttpResponder>& responder);

  Options options_;
  std::shared_ptr<std::atomic<int64_t>> in_flight_ = std::make_shared<std::atomic<int64_t>>(0);
  // Shared with responders that may outlive a request's handler.
  std::shared_ptr<Counters> counters_ = std::make_shared<Counters>();
  std::unique_ptr<TaskPool> repository_pool_;
  SystemSharedMemory* shared_memory_ = nullptr;
  std::unique_ptr<SystemSharedMemory> own_shared_memory_;
};

}  // namespace http
}  // namespace torii

#endif  // TORII_SERVER_HTTP_HTTP_API_H_
