// torii-bench-isolation: what `isolation: "process"` costs per request,
// against in-process, on the identity runner, in the same run.
//
// Two levels, each comparing in-process and isolated in interleaved rounds
// (machines are noisy: only a same-run comparison means anything):
//   backend  ExecutionBackend::Execute called directly (RunnerModel vs
//            IsolatedRunnerModel, both built from the same ModelSpec, one
//            validated core InferenceRequest per thread answered into a
//            heap-buffer response): the isolation cost alone, no gRPC.
//   server   the real torii-server with two models, "identity" and
//            "identity_iso", driven by gRPC clients (one channel each).
// Payloads: FP32 [1, 256] (1 KiB) and [1, 16384] (64 KiB); concurrency 1
// and 8. Per point: mean/p50/p99 latency, µs of wall time per request
// (1 / throughput), and CPU µs per request (server + runner host; the
// clients' CPU too at the server level).
//
//   torii-bench-isolation [--mode=backend|server|both] [--seconds=2]
//                         [--rounds=3] [--payloads=1024,65536]
//                         [--concurrency=1,8] [--json=FILE]
// Paths default to the build tree; override with --server=, --host=,
// --runner=.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "google/protobuf/text_format.h"
#include "inference.grpc.pb.h"
#include "server/core/request_validator.h"
#include "server/isolation/isolated_runner_model.h"
#include "server/repository/model_spec_builder.h"
#include "server/runner/runner_model.h"

namespace {

using Clock = std::chrono::steady_clock;
using torii::ExecutionBackend;

struct Flags {
  std::string mode = "both";
  double seconds = 2.0;
  int rounds = 3;
  std::string json;
  std::string server = TORII_SERVER_BINARY;
  std::string host = TORII_RUNNER_HOST_BINARY;
  std::string runner = TORII_IDENTITY_RUNNER;
  std::vector<size_t> payloads = {1024, 65536};
  std::vector<int> concurrencies = {1, 8};
};

template <typename T>
std::vector<T> ParseList(const char* v) {
  std::vector<T> out;
  std::stringstream in(v);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(static_cast<T>(std::stoll(item)));
  return out;
}

const char* kIdentityConfig = R"(
name: "%s"
backend: "identity"
max_batch_size: 64
input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
instance_group [ { count: %d kind: KIND_CPU } ]
%s
)";
const char* kIsolation = R"(parameters { key: "isolation" value { string_value: "process" } })";

std::string Config(const std::string& name, int instances, bool isolated) {
  char buf[1024];
  std::snprintf(buf, sizeof(buf), kIdentityConfig, name.c_str(), instances, isolated ? kIsolation : "");
  return buf;
}

inference::ModelInferRequest Request(const std::string& model, size_t floats) {
  inference::ModelInferRequest r;
  r.set_model_name(model);
  auto* in = r.add_inputs();
  in->set_name("INPUT0");
  in->set_datatype("FP32");
  in->add_shape(1);
  in->add_shape(static_cast<int64_t>(floats));
  std::string raw(floats * 4, '\0');
  for (size_t i = 0; i < floats; ++i) {
    const float v = static_cast<float>(i);
    std::memcpy(&raw[i * 4], &v, 4);
  }
  r.add_raw_input_contents(raw);
  return r;
}

// CPU time in µs: this process, and another by pid (/proc/<pid>/stat).
double SelfCpuUs() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e6 + u.ru_utime.tv_usec + u.ru_stime.tv_usec;
}
// Minor page faults of a process so far (/proc/<pid>/stat field 10).
double PidFaults(pid_t pid) {
  if (pid <= 0) return 0;
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const size_t close = s.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(s.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 10 && rest >> field; ++i) {
    if (i == 10) return std::stod(field);
  }
  return 0;
}

double PidCpuUs(pid_t pid) {
  if (pid <= 0) return 0;
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const size_t close = s.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(s.substr(close + 2));
  std::string field;
  double utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stod(field);
    if (i == 15) stime = std::stod(field);
  }
  return (utime + stime) * 1e6 / static_cast<double>(sysconf(_SC_CLK_TCK));
}

struct Sample {
  std::vector<double> latencies_us;
  uint64_t requests = 0;
  uint64_t errors = 0;
  double wall_us = 0;
  double cpu_us = 0;
};

struct Point {
  std::string level;  // backend | server
  size_t bytes = 0;
  int concurrency = 0;
  Sample in, iso;
};

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(p / 100.0 * static_cast<double>(v.size())));
  return v[k];
}
double Mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / static_cast<double>(v.size());
}

