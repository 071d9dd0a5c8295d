#include "model_factory.h"

#include <cmath>

#include <ATen/Parallel.h>
#include <torch/script.h>

namespace torii_test {
namespace {

// splitmix64: weights that do not depend on torch's RNG implementation, so
// the expected values are reproducible with or without LibTorch.
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}
  float Uniform(float bound) {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    const float unit = static_cast<float>(z >> 40) / 16777216.0f;  // [0, 1)
    return (2.0f * unit - 1.0f) * bound;
  }
  std::vector<float> Vector(size_t n, float bound) {
    std::vector<float> v(n);
    for (auto& x : v) x = Uniform(bound);
    return v;
  }

 private:
  uint64_t state_;
};

torch::Tensor ToTensor(const std::vector<float>& v, std::vector<int64_t> shape) {
  return torch::from_blob(const_cast<float*>(v.data()), shape, torch::kFloat32).clone();
}

LinearWeights MakeLinear(Random& rng, int64_t in, int64_t out) {
  LinearWeights l;
  l.in = in;
  l.out = out;
  const float bound = 1.0f / std::sqrt(static_cast<float>(in));
  l.weight = rng.Vector(static_cast<size_t>(in * out), bound);
  l.bias = rng.Vector(static_cast<size_t>(out), bound);
  return l;
}

}  // namespace

MlpWeights SaveMlp(const std::string& path, int64_t in, int64_t hidden,
                   int64_t out, uint64_t seed) {
  Random rng(seed);
  MlpWeights w;
  w.l1 = MakeLinear(rng, in, hidden);
  w.l2 = MakeLinear(rng, hidden, out);
  torch::jit::Module m("Mlp");
  m.register_parameter("w1", ToTensor(w.l1.weight, {hidden, in}), false);
  m.register_parameter("b1", ToTensor(w.l1.bias, {hidden}), false);
  m.register_parameter("w2", ToTensor(w.l2.weight, {out, hidden}), false);
  m.register_parameter("b2", ToTensor(w.l2.bias, {out}), false);
  m.define(R"(
def forward(self, x):
    h = torch.relu(torch.linear(x, self.w1, self.b1))
    return torch.linear(h, self.w2, self.b2)
)");
  m.save(path);
  return w;
}

ConvBnWeights SaveConvBn(const std::string& path, uint64_t seed) {
  Random rng(seed);
  ConvBnWeights w;
  w.conv_weight = rng.Vector(3 * 2 * 3 * 3, 0.5f);
  w.conv_bias = rng.Vector(3, 0.5f);
  w.bn_weight = rng.Vector(3, 1.0f);
  for (auto& g : w.bn_weight) g += 1.5f;
  w.bn_bias = rng.Vector(3, 0.5f);
  w.bn_mean = rng.Vector(3, 0.5f);
  w.bn_var = rng.Vector(3, 0.5f);
  for (auto& v : w.bn_var) v += 1.0f;  // positive

  // Shaped like torch.nn.BatchNorm2d's scripted forward: in training mode it
  // updates a counter buffer in place and normalises with batch statistics.
  torch::jit::Module bn("BatchNorm");
  bn.register_attribute("training", c10::BoolType::get(), true);
  bn.register_parameter("weight", ToTensor(w.bn_weight, {3}), false);
  bn.register_parameter("bias", ToTensor(w.bn_bias, {3}), false);
  bn.register_buffer("running_mean", ToTensor(w.bn_mean, {3}));
  bn.register_buffer("running_var", ToTensor(w.bn_var, {3}));
  bn.register_buffer("num_batches_tracked", torch::zeros({}, torch::kLong));
  bn.define(R"(
def forward(self, x):
    if self.training:
        self.num_batches_tracked.add_(1)
    return torch.batch_norm(x, self.weight, self.bias, self.running_mean,
                            self.running_var, self.training, 0.1, 1e-5, False)
)");

  torch::jit::Module net("ConvBnNet");
  net.register_attribute("training", c10::BoolType::get(), true);
  net.register_parameter("conv_w", ToTensor(w.conv_weight, {3, 2, 3, 3}), false);
  net.register_parameter("conv_b", ToTensor(w.conv_bias, {3}), false);
  net.register_module("bn", bn);
  net.define(R"(
def forward(self, x):
    y = torch.conv2d(x, self.conv_w, self.conv_b, [1, 1], [1, 1])
    y = torch.relu(self.bn.forward(y))
    return torch.mean(y, [2, 3])
)");
  net.save(path);
  return w;
}

void SaveScript(const std::string& path, const std::string& source) {
  torch::jit::Module m("Scripted");
  m.define(source);
  m.save(path);
}

std::vector<float> RunTorchScript(const std::string& path,
                                  const std::vector<float>& input,
                                  const std::vector<int64_t>& shape) {
  torch::jit::Module m = torch::jit::load(path);
  m.eval();
  c10::InferenceMode guard;
  const torch::Tensor x = ToTensor(input, shape);
  const torch::Tensor y = m.forward({x}).toTensor().contiguous();
  return std::vector<float>(y.data_ptr<float>(), y.data_ptr<float>() + y.numel());
}

int TorchIntraOpThreads() { return at::get_num_threads(); }
int TorchInterOpThreads() { return static_cast<int>(at::get_num_interop_threads()); }

}  // namespace torii_test
