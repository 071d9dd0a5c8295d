// Writes examples/model_repository/mlp/1/model.pt: a TorchScript MLP
// 64→256→10 (linear, relu, linear) built in C++ with torch::jit::Module and
// define(), no Python needed.
//
//   torii-make-mlp-model --output examples/model_repository/mlp/1/model.pt
//   torii-make-mlp-model --check  examples/model_repository/mlp/1/model.pt
//
// The weights come from a fixed splitmix64 stream (uniform in ±1/sqrt(fan_in),
// torch.nn.Linear's initialisation range), not from torch's RNG, so they do
// not change with the LibTorch version. --check rebuilds the module in memory
// and exits non-zero unless the file holds the same weights and gives the
// same outputs on a fixed probe batch: the committed file is exactly what
// this source produces.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <torch/script.h>

namespace {

constexpr int64_t kIn = 64, kHidden = 256, kOut = 10;
constexpr uint64_t kSeed = 0x746f726969ULL;  // "torii"

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [-bound, bound).
  torch::Tensor Uniform(std::vector<int64_t> shape, float bound) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) {
      const float unit = static_cast<float>(Next() >> 40) / 16777216.0f;
      x = (2.0f * unit - 1.0f) * bound;
    }
    return torch::from_blob(v.data(), shape, torch::kFloat32).clone();
  }

 private:
  uint64_t state_;
};

torch::jit::Module Build() {
  SplitMix64 rng(kSeed);
  const float b1 = 1.0f / std::sqrt(static_cast<float>(kIn));
  const float b2 = 1.0f / std::sqrt(static_cast<float>(kHidden));
  torch::jit::Module m("Mlp");
  m.register_parameter("w1", rng.Uniform({kHidden, kIn}, b1), false);
  m.register_parameter("b1", rng.Uniform({kHidden}, b1), false);
  m.register_parameter("w2", rng.Uniform({kOut, kHidden}, b2), false);
  m.register_parameter("b2", rng.Uniform({kOut}, b2), false);
  m.define(R"(
def forward(self, x):
    h = torch.relu(torch.linear(x, self.w1, self.b1))
    return torch.linear(h, self.w2, self.b2)
)");
  return m;
}

// A fixed batch of 4 rows in [-1, 1).
torch::Tensor Probe() {
  SplitMix64 rng(1);
  return rng.Uniform({4, kIn}, 1.0f);
}

torch::Tensor Run(torch::jit::Module& m) {
  c10::InferenceMode guard;
  return m.forward({Probe()}).toTensor();
}

int Check(const std::string& path) {
  torch::jit::Module expected = Build();
  torch::jit::Module actual = torch::jit::load(path);
  for (const char* name : {"w1", "b1", "w2", "b2"}) {
    if (!torch::equal(expected.attr(name).toTensor(), actual.attr(name).toTensor())) {
      std::fprintf(stderr, "%s: parameter %s differs from what this tool generates\n",
                   path.c_str(), name);
      return 1;
    }
  }
  const torch::Tensor want = Run(expected), got = Run(actual);
  if (!torch::equal(want, got)) {
    std::fprintf(stderr, "%s: outputs differ (max abs diff %g)\n", path.c_str(),
                 (want - got).abs().max().item<double>());
    return 1;
  }
  std::printf("%s: weights and probe outputs match (output[0][0..2] = %.6f %.6f %.6f)\n",
              path.c_str(), got[0][0].item<float>(), got[0][1].item<float>(),
              got[0][2].item<float>());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 || (std::strcmp(argv[1], "--output") != 0 && std::strcmp(argv[1], "--check") != 0)) {
    std::fprintf(stderr, "usage: %s --output <model.pt> | --check <model.pt>\n", argv[0]);
    return 2;
  }
  try {
    if (std::strcmp(argv[1], "--check") == 0) return Check(argv[2]);
    torch::jit::Module m = Build();
    m.save(argv[2]);
    std::printf("wrote %s (MLP %lld→%lld→%lld)\n", argv[2], static_cast<long long>(kIn),
                static_cast<long long>(kHidden), static_cast<long long>(kOut));
    return Check(argv[2]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
