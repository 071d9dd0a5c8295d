#include "report.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace torii::perf {
namespace {

std::string Num(double v) {
  if (!std::isfinite(v)) return "null";
  return absl::StrFormat("%.3f", v);
}

std::string ErrorsText(const PointResult& r) {
  if (r.errors.empty()) return "0";
  std::vector<std::string> parts;
  for (const auto& [code, count] : r.errors) {
    parts.push_back(absl::StrCat(code, "=", count));
  }
  return absl::StrCat(r.error_count(), " (", absl::StrJoin(parts, " "), ")");
}

std::string PointLabel(const PointResult& r) {
  return r.mode == "concurrency"
             ? absl::StrCat("Concurrency: ", r.concurrency)
             : absl::StrFormat("Request rate: %g", r.request_rate);
}

// p99.9 of fewer than 1000 samples is the slowest one: say so.
std::string P99_9Caveat(const LatencySummary& l) {
  if (l.count == 0 || l.count >= kSamplesForP99_9) return "";
  return absl::StrFormat(" (the maximum: %llu samples < %llu)",
                         static_cast<unsigned long long>(l.count),
                         static_cast<unsigned long long>(kSamplesForP99_9));
}

}  // namespace

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += absl::StrFormat("\\u%04x", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

void PrintPoint(std::ostream& out, const PointResult& r, double percentile) {
  out << absl::StrFormat(
      "  %s: %d windows, %s\n"
      "    Request count: %llu\n"
      "    Throughput: %.1f infer/sec\n"
      "    Avg latency: %.0f usec (standard deviation %.0f usec)\n"
      "    p50 latency: %.0f usec\n"
      "    p90 latency: %.0f usec\n"
      "    p95 latency: %.0f usec\n"
      "    p99 latency: %.0f usec\n"
      "    p99.9 latency: %.0f usec%s\n"
      "    Errors: %s\n",
      PointLabel(r), r.trials,
      r.stable ? "stable"
               : absl::StrFormat("NOT stable within the stability "
                                 "percentage (last %d windows reported)",
                                 std::min(r.trials, 3)),
      static_cast<unsigned long long>(r.success), r.throughput,
      r.latency.mean_us, r.latency.stddev_us, r.latency.p50_us,
      r.latency.p90_us, r.latency.p95_us, r.latency.p99_us,
      r.latency.p99_9_us, P99_9Caveat(r.latency), ErrorsText(r));
  if (!r.first_error.empty()) out << "    First error: " << r.first_error << "\n";
  if (r.skipped > 0) {
    out << "    Skipped sends (max in-flight reached): " << r.skipped << "\n";
  }
  out << absl::StrFormat(
      "    Client CPU: %.2f cores, %.1f usec/request\n", r.client_cores(),
      r.client_cpu_us_per_request());
  if (r.server_cpu_s >= 0) {
    uint64_t n = r.success + r.error_count();
    out << absl::StrFormat(
        "    Server CPU: %.2f cores, %.1f usec/request (%.1f in the kernel)\n",
        r.server_cores(), r.server_cpu_us_per_request(),
        n > 0 ? r.server_sys_s * 1e6 / static_cast<double>(n) : 0.0);
  }
  if (r.server_context_switches >= 0) {
    out << absl::StrFormat("    Server context switches (voluntary): %.2f per request\n",
                           r.server_context_switches_per_request());
  }
  (void)percentile;
}

void PrintSweep(std::ostream& out, const std::vector<PointResult>& results) {
  out << "Inferences/Second vs. Client Latency\n";
  for (const PointResult& r : results) {
    out << absl::StrFormat(
        "%s, throughput: %.1f infer/sec, latency p50 %.0f p90 %.0f p99 %.0f "
        "p99.9 %.0f usec, errors %llu\n",
        PointLabel(r), r.throughput, r.latency.p50_us, r.latency.p90_us,
        r.latency.p99_us, r.latency.p99_9_us,
        static_cast<unsigned long long>(r.error_count()));
  }
}

std::string CsvReport(const std::vector<PointResult>& results) {
  std::string csv =
      "Mode,Concurrency,Request Rate,Inferences/Second,Avg latency,"
      "p50 latency,p90 latency,p95 latency,p99 latency,p99.9 latency,"
      "Min latency,Max latency,Requests,Errors,Stable,Windows,Client CPU cores,"
      "Client CPU us/request,Server CPU cores,Server CPU us/request\n";
  for (const PointResult& r : results) {
    absl::StrAppend(
        &csv, r.mode, ",", r.concurrency, ",", Num(r.request_rate), ",",
        Num(r.throughput), ",", Num(r.latency.mean_us), ",",
        Num(r.latency.p50_us), ",", Num(r.latency.p90_us), ",",
        Num(r.latency.p95_us), ",", Num(r.latency.p99_us), ",",
        Num(r.latency.p99_9_us), ",", Num(r.latency.min_us), ",",
        Num(r.latency.max_us), ",", r.success, ",", r.error_count(), ",",
        r.stable ? "true" : "false", ",", r.trials, ",",
        Num(r.client_cores()), ",", Num(r.client_cpu_us_per_request()),
        ",", r.server_cpu_s >= 0 ? Num(r.server_cores()) : "",
        ",", r.server_cpu_s >= 0 ? Num(r.server_cpu_us_per_request()) : "",
        "\n");
  }
  return csv;
}

std::string JsonReport(const RunInfo& info,
                       const std::vector<PointResult>& results) {
  std::string j = "{\n  \"tool\": \"torii-perf\",\n  \"run\": {";
  absl::StrAppend(
      &j, "\"label\": ", JsonString(info.label),
      ", \"url\": ", JsonString(info.url),
      ", \"model_name\": ", JsonString(info.model_name),
      ", \"model_version\": ", JsonString(info.model_version),
      ", \"protocol\": ", JsonString(info.protocol),
      ", \"api\": ", JsonString(info.api),
      ", \"output_format\": ", JsonString(info.output_format),
      ", \"contents\": ", JsonString(info.contents),
      ", \"inputs\": ", JsonString(info.inputs),
      ", \"payload_bytes\": ", info.payload_bytes,
      ", \"channels\": ", info.channels,
      ", \"measurement_interval_ms\": ", info.measurement_interval_ms,
      ", \"stability_percentage\": ", Num(info.stability_percentage),
      ", \"max_trials\": ", info.max_trials,
      ", \"stability_latency\": ",
      JsonString(info.percentile >= 0
                     ? absl::StrFormat("p%g", info.percentile)
                     : "avg"),
      ", \"command_line\": ", JsonString(info.command_line), "},\n");
  j += "  \"results\": [";
  for (size_t i = 0; i < results.size(); ++i) {
    const PointResult& r = results[i];
    std::vector<std::string> errors, windows;
    for (const auto& [code, count] : r.errors) {
      errors.push_back(absl::StrCat(JsonString(code), ": ", count));
    }
    for (const WindowFigures& w : r.windows) {
      windows.push_back(absl::StrCat("{\"throughput\": ", Num(w.throughput),
                                     ", \"latency_us\": ", Num(w.latency_us),
                                     "}"));
    }
    absl::StrAppend(
        &j, i ? "," : "", "\n    {\"mode\": ", JsonString(r.mode),
        ", \"concurrency\": ", r.concurrency,
        ", \"request_rate\": ", Num(r.request_rate),
        ", \"throughput\": ", Num(r.throughput),
        ",\n     \"latency_us\": {\"avg\": ", Num(r.latency.mean_us),
        ", \"stddev\": ", Num(r.latency.stddev_us),
        ", \"min\": ", Num(r.latency.min_us),
        ", \"p50\": ", Num(r.latency.p50_us),
        ", \"p90\": ", Num(r.latency.p90_us),
        ", \"p95\": ", Num(r.latency.p95_us),
        ", \"p99\": ", Num(r.latency.p99_us),
        ", \"p99.9\": ", Num(r.latency.p99_9_us),
        ", \"max\": ", Num(r.latency.max_us), "},\n     \"requests\": ",
        r.success, ", \"error_count\": ", r.error_count(),
        ", \"errors\": {", absl::StrJoin(errors, ", "), "}",
        ", \"first_error\": ", JsonString(r.first_error),
        ", \"skipped\": ", r.skipped, ", \"peak_inflight\": ", r.peak_inflight,
        ",\n     \"stable\": ", r.stable ? "true" : "false",
        ", \"duration_s\": ", Num(r.duration_s),
        ", \"windows\": [", absl::StrJoin(windows, ", "), "]",
        ",\n     \"client_cpu\": {\"cores\": ", Num(r.client_cores()),
        ", \"us_per_request\": ", Num(r.client_cpu_us_per_request()), "}",
        ", \"server_cpu\": ",
        r.server_cpu_s >= 0
            ? absl::StrCat(
                  "{\"cores\": ", Num(r.server_cores()),
                  ", \"us_per_request\": ", Num(r.server_cpu_us_per_request()),
                  ", \"system_us_per_request\": ",
                  Num(r.success + r.error_count() > 0
                          ? r.server_sys_s * 1e6 /
                                static_cast<double>(r.success + r.error_count())
                          : 0.0),
                  r.server_context_switches >= 0
                      ? absl::StrCat(", \"context_switches_per_request\": ",
                                     Num(r.server_context_switches_per_request()))
                      : std::string(),
                  "}")
            : std::string("null"),
        "}");
  }
  j += "\n  ]\n}\n";
  return j;
}

}  // namespace torii::perf
