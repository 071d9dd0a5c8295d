// torii-bench-ensemble: what an ensemble step costs, in process, against one
// call of the same model, in the same run.
//
// The server's request path without gRPC: ModelRepository, ModelLoader,
// ModelManager and InferenceCore, as torii-server wires them, serving the
// example `identity` (FP32, one instance, no dynamic batching) and two
// ensembles of it: `identity_x1` (one step) and `identity_x2` (identity ->
// identity). Closed-loop clients call InferenceCore::Infer and wait for the
// answer; models are measured in interleaved rounds (the order rotates each
// round), because only a same-run comparison means anything on a shared
// machine. Per point: p50/p99/mean latency, throughput, and process CPU µs
// per request. The figure of interest:
//   extra per step = (p50(identity_x2) - p50(identity)) / 2   at c=1,
// taken per round, reported as the median over rounds (bench/ensemble/run.sh
// measures the same through gRPC with torii-perf).
//
//   torii-bench-ensemble [--seconds=2] [--rounds=5] [--concurrency=1,16]
//                        [--elements=16] [--json=FILE] [--runner-dir=DIR]
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "server/common/logging.h"
#include "server/manager/inference_core.h"
#include "server/manager/model_manager.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Flags {
  double seconds = 2.0;
  int rounds = 5;
  std::vector<int> concurrency = {1, 16};
  int64_t elements = 16;
  std::string json;
  std::string runner_dir = TORII_RUNNER_DIR;
};

bool ParseFlags(int argc, char** argv, Flags* f) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* name, std::string* out) {
      const std::string prefix = std::string("--") + name + "=";
      if (a.rfind(prefix, 0) != 0) return false;
      *out = a.substr(prefix.size());
      return true;
    };
    std::string v;
    if (value("seconds", &v)) {
      if (!absl::SimpleAtod(v, &f->seconds) || f->seconds <= 0) return false;
    } else if (value("rounds", &v)) {
      if (!absl::SimpleAtoi(v, &f->rounds) || f->rounds < 1) return false;
    } else if (value("elements", &v)) {
      if (!absl::SimpleAtoi(v, &f->elements) || f->elements < 1) return false;
    } else if (value("concurrency", &v)) {
      f->concurrency.clear();
      for (absl::string_view c : absl::StrSplit(v, ',')) {
        int n = 0;
        if (!absl::SimpleAtoi(c, &n) || n < 1) return false;
        f->concurrency.push_back(n);
      }
    } else if (value("json", &v)) {
      f->json = v;
    } else if (value("runner-dir", &v)) {
      f->runner_dir = v;
    } else {
      return false;
    }
  }
  return true;
}

constexpr const char* kIdentity = R"(name: "identity"
backend: "identity"
max_batch_size: 64
input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
instance_group [ { count: 1 kind: KIND_CPU } ]
)";

std::string Chain(const std::string& name, int steps) {
  std::string s = "name: \"" + name + R"(" platform: "ensemble" max_batch_size: 64
input [ { name: "IN" data_type: TYPE_FP32 dims: [ -1 ] } ]
output [ { name: "OUT" data_type: TYPE_FP32 dims: [ -1 ] } ]
ensemble_scheduling { step [ )";
  for (int i = 0; i < steps; ++i) {
    const std::string in = i == 0 ? "IN" : "t" + std::to_string(i);
    const std::string out = i + 1 == steps ? "OUT" : "t" + std::to_string(i + 1);
    absl::StrAppend(&s, i ? ", " : "", R"({ model_name: "identity" input_map { key: "INPUT0" value: ")",
                    in, R"(" } output_map { key: "OUTPUT0" value: ")", out, R"(" } })");
  }
  return s + " ] }\n";
}

// One request in flight per client: the sink is reused.
class Waiter : public torii::ResponseSink {
 public:
  void Deliver(std::unique_ptr<torii::InferenceResponse> response, bool final) override {
    if (!final) return;
    std::lock_guard<std::mutex> lock(mu_);
    ok_ = response != nullptr && response->status.ok();
    if (!ok_ && response != nullptr) error_ = std::string(response->status.message());
    done_ = true;
    cv_.notify_one();
  }
  bool Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return done_; });
    done_ = false;
    return ok_;
  }
  std::string error() {
    std::lock_guard<std::mutex> lock(mu_);
    return error_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  bool ok_ = false;
  std::string error_;
};

