// Load/unload cycles and process-wide state: resident memory stays flat, the
// runner library really unloads, request buffers are never written, and the
// thread settings reach worker threads. A binary of its own, because these
// tests open and close the runner library and change process-wide LibTorch
// settings.
#include <dlfcn.h>
#include <link.h>

#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <future>
#include <mutex>
#include <queue>
#include <string>
#include <thread>
#include <vector>

#include "runner_test_util.h"

namespace torii_test {
namespace {

constexpr size_t kMiB = 1024 * 1024;

TEST_CASE("loading and unloading a model 20 times keeps resident memory flat") {
  TempDir dir;
  // 2M weights (8 MiB): a leaked copy per cycle would add 150 MiB.
  ModelSpec spec = MakeSpec(dir, "big", 8, {{"INPUT__0", TORII_TYPE_FP32, {512}}},
                            {{"OUTPUT__0", TORII_TYPE_FP32, {512}}});
  const MlpWeights w = SaveMlp(ModelFile(spec), 512, 2048, 512, 5);
  auto host = FakeHost::Open(RunnerPath());
  const auto x = TestValues(4 * 512, 8);
  const auto expected = MlpReference(w, x, 4);
  size_t after_first = 0;
  for (int cycle = 1; cycle <= 20; ++cycle) {
    auto model = host->Load(spec);
    auto instance = model->CreateInstance();
    const Response r = instance->Infer({Tensor::Of<float>("INPUT__0", {4, 512}, x)});
    REQUIRE(r.ok());
    RequireClose(r.output("OUTPUT__0").values<float>(), expected);
    instance.reset();
    model.reset();
    if (cycle == 1) after_first = ResidentBytes();
  }
  const size_t after_last = ResidentBytes();
  INFO("VmRSS after cycle 1: " << after_first / kMiB << " MiB, after cycle 20: "
                               << after_last / kMiB << " MiB");
  CHECK(after_last < after_first + 20 * kMiB);
}

TEST_CASE("20 open/close cycles of the runner library unload it and keep memory flat") {
  TempDir dir;
  ModelSpec spec = MakeSpec(dir, "mlp", 8, {{"INPUT__0", TORII_TYPE_FP32, {64}}},
                            {{"OUTPUT__0", TORII_TYPE_FP32, {10}}});
  const MlpWeights w = SaveMlp(ModelFile(spec), 64, 256, 10, 6);
  const auto x = TestValues(64, 9);
  size_t after_first = 0;
  for (int cycle = 1; cycle <= 20; ++cycle) {
    {
      auto host = FakeHost::Open(RunnerPath());
      auto model = host->Load(spec);
      auto instance = model->CreateInstance();
      const Response r = instance->Infer({Tensor::Of<float>("INPUT__0", {1, 64}, x)});
      REQUIRE(r.ok());
      RequireClose(r.output("OUTPUT__0").values<float>(), MlpReference(w, x, 1));
    }
    // The version script keeps LibTorch's unique symbols out of the runner,
    // so glibc does not pin it: after dlclose it is gone, and a new version
    // of the library would really be loaded next time.
    void* still = dlopen(RunnerPath(), RTLD_NOW | RTLD_NOLOAD);
    if (still != nullptr) dlclose(still);
    REQUIRE(still == nullptr);
    if (cycle == 1) after_first = ResidentBytes();
  }
  const size_t after_last = ResidentBytes();
  INFO("VmRSS after cycle 1: " << after_first / kMiB << " MiB, after cycle 20: "
                               << after_last / kMiB << " MiB");
  CHECK(after_last < after_first + 20 * kMiB);
}

// The ABI by hand, to see the host's input buffer after execute (the fake
// host's Execute() owns and drops it).
TEST_CASE("a model that writes its input in place never writes the request's buffer") {
  const bool dict = GENERATE(false, true);
  const std::string input = dict ? "a" : "INPUT__0";
  INFO((dict ? "Dict[str, Tensor] argument" : "Tensor argument"));
  TempDir dir;
  ModelSpec spec = MakeSpec(dir, "inplace", 4, {{input, TORII_TYPE_FP32, {3}}},
                            {{"OUTPUT__0", TORII_TYPE_FP32, {3}}});
  SaveScript(ModelFile(spec), dict ? R"(
def forward(self, inputs: Dict[str, Tensor]):
    x = inputs["a"]
    x.add_(1.0)
    return x * 2.0
)"
                                   : R"(
def forward(self, x):
    x.add_(1.0)
    return x * 2.0
)");
  void* lib = dlopen(RunnerPath(), RTLD_NOW | RTLD_LOCAL);
  REQUIRE(lib != nullptr);
  auto sym = [&](const char* name) {
    void* p = dlsym(lib, name);
    REQUIRE(p != nullptr);
    return p;
  };
  auto load = reinterpret_cast<decltype(&torii_runner_model_load)>(sym(TORII_RUNNER_SYMBOL_MODEL_LOAD));
  auto unload = reinterpret_cast<decltype(&torii_runner_model_unload)>(sym(TORII_RUNNER_SYMBOL_MODEL_UNLOAD));
  auto create = reinterpret_cast<decltype(&torii_runner_instance_create)>(sym(TORII_RUNNER_SYMBOL_INSTANCE_CREATE));
  auto destroy = reinterpret_cast<decltype(&torii_runner_instance_destroy)>(sym(TORII_RUNNER_SYMBOL_INSTANCE_DESTROY));
  auto execute = reinterpret_cast<decltype(&torii_runner_instance_execute)>(sym(TORII_RUNNER_SYMBOL_INSTANCE_EXECUTE));

