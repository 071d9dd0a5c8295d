// pb_utils.MetricFamily / Metric (Triton's custom metrics) through the SDK's
// fake host, which keeps runner-defined metrics with the server's own
// registry code (torii/metric_registry.h): values, labels, kinds, Triton's
// errors, and release at unload. Expected values are computed here.
#include <cmath>

#include "python_test_util.h"

namespace torii_python_test {
namespace {

ModelSpec MetricsModel(const TempDir& dir, const std::string& name) {
  return MakeModel(dir, "metrics", name, 0, {{"X", TORII_TYPE_FP32, {-1}}},
                   {{"Y", TORII_TYPE_FP32, {-1}},
                    {"COUNT", TORII_TYPE_FP64, {1}},
                    {"ERRORS", TORII_TYPE_BYTES, {-1}}});
}

Request X(std::vector<float> x) {
  Request r;
  r.inputs = {Tensor::Of<float>("X", {int64_t(x.size())}, x)};
  return r;
}

const torii::host_metrics::Family* Find(const std::vector<torii::host_metrics::Family>& all,
                                        const std::string& name) {
  for (const auto& f : all) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

TEST_CASE("python runner metrics: counter, gauge and histogram reach the host", "[python]") {
  TempDir dir;
  auto model = Host().Load(MetricsModel(dir, "metered"));
  auto instance = model->CreateInstance();
  const std::vector<std::vector<float>> inputs = {{0.25f, 1.5f}, {3.0f}, {0.75f, 0.5f, 2.0f}};
  double sum = 0;
  for (const auto& x : inputs) {
    auto out = instance->Infer(X(x).inputs);
    REQUIRE(out.ok());
    for (float v : x) sum += v;
  }
  const torii::host_metrics::Labels ok = {{"kind", "ok"}, {"model", "metered"}};
  CHECK(Host().MetricValue("test_requests_total", ok) == double(inputs.size()));
  CHECK(Host().MetricValue("test_rows_in_flight", {{"model", "metered"}}) == 3.0);

  const auto all = Host().metrics().Snapshot();
  const auto* counter = Find(all, "test_requests_total");
  REQUIRE(counter != nullptr);
  CHECK(counter->kind == TORII_METRIC_COUNTER);
  CHECK(counter->help == "Requests the test model answered");
  const auto* hist = Find(all, "test_observed_values");
  REQUIRE(hist != nullptr);
  REQUIRE(hist->series.size() == 1);
  const auto& s = *hist->series.begin()->second;
  CHECK(s.bounds == std::vector<double>{0.5, 1.0, 2.0});
  // le 0.5: 0.25, 0.5; le 1.0: 0.75; le 2.0: 1.5, 2.0; +Inf: 3.0
  CHECK(s.counts == std::vector<uint64_t>{2, 1, 2, 1});
  CHECK(s.count == 6);
  CHECK(std::fabs(s.sum - sum) < 1e-6);

  SECTION("value() is the counter's value") {
    auto out = instance->Infer(X({1.0f}).inputs);
    REQUIRE(out.ok());
    CHECK(out.output("COUNT").values<double>() == std::vector<double>{double(inputs.size() + 1)});
  }
  SECTION("a second instance shares the series (same name, kind and labels)") {
    auto second = model->CreateInstance(1);
    REQUIRE(second->Infer(X({1.0f}).inputs).ok());
    CHECK(Host().MetricValue("test_requests_total", ok) == double(inputs.size() + 1));
  }
}

TEST_CASE("python runner metrics: Triton's errors, and the host's name rules", "[python]") {
  TempDir dir;
  auto model = Host().Load(MetricsModel(dir, "erring"));
  auto instance = model->CreateInstance();
  auto out = instance->Infer(X({-1.0f}).inputs);
  REQUIRE(out.ok());
  const auto errors = out.output("ERRORS").strings();
  REQUIRE(errors.size() == 9);
  CHECK_THAT(errors[0], Catch::Contains("a counter only goes up"));
  CHECK_THAT(errors[1], Catch::Contains("only a gauge can be set"));
  CHECK_THAT(errors[2], Catch::Contains("a histogram has no single value"));
  CHECK_THAT(errors[3], Catch::Contains("'bad name!' is not a Prometheus metric name"));
  CHECK_THAT(errors[4], Catch::Contains("already exists as a counter; it cannot also be a gauge"));
  CHECK_THAT(errors[5], Catch::Contains("keeps for its own metrics"));
  CHECK_THAT(errors[6], Catch::Contains("'bad-label' is not a Prometheus label name"));
  CHECK(errors[7] == "Failed to create metric. Labels must be a dictionary.");
  CHECK(errors[8] == "Failed to create metric. Unexpected buckets found.");
  // No failed operation changed a value.
  CHECK(Host().MetricValue("test_requests_total", {{"kind", "ok"}, {"model", "erring"}}) == 0.0);
}

TEST_CASE("python runner metrics: a model's metrics go when it unloads", "[python]") {
  TempDir dir;
  {
    auto model = Host().Load(MetricsModel(dir, "leaving"));
    auto instance = model->CreateInstance();
    REQUIRE(instance->Infer(X({1.0f}).inputs).ok());
    CHECK(Host().MetricValue("test_requests_total", {{"kind", "ok"}, {"model", "leaving"}}) == 1.0);
  }
  CHECK_FALSE(Host().MetricValue("test_requests_total", {{"kind", "ok"}, {"model", "leaving"}}));
  CHECK(Find(Host().metrics().Snapshot(), "test_observed_values") == nullptr);
}

}  // namespace
}  // namespace torii_python_test
