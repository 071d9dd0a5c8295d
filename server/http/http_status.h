// absl::Status -> HTTP status, as Triton's HTTP server maps its error codes
// (src/http_server.cc, HttpCodeFromError), so clients written against Triton
// see the same numbers.
#ifndef TORII_SERVER_HTTP_HTTP_STATUS_H_
#define TORII_SERVER_HTTP_HTTP_STATUS_H_

#include "absl/status/status.h"
#include "server/http/http_message.h"

namespace torii {
namespace http {

/// OK 200; INTERNAL 500; NOT_FOUND 404; UNAVAILABLE 503; UNIMPLEMENTED 501
/// (Triton's UNSUPPORTED); PERMISSION_DENIED 403 (Triton's answer to a
/// restricted API); RESOURCE_EXHAUSTED and DEADLINE_EXCEEDED 503 (Triton
/// reports a full queue and an expired request timeout as UNAVAILABLE);
/// everything else 400 (Triton's INVALID_ARG, ALREADY_EXISTS, CANCELLED,
/// UNKNOWN and its default).
int HttpStatusFromStatus(const absl::Status& status);

/// An error answer: the mapped status and {"error": message}.
HttpResponse ErrorResponse(const absl::Status& status);
HttpResponse ErrorResponse(int http_status, absl::string_view message);

}  // namespace http
}  // namespace torii

#endif  // TORII_SERVER_HTTP_HTTP_STATUS_H_
