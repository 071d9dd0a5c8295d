// One HTTP request as the endpoints see it and one response as they answer
// it, independent of the HTTP library (server/http/http_server.cc is the only
// file that knows Boost.Beast).
#ifndef TORII_SERVER_HTTP_HTTP_MESSAGE_H_
#define TORII_SERVER_HTTP_HTTP_MESSAGE_H_

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace torii {
namespace http {

/// Spare bytes every request body keeps after its end, so the JSON parser
/// (simdjson, which reads up to 64 bytes past the end) parses the body where
/// it lies. Body buffers are std::strings with capacity() >= size() + this.
constexpr size_t kBodyPadding = 64;

/// Makes sure `body` has kBodyPadding spare bytes after its end (a copy only
/// when it does not already have them).
void EnsureBodyPadding(std::string& body);

struct HttpRequest {
  std::string method;  // "GET", "POST", ... as sent
  std::string path;    // the target before '?', still percent-encoded
  std::string query;   // after '?', may be empty
  /// Header names in lower case, in arrival order.
  std::vector<std::pair<std::string, std::string>> headers;
  /// The body as received (Content-Encoding not yet undone), with
  /// kBodyPadding spare capacity.
  std::string body;

  /// The first header named `lower_case_name`, or nullptr.
  const std::string* Header(absl::string_view lower_case_name) const;
};

struct HttpResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  /// The body, or its first part when `tail` is not empty.
  std::string body;
  /// Further body parts sent as they lie after `body` (binary output tensors
  /// written by runners), without copying them. They live as long as `keep`.
  std::vector<absl::string_view> tail;
  std::shared_ptr<const void> keep;
  /// Close the connection after this response.
  bool close = false;

  size_t BodySize() const;
  void SetHeader(std::string name, std::string value);
};

/// A response whose body is sent in pieces as they are made (chunked transfer
/// encoding; server-sent events are written this way). Thread-safe; pieces
/// go out in the order Write() was called.
class HttpStream {
 public:
  using Clock = std::chrono::steady_clock;
  virtual ~HttpStream() = default;
  /// Queues `piece` behind the pieces queued before it and returns at once.
  /// False (the piece is dropped) once the connection is gone or End() was
  /// called.
  virtual bool Write(std::string piece) = 0;
  /// Ends the body once every queued piece is written. Dropping a stream
  /// without End() closes the connection (the client sees a cut body).
  virtual void End() = 0;
  /// Waits while `max` or more pieces are queued and not yet taken by the
  /// client's socket (the piece being written counts), for at most until
  /// `deadline`. True when there is room; false once the connection is gone
  /// or the deadline passed first.
  virtual bool AwaitRoom(size_t max, Clock::time_point deadline) = 0;
  /// True once the connection is gone (closed by the client, reset, a write
  /// that failed or timed out, the server stopping).
  virtual bool Gone() const = 0;
};

/// Sends the response to one request. Thread-safe; the first Send() or
/// StartStream() counts, later ones are ignored. Dropping a responder without
/// either closes the connection (the client sees the request fail rather
/// than hang).
class HttpResponder {
 public:
  virtual ~HttpResponder() = default;
  virtual void Send(HttpResponse response) = 0;
  /// Answers with a streamed body instead: sends the status line and the
  /// headers of `head` now (its body must be empty) with chunked transfer
  /// encoding; the body follows through the returned stream. Null when an
  /// answer was already sent.
  virtual std::shared_ptr<HttpStream> StartStream(HttpResponse head) = 0;
  /// True once the server stops or the connection is gone: the answer would
  /// reach nobody. Before any answer only (a stream has its own Gone()).
  virtual bool Gone() const = 0;
};

/// What the server calls for every well-formed request, on one of its I/O
/// threads. Implementations answer through `responder`, now or later from any
/// thread; they must not block for long (hand slow work to another thread).
class HttpHandler {
 public:
  virtual ~HttpHandler() = default;
  virtual void Handle(std::unique_ptr<HttpRequest> request,
                      std::shared_ptr<HttpResponder> responder) = 0;
};

}  // namespace http
}  // namespace torii

#endif  // TORII_SERVER_HTTP_HTTP_MESSAGE_H_