  ToriiModel model;
  model.spec = spec;
  void* model_state = nullptr;
  REQUIRE(load(torii::testing::fake_detail::Api(), &model, &model_state) == nullptr);
  bool warned = false;
  for (const auto& line : model.log) warned = warned || line.find("writes an input in place") != std::string::npos;
  CHECK(warned);
  void* instance_state = nullptr;
  REQUIRE(create(model_state, 0, &instance_state) == nullptr);

  Request request;
  request.inputs = {Tensor::Of<float>(input, {2, 3}, {1, 2, 3, 4, 5, 6})};
  ToriiBatch batch;
  batch.model = &model;
  batch.requests = {&request};
  batch.rows = {2};
  batch.inputs = request.inputs;
  batch.failed.resize(1);
  const std::string before = batch.inputs[0].data;
  ToriiError* err = execute(instance_state, &batch);
  CHECK(err == nullptr);
  delete err;
  CHECK(batch.inputs[0].data == before);
  REQUIRE(batch.outputs.count("OUTPUT__0") == 1);
  CHECK(batch.outputs["OUTPUT__0"].values<float>() == std::vector<float>{4, 6, 8, 10, 12, 14});

  destroy(instance_state);
  unload(model_state);
  dlclose(lib);
}

// A long-lived thread, like a server's instance worker.
class Worker {
 public:
  Worker() : thread_([this] { Loop(); }) {}
  ~Worker() {
    Run([this] { done_ = true; });
    thread_.join();
  }
  template <typename Fn>
  auto Run(Fn fn) -> decltype(fn()) {
    std::packaged_task<decltype(fn())()> task(std::move(fn));
    auto result = task.get_future();
    {
      std::lock_guard<std::mutex> lock(mu_);
      tasks_.push([&task] { task(); });
    }
    cv_.notify_one();
    return result.get();
  }

 private:
  void Loop() {
    while (!done_) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return !tasks_.empty(); });
        task = std::move(tasks_.front());
        tasks_.pop();
      }
      task();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::queue<std::function<void()>> tasks_;
  bool done_ = false;
  std::thread thread_;
};

