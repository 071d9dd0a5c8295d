#include "server/tools/runner/bench.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/common/status_macros.h"
#include "server/tools/runner/model_under_test.h"
#include "server/core/datatype.h"

namespace torii {
namespace runner_tool {
namespace {

using Clock = std::chrono::steady_clock;

struct Row {
  int64_t batch = 0;
  int64_t calls = 0;
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, max_ms = 0, mean_ms = 0;
  double calls_per_s = 0;
  double rows_per_s = 0;
};

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t i = static_cast<size_t>(p * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)];
}

}  // namespace

std::vector<int64_t> DefaultBatchSizes(int32_t max_batch_size) {
  if (max_batch_size <= 0) return {1};
  std::vector<int64_t> sizes;
  for (int64_t b : {1, 8, 32}) {
    if (b <= max_batch_size) sizes.push_back(b);
  }
  if (max_batch_size < 32 && sizes.back() != max_batch_size) sizes.push_back(max_batch_size);
  return sizes;
}

absl::Status RunBench(const ModelLocation& loc, const BenchOptions& options, std::ostream& out) {
  TORII_ASSIGN_OR_RETURN(auto model, ModelUnderTest::Load(loc, ModelUnderTest::Options{}));
  const ModelSpec& sig = model->spec();
  std::vector<int64_t> sizes =
      options.batch_sizes.empty() ? DefaultBatchSizes(sig.max_batch_size) : options.batch_sizes;
  for (int64_t b : sizes) {
    if (b < 1 || (sig.batching_enabled() && b > sig.max_batch_size) ||
        (!sig.batching_enabled() && b != 1)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "batch size ", b, " is not possible: max_batch_size is ", sig.max_batch_size,
          sig.batching_enabled() ? "" : " (the model does not batch; only 1 is possible)"));
    }
  }
  InputGenerator gen(sig, options.dims);
  std::vector<std::string> input_text;
  for (const auto& t : sig.inputs) {
    std::vector<int64_t> shape = gen.Dims(t, options.variable);
    std::string s = absl::StrCat(t.name, " ", DataTypeName(t.datatype), " [",
                                 sig.batching_enabled() ? "1," : "", absl::StrJoin(shape, ","), "]");
    input_text.push_back(s);
  }
  const RunnerProvenance prov = model->provenance();

  std::vector<Row> rows;
  for (int64_t b : sizes) {
    std::vector<std::unique_ptr<PreparedRequest>> prepared;
    std::vector<PreparedRequest*> batch;
    for (int64_t i = 0; i < b; ++i) {
      TORII_ASSIGN_OR_RETURN(
          auto p, PreparedRequest::Create(sig, loc.version,
                                          gen.Request(1, options.variable,
                                                      static_cast<uint64_t>(1000 + i))));
      batch.push_back(p.get());
      prepared.push_back(std::move(p));
    }
    auto run_once = [&]() -> absl::Status {
      const std::vector<absl::Status> st = model->ExecutePrepared(0, batch);
      for (const auto& s : st) {
        if (!s.ok()) return s;
      }
      return absl::OkStatus();
    };
    for (int i = 0; i < options.warmup; ++i) {
      absl::Status s = run_once();
      if (!s.ok()) {
        return absl::Status(s.code(), absl::StrCat("batch size ", b, ": ", s.message()));
      }
    }
    std::vector<double> ms;
    const Clock::time_point start = Clock::now();
    const Clock::time_point end =
        start + std::chrono::microseconds(static_cast<int64_t>(options.seconds * 1e6));
    Clock::time_point now = start;
    while ((now < end || ms.size() < 5) && ms.size() < 10000000) {
      const Clock::time_point t0 = Clock::now();
      absl::Status s = run_once();
      now = Clock::now();
      if (!s.ok()) {
        return absl::Status(s.code(), absl::StrCat("batch size ", b, ": ", s.message()));
      }
      ms.push_back(std::chrono::duration<double, std::milli>(now - t0).count());
    }
    const double wall = std::chrono::duration<double>(now - start).count();
    Row row;
    row.batch = b;
    row.calls = static_cast<int64_t>(ms.size());
    double sum = 0;
    for (double v : ms) sum += v;
    std::sort(ms.begin(), ms.end());
    row.p50_ms = Percentile(ms, 0.50);
    row.p90_ms = Percentile(ms, 0.90);
    row.p99_ms = Percentile(ms, 0.99);
    row.max_ms = ms.back();
    row.mean_ms = sum / static_cast<double>(ms.size());
    row.calls_per_s = static_cast<double>(row.calls) / wall;
    row.rows_per_s = row.calls_per_s * static_cast<double>(b);
    rows.push_back(row);
  }

  if (options.json) {
    nlohmann::json j;
    j["model_name"] = loc.model_name;
    j["model_version"] = std::to_string(loc.version);
    j["runner"] = prov.runner;
    j["runner_version"] = prov.runner_version;
    j["runner_build"] = prov.runner_build;
    j["isolation"] = IsolationModeName(model->isolation());
    j["inputs"] = input_text;
    j["seconds_per_batch_size"] = options.seconds;
    j["results"] = nlohmann::json::array();
    for (const auto& r : rows) {
      j["results"].push_back({{"batch_size", r.batch},
                              {"calls", r.calls},
                              {"p50_ms", r.p50_ms},
                              {"p90_ms", r.p90_ms},
                              {"p99_ms", r.p99_ms},
                              {"max_ms", r.max_ms},
                              {"mean_ms", r.mean_ms},
                              {"batches_per_s", r.calls_per_s},
                              {"inferences_per_s", r.rows_per_s}});
    }
    out << j.dump(2) << "\n";
    return absl::OkStatus();
  }
  out << "torii-runner bench: model '" << loc.model_name << "' version " << loc.version
      << ", runner " << prov.runner << " " << prov.runner_version << "\n"
      << "  inputs per request: " << absl::StrJoin(input_text, ", ") << "\n"
      << "  a batch of B = B one-row requests merged into one execute call ("
      << (model->isolated()
              ? absl::StrCat("in a torii-runner-host process, isolation ",
                             IsolationModeName(model->isolation()))
              : std::string("in process"))
      << ", 1 instance, " << options.seconds << " s each)\n\n";
  char line[256];
  std::snprintf(line, sizeof(line), "%6s %9s %10s %10s %10s %10s %12s %14s\n", "batch", "calls",
                "p50 ms", "p90 ms", "p99 ms", "max ms", "batches/s", "inferences/s");
  out << line;
  for (const auto& r : rows) {
    std::snprintf(line, sizeof(line), "%6lld %9lld %10.4f %10.4f %10.4f %10.4f %12.1f %14.1f\n",
                  static_cast<long long>(r.batch), static_cast<long long>(r.calls), r.p50_ms,
                  r.p90_ms, r.p99_ms, r.max_ms, r.calls_per_s, r.rows_per_s);
    out << line;
  }
  return absl::OkStatus();
}

}  // namespace runner_tool
}  // namespace torii