void Merge(Sample& into, const Sample& s) {
  into.latencies_us.insert(into.latencies_us.end(), s.latencies_us.begin(), s.latencies_us.end());
  into.requests += s.requests;
  into.errors += s.errors;
  into.wall_us += s.wall_us;
  into.cpu_us += s.cpu_us;
}

// Runs `one(thread)` (returns false on error) on `threads` threads for
// `seconds`; returns latencies and counts.
template <typename Fn>
Sample RunLoad(int threads, double seconds, Fn one) {
  std::atomic<bool> stop{false};
  std::vector<Sample> per(static_cast<size_t>(threads));
  std::vector<std::thread> ts;
  const auto t0 = Clock::now();
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      Sample& s = per[static_cast<size_t>(t)];
      s.latencies_us.reserve(200000);
      while (!stop.load(std::memory_order_relaxed)) {
        const auto a = Clock::now();
        const bool ok = one(t);
        const auto b = Clock::now();
        s.latencies_us.push_back(std::chrono::duration<double, std::micro>(b - a).count());
        ++s.requests;
        if (!ok) ++s.errors;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : ts) t.join();
  Sample all;
  for (auto& s : per) Merge(all, s);
  all.wall_us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
  return all;
}

// ---------------------------------------------------------------------------
// Backend level
// ---------------------------------------------------------------------------

struct BackendModel {
  std::shared_ptr<const torii::ModelSpec> spec;
  std::unique_ptr<ExecutionBackend> backend;
  pid_t child = 0;
};

std::unique_ptr<BackendModel> LoadBackend(const Flags& f, bool isolated, int instances) {
  auto m = std::make_unique<BackendModel>();
  inference::ModelConfig config;
  if (!google::protobuf::TextFormat::ParseFromString(Config("identity", instances, isolated),
                                                     &config)) {
    throw std::runtime_error("the identity config does not parse");
  }
  torii::RunnerManifest runner;
  runner.runner = "identity";
  runner.backends = {"identity"};
  auto spec = torii::BuildModelSpec(config, runner, torii::SpecDefaults{});
  if (!spec.ok()) throw std::runtime_error(std::string(spec.status().message()));
  m->spec = std::make_shared<const torii::ModelSpec>(std::move(*spec));
  if (isolated) {
    // As the server's loader builds it for isolation "process".
    torii::IsolatedRunnerModel::Options o;
    o.name = "identity";
    o.version = 1;
    o.directory = "/nonexistent";
    o.version_directory = "/nonexistent/1";
    o.spec = m->spec;
    config.SerializeToString(&o.config);
    o.library_path = f.runner;
    o.runner = runner.runner;
    o.default_model_filename = m->spec->default_model_filename;
    o.host_path = f.host;
    auto b = torii::IsolatedRunnerModel::Create(std::move(o));
    if (!b.ok()) throw std::runtime_error(std::string(b.status().message()));
    m->child = (*b)->pid();
    m->backend = std::move(*b);
  } else {
    auto lib = torii::RunnerLibrary::Open(f.runner);
    if (!lib.ok()) throw std::runtime_error(std::string(lib.status().message()));
    torii::RunnerModel::Options o;
    o.name = "identity";
    o.version = 1;
    o.directory = "/nonexistent";
    o.version_directory = "/nonexistent/1";
    o.spec = m->spec;
    o.instance_count = m->spec->instance_count;
    auto b = torii::RunnerModel::Create(*lib, std::move(o));
    if (!b.ok()) throw std::runtime_error(std::string(b.status().message()));
    m->backend = std::move(*b);
  }
  return m;
}

// Keeps a request's final response. Responses arrive on the thread that runs
// Execute (identity is not decoupled), so no lock is needed.
class LastResponse : public torii::ResponseSink {
 public:
  void Deliver(std::unique_ptr<torii::InferenceResponse> response, bool final) override {
    if (final) last = std::move(response);
  }
  std::unique_ptr<torii::InferenceResponse> last;
};

