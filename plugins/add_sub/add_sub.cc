// The add_sub runner: INPUT0, INPUT1 (FP32) -> OUTPUT0 = INPUT0 + INPUT1,
// OUTPUT1 = INPUT0 - INPUT1, element-wise over the whole batch.
#include <string>

#include "torii/runner.h"

namespace {

class AddSubInstance : public torii::Instance {
 public:
  void Execute(torii::Batch& batch) override {
    torii::Input a = batch.input("INPUT0");
    torii::Input b = batch.input("INPUT1");
    auto x = a.values<float>();
    auto y = b.values<float>();
    if (x.size() != y.size()) {
      throw torii::Error(TORII_STATUS_INVALID_ARGUMENT,
                         "add_sub: INPUT0 has " + std::to_string(x.size()) +
                             " elements, INPUT1 has " +
                             std::to_string(y.size()));
    }
    std::vector<int64_t> shape(a.shape().begin(), a.shape().end());
    if (batch.output_requested("OUTPUT0")) {
      auto sum = batch.AllocateOutput<float>("OUTPUT0", shape);
      for (size_t i = 0; i < x.size(); ++i) sum[i] = x[i] + y[i];
    }
    if (batch.output_requested("OUTPUT1")) {
      auto diff = batch.AllocateOutput<float>("OUTPUT1", shape);
      for (size_t i = 0; i < x.size(); ++i) diff[i] = x[i] - y[i];
    }
  }
};

class AddSubModel : public torii::Model {
 public:
  explicit AddSubModel(const torii::ModelContext& ctx) {
    for (const auto& t : ctx.inputs()) {
      if (t.datatype != TORII_TYPE_FP32) {
        throw torii::Error(TORII_STATUS_INVALID_ARGUMENT,
                           "add_sub: input '" + t.name + "' must be TYPE_FP32");
      }
    }
  }
  std::unique_ptr<torii::Instance> CreateInstance(uint32_t) override {
    return std::make_unique<AddSubInstance>();
  }
};

}  // namespace

TORII_RUNNER(AddSubModel, "add_sub", "1.0.0");
