// The C++ SDK's ABI 1.2 per-request accessors, and what every 1.2 feature
// does on an older host: a clear UNIMPLEMENTED, never a call through a
// missing function pointer.
#include <catch2/catch.hpp>
#include <cstddef>
#include <string>
#include <vector>

#include "scripted_runner.h"

namespace {

using torii::testing::FakeHost;
using torii::testing::Request;

TEST_CASE("Batch reads each request's id, requested outputs and parameters", "[sdk]") {
  struct Seen {
    std::string id;
    bool wants_y = false;
    bool wants_z = false;
    std::map<std::string, torii::Parameter> params;
  };
  std::vector<Seen> seen;
  scripted::UseScript script({nullptr, [&](const torii::ModelContext&, torii::Batch& batch) {
                                for (size_t r = 0; r < batch.request_count(); ++r) {
                                  seen.push_back({batch.request_id(r),
                                                  batch.request_output_requested(r, "Y"),
                                                  batch.request_output_requested(r, "Z"),
                                                  batch.request_parameters(r)});
                                }
                                scripted::Echo(batch);
                              }});
  FakeHost host;
  auto spec = scripted::Spec(8);
  spec.outputs.push_back({"Z", TORII_TYPE_FP32, {-1}});
  auto model = host.Load(spec);
  auto instance = model->CreateInstance();

  Request a = scripted::Req({1, 2}, true, "first");
  a.requested_outputs = {"Y"};
  a.parameters["temperature"] = torii::Parameter::Double(0.25);
  a.parameters["stream"] = torii::Parameter::Bool(true);
  a.parameters["user"] = torii::Parameter::String("ada");
  Request b = scripted::Req({3, 4}, true);  // no id, asks for all outputs
  b.parameters["seed"] = torii::Parameter::Int64(-7);
  b.parameters["limit"] = torii::Parameter::Uint64(1ull << 40);
  // Z is never produced: only b asked for it (implicitly), so only b fails.
  auto out = instance->Execute({a, b});

  REQUIRE(seen.size() == 2);
  CHECK(seen[0].id == "first");
  CHECK(seen[0].wants_y);
  CHECK_FALSE(seen[0].wants_z);
  REQUIRE(seen[0].params.size() == 3);
  CHECK(seen[0].params["temperature"].type == TORII_PARAMETER_DOUBLE);
  CHECK(seen[0].params["temperature"].double_value == 0.25);
  CHECK(seen[0].params["stream"].bool_value);
  CHECK(seen[0].params["user"].string_value == "ada");
  CHECK(seen[1].id.empty());
  CHECK(seen[1].wants_y);
  CHECK(seen[1].wants_z);
  REQUIRE(seen[1].params.size() == 2);
  CHECK(seen[1].params["seed"].int64_value == -7);
  CHECK(seen[1].params["limit"].uint64_value == (1ull << 40));

  REQUIRE(out[0].ok());
  CHECK(out[0].output("Y").values<float>() == std::vector<float>{1, 2});
  CHECK(out[1].code == TORII_STATUS_INTERNAL);
  CHECK_THAT(out[1].message, Catch::Contains("the runner produced no output 'Z'"));
}

// A copy of the fake host's table as a host of an older ABI would hand it
// over: smaller, so TORII_HOST_HAS is false for everything after `end`.
ToriiHostApi OlderHost(uint32_t minor, size_t end) {
  ToriiHostApi api = *torii::testing::fake_detail::Api();
  api.struct_size = static_cast<uint32_t>(end);
  api.abi_version_minor = minor;
  return api;
}

template <typename Fn>
void RequireUnimplemented(Fn&& fn, const std::string& expected) {
  try {
    fn();
    FAIL("expected UNIMPLEMENTED: " << expected);
  } catch (const torii::Error& e) {
    CHECK(e.code() == TORII_STATUS_UNIMPLEMENTED);
    CHECK(std::string(e.what()) == expected);
  }
}

TEST_CASE("every ABI 1.2 feature throws UNIMPLEMENTED on an older host", "[sdk]") {
  const ToriiHostApi v11 = OlderHost(1, offsetof(ToriiHostApi, batch_request_id));
  const ToriiHostApi v10 = OlderHost(0, offsetof(ToriiHostApi, batch_is_cancelled));
  // No function of the older table is ever reached: the checks come first.
  torii::Batch batch(&v11, nullptr);
  const torii::ModelContext ctx(&v11, nullptr);
  const std::string tail = " needs a host with runner ABI 1.2; this host has 1.1";
  RequireUnimplemented([&] { batch.request_id(0); }, "Batch::request_id" + tail);
  RequireUnimplemented([&] { batch.request_output_requested(0, "Y"); },
                       "Batch::request_output_requested" + tail);
  RequireUnimplemented([&] { batch.request_parameters(0); }, "Batch::request_parameters" + tail);
  RequireUnimplemented([&] { batch.TakeResponseSender(0); }, "Batch::TakeResponseSender" + tail);
  RequireUnimplemented([&] { ctx.SetConfigJson("{}"); }, "ModelContext::SetConfigJson" + tail);
  RequireUnimplemented([&] { ctx.ReportProperty("k", "v"); },
                       "ModelContext::ReportProperty" + tail);
  RequireUnimplemented([&] { torii::ModelCall(ctx, "other").Run(); }, "ModelCall" + tail);

  const torii::ModelContext ctx10(&v10, nullptr);
  RequireUnimplemented([&] { ctx10.ReportProperty("k", "v"); },
                       "ModelContext::ReportProperty needs a host with runner ABI 1.2; this "
                       "host has 1.0");
  torii::Batch batch10(&v10, nullptr);
  CHECK_FALSE(batch10.cancelled());  // 1.1's feature answers false on a 1.0 host

  // A 1.2 host that lacks one function is named by the function.
  ToriiHostApi partial = *torii::testing::fake_detail::Api();
  partial.model_report_property = nullptr;
  RequireUnimplemented([&] { torii::ModelContext(&partial, nullptr).ReportProperty("k", "v"); },
                       "ModelContext::ReportProperty needs the host function "
                       "model_report_property, which this host (runner ABI 1." +
                           std::to_string(TORII_RUNNER_ABI_VERSION_MINOR) +
                           ") does not provide");

  // ABI 1.3's metrics on a 1.2 host.
  const ToriiHostApi v12 = OlderHost(2, offsetof(ToriiHostApi, metric_family_new));
  RequireUnimplemented(
      [&] { torii::ModelContext(&v12, nullptr).NewMetricFamily("x", "", TORII_METRIC_GAUGE); },
      "ModelContext::NewMetricFamily needs a host with runner ABI 1.3; this host has 1.2");
}

TEST_CASE("an UNIMPLEMENTED feature crosses the ABI as the request's error", "[sdk]") {
  // The runner's Execute meets an older host; TORII_RUNNER catches the throw.
  const ToriiHostApi v11 = OlderHost(1, offsetof(ToriiHostApi, batch_request_id));
  scripted::UseScript script({nullptr, [&](const torii::ModelContext&, torii::Batch& batch) {
                                torii::Batch old(&v11, nullptr);
                                (void)batch;
                                old.TakeResponseSender(0);
                              }});
  FakeHost host;
  auto model = host.Load(scripted::Spec());
  auto out = model->CreateInstance()->Infer({torii::testing::Tensor::Of<float>("X", {1}, {1})});
  CHECK(out.code == TORII_STATUS_UNIMPLEMENTED);
  CHECK_THAT(out.message, Catch::Contains("needs a host with runner ABI 1.2; this host has 1.1"));
}

}  // namespace
