#include "server/common/logging.h"

#include <time.h>

#include <cstdio>
#include <mutex>

namespace torii {
namespace {

LogOptions g_options;
std::mutex g_mu;

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kError: return "error";
    case LogLevel::kWarning: return "warning";
    case LogLevel::kInfo: return "info";
    case LogLevel::kVerbose: return "verbose";
  }
  return "info";
}

void AppendJsonString(std::string& out, absl::string_view s) {
  out += '"';
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

std::string Timestamp() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t;
  gmtime_r(&ts.tv_sec, &t);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ",
                t.tm_year + 1900, t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min,
                t.tm_sec, ts.tv_nsec / 1000);
  return buf;
}

}  // namespace

void SetLogOptions(const LogOptions& options) { g_options = options; }

void Log(LogLevel level, absl::string_view message, const LogFields& fields) {
  if (level == LogLevel::kVerbose && g_options.verbose <= 0) return;
  std::string line;
  if (g_options.json) {
    line = "{\"ts\":\"" + Timestamp() + "\",\"level\":\"" + LevelName(level) +
           "\",\"msg\":";
    AppendJsonString(line, message);
    for (const auto& [k, v] : fields) {
      line += ',';
      AppendJsonString(line, k);
      line += ':';
      AppendJsonString(line, v);
    }
    line += "}\n";
  } else {
    line = Timestamp() + " " + LevelName(level) + " " + std::string(message);
    for (const auto& [k, v] : fields) {
      line += " " + k + "=";
      if (v.find_first_of(" \"") != std::string::npos) {
        AppendJsonString(line, v);
      } else {
        line += v;
      }
    }
    line += '\n';
  }
  std::lock_guard<std::mutex> lock(g_mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace torii
