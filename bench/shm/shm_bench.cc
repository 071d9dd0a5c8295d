// torii-bench-shm: a large tensor through system shared memory against the
// same tensor in the gRPC message, in the same run (docs/performance.md,
// "System shared memory").
//
// Starts torii-server (the one built beside this program, or --server) on a
// free loopback port with a repository holding `identity`, then sends
// ModelInfer requests of one FP32 tensor of --bytes bytes, in three modes,
// interleaved round by round so machine noise hits all of them alike:
//   raw     input in raw_input_contents, output in raw_output_contents;
//   shm     input read from a registered region, output written into one;
//   shm-in  input from a region, output in the message.
// In every mode the client writes the input for each request (memcpy into
// the request or into the region) and reads the output (a checksum of every
// 4 KiB page), so each mode pays for producing and consuming its data.
// Reported per mode: median and p90 latency, and the CPU per request of the
// client (getrusage) and of the server (/proc/<pid>/stat).
//
//   build/bin/torii-bench-shm [--bytes 16777216] [--rounds 15] [--per-round 4]
#include <arpa/inet.h>
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "inference.grpc.pb.h"

extern "C" char** environ;

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string server = TORII_SERVER_BINARY;
  std::string identity_runner_dir = TORII_RUNNER_DIR;
  size_t bytes = size_t{16} << 20;
  int rounds = 15;
  int per_round = 4;
  int warmup = 2;
};

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "torii-bench-shm: %s\n", what.c_str());
  std::exit(1);
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Fail(a + " needs a value");
      return argv[++i];
    };
    if (a == "--server") {
      o.server = value();
    } else if (a == "--bytes") {
      o.bytes = std::stoull(value());
    } else if (a == "--rounds") {
      o.rounds = std::stoi(value());
    } else if (a == "--per-round") {
      o.per_round = std::stoi(value());
    } else if (a == "--warmup") {
      o.warmup = std::stoi(value());
    } else if (a == "--help" || a == "-h") {
      std::printf("torii-bench-shm [--bytes N (multiple of 4)] [--rounds N] [--per-round N] "
                  "[--warmup N] [--server PATH]\n");
      std::exit(0);
    } else {
      Fail("unknown argument " + a + " (see --help)");
    }
  }
  if (o.bytes == 0 || o.bytes % 4 != 0) Fail("--bytes must be a positive multiple of 4");
  return o;
}

int FreePort() {
  // Bound and released; good enough on loopback for a benchmark.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    Fail("no free port");
  }
  close(fd);
  return ntohs(a.sin_port);
}

