// Runner-defined metrics (ABI 1.3): the shared registry's rules
// (torii/metric_registry.h, used by the server and the fake host), and the
// C++ SDK's MetricFamily / Metric over the fake host's table.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "torii/testing/fake_host.h"

namespace {

using torii::host_metrics::Labels;
using torii::host_metrics::Limits;
using torii::host_metrics::Op;
using torii::host_metrics::Owner;
using torii::host_metrics::Registry;

ToriiMetricFamily* NewFamily(Owner& o, const char* name, ToriiMetricKind kind,
                             ToriiStatusCode want = TORII_STATUS_OK) {
  ToriiMetricFamily* f = nullptr;
  auto r = o.NewFamily(name, "help", kind, &f);
  INFO(r.message);
  CHECK(r.code == want);
  return f;
}

TEST_CASE("metric registry: names, labels and buckets follow Prometheus' rules", "[metrics]") {
  Registry reg;
  Owner o(&reg);
  NewFamily(o, "", TORII_METRIC_GAUGE, TORII_STATUS_INVALID_ARGUMENT);
  NewFamily(o, "1abc", TORII_METRIC_GAUGE, TORII_STATUS_INVALID_ARGUMENT);
  NewFamily(o, "a-b", TORII_METRIC_GAUGE, TORII_STATUS_INVALID_ARGUMENT);
  NewFamily(o, "torii_x", TORII_METRIC_GAUGE, TORII_STATUS_INVALID_ARGUMENT);
  NewFamily(o, "process_x", TORII_METRIC_GAUGE, TORII_STATUS_INVALID_ARGUMENT);
  NewFamily(o, "ok", static_cast<ToriiMetricKind>(7), TORII_STATUS_INVALID_ARGUMENT);
  auto* gauge = NewFamily(o, "ns:ok_1", TORII_METRIC_GAUGE);
  REQUIRE(gauge != nullptr);
  ToriiMetric* m = nullptr;
  auto label = [&](const char* k, const char* v) {
    return o.NewMetric(gauge, Labels{{k, v}}, {}, &m).code;
  };
  CHECK(label("a-b", "v") == TORII_STATUS_INVALID_ARGUMENT);
  CHECK(label("__x", "v") == TORII_STATUS_INVALID_ARGUMENT);
  CHECK(label("x", "\xff") == TORII_STATUS_INVALID_ARGUMENT);
  CHECK(label("x", "quote \" and \\ newline\n ok") == TORII_STATUS_OK);
  CHECK(o.NewMetric(gauge, Labels{{"x", "1"}, {"x", "2"}}, {}, &m).code ==
        TORII_STATUS_INVALID_ARGUMENT);
  CHECK(o.NewMetric(gauge, Labels{}, {1.0}, &m).code == TORII_STATUS_INVALID_ARGUMENT);

  auto* hist = NewFamily(o, "h", TORII_METRIC_HISTOGRAM);
  CHECK(o.NewMetric(hist, Labels{}, {}, &m).code == TORII_STATUS_INVALID_ARGUMENT);
  CHECK(o.NewMetric(hist, Labels{}, {2.0, 1.0}, &m).code == TORII_STATUS_INVALID_ARGUMENT);
  CHECK(o.NewMetric(hist, Labels{}, {1.0, std::numeric_limits<double>::infinity()}, &m).code ==
        TORII_STATUS_INVALID_ARGUMENT);
  CHECK(o.NewMetric(hist, Labels{{"le", "1"}}, {1.0}, &m).code == TORII_STATUS_INVALID_ARGUMENT);
  // A histogram's _bucket/_sum/_count names are taken, both ways round.
  NewFamily(o, "h_count", TORII_METRIC_COUNTER, TORII_STATUS_INVALID_ARGUMENT);
  NewFamily(o, "g_sum", TORII_METRIC_GAUGE);
  NewFamily(o, "g", TORII_METRIC_HISTOGRAM, TORII_STATUS_INVALID_ARGUMENT);
}

TEST_CASE("metric registry: kinds, shared series, values and release", "[metrics]") {
  Registry reg;
  {
    Owner a(&reg), b(&reg);
    auto* fa = NewFamily(a, "requests_total", TORII_METRIC_COUNTER);
    auto* fb = NewFamily(b, "requests_total", TORII_METRIC_COUNTER);
    NewFamily(b, "requests_total", TORII_METRIC_GAUGE, TORII_STATUS_INVALID_ARGUMENT);
    ToriiMetric *ma = nullptr, *mb = nullptr;
    REQUIRE(a.NewMetric(fa, Labels{{"m", "x"}, {"a", "1"}}, {}, &ma).ok());
    REQUIRE(b.NewMetric(fb, Labels{{"a", "1"}, {"m", "x"}}, {}, &mb).ok());  // same set
    CHECK(a.Update(ma, Op::kIncrement, 2).ok());
    CHECK(b.Update(mb, Op::kIncrement, 3).ok());
    CHECK(a.Update(ma, Op::kIncrement, -1).code == TORII_STATUS_INVALID_ARGUMENT);
    CHECK(a.Update(ma, Op::kIncrement, std::nan("")).code == TORII_STATUS_INVALID_ARGUMENT);
    CHECK(a.Update(ma, Op::kSet, 1).code == TORII_STATUS_UNIMPLEMENTED);
    CHECK(a.Update(ma, Op::kObserve, 1).code == TORII_STATUS_UNIMPLEMENTED);
    double v = 0;
    REQUIRE(a.Value(ma, &v).ok());
    CHECK(v == 5);
    CHECK(reg.series_count() == 1);
    a.DeleteMetric(ma);
    a.DeleteFamily(fa);
    CHECK(reg.family_count() == 1);  // b still holds it
    REQUIRE(b.Value(mb, &v).ok());
    CHECK(v == 5);

    auto* g = NewFamily(b, "level", TORII_METRIC_GAUGE);
    ToriiMetric* mg = nullptr;
    REQUIRE(b.NewMetric(g, Labels{}, {}, &mg).ok());
    CHECK(b.Update(mg, Op::kSet, 4).ok());
    CHECK(b.Update(mg, Op::kIncrement, -6).ok());
    REQUIRE(b.Value(mg, &v).ok());
    CHECK(v == -2);

    auto* h = NewFamily(b, "latency", TORII_METRIC_HISTOGRAM);
    ToriiMetric* mh = nullptr;
    REQUIRE(b.NewMetric(h, Labels{}, {1, 5}, &mh).ok());
    ToriiMetric* other = nullptr;
    CHECK(b.NewMetric(h, Labels{}, {1, 6}, &other).code == TORII_STATUS_INVALID_ARGUMENT);
    for (double x : {0.5, 1.0, 3.0, 7.0}) CHECK(b.Update(mh, Op::kObserve, x).ok());
    CHECK(b.Value(mh, &v).code == TORII_STATUS_UNIMPLEMENTED);
    for (const auto& f : reg.Snapshot()) {
      if (f.name != "latency") continue;
      const auto& s = *f.series.begin()->second;
      CHECK(s.counts == std::vector<uint64_t>{2, 1, 1});
      CHECK(s.count == 4);
      CHECK(s.sum == 11.5);
    }
    // b goes (its model unloads): everything it held leaves the registry.
  }
  CHECK(reg.family_count() == 0);
  CHECK(reg.series_count() == 0);
  CHECK(reg.Snapshot().empty());
}

TEST_CASE("metric registry: limits on families, series and handles", "[metrics]") {
  Limits limits;
  limits.max_families = 2;
  limits.max_series = 3;
  limits.max_handles = 6;
  Registry reg(limits);
  Owner o(&reg);
  auto* f1 = NewFamily(o, "a", TORII_METRIC_GAUGE);
  NewFamily(o, "b", TORII_METRIC_GAUGE);
  NewFamily(o, "c", TORII_METRIC_GAUGE, TORII_STATUS_RESOURCE_EXHAUSTED);
  ToriiMetric* m = nullptr;
  for (const char* v : {"1", "2", "3"}) REQUIRE(o.NewMetric(f1, Labels{{"k", v}}, {}, &m).ok());
  CHECK(o.NewMetric(f1, Labels{{"k", "4"}}, {}, &m).code == TORII_STATUS_RESOURCE_EXHAUSTED);
  CHECK(o.NewMetric(f1, Labels{{"k", "1"}}, {}, &m).ok());  // an existing series: a 6th handle
  CHECK(o.NewMetric(f1, Labels{{"k", "1"}}, {}, &m).code == TORII_STATUS_RESOURCE_EXHAUSTED);
}

TEST_CASE("SDK MetricFamily and Metric over the fake host's table", "[metrics]") {
  Registry reg;
  ToriiModel model;
  model.metrics = std::make_unique<Owner>(&reg);
  torii::ModelContext ctx(torii::testing::fake_detail::Api(), &model);
  {
    torii::MetricFamily family = ctx.NewMetricFamily("sdk_total", "from the SDK",
                                                     TORII_METRIC_COUNTER);
    torii::Metric m = family.NewMetric({{"model", "x"}});
    m.Increment(2.5);
    CHECK(m.Value() == 2.5);
    try {
      m.Set(1);
      FAIL("Set on a counter must throw");
    } catch (const torii::Error& e) {
      CHECK(e.code() == TORII_STATUS_UNIMPLEMENTED);
    }
    CHECK_THROWS_AS(ctx.NewMetricFamily("bad name", "", TORII_METRIC_GAUGE), torii::Error);
    CHECK(reg.series_count() == 1);
  }
  // The SDK's handles released the family and series when they went.
  CHECK(reg.family_count() == 0);
  CHECK(reg.series_count() == 0);
}

}  // namespace
