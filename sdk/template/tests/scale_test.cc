// Unit tests for the scale runner, with the SDK's fake host: no server, no
// files, the runner linked straight into this test binary.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include "torii/testing/fake_host.h"

using torii::testing::FakeHost;
using torii::testing::ModelSpec;
using torii::testing::Request;
using torii::testing::Tensor;

namespace {

// What model/config.pbtxt declares.
ModelSpec Spec(const std::string& factor) {
  ModelSpec spec;
  spec.name = "scale";
  spec.max_batch_size = 8;
  spec.inputs = {{"INPUT0", TORII_TYPE_FP32, {-1}}};
  spec.outputs = {{"OUTPUT0", TORII_TYPE_FP32, {-1}}};
  if (!factor.empty()) spec.parameters["factor"] = factor;
  return spec;
}

}  // namespace

TEST_CASE("OUTPUT0 is INPUT0 times the configured factor") {
  FakeHost host;
  auto model = host.Load(Spec("2.5"));
  auto instance = model->CreateInstance();
  auto out = instance->Infer({Tensor::Of<float>("INPUT0", {1, 3}, {1, -2, 4})});
  REQUIRE(out.ok());
  CHECK(out.output("OUTPUT0").shape == std::vector<int64_t>{1, 3});
  CHECK(out.output("OUTPUT0").values<float>() == std::vector<float>{2.5f, -5.0f, 10.0f});
}

TEST_CASE("the factor defaults to 1") {
  FakeHost host;
  auto model = host.Load(Spec(""));  // keep the model alive while its instance runs
  auto instance = model->CreateInstance();
  auto out = instance->Infer({Tensor::Of<float>("INPUT0", {1, 2}, {3, 4})});
  REQUIRE(out.ok());
  CHECK(out.output("OUTPUT0").values<float>() == std::vector<float>{3, 4});
}

TEST_CASE("a bad factor refuses the model with INVALID_ARGUMENT") {
  FakeHost host;
  try {
    host.Load(Spec("lots"));
    FAIL("the model loaded");
  } catch (const torii::Error& e) {
    CHECK(e.code() == TORII_STATUS_INVALID_ARGUMENT);
    CHECK(std::string(e.what()).find("'factor' must be a number") != std::string::npos);
  }
}

TEST_CASE("requests batched together each get their own rows back") {
  FakeHost host;
  auto model = host.Load(Spec("10"));
  auto instance = model->CreateInstance();
  Request a, b;
  a.inputs = {Tensor::Of<float>("INPUT0", {1, 2}, {1, 2})};
  b.inputs = {Tensor::Of<float>("INPUT0", {2, 2}, {3, 4, 5, 6})};
  auto out = instance->Execute({a, b});
  REQUIRE(out.size() == 2);
  REQUIRE(out[0].ok());
  REQUIRE(out[1].ok());
  CHECK(out[0].output("OUTPUT0").values<float>() == std::vector<float>{10, 20});
  CHECK(out[1].output("OUTPUT0").values<float>() == std::vector<float>{30, 40, 50, 60});
}

TEST_CASE("the runner reports who built it") {
  FakeHost host;
  const ToriiRunnerInfo& info = host.info();
  CHECK(std::string(info.name) == RUNNER_NAME);
  CHECK(std::string(info.version) == RUNNER_VERSION);
  CHECK(info.abi_version_major == TORII_RUNNER_ABI_VERSION_MAJOR);
}