Sample RunBackend(BackendModel& m, size_t floats, int concurrency, double seconds) {
  // One validated request per thread, executed again and again (its answer
  // dropped each time), each thread on its own instance.
  struct PerThread {
    std::string input;
    std::shared_ptr<LastResponse> sink = std::make_shared<LastResponse>();
    torii::RequestBatch batch;
  };
  std::vector<std::unique_ptr<PerThread>> per;
  for (int t = 0; t < concurrency; ++t) {
    auto p = std::make_unique<PerThread>();
    p->input = Request("identity", floats).raw_input_contents(0);
    auto r = std::make_unique<torii::InferenceRequest>();
    r->model_name = "identity";
    r->served_version = "1";
    torii::InferenceInput in;
    in.name = "INPUT0";
    in.datatype = TORII_TYPE_FP32;
    in.shape = {1, static_cast<int64_t>(floats)};
    in.data = p->input.data();
    in.byte_size = p->input.size();
    r->inputs.push_back(std::move(in));
    r->sink = p->sink;
    if (!torii::ValidateRequest(*m.spec, {}, r.get()).ok()) {
      throw std::runtime_error("request does not validate");
    }
    p->batch.push_back(std::move(r));
    per.push_back(std::move(p));
  }
  auto one = [&](int t) {
    PerThread& p = *per[static_cast<size_t>(t)];
    m.backend->Execute(static_cast<size_t>(t), p.batch, nullptr);
    const bool ok = p.sink->last != nullptr && p.sink->last->status.ok() &&
                    p.sink->last->outputs().size() == 1 &&
                    p.sink->last->outputs()[0].byte_size == floats * 4;
    p.sink->last.reset();
    return ok;
  };
  RunLoad(concurrency, std::min(0.3, seconds), one);  // warm-up
  const double self0 = SelfCpuUs(), child0 = PidCpuUs(m.child);
  const double sf0 = PidFaults(getpid()), cf0 = PidFaults(m.child);
  Sample s = RunLoad(concurrency, seconds, one);
  const double self = SelfCpuUs() - self0, host = PidCpuUs(m.child) - child0;
  s.cpu_us = self + host;
  const double n = static_cast<double>(std::max<uint64_t>(1, s.requests));
  std::fprintf(stderr,
               "  backend %-8s %6zu B c=%d: per request: cpu us server side %.1f runner host %.1f;"
               " page faults server side %.1f runner host %.1f\n",
               m.child > 0 ? "isolated" : "in-proc", floats * 4, concurrency, self / n, host / n,
               (PidFaults(getpid()) - sf0) / n, (PidFaults(m.child) - cf0) / n);
  return s;
}

// ---------------------------------------------------------------------------
// Server level
// ---------------------------------------------------------------------------

int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

class Server {
 public:
  Server(const Flags& f, const std::string& repo) : log_(repo + ".log") {
    port_ = FreePort();
    const int metrics = FreePort();
    const std::string runners = std::filesystem::path(f.runner).parent_path().string();
    std::vector<std::string> args = {f.server, "--model-repository=" + repo, "--grpc-address=127.0.0.1",
                                     "--grpc-port=" + std::to_string(port_), "--metrics-address=127.0.0.1",
                                     "--metrics-port=" + std::to_string(metrics), "--backend-directory=" + runners,
                                     "--allow-http=false"};
    pid_ = fork();
    if (pid_ == 0) {
      FILE* log = std::fopen(log_.c_str(), "w");
      if (log != nullptr) dup2(fileno(log), STDERR_FILENO);
      setenv("TORII_RUNNER_HOST", f.host.c_str(), 1);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    auto stub = Stub();
    for (int i = 0; i < 600; ++i) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
      inference::ServerReadyResponse r;
      if (stub->ServerReady(&ctx, {}, &r).ok() && r.ready()) return;
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    throw std::runtime_error("torii-server did not become ready; see " + log_);
  }
  ~Server() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status;
      for (int i = 0; i < 300 && waitpid(pid_, &status, WNOHANG) != pid_; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, WNOHANG);
    }
  }
  pid_t pid() const { return pid_; }
  std::unique_ptr<inference::GRPCInferenceService::Stub> Stub() const {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // its own connection
    return inference::GRPCInferenceService::NewStub(grpc::CreateCustomChannel(
        "127.0.0.1:" + std::to_string(port_), grpc::InsecureChannelCredentials(), args));
  }
  // The runner host of identity_iso: a child of the server.
  pid_t Child() const {
    for (const auto& e : std::filesystem::directory_iterator("/proc")) {
      const std::string name = e.path().filename();
      if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
      std::ifstream f(e.path() / "stat");
      std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      const size_t close = s.rfind(')');
      if (close == std::string::npos || s.find("(torii-runner-h") == std::string::npos) continue;
      std::istringstream rest(s.substr(close + 2));
      std::string state;
      pid_t ppid = 0;
      rest >> state >> ppid;
      if (ppid == pid_) return static_cast<pid_t>(std::stoi(name));
    }
    return 0;
  }

 private:
  std::string log_;
  int port_ = 0;
  pid_t pid_ = -1;
};

