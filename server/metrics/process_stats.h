// Memory, CPU and file descriptors of a process, read from /proc, for
// Prometheus' standard process_* metrics and the runner processes' memory.
#ifndef TORII_SERVER_METRICS_PROCESS_STATS_H_
#define TORII_SERVER_METRICS_PROCESS_STATS_H_

#include <sys/types.h>

#include <cstdint>

namespace torii {

struct ProcessStats {
  bool ok = false;  // false when the process is gone or /proc unreadable
  uint64_t resident_bytes = 0;
  uint64_t virtual_bytes = 0;
  double cpu_seconds = 0;         // user + system
  double start_time_seconds = 0;  // since the epoch
  uint64_t open_fds = 0;
  uint64_t max_fds = 0;
};

ProcessStats ReadProcessStats(pid_t pid);

}  // namespace torii

#endif  // TORII_SERVER_METRICS_PROCESS_STATS_H_
