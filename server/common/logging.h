// Minimal structured logging: one line per event, to stderr, as text or JSON.
#ifndef TORII_SERVER_COMMON_LOGGING_H_
#define TORII_SERVER_COMMON_LOGGING_H_

#include <string>
#include "absl/strings/string_view.h"
#include <utility>
#include <vector>

namespace torii {

enum class LogLevel { kError = 0, kWarning = 1, kInfo = 2, kVerbose = 3 };

/// Process-wide logging settings; set once at startup, before threads start.
struct LogOptions {
  bool json = false;   // --log-format=json
  int verbose = 0;     // --log-verbose: > 0 prints kVerbose lines
};
void SetLogOptions(const LogOptions& options);

using LogFields = std::vector<std::pair<std::string, std::string>>;

/// Writes one line. `fields` become key=value pairs (text) or JSON members.
/// Thread-safe.
void Log(LogLevel level, absl::string_view message, const LogFields& fields = {});

inline void LogInfo(absl::string_view m, const LogFields& f = {}) { Log(LogLevel::kInfo, m, f); }
inline void LogWarning(absl::string_view m, const LogFields& f = {}) { Log(LogLevel::kWarning, m, f); }
inline void LogError(absl::string_view m, const LogFields& f = {}) { Log(LogLevel::kError, m, f); }
inline void LogVerbose(absl::string_view m, const LogFields& f = {}) { Log(LogLevel::kVerbose, m, f); }

}  // namespace torii

#endif  // TORII_SERVER_COMMON_LOGGING_H_
