// In-process overhead of the TorchScript runner: the example MLP
// (examples/model_repository/mlp, 64→256→10) called
//   direct   through LibTorch: from_blob input, forward(), memcpy output;
//   runner   through libtorii_torchscript.so's C ABI, with a minimal host
//            that reuses one batch (what the runner itself adds);
//   fakehost through the SDK's FakeHost::Infer (adds the fake host's own
//            copies and allocations; an upper bound, not the server's cost)
// at batch 1, 8 and 32. Rounds alternate the three paths and each figure is
// the median over rounds, because the machines are shared and noisy. The
// primary figure is the calling thread's CPU time per call (LibTorch and
// OpenBLAS run single-threaded here, so all the work is on that thread and
// other processes' load does not inflate it); wall time is printed too.
// Prints figures only; asserts nothing about time.
//
//   build/bin/torii-bench-torchscript [--rounds N] [--target-ms M]
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <torch/script.h>

#include "torii/testing/fake_host.h"

namespace {

using Clock = std::chrono::steady_clock;
using torii::testing::FakeHost;
using torii::testing::ModelSpec;
using torii::testing::Request;
using torii::testing::Tensor;

constexpr int64_t kIn = 64, kOut = 10;

double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

struct Cost {
  double cpu;   // seconds of this thread's CPU per call
  double wall;  // seconds of wall time per call
};

Cost PerCall(const std::function<void()>& fn, int n) {
  const auto start = Clock::now();
  const double cpu_start = ThreadCpuSeconds();
  for (int i = 0; i < n; ++i) fn();
  return {(ThreadCpuSeconds() - cpu_start) / n,
          std::chrono::duration<double>(Clock::now() - start).count() / n};
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 7;
  double target_ms = 30;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--rounds") == 0) rounds = std::max(1, std::atoi(argv[i + 1]));
    if (std::strcmp(argv[i], "--target-ms") == 0) target_ms = std::max(1.0, std::atof(argv[i + 1]));
  }
  const std::string dir = TORII_EXAMPLE_MLP_DIR;
  const std::string path = dir + "/1/model.pt";

  // The runner first: loading a model sets OpenBLAS to one thread
  // process-wide, so the direct path below runs under the same BLAS setting.
  auto host = FakeHost::Open(TORII_TORCHSCRIPT_RUNNER_PATH);
  ModelSpec spec;
  spec.name = "mlp";
  spec.directory = dir;
  spec.version_directory = dir + "/1";
  spec.max_batch_size = 128;
  spec.inputs = {{"INPUT__0", TORII_TYPE_FP32, {kIn}}};
  spec.outputs = {{"OUTPUT__0", TORII_TYPE_FP32, {kOut}}};
  auto model = host->Load(spec);
  auto fake_instance = model->CreateInstance();

  // The raw ABI, for the runner-only path: dlopen again (a reference to the
  // already loaded library), load the same model, reuse one batch.
  void* lib = dlopen(TORII_TORCHSCRIPT_RUNNER_PATH, RTLD_NOW | RTLD_LOCAL);
  auto sym = [&](const char* name) { return dlsym(lib, name); };
  auto load = reinterpret_cast<decltype(&torii_runner_model_load)>(sym(TORII_RUNNER_SYMBOL_MODEL_LOAD));
  auto unload = reinterpret_cast<decltype(&torii_runner_model_unload)>(sym(TORII_RUNNER_SYMBOL_MODEL_UNLOAD));
  auto create = reinterpret_cast<decltype(&torii_runner_instance_create)>(sym(TORII_RUNNER_SYMBOL_INSTANCE_CREATE));
  auto destroy = reinterpret_cast<decltype(&torii_runner_instance_destroy)>(sym(TORII_RUNNER_SYMBOL_INSTANCE_DESTROY));
  auto execute = reinterpret_cast<decltype(&torii_runner_instance_execute)>(sym(TORII_RUNNER_SYMBOL_INSTANCE_EXECUTE));
  ToriiModel abi_model;
  abi_model.spec = spec;
  void* model_state = nullptr;
  void* instance_state = nullptr;
  if (load(torii::testing::fake_detail::Api(), &abi_model, &model_state) != nullptr ||
      create(model_state, 0, &instance_state) != nullptr) {
    std::fprintf(stderr, "cannot load %s through the runner\n", path.c_str());
    return 1;
  }

