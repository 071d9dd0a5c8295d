#include "server/metrics/process_stats.h"

#include <dirent.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

namespace torii {
namespace {

// Seconds since the epoch at which the machine booted (btime in /proc/stat).
double BootTime() {
  std::ifstream in("/proc/stat");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("btime ", 0) == 0) return std::stod(line.substr(6));
  }
  return 0;
}

uint64_t CountFds(pid_t pid) {
  const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return 0;
  uint64_t n = 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(d);
  return n > 0 ? n - 1 : 0;  // not the descriptor of the listing itself
}

}  // namespace

ProcessStats ReadProcessStats(pid_t pid) {
  ProcessStats p;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(stat, text)) return p;
  // The command name (field 2) may hold spaces; fields resume after ')'.
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return p;
  std::istringstream fields(text.substr(close + 2));
  std::string f[40];
  for (auto& x : f) fields >> x;
  // Fields counted from 3 (state): utime 14, stime 15, starttime 22, vsize 23, rss 24.
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  try {
    p.cpu_seconds = (std::stod(f[14 - 3]) + std::stod(f[15 - 3])) / ticks;
    p.start_time_seconds = BootTime() + std::stod(f[22 - 3]) / ticks;
    p.virtual_bytes = std::stoull(f[23 - 3]);
    p.resident_bytes = static_cast<uint64_t>(std::stod(f[24 - 3]) * page);
  } catch (...) {
    return p;
  }
  p.open_fds = CountFds(pid);
  if (pid == getpid()) {
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0) p.max_fds = limit.rlim_cur;
  }
  p.ok = true;
  return p;
}

}  // namespace torii