struct Point {
  std::string model;
  int concurrency = 0;
  int round = 0;
  uint64_t requests = 0;
  uint64_t errors = 0;
  double seconds = 0;
  double p50_us = 0, p99_us = 0, mean_us = 0;
  double throughput = 0;
  double cpu_us_per_request = 0;
};

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(p / 100.0 * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

Point Measure(torii::InferenceCore& core, const std::string& model, const std::string& input,
              int concurrency, const Flags& f) {
  std::vector<float> values(static_cast<size_t>(f.elements));
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i);
  const char* data = reinterpret_cast<const char*>(values.data());
  const size_t bytes = values.size() * 4;
  std::atomic<bool> measuring{false}, stop{false};
  std::vector<std::vector<double>> latencies(static_cast<size_t>(concurrency));
  std::atomic<uint64_t> errors{0};
  std::string first_error;
  std::mutex error_mu;
  auto client = [&](size_t slot) {
    auto waiter = std::make_shared<Waiter>();
    while (!stop) {
      auto r = std::make_unique<torii::InferenceRequest>();
      r->model_name = model;
      torii::InferenceInput& in = r->inputs.emplace_back();
      in.name = input;
      in.datatype = TORII_TYPE_FP32;
      in.shape = {1, f.elements};
      in.data = data;
      in.byte_size = bytes;
      r->sink = waiter;
      const Clock::time_point t0 = Clock::now();
      core.Infer(std::move(r));
      const bool ok = waiter->Wait();
      const double us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
      if (!measuring) continue;
      if (ok) {
        latencies[slot].push_back(us);
      } else if (errors.fetch_add(1) == 0) {
        std::lock_guard<std::mutex> lock(error_mu);
        first_error = waiter->error();
      }
    }
  };
  std::vector<std::thread> threads;
  for (int c = 0; c < concurrency; ++c) threads.emplace_back(client, static_cast<size_t>(c));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // warm-up
  const double cpu0 = CpuSeconds();
  const Clock::time_point t0 = Clock::now();
  measuring = true;
  std::this_thread::sleep_for(std::chrono::duration<double>(f.seconds));
  measuring = false;
  const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  const double cpu = CpuSeconds() - cpu0;
  stop = true;
  for (auto& t : threads) t.join();
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  Point p;
  p.model = model;
  p.concurrency = concurrency;
  p.requests = all.size();
  p.errors = errors;
  p.seconds = elapsed;
  p.throughput = static_cast<double>(all.size()) / elapsed;
  double sum = 0;
  for (double x : all) sum += x;
  p.mean_us = all.empty() ? 0 : sum / static_cast<double>(all.size());
  p.p50_us = Percentile(all, 50);
  p.p99_us = Percentile(all, 99);
  p.cpu_us_per_request = all.empty() ? 0 : cpu * 1e6 / static_cast<double>(all.size());
  if (p.errors > 0) std::fprintf(stderr, "%s: %s\n", model.c_str(), first_error.c_str());
  return p;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  if (!ParseFlags(argc, argv, &f)) {
    std::fprintf(stderr,
                 "usage: torii-bench-ensemble [--seconds=2] [--rounds=5] [--concurrency=1,16] "
                 "[--elements=16] [--json=FILE] [--runner-dir=DIR]\n");
    return 1;
  }
  torii::LogOptions lo;
  lo.verbose = 0;
  torii::SetLogOptions(lo);
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = std::string(tmp != nullptr && *tmp ? tmp : "/tmp") + "/torii-bench-ensemble-XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  auto write = [&](const std::string& rel, const std::string& text) {
    std::filesystem::create_directories(std::filesystem::path(dir + "/" + rel).parent_path());
    std::ofstream(dir + "/" + rel) << text;
  };
  write("identity/config.pbtxt", kIdentity);
  write("identity/1/.keep", "");
  write("identity_x1/config.pbtxt", Chain("identity_x1", 1));
  write("identity_x1/1/.keep", "");
  write("identity_x2/config.pbtxt", Chain("identity_x2", 2));
  write("identity_x2/1/.keep", "");

  int status = 0;
  {
    torii::ModelRepository::Options ro;
    ro.root = dir;
    ro.backend_directories = {f.runner_dir};
    torii::ModelRepository repository(ro);
    torii::ModelLoader loader(torii::ModelLoader::Options{});
    torii::ModelManager manager(&repository, &loader, torii::ModelManager::Options{});
    torii::InferenceCore core(&manager, torii::ValidationLimits{});
    loader.set_dispatcher(&core);
    for (const char* m : {"identity", "identity_x1", "identity_x2"}) {
      absl::Status s = manager.Load(m);
      if (!s.ok()) {
        std::fprintf(stderr, "load %s: %s\n", m, std::string(s.message()).c_str());
        return 1;
      }
    }
    const std::vector<std::pair<std::string, std::string>> models = {
        {"identity", "INPUT0"}, {"identity_x1", "IN"}, {"identity_x2", "IN"}};
    std::vector<Point> points;
    for (int r = 0; r < f.rounds; ++r) {
      for (int c : f.concurrency) {
        for (size_t k = 0; k < models.size(); ++k) {
          const auto& [model, input] = models[(k + static_cast<size_t>(r)) % models.size()];
          Point p = Measure(core, model, input, c, f);
          p.round = r;
          if (p.errors > 0) status = 2;
          std::printf("round %d  c=%-3d %-12s p50 %7.1f us  p99 %8.1f us  %9.0f req/s  cpu %6.1f us/req%s\n",
                      r + 1, c, model.c_str(), p.p50_us, p.p99_us, p.throughput,
                      p.cpu_us_per_request,
                      p.errors ? absl::StrCat("  errors ", p.errors).c_str() : "");
          std::fflush(stdout);
          points.push_back(p);
        }
      }
    }
    // Summary: medians over rounds; the per-step extra is taken per round.
    std::string summary = "  \"summary\": [";
    bool first = true;
    for (int c : f.concurrency) {
      std::map<std::string, std::vector<double>> p50, tput, cpu;
      std::vector<double> step1, step2;
      for (int r = 0; r < f.rounds; ++r) {
        std::map<std::string, const Point*> in_round;
        for (const Point& p : points) {
          if (p.round != r || p.concurrency != c) continue;
          in_round[p.model] = &p;
          p50[p.model].push_back(p.p50_us);
          tput[p.model].push_back(p.throughput);
          cpu[p.model].push_back(p.cpu_us_per_request);
        }
        step1.push_back(in_round["identity_x1"]->p50_us - in_round["identity"]->p50_us);
        step2.push_back((in_round["identity_x2"]->p50_us - in_round["identity"]->p50_us) / 2);
      }
      std::printf("\nc=%d, medians over %d rounds:\n", c, f.rounds);
      for (const auto& [model, input] : models) {
        std::printf("  %-12s p50 %7.1f us  %9.0f req/s  cpu %6.1f us/req\n", model.c_str(),
                    Median(p50[model]), Median(tput[model]), Median(cpu[model]));
      }
      std::printf("  extra p50 per step: %.1f us (2 steps vs 1 call), %.1f us (1-step ensemble vs 1 call)\n",
                  Median(step2), Median(step1));
      absl::StrAppend(&summary, first ? "" : ",", "\n    {\"concurrency\": ", c,
                      ", \"extra_p50_us_per_step_2steps\": ", Median(step2),
                      ", \"extra_p50_us_1step\": ", Median(step1));
      for (const auto& [model, input] : models) {
        absl::StrAppend(&summary, ", \"", model, "\": {\"p50_us\": ", Median(p50[model]),
                        ", \"throughput\": ", Median(tput[model]),
                        ", \"cpu_us_per_request\": ", Median(cpu[model]), "}");
      }
      summary += "}";
      first = false;
    }
    summary += "\n  ]";
    if (!f.json.empty()) {
      std::string j = "{\n  \"tool\": \"torii-bench-ensemble\",\n  \"level\": \"in process "
                      "(InferenceCore, no gRPC)\",\n";
      absl::StrAppend(&j, "  \"seconds\": ", f.seconds, ", \"rounds\": ", f.rounds,
                      ", \"elements\": ", f.elements, ",\n", summary, ",\n  \"points\": [");
      for (size_t i = 0; i < points.size(); ++i) {
        const Point& p = points[i];
        absl::StrAppend(&j, i ? "," : "", "\n    {\"round\": ", p.round + 1, ", \"model\": \"",
                        p.model, "\", \"concurrency\": ", p.concurrency, ", \"p50_us\": ", p.p50_us,
                        ", \"p99_us\": ", p.p99_us, ", \"mean_us\": ", p.mean_us,
                        ", \"throughput\": ", p.throughput, ", \"cpu_us_per_request\": ",
                        p.cpu_us_per_request, ", \"requests\": ", p.requests, ", \"errors\": ",
                        p.errors, "}");
      }
      j += "\n  ]\n}\n";
      std::ofstream(f.json) << j;
    }
    manager.UnloadAll();
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  return status;
}
