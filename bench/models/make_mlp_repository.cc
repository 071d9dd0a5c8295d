// torii-bench-make-mlp: writes the model repository for the batching and
// instance benchmarks: a TorchScript MLP 256→1024→1024→16 (FP32, ReLU),
// made without Python (torch::jit::Module + define()), under four configs:
//
//   mlp                 no dynamic batching, 1 instance
//   mlp_batching        dynamic batching,    1 instance
//   mlp_2inst           no dynamic batching, 2 instances
//   mlp_batching_2inst  dynamic batching,    2 instances
//
// All take INPUT__0 FP32 [-1, 256] and return OUTPUT__0 FP32 [-1, 16]
// (max_batch_size 64, so a request is [1, 256]). Weights are deterministic.
//
//   torii-bench-make-mlp --repository DIR [--max-queue-delay-us 500]
//                        [--max-batch-size 64] [--preferred-batch-size N ...]
//                        [--time-batch N ...]
//
// --time-batch N times forward() in-process at batch N on one thread (the
// compute-only ceiling for what dynamic batching can gain) and prints it.
#include <ATen/Parallel.h>
#include <torch/script.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <vector>

namespace {

struct Options {
  std::string repository;
  int max_queue_delay_us = 500;
  int max_batch_size = 64;
  std::vector<int> preferred_batch_sizes;
  std::vector<int> time_batches;
};

double ThreadCpuMicros() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 +
         static_cast<double>(ts.tv_nsec) * 1e-3;
}

// Median over runs of forward() at `batch` rows, one intra-op thread, in
// this thread's CPU time: on a shared machine, wall time would also count
// the time other processes held the core.
void TimeForward(torch::jit::Module& m, int batch) {
  at::Tensor x = torch::rand({batch, 256});
  for (int i = 0; i < 20; ++i) m.forward({x});
  std::vector<double> us;
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (us.size() < 20 || (std::chrono::steady_clock::now() < until && us.size() < 5000)) {
    double t0 = ThreadCpuMicros();
    m.forward({x});
    us.push_back(ThreadCpuMicros() - t0);
  }
  std::sort(us.begin(), us.end());
  double median = us[us.size() / 2];
  std::cout << "forward batch " << batch << ": median " << median
            << " us, " << static_cast<long>(batch * 1e6 / median)
            << " rows/s (" << us.size() << " runs, 1 thread, CPU time)\n";
}

// PyTorch's nn.Linear initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
at::Tensor Uniform(std::mt19937& rng, std::vector<int64_t> shape,
                   int64_t fan_in) {
  float bound = 1.0f / std::sqrt(static_cast<float>(fan_in));
  std::uniform_real_distribution<float> dist(-bound, bound);
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::vector<float> values(static_cast<size_t>(n));
  for (float& v : values) v = dist(rng);
  return torch::from_blob(values.data(), shape, torch::kFloat32).clone();
}

torch::jit::Module MakeMlp() {
  std::mt19937 rng(20240601);
  torch::jit::Module m("TorchBenchMlp");
  const int64_t dims[] = {256, 1024, 1024, 16};
  for (int layer = 0; layer < 3; ++layer) {
    int64_t in = dims[layer], out = dims[layer + 1];
    m.register_parameter("w" + std::to_string(layer + 1),
                         Uniform(rng, {out, in}, in), false);
    m.register_parameter("b" + std::to_string(layer + 1),
                         Uniform(rng, {out}, in), false);
  }
  m.define(R"(
def forward(self, x):
    h = torch.relu(torch.linear(x, self.w1, self.b1))
    h = torch.relu(torch.linear(h, self.w2, self.b2))
    return torch.linear(h, self.w3, self.b3)
)");
  m.eval();
  return m;
}

