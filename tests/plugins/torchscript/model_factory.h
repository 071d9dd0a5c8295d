// TorchScript models for the runner's tests, built in C++ at test time
// (torch::jit::Module + define() + save(), no Python), and the weights they
// hold, so tests compute expected outputs with plain loops instead of torch.
//
// This header is torch-free on purpose: only model_factory.cc includes
// LibTorch (one torch translation unit costs ~10 s and ~0.8 GB to compile).
#ifndef TORII_TESTS_PLUGINS_TORCHSCRIPT_MODEL_FACTORY_H_
#define TORII_TESTS_PLUGINS_TORCHSCRIPT_MODEL_FACTORY_H_

#include <cstdint>
#include <string>
#include <vector>

namespace torii_test {

/// y = x · Wᵀ + b, W row-major [out][in].
struct LinearWeights {
  int64_t in = 0;
  int64_t out = 0;
  std::vector<float> weight;
  std::vector<float> bias;
};

/// relu(x · W1ᵀ + b1) · W2ᵀ + b2
struct MlpWeights {
  LinearWeights l1;
  LinearWeights l2;
};

/// Saves an MLP (forward(x) -> Tensor) with deterministic weights drawn from
/// `seed` (uniform in ±1/sqrt(fan_in), as torch.nn.Linear initialises).
MlpWeights SaveMlp(const std::string& path, int64_t in, int64_t hidden,
                   int64_t out, uint64_t seed);

/// conv2d(2→3, 3x3, padding 1) → batch_norm (a submodule) → relu → mean over
/// H and W: input [N,2,H,W] FP32, output [N,3]. Saved in *training* mode
/// with running statistics that differ from any batch's, so the output is
/// only right when the runner evaluates in eval mode.
struct ConvBnWeights {
  std::vector<float> conv_weight;  // [3][2][3][3]
  std::vector<float> conv_bias;    // [3]
  std::vector<float> bn_weight, bn_bias, bn_mean, bn_var;  // [3] each
  double eps = 1e-5;
};
ConvBnWeights SaveConvBn(const std::string& path, uint64_t seed);

/// Saves a parameterless module whose forward is `source` (TorchScript,
/// starting with "def forward(self, ...):").
void SaveScript(const std::string& path, const std::string& source);

/// Runs `path` with torch::jit::load directly on one FP32 input and returns
/// its (single Tensor) FP32 output: the reference path for the example model.
std::vector<float> RunTorchScript(const std::string& path,
                                  const std::vector<float>& input,
                                  const std::vector<int64_t>& shape);

/// LibTorch's intra-op thread count as the calling thread sees it.
int TorchIntraOpThreads();
/// LibTorch's inter-op pool size.
int TorchInterOpThreads();

}  // namespace torii_test

#endif  // TORII_TESTS_PLUGINS_TORCHSCRIPT_MODEL_FACTORY_H_
