#include "scripted_runner.h"

#include <memory>

#include "torii/runner.h"

namespace scripted {

Script& Current() {
  static Script script;
  return script;
}

}  // namespace scripted

namespace {

class ScriptedInstance : public torii::Instance {
 public:
  explicit ScriptedInstance(const torii::ModelContext& ctx) : ctx_(ctx) {}
  void Execute(torii::Batch& batch) override {
    const auto& execute = scripted::Current().execute;
    if (!execute) throw torii::Error(TORII_STATUS_UNIMPLEMENTED, "scripted: no execute script");
    execute(ctx_, batch);
  }

 private:
  torii::ModelContext ctx_;
};

class ScriptedModel : public torii::Model {
 public:
  explicit ScriptedModel(const torii::ModelContext& ctx) : ctx_(ctx) {
    if (scripted::Current().load) scripted::Current().load(ctx);
  }
  std::unique_ptr<torii::Instance> CreateInstance(uint32_t) override {
    return std::make_unique<ScriptedInstance>(ctx_);
  }

 private:
  torii::ModelContext ctx_;
};

}  // namespace

TORII_RUNNER(ScriptedModel, "scripted", "1.0.0");
