// The "scale" runner: OUTPUT0 = INPUT0 * factor.
//
// Start your own runner from this file. A runner is two small classes and one
// macro (see torii/runner.h):
//   - ScaleModel is built once per loaded model version, from what
//     config.pbtxt says; load weights here, and throw to refuse the model.
//   - ScaleInstance runs batches. The server never calls Execute() of one
//     instance from two threads at once, but different instances run in
//     parallel: keep per-call scratch in the instance, share only immutable
//     state through the model.
//   - TORII_RUNNER exports the C entry points the server looks for and turns
//     every exception into an error for the client.
#include <cstdlib>
#include <memory>
#include <string>

#include "torii/runner.h"

// Set by CMakeLists.txt: RUNNER_NAME (the library is libtorii_<name>.so) and
// RUNNER_VERSION (project(VERSION)); the server reports both.
#ifndef RUNNER_NAME
#define RUNNER_NAME "scale"
#endif
#ifndef RUNNER_VERSION
#define RUNNER_VERSION "0.0.0"
#endif

namespace {

class ScaleInstance : public torii::Instance {
 public:
  explicit ScaleInstance(float factor) : factor_(factor) {}

  void Execute(torii::Batch& batch) override {
    // The batch holds every request's rows concatenated along dimension 0;
    // the output must have the same rows, and the server splits it back.
    torii::Input input = batch.input("INPUT0");
    auto x = input.values<float>();  // throws INVALID_ARGUMENT if not FP32
    std::vector<int64_t> shape(input.shape().begin(), input.shape().end());
    if (!batch.output_requested("OUTPUT0")) return;
    auto y = batch.AllocateOutput<float>("OUTPUT0", shape);  // host memory
    for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * factor_;
  }

 private:
  const float factor_;
};

class ScaleModel : public torii::Model {
 public:
  explicit ScaleModel(const torii::ModelContext& ctx) {
    // parameters { key: "factor" value { string_value: "2.5" } } in config.pbtxt
    if (auto text = ctx.parameter("factor")) {
      char* end = nullptr;
      factor_ = std::strtof(text->c_str(), &end);
      if (text->empty() || *end != '\0') {
        throw torii::Error(TORII_STATUS_INVALID_ARGUMENT,
                           "scale: parameter 'factor' must be a number, got '" + *text + "'");
      }
    }
    ctx.Log(TORII_LOG_INFO, "scale: factor " + std::to_string(factor_));
  }

  std::unique_ptr<torii::Instance> CreateInstance(uint32_t /*index*/) override {
    return std::make_unique<ScaleInstance>(factor_);
  }

 private:
  float factor_ = 1.0f;
};

}  // namespace

TORII_RUNNER(ScaleModel, RUNNER_NAME, RUNNER_VERSION);
