#include "recorder.h"

#include "absl/strings/str_cat.h"

namespace torii::perf {

std::string StatusCodeName(int code) {
  static const char* const kNames[] = {
      "OK",        "CANCELLED",          "UNKNOWN",
      "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
      "ALREADY_EXISTS",   "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
      "FAILED_PRECONDITION", "ABORTED",     "OUT_OF_RANGE",
      "UNIMPLEMENTED",    "INTERNAL",          "UNAVAILABLE",
      "DATA_LOSS",        "UNAUTHENTICATED"};
  if (code >= 0 && code < static_cast<int>(std::size(kNames))) {
    return kNames[code];
  }
  return absl::StrCat("CODE_", code);
}

uint64_t WindowData::error_count() const {
  uint64_t n = 0;
  for (const auto& [code, count] : errors) n += count;
  return n;
}

void WindowData::Merge(const WindowData& other) {
  latencies_ns.insert(latencies_ns.end(), other.latencies_ns.begin(),
                      other.latencies_ns.end());
  success += other.success;
  for (const auto& [code, count] : other.errors) errors[code] += count;
  if (first_error.empty()) first_error = other.first_error;
}

void Recorder::RecordSuccess(int64_t latency_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  current_.latencies_ns.push_back(latency_ns);
  ++current_.success;
}

void Recorder::RecordError(absl::string_view code_name,
                           absl::string_view message) {
  std::lock_guard<std::mutex> lock(mu_);
  ++current_.errors[std::string(code_name)];
  if (current_.first_error.empty()) {
    current_.first_error = absl::StrCat(code_name, ": ", message);
  }
}

WindowData Recorder::Take() {
  WindowData taken;
  std::lock_guard<std::mutex> lock(mu_);
  std::swap(taken, current_);
  // Keep the next window's vector from regrowing from zero.
  current_.latencies_ns.reserve(taken.latencies_ns.size());
  return taken;
}

}  // namespace torii::perf
