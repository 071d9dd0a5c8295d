// A runner for testing the SDK itself: its Model constructor and Execute()
// run whatever the current test scripts, so each test drives the C++ SDK
// (torii/runner.h) against the fake host with its own few lines.
#ifndef TORII_TESTS_SDK_SCRIPTED_RUNNER_H_
#define TORII_TESTS_SDK_SCRIPTED_RUNNER_H_

#include <functional>
#include <string>
#include <vector>

#include "torii/testing/fake_host.h"

namespace scripted {

struct Script {
  /// Runs in the Model constructor (model load).
  std::function<void(const torii::ModelContext& ctx)> load;
  /// Runs as Execute() of every instance; `ctx` is the instance's model.
  std::function<void(const torii::ModelContext& ctx, torii::Batch& batch)> execute;
};

/// The script of the running test.
Script& Current();

/// Sets the script for one test and clears it afterwards.
class UseScript {
 public:
  explicit UseScript(Script s) { Current() = std::move(s); }
  ~UseScript() { Current() = Script(); }
  UseScript(const UseScript&) = delete;
  UseScript& operator=(const UseScript&) = delete;
};

/// OUTPUT Y = input X for the whole batch, when requested.
inline void Echo(torii::Batch& batch) {
  if (batch.output_requested("Y")) batch.CopyOutput("Y", batch.input("X"));
}

/// A model X (FP32 [-1]) -> Y (FP32 [-1]).
inline torii::testing::ModelSpec Spec(int32_t max_batch_size = 0, bool decoupled = false) {
  torii::testing::ModelSpec spec;
  spec.name = "scripted";
  spec.max_batch_size = max_batch_size;
  spec.decoupled = decoupled;
  spec.inputs = {{"X", TORII_TYPE_FP32, {-1}}};
  spec.outputs = {{"Y", TORII_TYPE_FP32, {-1}}};
  return spec;
}

/// A request with X = `values` (and a batch dimension of 1 when `batching`).
inline torii::testing::Request Req(const std::vector<float>& values, bool batching = false,
                                   std::string id = "") {
  torii::testing::Request r;
  const auto n = static_cast<int64_t>(values.size());
  r.inputs = {torii::testing::Tensor::Of<float>(
      "X", batching ? std::vector<int64_t>{1, n} : std::vector<int64_t>{n}, values)};
  r.id = std::move(id);
  return r;
}

}  // namespace scripted

#endif  // TORII_TESTS_SDK_SCRIPTED_RUNNER_H_
