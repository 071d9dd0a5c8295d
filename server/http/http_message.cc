#include "server/http/http_message.h"

#include "absl/strings/match.h"

namespace torii {
namespace http {

void EnsureBodyPadding(std::string& body) {
  if (body.capacity() < body.size() + kBodyPadding) body.reserve(body.size() + kBodyPadding);
}

const std::string* HttpRequest::Header(absl::string_view lower_case_name) const {
  for (const auto& h : headers) {
    if (h.first == lower_case_name) return &h.second;
  }
  return nullptr;
}

size_t HttpResponse::BodySize() const {
  size_t n = body.size();
  for (absl::string_view t : tail) n += t.size();
  return n;
}

void HttpResponse::SetHeader(std::string name, std::string value) {
  for (auto& h : headers) {
    if (absl::EqualsIgnoreCase(h.first, name)) {
      h.second = std::move(value);
      return;
    }
  }
  headers.emplace_back(std::move(name), std::move(value));
}

}  // namespace http
}  // namespace torii
