#include "range.h"

#include <cmath>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace torii::perf {
namespace {

constexpr size_t kMaxRangeValues = 10000;

// Splits "a[:b[:c]]" into its parts and parses each with `parse`; missing
// parts take the perf_analyzer defaults (end = start, step = 1).
template <typename T, typename Parse>
absl::Status ParseParts(absl::string_view text, Parse parse, T* start, T* end,
                        T* step) {
  std::vector<absl::string_view> parts = absl::StrSplit(text, ':');
  if (text.empty() || parts.size() > 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("range '", text, "' is not start[:end[:step]]"));
  }
  T values[3] = {};
  for (size_t i = 0; i < parts.size(); ++i) {
    if (!parse(parts[i], &values[i])) {
      return absl::InvalidArgumentError(absl::StrCat(
          "range '", text, "': '", parts[i], "' is not a number"));
    }
  }
  *start = values[0];
  *end = parts.size() >= 2 ? values[1] : values[0];
  *step = parts.size() == 3 ? values[2] : T(1);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<int>> ParseConcurrencyRange(absl::string_view text) {
  int start = 0, end = 0, step = 0;
  absl::Status status = ParseParts<int>(
      text, [](absl::string_view s, int* v) { return absl::SimpleAtoi(s, v); },
      &start, &end, &step);
  if (!status.ok()) return status;
  if (start < 1 || end < start || step < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "concurrency range '", text,
        "' needs 1 <= start <= end and step >= 1"));
  }
  std::vector<int> values;
  for (long v = start; v <= end; v += step) {
    if (values.size() == kMaxRangeValues) {
      return absl::InvalidArgumentError(absl::StrCat(
          "concurrency range '", text, "' has more than ", kMaxRangeValues,
          " values"));
    }
    values.push_back(static_cast<int>(v));
  }
  return values;
}

absl::StatusOr<std::vector<double>> ParseRequestRateRange(
    absl::string_view text) {
  double start = 0, end = 0, step = 0;
  absl::Status status = ParseParts<double>(
      text,
      [](absl::string_view s, double* v) {
        return absl::SimpleAtod(s, v) && std::isfinite(*v);
      },
      &start, &end, &step);
  if (!status.ok()) return status;
  if (!(start > 0) || end < start || !(step > 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "request-rate range '", text,
        "' needs 0 < start <= end and step > 0"));
  }
  std::vector<double> values;
  // Index-based so that 0.1 steps do not drift past `end` by rounding.
  for (size_t i = 0;; ++i) {
    double v = start + static_cast<double>(i) * step;
    if (v > end * (1 + 1e-9)) break;
    if (values.size() == kMaxRangeValues) {
      return absl::InvalidArgumentError(absl::StrCat(
          "request-rate range '", text, "' has more than ", kMaxRangeValues,
          " values"));
    }
    values.push_back(v);
  }
  return values;
}

}  // namespace torii::perf
