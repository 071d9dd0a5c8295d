// The KServe v2 REST endpoints with Triton's extensions: routing, the
// restricted-API rule, request bodies and answers. Transport (sockets, limits,
// timeouts) is HttpServer's; models are reached through ModelService and
// inference through InferenceDispatcher. docs/http.md lists the endpoints.
#ifndef TORII_SERVER_HTTP_HTTP_API_H_
#define TORII_SERVER_HTTP_HTTP_API_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "server/core/inference_dispatcher.h"
#include "server/http/http_message.h"
#include "server/http/model_service.h"

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
  };

  explicit HttpApi(Options options) : options_(std::move(options)) {}

  void Handle(std::unique_ptr<HttpRequest> request,
              std::shared_ptr<HttpResponder> responder) override;

  /// Inference requests received whose answer is not yet handed to the
  /// server for sending.
  int64_t InFlight() const { return in_flight_->load(); }

  /// The server metadata extensions this frontend reports.
  static const char* const kExtensions[];

 private:
  struct Route;
  void Dispatch(const Route& route, std::unique_ptr<HttpRequest> request,
                const std::shared_ptr<HttpResponder>& responder);
  void Infer(const Route& route, std::unique_ptr<HttpRequest> request,
             const std::shared_ptr<HttpResponder>& responder);
  void RepositoryAction(const Route& route, const HttpRequest& request,
                        const std::shared_ptr<HttpResponder>& responder);

  Options options_;
  std::shared_ptr<std::atomic<int64_t>> in_flight_ = std::make_shared<std::atomic<int64_t>>(0);
};

}  // namespace http
}  // namespace torii

#endif  // TORII_SERVER_HTTP_HTTP_API_H_
