// The reference runner tested the way a runner author tests theirs: linked
// into the test with the SDK's fake host, no server involved.
#include <catch2/catch.hpp>

#include "torii/testing/fake_host.h"

namespace {

using torii::testing::FakeHost;
using torii::testing::ModelSpec;
using torii::testing::Request;
using torii::testing::Tensor;

ModelSpec Spec(ToriiDataType dt) {
  ModelSpec spec;
  spec.name = "identity";
  spec.max_batch_size = 8;
  spec.inputs = {{"INPUT0", dt, {-1}}};
  spec.outputs = {{"OUTPUT0", dt, {-1}}};
  return spec;
}

TEST_CASE("identity returns every datatype unchanged") {
  FakeHost host;
  CHECK(std::string(host.info().name) == "identity");
  CHECK(host.info().abi_version_major == TORII_RUNNER_ABI_VERSION_MAJOR);
  auto model = host.Load(Spec(TORII_TYPE_INT64));
  auto instance = model->CreateInstance();
  auto out = instance->Infer({Tensor::Of<int64_t>("INPUT0", {1, 3}, {1, -2, 3})});
  REQUIRE(out.ok());
  CHECK(out.output("OUTPUT0").values<int64_t>() == std::vector<int64_t>{1, -2, 3});
  CHECK(out.output("OUTPUT0").shape == std::vector<int64_t>{1, 3});
}

TEST_CASE("identity handles BYTES and batches of requests") {
  FakeHost host;
  auto model = host.Load(Spec(TORII_TYPE_BYTES));
  auto instance = model->CreateInstance();
  Request a, b;
  a.inputs = {Tensor::Strings("INPUT0", {1, 2}, {"ab", ""})};
  b.inputs = {Tensor::Strings("INPUT0", {2, 2}, {"c", "dd", "e", "ffff"})};
  auto out = instance->Execute({a, b});
  REQUIRE(out[0].ok());
  REQUIRE(out[1].ok());
  CHECK(out[0].output("OUTPUT0").strings() == std::vector<std::string>{"ab", ""});
  CHECK(out[1].output("OUTPUT0").strings() == std::vector<std::string>{"c", "dd", "e", "ffff"});
}

TEST_CASE("identity refuses a config whose input has no matching output") {
  FakeHost host;
  ModelSpec spec = Spec(TORII_TYPE_FP32);
  spec.outputs = {{"RESULT", TORII_TYPE_FP32, {-1}}};
  try {
    host.Load(spec);
    FAIL("load should have failed");
  } catch (const torii::Error& e) {
    CHECK(e.code() == TORII_STATUS_INVALID_ARGUMENT);
    CHECK(std::string(e.what()).find("needs a matching OUTPUT0") != std::string::npos);
  }
}

TEST_CASE("unrequested outputs are not produced") {
  FakeHost host;
  auto model = host.Load(Spec(TORII_TYPE_FP32));
  auto instance = model->CreateInstance();
  Request r;
  r.inputs = {Tensor::Of<float>("INPUT0", {1, 1}, {1.5f})};
  r.requested_outputs = {"NOTHING"};
  auto out = instance->Execute({r});
  REQUIRE(out[0].ok());
  CHECK(out[0].outputs.empty());
}

}  // namespace
