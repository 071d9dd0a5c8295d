#include "measurement.h"

#include <algorithm>
#include <cstdio>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cpu_usage.h"

namespace torii::perf {
namespace {

constexpr int kStableWindows = 3;

struct Window {
  WindowData data;
  double seconds = 0;
  double client_cpu_s = 0;
  double server_cpu_s = -1;
  double server_sys_s = -1;
  double server_cs = -1;
};

// The server's CPU times, or negative ones without --server-pid (or when the
// process is gone).
CpuTimes ServerCpu(int pid) {
  if (pid <= 0) return {-1, -1};
  auto cpu = ProcessCpuTimes(pid);
  if (!cpu.ok()) return CpuTimes{-1, -1};
  auto cs = ProcessContextSwitches(pid);
  cpu->context_switches = cs.ok() ? *cs : -1;
  return *cpu;
}

void SetServerCpu(const CpuTimes& before, const CpuTimes& after, Window* w) {
  if (before.user_s >= 0 && after.user_s >= 0) {
    w->server_cpu_s = after.total() - before.total();
    w->server_sys_s = after.system_s - before.system_s;
  }
  if (before.context_switches >= 0 && after.context_switches >= 0) {
    w->server_cs = after.context_switches - before.context_switches;
  }
}

WindowFigures Figures(const Window& w, double percentile) {
  WindowFigures f;
  f.throughput = w.seconds > 0 ? static_cast<double>(w.data.success) / w.seconds
                               : 0;
  std::vector<int64_t> sorted = w.data.latencies_ns;
  std::sort(sorted.begin(), sorted.end());
  if (percentile >= 0) {
    f.latency_us = static_cast<double>(PercentileNs(sorted, percentile)) * 1e-3;
  } else if (!sorted.empty()) {
    double sum = 0;
    for (int64_t v : sorted) sum += static_cast<double>(v);
    f.latency_us = sum / static_cast<double>(sorted.size()) * 1e-3;
  }
  return f;
}

// One window of `ms` milliseconds: what completed in it and the CPU spent.
Window MeasureWindow(LoadGenerator& gen, int64_t ms, int server_pid) {
  Window w;
  CpuTimes server0 = ServerCpu(server_pid);
  double client0 = SelfCpuSeconds();
  gen.recorder().Take();
  auto t0 = Clock::now();
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  w.data = gen.recorder().Take();
  w.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  w.client_cpu_s = SelfCpuSeconds() - client0;
  SetServerCpu(server0, ServerCpu(server_pid), &w);
  return w;
}

void LogWindow(std::ostream& log, int trial, const Window& w,
               const WindowFigures& f, double percentile) {
  log << absl::StrFormat(
      "  Pass [%d] throughput: %.1f infer/sec. %s latency: %.0f usec "
      "(%llu ok, %llu errors)\n",
      trial, f.throughput,
      percentile >= 0 ? absl::StrFormat("p%g", percentile) : "Avg",
      f.latency_us, static_cast<unsigned long long>(w.data.success),
      static_cast<unsigned long long>(w.data.error_count()));
}

PointResult Finish(PointResult r, std::vector<Window>& windows,
                   double percentile) {
  size_t first = windows.size() > kStableWindows
                     ? windows.size() - kStableWindows
                     : 0;
  WindowData merged;
  bool server_ok = true, cs_ok = true;
  double server_cpu = 0, server_sys = 0, server_cs = 0;
  for (size_t i = first; i < windows.size(); ++i) {
    merged.Merge(windows[i].data);
    r.duration_s += windows[i].seconds;
    r.client_cpu_s += windows[i].client_cpu_s;
    server_ok = server_ok && windows[i].server_cpu_s >= 0;
    server_cpu += windows[i].server_cpu_s;
    server_sys += windows[i].server_sys_s;
    cs_ok = cs_ok && windows[i].server_cs >= 0;
    server_cs += windows[i].server_cs;
  }
  for (const Window& w : windows) r.windows.push_back(Figures(w, percentile));
  r.trials = static_cast<int>(windows.size());
  r.server_cpu_s = server_ok ? server_cpu : -1;
  r.server_sys_s = server_ok ? server_sys : -1;
  r.server_context_switches = cs_ok ? server_cs : -1;
  r.success = merged.success;
  r.errors = merged.errors;
  r.first_error = merged.first_error;
  r.throughput = r.duration_s > 0
                     ? static_cast<double>(r.success) / r.duration_s
                     : 0;
  r.latency = Summarize(merged.latencies_ns);
  return r;
}

// Warm-up, then windows until stable; `gen` is already loaded.
PointResult RunWindows(LoadGenerator& gen, PointResult r,
                       const MeasureOptions& o, std::ostream& log) {
  if (o.warmup_ms > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(o.warmup_ms));
  }
  std::vector<Window> windows;
  std::vector<WindowFigures> figures;
  for (int trial = 1; trial <= std::max(o.max_trials, 1); ++trial) {
    windows.push_back(
        MeasureWindow(gen, o.measurement_interval_ms, o.server_pid));
    figures.push_back(Figures(windows.back(), o.percentile));
    if (o.verbose) LogWindow(log, trial, windows.back(), figures.back(), o.percentile);
    if (IsStable(figures, o.stability_percentage, kStableWindows)) {
      r.stable = true;
      break;
    }
  }
  // Stop before merging: requests still in flight complete into the
  // recorder and are dropped at the next Take(), never into a window.
  gen.Stop();
  r.skipped = gen.skipped();
  r.peak_inflight = gen.peak_slots();
  return Finish(std::move(r), windows, o.percentile);
}

// Fixed count: an optional warm-up, then one window from the first counted
// send to the last counted response, between the two hooks.
PointResult MeasureFixedCount(LoadGenerator& gen, PointResult r,
                              const MeasureOptions& o) {
  auto hook = [&r](const std::function<absl::Status()>& f, const char* name) {
    if (!f) return true;
    absl::Status s = f();
    if (!s.ok()) r.setup_error = absl::StrCat(name, ": ", s.message());
    return s.ok();
  };
  if (o.warmup_count > 0) {
    gen.StartConcurrency(r.concurrency, o.warmup_count);
    gen.WaitUntilIdle(std::chrono::hours(24));
    gen.Stop();
    gen.recorder().Take();
  }
  if (!hook(o.on_count_start, "on_count_start")) return r;
  Window w;
  CpuTimes server0 = ServerCpu(o.server_pid);
  double client0 = SelfCpuSeconds();
  gen.recorder().Take();
  auto t0 = Clock::now();
  gen.StartConcurrency(r.concurrency, o.request_count);
  gen.WaitUntilIdle(std::chrono::hours(24));
  w.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  w.data = gen.recorder().Take();
  w.client_cpu_s = SelfCpuSeconds() - client0;
  SetServerCpu(server0, ServerCpu(o.server_pid), &w);
  // Every counted response has arrived (streams, one per slot, were closed
  // as their budget ran out); the channels are still open.
  hook(o.on_count_end, "on_count_end");
  gen.Stop();
  r.stable = true;
  r.peak_inflight = gen.peak_slots();
  std::vector<Window> windows;
  windows.push_back(std::move(w));
  return Finish(std::move(r), windows, o.percentile);
}

}  // namespace