TEST_CASE("INTRA_OP_THREAD_COUNT reaches worker threads that already ran torch") {
  TempDir dir;
  ModelSpec a = MakeSpec(dir, "threads_a", 8, {{"INPUT__0", TORII_TYPE_FP32, {8}}},
                         {{"OUTPUT__0", TORII_TYPE_FP32, {4}}});
  SaveMlp(ModelFile(a), 8, 16, 4, 1);
  ModelSpec b = MakeSpec(dir, "threads_b", 8, {{"INPUT__0", TORII_TYPE_FP32, {8}}},
                         {{"OUTPUT__0", TORII_TYPE_FP32, {4}}});
  SaveMlp(ModelFile(b), 8, 16, 4, 2);
  a.parameters["INTRA_OP_THREAD_COUNT"] = "1";
  b.parameters["INTRA_OP_THREAD_COUNT"] = "3";

  auto host = FakeHost::Open(RunnerPath());
  auto model_a = host->Load(a);
  auto instance_a = model_a->CreateInstance();
  Worker worker;
  auto infer_and_read = [&] {
    const Response r =
        instance_a->Infer({Tensor::Of<float>("INPUT__0", {1, 8}, TestValues(8, 1))});
    REQUIRE(r.ok());
    return TorchIntraOpThreads();
  };
  CHECK(worker.Run(infer_and_read) == 1);
  // A later model changes the process-wide value; the worker that already
  // ran torch with 1 thread must follow at its next execute.
  auto model_b = host->Load(b);
  CHECK(LogContains(*model_b, "INTRA_OP_THREAD_COUNT 3 replaces 1"));
  CHECK(worker.Run(infer_and_read) == 3);
}

TEST_CASE("INTER_OP_THREAD_COUNT is set once per process and later values only warn") {
  TempDir dir;
  ModelSpec spec = MakeSpec(dir, "interop", 8, {{"INPUT__0", TORII_TYPE_FP32, {8}}},
                            {{"OUTPUT__0", TORII_TYPE_FP32, {4}}});
  SaveMlp(ModelFile(spec), 8, 16, 4, 1);
  auto host = FakeHost::Open(RunnerPath());
  spec.parameters["INTER_OP_THREAD_COUNT"] = "3";
  auto first = host->Load(spec);
  CHECK(TorchInterOpThreads() == 3);
  spec.parameters["INTER_OP_THREAD_COUNT"] = "5";
  auto second = host->Load(spec);  // loads anyway
  CHECK(LogContains(*second, "INTER_OP_THREAD_COUNT 5 ignored"));
  CHECK(TorchInterOpThreads() == 3);
}

// openblas_get/set_num_threads from whichever loaded library exports them
// (libtorch pulls OpenBLAS in through libblas.so.3).
void* FindOpenBlas(const char* symbol) {
  std::vector<std::string> names;
  dl_iterate_phdr(
      [](struct dl_phdr_info* info, size_t, void* data) {
        if (info->dlpi_name != nullptr && std::strstr(info->dlpi_name, "blas") != nullptr) {
          static_cast<std::vector<std::string>*>(data)->push_back(info->dlpi_name);
        }
        return 0;
      },
      &names);
  for (const auto& name : names) {
    void* handle = dlopen(name.c_str(), RTLD_NOW | RTLD_NOLOAD);
    if (handle == nullptr) continue;
    void* p = dlsym(handle, symbol);
    dlclose(handle);
    if (p != nullptr) return p;
  }
  return nullptr;
}

TEST_CASE("OpenBLAS runs one thread per call after a model loads") {
  if (std::getenv("OPENBLAS_NUM_THREADS") != nullptr) {
    WARN("OPENBLAS_NUM_THREADS is set; the runner leaves OpenBLAS alone by design");
    return;
  }
  auto get = reinterpret_cast<int (*)()>(FindOpenBlas("openblas_get_num_threads"));
  auto set = reinterpret_cast<void (*)(int)>(FindOpenBlas("openblas_set_num_threads"));
  REQUIRE(get != nullptr);  // scripts/install-deps.sh installs libopenblas0-pthread
  REQUIRE(set != nullptr);
  set(2);
  REQUIRE(get() == 2);
  TempDir dir;
  ModelSpec spec = MakeSpec(dir, "blas", 8, {{"INPUT__0", TORII_TYPE_FP32, {8}}},
                            {{"OUTPUT__0", TORII_TYPE_FP32, {4}}});
  SaveMlp(ModelFile(spec), 8, 16, 4, 1);
  auto host = FakeHost::Open(RunnerPath());
  auto model = host->Load(spec);
  CHECK(get() == 1);
}

}  // namespace
}  // namespace torii_test