  // Loaded under InferenceMode, as the runner does: parameters become
  // inference tensors, which skip autograd bookkeeping on every call.
  torch::jit::Module direct = [&] {
    c10::InferenceMode guard;
    return torch::jit::load(path);
  }();
  direct.eval();
  // Resolved once, as the runner does: Module::forward() looks the method up
  // by name on every call.
  torch::jit::Method direct_forward = direct.get_method("forward");

  std::printf("TorchScript runner overhead, model %s (MLP 64->256->10), %d rounds, median per call\n",
              path.c_str(), rounds);
  std::printf("CPU microseconds per call (wall in parentheses)\n");
  std::printf("%5s  %17s  %17s  %11s  %6s  %17s\n", "batch", "direct", "runner",
              "overhead", "ratio", "fakehost");

  for (const int64_t batch : {1, 8, 32}) {
    std::vector<float> input(static_cast<size_t>(batch * kIn));
    for (size_t i = 0; i < input.size(); ++i) input[i] = float(i % 17) / 17.0f - 0.5f;
    std::vector<float> output(static_cast<size_t>(batch * kOut));

    auto run_direct = [&] {
      c10::InferenceMode guard;
      at::Tensor x = at::from_blob(input.data(), {batch, kIn}, at::kFloat);
      at::Tensor y = direct_forward({x}).toTensor();
      std::memcpy(output.data(), y.contiguous().data_ptr<float>(), output.size() * sizeof(float));
    };

    Request request;
    request.inputs = {Tensor::Of<float>("INPUT__0", {batch, kIn}, input)};
    ToriiBatch abi_batch;
    abi_batch.model = &abi_model;
    abi_batch.requests = {&request};
    abi_batch.rows = {batch};
    abi_batch.inputs = request.inputs;
    abi_batch.failed.resize(1);
    auto run_runner = [&] {
      abi_batch.outputs.clear();
      ToriiError* err = execute(instance_state, &abi_batch);
      if (err != nullptr) {
        std::fprintf(stderr, "runner failed: %s\n", err->message.c_str());
        std::exit(1);
      }
    };
    auto run_fakehost = [&] {
      if (!fake_instance->Infer(request.inputs).ok()) std::exit(1);
    };

    // Warm all three at this batch size, then size the loops.
    for (int i = 0; i < 20; ++i) run_direct(), run_runner(), run_fakehost();
    const double once = PerCall(run_direct, 50).cpu;
    const int n = std::max(20, static_cast<int>(target_ms / 1000.0 / once));

    std::vector<double> dc, dw, rc, rw, fc, fw;
    for (int round = 0; round < rounds; ++round) {
      const Cost d = PerCall(run_direct, n), r = PerCall(run_runner, n),
                 f = PerCall(run_fakehost, n);
      dc.push_back(d.cpu), dw.push_back(d.wall);
      rc.push_back(r.cpu), rw.push_back(r.wall);
      fc.push_back(f.cpu), fw.push_back(f.wall);
    }
    const double d = Median(dc) * 1e6, r = Median(rc) * 1e6, f = Median(fc) * 1e6;
    std::printf("%5lld  %8.2f (%6.1f)  %8.2f (%6.1f)  %+11.2f  %6.3f  %8.2f (%6.1f)\n",
                static_cast<long long>(batch), d, Median(dw) * 1e6, r, Median(rw) * 1e6, r - d,
                r / d, f, Median(fw) * 1e6);
  }

  destroy(instance_state);
  unload(model_state);
  dlclose(lib);
  return 0;
}