Sample RunServer(const Server& server, pid_t child, const std::string& model, size_t floats,
                 int concurrency, double seconds) {
  std::vector<std::unique_ptr<inference::GRPCInferenceService::Stub>> stubs;
  for (int t = 0; t < concurrency; ++t) stubs.push_back(server.Stub());
  const inference::ModelInferRequest req = Request(model, floats);
  auto one = [&](int t) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    inference::ModelInferResponse resp;
    return stubs[static_cast<size_t>(t)]->ModelInfer(&ctx, req, &resp).ok() &&
           resp.raw_output_contents(0).size() == floats * 4;
  };
  RunLoad(concurrency, std::min(0.3, seconds), one);
  const double client0 = SelfCpuUs(), server0 = PidCpuUs(server.pid()), child0 = PidCpuUs(child);
  const double sf0 = PidFaults(server.pid()), cf0 = PidFaults(child);
  Sample s = RunLoad(concurrency, seconds, one);
  const double client = SelfCpuUs() - client0, srv = PidCpuUs(server.pid()) - server0,
               host = PidCpuUs(child) - child0;
  s.cpu_us = client + srv + host;
  const double n = static_cast<double>(std::max<uint64_t>(1, s.requests));
  std::fprintf(stderr,
               "  %-12s %6zu B c=%d: per request: cpu us client %.1f server %.1f runner host %.1f;"
               " page faults server %.1f runner host %.1f\n",
               model.c_str(), floats * 4, concurrency, client / n, srv / n, host / n,
               (PidFaults(server.pid()) - sf0) / n, (PidFaults(child) - cf0) / n);
  return s;
}

// ---------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------

void Print(const std::vector<Point>& points) {
  std::printf("\n%-8s %7s %4s | %-42s | %-42s | %s\n", "level", "payload", "conc",
              "in-process: mean p50 p99 us, wall/req, cpu/req", "isolated: mean p50 p99 us, wall/req, cpu/req",
              "added us/request: latency, wall, cpu");
  for (const auto& p : points) {
    auto fmt = [](const Sample& s) {
      char b[128];
      std::snprintf(b, sizeof(b), "%7.1f %7.1f %7.1f %7.1f %7.1f", Mean(s.latencies_us),
                    Percentile(s.latencies_us, 50), Percentile(s.latencies_us, 99),
                    s.wall_us / static_cast<double>(std::max<uint64_t>(1, s.requests)),
                    s.cpu_us / static_cast<double>(std::max<uint64_t>(1, s.requests)));
      return std::string(b);
    };
    const double n_in = static_cast<double>(std::max<uint64_t>(1, p.in.requests));
    const double n_iso = static_cast<double>(std::max<uint64_t>(1, p.iso.requests));
    std::printf("%-8s %5zuKiB %4d | %s | %s | %+7.1f %+7.1f %+7.1f%s\n", p.level.c_str(), p.bytes / 1024,
                p.concurrency, fmt(p.in).c_str(), fmt(p.iso).c_str(),
                Mean(p.iso.latencies_us) - Mean(p.in.latencies_us), p.iso.wall_us / n_iso - p.in.wall_us / n_in,
                p.iso.cpu_us / n_iso - p.in.cpu_us / n_in,
                p.in.errors + p.iso.errors > 0 ? "  (ERRORS)" : "");
  }
}

