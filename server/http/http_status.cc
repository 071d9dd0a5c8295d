#include "server/http/http_status.h"

#include "server/http/json_writer.h"

namespace torii {
namespace http {

int HttpStatusFromStatus(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk: return 200;
    case absl::StatusCode::kInternal: return 500;
    case absl::StatusCode::kNotFound: return 404;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kDeadlineExceeded: return 503;
    case absl::StatusCode::kUnimplemented: return 501;
    case absl::StatusCode::kPermissionDenied: return 403;
    default: return 400;
  }
}

HttpResponse ErrorResponse(int http_status, absl::string_view message) {
  HttpResponse r;
  r.status = http_status;
  r.body = ErrorJson(message);
  r.SetHeader("Content-Type", "application/json");
  return r;
}

HttpResponse ErrorResponse(const absl::Status& status) {
  return ErrorResponse(HttpStatusFromStatus(status), status.message());
}

}  // namespace http
}  // namespace torii
