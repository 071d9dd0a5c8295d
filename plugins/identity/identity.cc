// The identity runner: the reference a newcomer reads first.
//
// For every input INPUTn it returns OUTPUTn with the same datatype, shape and
// bytes (any datatype, BYTES included). It shows the whole SDK surface a
// runner needs: a Model built from the ModelContext, an Instance per
// instance_group entry, and Execute() over a batch.
#include <string>

#include "torii/runner.h"

namespace {

class IdentityInstance : public torii::Instance {
 public:
  void Execute(torii::Batch& batch) override {
    for (size_t i = 0; i < batch.input_count(); ++i) {
      torii::Input input = batch.input(i);
      std::string name(input.name());
      // INPUT0 -> OUTPUT0, INPUT_A -> OUTPUT_A: swap the "INPUT" prefix.
      if (name.rfind("INPUT", 0) != 0) {
        throw torii::Error(TORII_STATUS_INVALID_ARGUMENT,
                           "identity: input '" + name +
                               "' does not start with INPUT");
      }
      std::string output = "OUTPUT" + name.substr(5);
      if (batch.output_requested(output)) batch.CopyOutput(output, input);
    }
  }
};

class IdentityModel : public torii::Model {
 public:
  explicit IdentityModel(const torii::ModelContext& ctx) {
    // Check the config once at load, so a bad repository fails early.
    for (const auto& in : ctx.inputs()) {
      bool found = false;
      for (const auto& out : ctx.outputs()) {
        found = found || out.name == "OUTPUT" + in.name.substr(5);
      }
      if (in.name.rfind("INPUT", 0) != 0 || !found) {
        throw torii::Error(TORII_STATUS_INVALID_ARGUMENT,
                           "identity: input '" + in.name +
                               "' needs a matching OUTPUT" + in.name.substr(5));
      }
    }
  }
  std::unique_ptr<torii::Instance> CreateInstance(uint32_t) override {
    return std::make_unique<IdentityInstance>();
  }
};

}  // namespace

TORII_RUNNER(IdentityModel, "identity", "1.0.0");