std::string Config(const std::string& name, const Options& o, bool batching,
                   int instances) {
  std::string c = "name: \"" + name + "\"\n" +
                  "platform: \"pytorch_libtorch\"\n" +
                  "max_batch_size: " + std::to_string(o.max_batch_size) + "\n" +
                  "input [ { name: \"INPUT__0\" data_type: TYPE_FP32 dims: [ 256 ] } ]\n"
                  "output [ { name: \"OUTPUT__0\" data_type: TYPE_FP32 dims: [ 16 ] } ]\n"
                  "instance_group [ { count: " + std::to_string(instances) +
                  " kind: KIND_CPU } ]\n";
  if (batching) {
    c += "dynamic_batching {\n";
    for (int size : o.preferred_batch_sizes) {
      c += "  preferred_batch_size: " + std::to_string(size) + "\n";
    }
    c += "  max_queue_delay_microseconds: " +
         std::to_string(o.max_queue_delay_us) + "\n}\n";
  }
  return c;
}

bool ParseInt(const char* text, int min, int* out) {
  char* end = nullptr;
  long v = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || v < min || v > 1 << 30) return false;
  *out = static_cast<int>(v);
  return true;
}

int Usage() {
  std::cerr << "usage: torii-bench-make-mlp --repository DIR "
               "[--max-queue-delay-us N] [--max-batch-size N] "
               "[--preferred-batch-size N ...] [--time-batch N ...]\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") return Usage();
    if (i + 1 >= argc) return Usage();
    const char* value = argv[++i];
    int n = 0;
    if (flag == "--repository") {
      o.repository = value;
    } else if (flag == "--max-queue-delay-us" && ParseInt(value, 0, &n)) {
      o.max_queue_delay_us = n;
    } else if (flag == "--max-batch-size" && ParseInt(value, 1, &n)) {
      o.max_batch_size = n;
    } else if (flag == "--preferred-batch-size" && ParseInt(value, 1, &n)) {
      o.preferred_batch_sizes.push_back(n);
    } else if (flag == "--time-batch" && ParseInt(value, 1, &n)) {
      o.time_batches.push_back(n);
    } else {
      std::cerr << "torii-bench-make-mlp: bad flag " << flag << " " << value
                << "\n";
      return Usage();
    }
  }
  if (o.repository.empty()) return Usage();
  try {
    namespace fs = std::filesystem;
    torch::jit::Module mlp = MakeMlp();
    // A smoke check that the module runs and has the declared shapes.
    at::Tensor y = mlp.forward({torch::ones({2, 256})}).toTensor();
    if (y.dim() != 2 || y.size(0) != 2 || y.size(1) != 16) {
      std::cerr << "torii-bench-make-mlp: unexpected output shape\n";
      return 1;
    }
    struct Variant {
      const char* name;
      bool batching;
      int instances;
    };
    const Variant variants[] = {{"mlp", false, 1},
                                {"mlp_batching", true, 1},
                                {"mlp_2inst", false, 2},
                                {"mlp_batching_2inst", true, 2}};
    for (const Variant& v : variants) {
      fs::path dir = fs::path(o.repository) / v.name;
      fs::create_directories(dir / "1");
      mlp.save((dir / "1" / "model.pt").string());
      std::ofstream config(dir / "config.pbtxt");
      config << Config(v.name, o, v.batching, v.instances);
      if (!config) {
        std::cerr << "torii-bench-make-mlp: cannot write " << dir << "\n";
        return 1;
      }
      std::cout << "wrote " << dir.string() << "\n";
    }
    if (!o.time_batches.empty()) {
      at::set_num_threads(1);
      // The profiling executor optimises after a few runs; time the
      // module as a server would run it after warm-up.
      torch::jit::Module loaded =
          torch::jit::load((fs::path(o.repository) / "mlp" / "1" / "model.pt").string());
      loaded.eval();
      torch::NoGradGuard no_grad;
      for (int batch : o.time_batches) TimeForward(loaded, batch);
    }
  } catch (const std::exception& e) {
    std::cerr << "torii-bench-make-mlp: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