uint64_t PointResult::error_count() const {
  uint64_t n = 0;
  for (const auto& [code, count] : errors) n += count;
  return n;
}

double PointResult::client_cores() const {
  return duration_s > 0 ? client_cpu_s / duration_s : 0;
}

double PointResult::server_cores() const {
  return duration_s > 0 && server_cpu_s >= 0 ? server_cpu_s / duration_s : -1;
}

double PointResult::client_cpu_us_per_request() const {
  uint64_t n = success + error_count();
  return n > 0 ? client_cpu_s * 1e6 / static_cast<double>(n) : 0;
}

double PointResult::server_cpu_us_per_request() const {
  uint64_t n = success + error_count();
  return n > 0 && server_cpu_s >= 0
             ? server_cpu_s * 1e6 / static_cast<double>(n)
             : -1;
}

double PointResult::server_context_switches_per_request() const {
  uint64_t n = success + error_count();
  return n > 0 && server_context_switches >= 0
             ? server_context_switches / static_cast<double>(n)
             : -1;
}

PointResult MeasureConcurrency(LoadGenerator& gen, int concurrency,
                               const MeasureOptions& o, std::ostream& log) {
  PointResult r;
  r.mode = "concurrency";
  r.concurrency = concurrency;
  log << "Request concurrency: " << concurrency << "\n";
  if (o.request_count > 0) return MeasureFixedCount(gen, std::move(r), o);
  gen.StartConcurrency(concurrency);
  return RunWindows(gen, std::move(r), o, log);
}

PointResult MeasureRequestRate(LoadGenerator& gen, double rate,
                               const MeasureOptions& o, std::ostream& log) {
  PointResult r;
  r.mode = "request_rate";
  r.request_rate = rate;
  log << "Request rate: " << rate << " infer/sec\n";
  gen.StartRate(rate);
  return RunWindows(gen, std::move(r), o, log);
}

}  // namespace torii::perf