// CPU seconds (user + system) of process `pid` so far.
double ProcessCpu(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  std::getline(in, stat);
  const size_t close_paren = stat.rfind(')');
  std::istringstream rest(stat.substr(close_paren + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double SelfCpu() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

class Server {
 public:
  Server(const Options& o, const std::string& repo) {
    port_ = FreePort();
    const std::vector<std::string> args = {
        o.server,
        "--model-repository=" + repo,
        "--backend-directory=" + o.identity_runner_dir,
        "--grpc-address=127.0.0.1",
        "--grpc-port=" + std::to_string(port_),
        "--allow-metrics=false",
        "--allow-http=false",
        "--max-request-bytes=" + std::to_string(std::min<size_t>(o.bytes * 2 + (1 << 20),
                                                                 size_t{2047} << 20)),
        "--exit-timeout-secs=5"};
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, (repo + "/../server.log").c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (posix_spawn(&pid_, o.server.c_str(), &fa, nullptr, argv.data(), environ) != 0) {
      Fail("cannot start " + o.server);
    }
    posix_spawn_file_actions_destroy(&fa);
  }
  ~Server() {
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
  pid_t pid() const { return pid_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

// One POSIX shared-memory object holding the input and output windows.
class Region {
 public:
  explicit Region(size_t bytes) : size_(bytes) {
    key_ = "/torii-bench-shm-" + std::to_string(getpid());
    fd_ = shm_open(key_.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd_ < 0 || ftruncate(fd_, static_cast<off_t>(bytes)) != 0) Fail("cannot create " + key_);
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    if (p == MAP_FAILED) Fail("cannot map " + key_);
    data_ = static_cast<char*>(p);
  }
  ~Region() {
    munmap(data_, size_);
    close(fd_);
    shm_unlink(key_.c_str());
  }
  char* data() const { return data_; }
  const std::string& key() const { return key_; }

 private:
  std::string key_;
  size_t size_;
  int fd_ = -1;
  char* data_ = nullptr;
};

uint64_t PageChecksum(const char* p, size_t n) {
  uint64_t sum = 0;
  for (size_t i = 0; i < n; i += 4096) {
    uint32_t v;
    std::memcpy(&v, p + i, 4);
    sum += v;
  }
  return sum;
}

struct Totals {
  std::vector<double> latencies_us;
  double client_cpu_s = 0;
  double server_cpu_s = 0;
  size_t requests = 0;
};

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

void SetShm(google::protobuf::Map<std::string, inference::InferParameter>* params,
            const std::string& region, int64_t offset, int64_t bytes) {
  (*params)["shared_memory_region"].set_string_param(region);
  (*params)["shared_memory_offset"].set_int64_param(offset);
  (*params)["shared_memory_byte_size"].set_int64_param(bytes);
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = ParseArgs(argc, argv);
  const char* tmp_root = std::getenv("TMPDIR");
  std::string dir_template = std::string(tmp_root != nullptr && *tmp_root ? tmp_root : "/tmp") +
                             "/torii-bench-shm-XXXXXX";
  if (mkdtemp(dir_template.data()) == nullptr) Fail("mkdtemp failed");
  const std::string work = dir_template;
  const std::string repo = work + "/repo";
  mkdir(repo.c_str(), 0700);
  mkdir((repo + "/identity").c_str(), 0700);
  mkdir((repo + "/identity/1").c_str(), 0700);
  std::ofstream(repo + "/identity/config.pbtxt") << R"(name: "identity"
backend: "identity"
max_batch_size: 1
input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
)";

  {
    Server server(o, repo);
    grpc::ChannelArguments ca;
    ca.SetMaxReceiveMessageSize(-1);
    ca.SetMaxSendMessageSize(-1);
    auto channel =
        grpc::CreateCustomChannel(server.address(), grpc::InsecureChannelCredentials(), ca);
    auto stub = inference::GRPCInferenceService::NewStub(channel);
    const auto until = Clock::now() + std::chrono::seconds(60);
    for (;;) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
      inference::ServerReadyResponse r;
      if (stub->ServerReady(&ctx, {}, &r).ok() && r.ready()) break;
      if (Clock::now() > until) Fail("the server did not become ready (log: " + work +
                                     "/server.log)");
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }

    const size_t n = o.bytes;
    Region region(2 * n);
    {
      grpc::ClientContext ctx;
      inference::SystemSharedMemoryRegisterRequest q;
      q.set_name("bench");
      q.set_key(region.key());
      q.set_byte_size(2 * n);
      inference::SystemSharedMemoryRegisterResponse r;
      const grpc::Status s = stub->SystemSharedMemoryRegister(&ctx, q, &r);
      if (!s.ok()) Fail("register: " + s.error_message());
    }
    // The client's tensor, and its checksum to verify every answer.
    std::vector<char> source(n);
    for (size_t i = 0; i < n; i += 4) {
      const float v = static_cast<float>(i / 4 % 1000);
      std::memcpy(source.data() + i, &v, 4);
    }
    const uint64_t expected = PageChecksum(source.data(), n);

    auto base_request = [&] {
      inference::ModelInferRequest q;
      q.set_model_name("identity");
      auto* in = q.add_inputs();
      in->set_name("INPUT0");
      in->set_datatype("FP32");
      in->add_shape(1);
      in->add_shape(static_cast<int64_t>(n / 4));
      q.add_outputs()->set_name("OUTPUT0");
      return q;
    };
    inference::ModelInferRequest raw_q = base_request();
    raw_q.add_raw_input_contents();
    inference::ModelInferRequest shm_q = base_request();
    SetShm(shm_q.mutable_inputs(0)->mutable_parameters(), "bench", 0, static_cast<int64_t>(n));
    SetShm(shm_q.mutable_outputs(0)->mutable_parameters(), "bench", static_cast<int64_t>(n),
           static_cast<int64_t>(n));
    inference::ModelInferRequest shm_in_q = base_request();
    SetShm(shm_in_q.mutable_inputs(0)->mutable_parameters(), "bench", 0, static_cast<int64_t>(n));

    const std::vector<std::string> modes = {"raw", "shm", "shm-in"};
    auto one = [&](const std::string& mode) {
      inference::ModelInferResponse resp;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
      const auto t0 = Clock::now();
      grpc::Status s;
      uint64_t got = 0;
      if (mode == "raw") {
        raw_q.mutable_raw_input_contents(0)->assign(source.data(), n);
        s = stub->ModelInfer(&ctx, raw_q, &resp);
        if (s.ok()) got = PageChecksum(resp.raw_output_contents(0).data(), n);
      } else {
        std::memcpy(region.data(), source.data(), n);
        s = stub->ModelInfer(&ctx, mode == "shm" ? shm_q : shm_in_q, &resp);
        if (s.ok()) {
          got = mode == "shm" ? PageChecksum(region.data() + n, n)
                              : PageChecksum(resp.raw_output_contents(0).data(), n);
        }
      }
      const double us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
      if (!s.ok()) Fail(mode + ": " + s.error_message());
      if (got != expected) Fail(mode + ": the output differs from the input");
      return us;
    };

    for (int w = 0; w < o.warmup; ++w) {
      for (const auto& m : modes) one(m);
    }
    std::map<std::string, Totals> totals;
    for (int round = 0; round < o.rounds; ++round) {
      // Rotate the order each round so no mode always follows the same one.
      for (size_t k = 0; k < modes.size(); ++k) {
        const std::string& m = modes[(k + static_cast<size_t>(round)) % modes.size()];
        Totals& t = totals[m];
        const double c0 = SelfCpu(), s0 = ProcessCpu(server.pid());
        for (int i = 0; i < o.per_round; ++i) t.latencies_us.push_back(one(m));
        t.client_cpu_s += SelfCpu() - c0;
        t.server_cpu_s += ProcessCpu(server.pid()) - s0;
        t.requests += static_cast<size_t>(o.per_round);
      }
    }
    std::printf("torii-bench-shm: identity, one FP32 tensor of %zu bytes (%.1f MiB) in and out; "
                "%d rounds x %d requests per mode, interleaved\n",
                n, static_cast<double>(n) / (1 << 20), o.rounds, o.per_round);
    std::printf("%-8s %12s %12s %14s %14s %12s\n", "mode", "p50 ms", "p90 ms",
                "client CPU ms", "server CPU ms", "vs raw p50");
    const double raw_p50 = Percentile(totals["raw"].latencies_us, 0.5);
    for (const auto& m : modes) {
      const Totals& t = totals[m];
      const double p50 = Percentile(t.latencies_us, 0.5);
      std::printf("%-8s %12.2f %12.2f %14.2f %14.2f %11.2fx\n", m.c_str(), p50 / 1000,
                  Percentile(t.latencies_us, 0.9) / 1000,
                  t.client_cpu_s * 1000 / static_cast<double>(t.requests),
                  t.server_cpu_s * 1000 / static_cast<double>(t.requests), raw_p50 / p50);
    }
    grpc::ClientContext ctx;
    inference::SystemSharedMemoryUnregisterResponse r;
    stub->SystemSharedMemoryUnregister(&ctx, {}, &r);
  }
  std::remove((work + "/server.log").c_str());
  std::remove((repo + "/identity/config.pbtxt").c_str());
  rmdir((repo + "/identity/1").c_str());
  rmdir((repo + "/identity").c_str());
  rmdir(repo.c_str());
  rmdir(work.c_str());
  return 0;
}