void WriteJson(const std::string& path, const std::vector<Point>& points, const Flags& f) {
  std::ofstream out(path);
  out << "{\n  \"seconds_per_round\": " << f.seconds << ",\n  \"rounds\": " << f.rounds << ",\n  \"points\": [\n";
  for (size_t i = 0; i < points.size(); ++i) {
    const auto& p = points[i];
    auto obj = [](const Sample& s) {
      std::ostringstream o;
      const double n = static_cast<double>(std::max<uint64_t>(1, s.requests));
      o << "{\"requests\": " << s.requests << ", \"errors\": " << s.errors << ", \"mean_us\": " << Mean(s.latencies_us)
        << ", \"p50_us\": " << Percentile(s.latencies_us, 50) << ", \"p99_us\": " << Percentile(s.latencies_us, 99)
        << ", \"wall_us_per_request\": " << s.wall_us / n << ", \"cpu_us_per_request\": " << s.cpu_us / n << "}";
      return o.str();
    };
    out << "    {\"level\": \"" << p.level << "\", \"payload_bytes\": " << p.bytes << ", \"concurrency\": "
        << p.concurrency << ",\n     \"in_process\": " << obj(p.in) << ",\n     \"isolated\": " << obj(p.iso) << "}"
        << (i + 1 < points.size() ? "," : "") << "\n";
  }
  out << "  ]\n}\n";
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* name) -> const char* {
      const std::string prefix = std::string(name) + "=";
      return a.rfind(prefix, 0) == 0 ? argv[i] + prefix.size() : nullptr;
    };
    if (auto v = value("--mode")) f.mode = v;
    else if (auto v = value("--seconds")) f.seconds = std::atof(v);
    else if (auto v = value("--rounds")) f.rounds = std::atoi(v);
    else if (auto v = value("--json")) f.json = v;
    else if (auto v = value("--server")) f.server = v;
    else if (auto v = value("--host")) f.host = v;
    else if (auto v = value("--runner")) f.runner = v;
    else if (auto v = value("--payloads")) f.payloads = ParseList<size_t>(v);
    else if (auto v = value("--concurrency")) f.concurrencies = ParseList<int>(v);
    else {
      std::fprintf(stderr,
                   "usage: torii-bench-isolation [--mode=backend|server|both] [--seconds=S] [--rounds=N]\n"
                   "                             [--payloads=1024,65536] [--concurrency=1,8] [--json=FILE]\n"
                   "                             [--server=PATH] [--host=PATH] [--runner=PATH]\n");
      return 2;
    }
  }
  signal(SIGPIPE, SIG_IGN);
  const std::vector<size_t>& payloads = f.payloads;
  const std::vector<int>& concurrencies = f.concurrencies;
  std::vector<Point> points;
  try {
    if (f.mode == "backend" || f.mode == "both") {
      // 8 instances each: every thread drives its own instance.
      auto in = LoadBackend(f, false, 8);
      auto iso = LoadBackend(f, true, 8);
      for (size_t bytes : payloads) {
        for (int c : concurrencies) {
          Point p{"backend", bytes, c, {}, {}};
          for (int r = 0; r < f.rounds; ++r) {
            // Alternate which goes first, so drift hits both alike.
            if (r % 2 == 0) Merge(p.in, RunBackend(*in, bytes / 4, c, f.seconds));
            Merge(p.iso, RunBackend(*iso, bytes / 4, c, f.seconds));
            if (r % 2 == 1) Merge(p.in, RunBackend(*in, bytes / 4, c, f.seconds));
          }
          points.push_back(std::move(p));
          std::fprintf(stderr, "backend %zu B, concurrency %d done\n", bytes, c);
        }
      }
    }
    if (f.mode == "server" || f.mode == "both") {
      char tmpl[] = "/tmp/torii-bench-isolation-XXXXXX";
      const std::string repo = mkdtemp(tmpl);
      for (const auto& [name, isolated] : {std::pair<std::string, bool>{"identity", false}, {"identity_iso", true}}) {
        std::filesystem::create_directories(repo + "/" + name + "/1");
        std::ofstream(repo + "/" + name + "/config.pbtxt") << Config(name, 2, isolated);
      }
      {
        Server server(f, repo);
        const pid_t child = server.Child();
        for (size_t bytes : payloads) {
          for (int c : concurrencies) {
            Point p{"server", bytes, c, {}, {}};
            for (int r = 0; r < f.rounds; ++r) {
              if (r % 2 == 0) Merge(p.in, RunServer(server, 0, "identity", bytes / 4, c, f.seconds));
              Merge(p.iso, RunServer(server, child, "identity_iso", bytes / 4, c, f.seconds));
              if (r % 2 == 1) Merge(p.in, RunServer(server, 0, "identity", bytes / 4, c, f.seconds));
            }
            points.push_back(std::move(p));
            std::fprintf(stderr, "server %zu B, concurrency %d done\n", bytes, c);
          }
        }
      }
      std::filesystem::remove_all(repo);
      std::filesystem::remove(repo + ".log");
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "torii-bench-isolation: %s\n", e.what());
    return 1;
  }
  std::printf("torii-bench-isolation: %d rounds x %.1f s per point and mode, %u cores\n", f.rounds, f.seconds,
              std::thread::hardware_concurrency());
  Print(points);
  if (!f.json.empty()) WriteJson(f.json, points, f);
  uint64_t errors = 0;
  for (const auto& p : points) errors += p.in.errors + p.iso.errors;
  return errors > 0 ? 3 : 0;
}
