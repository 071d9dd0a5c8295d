#include "server/http/http_status.h"

#include <catch2/catch.hpp>

namespace torii {
namespace http {
namespace {

TEST_CASE("absl status codes map to Triton's HTTP status codes", "[http][status]") {
  CHECK(HttpStatusFromStatus(absl::OkStatus()) == 200);
  CHECK(HttpStatusFromStatus(absl::InvalidArgumentError("")) == 400);
  CHECK(HttpStatusFromStatus(absl::NotFoundError("")) == 404);
  CHECK(HttpStatusFromStatus(absl::UnavailableError("")) == 503);
  CHECK(HttpStatusFromStatus(absl::ResourceExhaustedError("")) == 503);
  CHECK(HttpStatusFromStatus(absl::DeadlineExceededError("")) == 503);
  CHECK(HttpStatusFromStatus(absl::UnimplementedError("")) == 501);
  CHECK(HttpStatusFromStatus(absl::InternalError("")) == 500);
  CHECK(HttpStatusFromStatus(absl::PermissionDeniedError("")) == 403);
  CHECK(HttpStatusFromStatus(absl::AlreadyExistsError("")) == 400);
  CHECK(HttpStatusFromStatus(absl::CancelledError("")) == 400);
  CHECK(HttpStatusFromStatus(absl::UnknownError("")) == 400);
  CHECK(HttpStatusFromStatus(absl::FailedPreconditionError("")) == 400);
}

TEST_CASE("error answers carry {\"error\": message}", "[http][status]") {
  HttpResponse r = ErrorResponse(absl::NotFoundError("unknown model 'x'"));
  CHECK(r.status == 404);
  CHECK(r.body == R"({"error":"unknown model 'x'"})");
  REQUIRE(r.headers.size() == 1);
  CHECK(r.headers[0].second == "application/json");
}

}  // namespace
}  // namespace http
}  // namespace torii
