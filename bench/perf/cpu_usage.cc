#include "cpu_usage.h"

#include <sys/resource.h>
#include <unistd.h>

#include <dirent.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace torii::perf {

double SelfCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) +
           static_cast<double>(tv.tv_usec) * 1e-6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

absl::StatusOr<CpuTimes> ParseProcStat(absl::string_view stat,
                                       long ticks_per_second) {
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so
  // count fields from the last ')'. utime and stime are fields 14 and 15,
  // i.e. the 12th and 13th after the comm.
  size_t close = stat.rfind(')');
  if (close == absl::string_view::npos || ticks_per_second <= 0) {
    return absl::InvalidArgumentError("malformed /proc/<pid>/stat");
  }
  std::istringstream in{std::string(stat.substr(close + 1))};
  std::vector<std::string> fields;
  for (std::string field; in >> field && fields.size() < 13;) {
    fields.push_back(field);
  }
  uint64_t utime = 0, stime = 0;
  if (fields.size() < 13 || !absl::SimpleAtoi(fields[11], &utime) ||
      !absl::SimpleAtoi(fields[12], &stime)) {
    return absl::InvalidArgumentError("malformed /proc/<pid>/stat");
  }
  CpuTimes times;
  times.user_s =
      static_cast<double>(utime) / static_cast<double>(ticks_per_second);
  times.system_s =
      static_cast<double>(stime) / static_cast<double>(ticks_per_second);
  return times;
}

absl::StatusOr<double> ParseProcStatCpuSeconds(absl::string_view stat,
                                               long ticks_per_second) {
  auto times = ParseProcStat(stat, ticks_per_second);
  if (!times.ok()) return times.status();
  return times->total();
}

absl::StatusOr<double> ProcessCpuSeconds(int pid) {
  auto times = ProcessCpuTimes(pid);
  if (!times.ok()) return times.status();
  return times->total();
}

absl::StatusOr<CpuTimes> ProcessCpuTimes(int pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  if (!in) {
    return absl::NotFoundError(absl::StrCat("no process ", pid));
  }
  std::stringstream text;
  text << in.rdbuf();
  return ParseProcStat(text.str(), sysconf(_SC_CLK_TCK));
}

double ParseContextSwitches(absl::string_view status) {
  double n = 0;
  for (absl::string_view line : absl::StrSplit(status, '\n')) {
    if (!absl::ConsumePrefix(&line, "voluntary_ctxt_switches:")) continue;
    uint64_t v = 0;
    if (absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &v)) n += static_cast<double>(v);
  }
  return n;
}

absl::StatusOr<double> ProcessContextSwitches(int pid) {
  const std::string dir = absl::StrCat("/proc/", pid, "/task");
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return absl::NotFoundError(absl::StrCat("no process ", pid));
  double total = 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    // A thread that ended meanwhile is simply not counted.
    std::ifstream in(absl::StrCat(dir, "/", e->d_name, "/status"));
    if (!in) continue;
    std::stringstream text;
    text << in.rdbuf();
    total += ParseContextSwitches(text.str());
  }
  closedir(d);
  return total;
}

}  // namespace torii::perf
