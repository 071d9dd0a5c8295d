// Runner-defined metrics (runner ABI 1.3) on the host's side: the checks on
// names, labels and buckets, the registry of families and series with their
// values and limits, and the per-model handles behind ToriiMetricFamily and
// ToriiMetric. One header-only copy, used by torii-server (in process and in
// torii-runner-host children) and by the SDK's fake host, so a runner that
// passes its unit tests meets the same rules in the server. Header-only
// C++17; no dependencies beyond the ABI header and the standard library.
#ifndef TORII_METRIC_REGISTRY_H_
#define TORII_METRIC_REGISTRY_H_

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "torii/runner_abi.h"

namespace torii {
namespace host_metrics {

/// Sorted by label name.
using Labels = std::vector<std::pair<std::string, std::string>>;

/// What a host accepts from runners; passing a limit is RESOURCE_EXHAUSTED.
struct Limits {
  size_t max_families = 1000;       // families on the whole host
  size_t max_series = 10000;        // series (label sets) on the whole host
  size_t max_handles = 10000;       // live handles of one model
  size_t max_labels = 32;           // labels per metric
  size_t max_buckets = 100;         // histogram buckets per metric
  size_t max_name_bytes = 200;      // family and label names
  size_t max_description_bytes = 4096;
  size_t max_label_value_bytes = 1024;
};

struct Result {
  ToriiStatusCode code = TORII_STATUS_OK;
  std::string message;
  bool ok() const { return code == TORII_STATUS_OK; }
};
inline Result Fail(ToriiStatusCode code, std::string message) {
  return Result{code, std::move(message)};
}

inline const char* KindName(ToriiMetricKind kind) {
  switch (kind) {
    case TORII_METRIC_COUNTER: return "counter";
    case TORII_METRIC_GAUGE: return "gauge";
    case TORII_METRIC_HISTOGRAM: return "histogram";
    default: return "unknown";
  }
}

inline bool ValidUtf8(const std::string& s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t extra;
    uint32_t cp;
    if (c < 0x80) { ++i; continue; }
    if ((c & 0xE0) == 0xC0) { extra = 1; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { extra = 2; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { extra = 3; cp = c & 0x07; }
    else return false;
    if (i + extra >= n) return false;  // truncated sequence
    for (size_t k = 1; k <= extra; ++k) {
      const unsigned char d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800) || (extra == 3 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += extra + 1;
  }
  return true;
}

/// Empty when `name` is a Prometheus metric name the host accepts.
inline std::string CheckMetricName(const std::string& name, const Limits& limits) {
  if (name.empty()) return "a metric family name must not be empty";
  if (name.size() > limits.max_name_bytes) {
    return "metric family name '" + name.substr(0, 40) + "...' is " +
           std::to_string(name.size()) + " bytes long; at most " +
           std::to_string(limits.max_name_bytes) + " are allowed";
  }
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                    (i > 0 && c >= '0' && c <= '9');
    if (!ok) {
      return "metric family name '" + name +
             "' is not a Prometheus metric name: expected [a-zA-Z_:][a-zA-Z0-9_:]*, found '" +
             std::string(1, c) + "' at position " + std::to_string(i);
    }
  }
  for (const char* reserved : {"torii_", "process_", "exposer_"}) {
    if (name.rfind(reserved, 0) == 0) {
      return "metric family name '" + name + "' starts with '" + reserved +
             "', which the server keeps for its own metrics; choose another name";
    }
  }
  return "";
}

/// Empty when `name` is a label name the host accepts.
inline std::string CheckLabelName(const std::string& name, const Limits& limits) {
  if (name.empty()) return "a label name must not be empty";
  if (name.size() > limits.max_name_bytes) {
    return "label name '" + name.substr(0, 40) + "...' is too long (at most " +
           std::to_string(limits.max_name_bytes) + " bytes)";
  }
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                    (i > 0 && c >= '0' && c <= '9');
    if (!ok) {
      return "label name '" + name +
             "' is not a Prometheus label name: expected [a-zA-Z_][a-zA-Z0-9_]*, found '" +
             std::string(1, c) + "' at position " + std::to_string(i);
    }
  }
  if (name.rfind("__", 0) == 0) {
    return "label name '" + name + "' starts with '__', which Prometheus reserves";
  }
  return "";
}

/// One labelled series and its value.
struct Series {
  Labels labels;
  std::vector<double> bounds;    // histogram upper bounds (without +Inf)
  double value = 0;              // counter, gauge
  std::vector<uint64_t> counts;  // histogram: per bucket, not cumulative; +Inf last
  double sum = 0;
  uint64_t count = 0;
  size_t refs = 0;
};

struct Family {
  std::string name;
  std::string help;
  ToriiMetricKind kind = TORII_METRIC_COUNTER;
  std::map<Labels, std::shared_ptr<Series>> series;
  size_t refs = 0;  // family handles plus series
};

enum class Op { kIncrement, kSet, kObserve };

/// The families and series of one host, with their values. Thread-safe.
class Registry {
 public:
  explicit Registry(Limits limits = {}) : limits_(limits) {}
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  const Limits& limits() const { return limits_; }

  /// Finds or makes the family `name`; counts one reference to it.
  Result AcquireFamily(const std::string& name, const std::string& help, ToriiMetricKind kind,
                       std::shared_ptr<Family>* out) {
    if (kind != TORII_METRIC_COUNTER && kind != TORII_METRIC_GAUGE &&
        kind != TORII_METRIC_HISTOGRAM) {
      return Fail(TORII_STATUS_INVALID_ARGUMENT,
                  "metric family '" + name + "': unknown kind " + std::to_string(int(kind)) +
                      " (expected COUNTER, GAUGE or HISTOGRAM)");
    }
    std::string bad = CheckMetricName(name, limits_);
    if (!bad.empty()) return Fail(TORII_STATUS_INVALID_ARGUMENT, bad);
    if (help.size() > limits_.max_description_bytes) {
      return Fail(TORII_STATUS_INVALID_ARGUMENT,
                  "metric family '" + name + "': the description is " +
                      std::to_string(help.size()) + " bytes long; at most " +
                      std::to_string(limits_.max_description_bytes) + " are allowed");
    }
    if (!ValidUtf8(help)) {
      return Fail(TORII_STATUS_INVALID_ARGUMENT,
                  "metric family '" + name + "': the description is not valid UTF-8");
    }
    std::lock_guard<std::mutex> lock(mu_);
    auto it = families_.find(name);
    if (it != families_.end()) {
      if (it->second->kind != kind) {
        return Fail(TORII_STATUS_INVALID_ARGUMENT,
                    "metric family '" + name + "' already exists as a " +
                        KindName(it->second->kind) + "; it cannot also be a " + KindName(kind));
      }
      ++it->second->refs;
      *out = it->second;
      return {};
    }
    // A histogram 'x' writes x_bucket, x_sum and x_count: no family may
    // take those names, or the page would hold one name twice.
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      const std::string s(suffix);
      if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
        auto h = families_.find(name.substr(0, name.size() - s.size()));
        if (h != families_.end() && h->second->kind == TORII_METRIC_HISTOGRAM) {
          return Fail(TORII_STATUS_INVALID_ARGUMENT,
                      "metric family name '" + name + "' collides with the " + suffix +
                          " series of histogram '" + h->first + "'");
        }
      }
      if (kind == TORII_METRIC_HISTOGRAM && families_.count(name + s) != 0) {
        return Fail(TORII_STATUS_INVALID_ARGUMENT,
                    "histogram '" + name + "' would write series '" + name + s +
                        "', which is already a metric family");
      }
    }
    if (families_.size() >= limits_.max_families) {
      return Fail(TORII_STATUS_RESOURCE_EXHAUSTED,
                  "metric family '" + name + "': the server already has " +
                      std::to_string(families_.size()) +
                      " runner-defined metric families, the most it allows");
    }
    auto f = std::make_shared<Family>();
    f->name = name;
    f->help = help;
    f->kind = kind;
    f->refs = 1;
    families_[name] = f;
    *out = std::move(f);
    return {};
  }

  void ReleaseFamily(const std::shared_ptr<Family>& f) {
    std::lock_guard<std::mutex> lock(mu_);
    ReleaseFamilyLocked(f);
  }

  /// Finds or makes the series of `f` with `labels` (any order; sorted
  /// here); counts one reference to it (and to the family).
  Result AcquireSeries(const std::shared_ptr<Family>& f, Labels labels,
                       std::vector<double> buckets, std::shared_ptr<Series>* out) {
    const std::string who = "metric family '" + f->name + "'";
    if (labels.size() > limits_.max_labels) {
      return Fail(TORII_STATUS_INVALID_ARGUMENT,
                  who + ": a metric has " + std::to_string(labels.size()) +
                      " labels; at most " + std::to_string(limits_.max_labels) + " are allowed");
    }
    std::sort(labels.begin(), labels.end());
    for (size_t i = 0; i < labels.size(); ++i) {
      std::string bad = CheckLabelName(labels[i].first, limits_);
      if (!bad.empty()) return Fail(TORII_STATUS_INVALID_ARGUMENT, who + ": " + bad);
      if (i > 0 && labels[i].first == labels[i - 1].first) {
        return Fail(TORII_STATUS_INVALID_ARGUMENT,
                    who + ": label '" + labels[i].first + "' is given twice");
      }
      if (f->kind == TORII_METRIC_HISTOGRAM && labels[i].first == "le") {
        return Fail(TORII_STATUS_INVALID_ARGUMENT,
                    who + ": a histogram may not have a label 'le' (its buckets use it)");
      }
      if (labels[i].second.size() > limits_.max_label_value_bytes) {
        return Fail(TORII_STATUS_INVALID_ARGUMENT,
                    who + ": the value of label '" + labels[i].first + "' is " +
                        std::to_string(labels[i].second.size()) + " bytes long; at most " +
                        std::to_string(limits_.max_label_value_bytes) + " are allowed");
      }
      if (!ValidUtf8(labels[i].second)) {
        return Fail(TORII_STATUS_INVALID_ARGUMENT,
                    who + ": the value of label '" + labels[i].first + "' is not valid UTF-8");
      }
    }
    if (f->kind == TORII_METRIC_HISTOGRAM) {
      if (buckets.empty()) {
        return Fail(TORII_STATUS_INVALID_ARGUMENT,
                    who + " is a histogram: a metric needs its bucket boundaries");
      }
      if (buckets.size() > limits_.max_buckets) {
        return Fail(TORII_STATUS_INVALID_ARGUMENT,
                    who + ": " + std::to_string(buckets.size()) + " buckets; at most " +
                        std::to_string(limits_.max_buckets) + " are allowed");
      }
      for (size_t i = 0; i < buckets.size(); ++i) {
        if (!std::isfinite(buckets[i])) {
          return Fail(TORII_STATUS_INVALID_ARGUMENT,
                      who + ": bucket " + std::to_string(i) +
                          " is not a finite number (the +Inf bucket is implicit)");
        }
        if (i > 0 && !(buckets[i] > buckets[i - 1])) {
          return Fail(TORII_STATUS_INVALID_ARGUMENT,
                      who + ": buckets must be strictly increasing; bucket " + std::to_string(i) +
                          " (" + std::to_string(buckets[i]) + ") is not above bucket " +
                          std::to_string(i - 1) + " (" + std::to_string(buckets[i - 1]) + ")");
        }
      }
    } else if (!buckets.empty()) {
      return Fail(TORII_STATUS_INVALID_ARGUMENT,
                  who + " is a " + KindName(f->kind) + ": only histograms take buckets");
    }
    std::lock_guard<std::mutex> lock(mu_);
    auto it = f->series.find(labels);
    if (it != f->series.end()) {
      if (it->second->bounds != buckets) {
        return Fail(TORII_STATUS_INVALID_ARGUMENT,
                    who + ": a metric with these labels already exists with other buckets");
      }
      ++it->second->refs;
      ++f->refs;
      *out = it->second;
      return {};
    }
    if (series_count_ >= limits_.max_series) {
      return Fail(TORII_STATUS_RESOURCE_EXHAUSTED,
                  who + ": the server already has " + std::to_string(series_count_) +
                      " runner-defined metrics (label sets), the most it allows");
    }
    auto s = std::make_shared<Series>();
    s->labels = labels;
    s->bounds = std::move(buckets);
    if (f->kind == TORII_METRIC_HISTOGRAM) s->counts.assign(s->bounds.size() + 1, 0);
    s->refs = 1;
    ++f->refs;
    ++series_count_;
    f->series[std::move(labels)] = s;
    *out = std::move(s);
    return {};
  }

  void ReleaseSeries(const std::shared_ptr<Family>& f, const std::shared_ptr<Series>& s) {
    std::lock_guard<std::mutex> lock(mu_);
    if (s->refs > 0 && --s->refs == 0) {
      auto it = f->series.find(s->labels);
      if (it != f->series.end() && it->second == s) {
        f->series.erase(it);
        --series_count_;
      }
    }
    ReleaseFamilyLocked(f);
  }

  Result Update(const Family& f, Series& s, Op op, double v) {
    const std::string who = "metric of family '" + f.name + "' (" + KindName(f.kind) + ")";
    switch (op) {
      case Op::kIncrement:
        if (f.kind == TORII_METRIC_HISTOGRAM) {
          return Fail(TORII_STATUS_UNIMPLEMENTED,
                      who + ": a histogram cannot be incremented; use observe()");
        }
        if (f.kind == TORII_METRIC_COUNTER && !(v >= 0)) {
          return Fail(TORII_STATUS_INVALID_ARGUMENT,
                      who + ": a counter only goes up; increment() needs a value >= 0, got " +
                          std::to_string(v));
        }
        break;
      case Op::kSet:
        if (f.kind != TORII_METRIC_GAUGE) {
          return Fail(TORII_STATUS_UNIMPLEMENTED,
                      who + ": only a gauge can be set" +
                          (f.kind == TORII_METRIC_COUNTER ? "; use increment()" : "; use observe()"));
        }
        break;
      case Op::kObserve:
        if (f.kind != TORII_METRIC_HISTOGRAM) {
          return Fail(TORII_STATUS_UNIMPLEMENTED,
                      who + ": only a histogram observes values; use " +
                          (f.kind == TORII_METRIC_COUNTER ? "increment()" : "set() or increment()"));
        }
        break;
    }
    std::lock_guard<std::mutex> lock(mu_);
    switch (op) {
      case Op::kIncrement: s.value += v; break;
      case Op::kSet: s.value = v; break;
      case Op::kObserve: {
        const size_t b = static_cast<size_t>(
            std::lower_bound(s.bounds.begin(), s.bounds.end(), v) - s.bounds.begin());
        ++s.counts[b];  // NaN lands in +Inf, as in Prometheus' clients
        s.sum += v;
        ++s.count;
        break;
      }
    }
    return {};
  }

  Result Value(const Family& f, const Series& s, double* out) const {
    if (f.kind == TORII_METRIC_HISTOGRAM) {
      return Fail(TORII_STATUS_UNIMPLEMENTED,
                  "metric of histogram '" + f.name + "': a histogram has no single value");
    }
    std::lock_guard<std::mutex> lock(mu_);
    *out = s.value;
    return {};
  }

  /// A copy of every family with at least one series, by name.
  std::vector<Family> Snapshot() const {
    std::vector<Family> out;
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [name, f] : families_) {
      if (f->series.empty()) continue;
      Family c;
      c.name = f->name;
      c.help = f->help;
      c.kind = f->kind;
      for (const auto& [labels, s] : f->series) c.series[labels] = std::make_shared<Series>(*s);
      out.push_back(std::move(c));
    }
    return out;
  }

  size_t family_count() const {
    std::lock_guard<std::mutex> lock(mu_);
    return families_.size();
  }
  size_t series_count() const {
    std::lock_guard<std::mutex> lock(mu_);
    return series_count_;
  }

 private:
  void ReleaseFamilyLocked(const std::shared_ptr<Family>& f) {
    if (f->refs > 0 && --f->refs == 0) {
      auto it = families_.find(f->name);
      if (it != families_.end() && it->second == f) families_.erase(it);
    }
  }

  const Limits limits_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Family>> families_;
  size_t series_count_ = 0;
};

class Owner;

}  // namespace host_metrics
}  // namespace torii

// The objects behind the ABI's opaque metric handles (the same in every
// host that uses this header).
struct ToriiMetricFamily {
  torii::host_metrics::Owner* owner = nullptr;
  std::shared_ptr<torii::host_metrics::Family> family;
  uint64_t id = 0;
};

struct ToriiMetric {
  torii::host_metrics::Owner* owner = nullptr;
  std::shared_ptr<torii::host_metrics::Family> family;
  std::shared_ptr<torii::host_metrics::Series> series;
  uint64_t id = 0;
};

namespace torii {
namespace host_metrics {

/// Told, in order, what the runner did with the handles of one Owner (a
/// runner host forwards it to the server). Called with the owner's lock
/// held, after the operation succeeded locally.
class Observer {
 public:
  virtual ~Observer() = default;
  virtual void FamilyCreated(uint64_t id, const std::string& name, const std::string& help,
                             ToriiMetricKind kind) = 0;
  virtual void FamilyDeleted(uint64_t id) = 0;
  virtual void MetricCreated(uint64_t id, uint64_t family_id, const Labels& labels,
                             const std::vector<double>& buckets) = 0;
  virtual void MetricDeleted(uint64_t id) = 0;
  virtual void Updated(uint64_t id, Op op, double value) = 0;
};

/// The handles of one model (or one child process, in the server): what the
/// runner has not deleted is released when the Owner goes (model unload).
class Owner {
 public:
  explicit Owner(Registry* registry, Observer* observer = nullptr)
      : registry_(registry), observer_(observer) {}
  ~Owner() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, m] : metrics_) registry_->ReleaseSeries(m->family, m->series);
    for (auto& [id, f] : families_) registry_->ReleaseFamily(f->family);
  }
  Owner(const Owner&) = delete;
  Owner& operator=(const Owner&) = delete;

  Registry* registry() const { return registry_; }
  size_t handle_count() const {
    std::lock_guard<std::mutex> lock(mu_);
    return families_.size() + metrics_.size();
  }

  Result NewFamily(const char* name, const char* help, ToriiMetricKind kind,
                   ToriiMetricFamily** out) {
    if (name == nullptr || out == nullptr) {
      return Fail(TORII_STATUS_INVALID_ARGUMENT, "metric_family_new: name and out are required");
    }
    std::lock_guard<std::mutex> lock(mu_);
    Result r = CheckHandles();
    if (!r.ok()) return r;
    auto h = std::make_unique<ToriiMetricFamily>();
    const std::string description = help == nullptr ? "" : help;
    r = registry_->AcquireFamily(name, description, kind, &h->family);
    if (!r.ok()) return r;
    h->owner = this;
    h->id = next_id_++;
    if (observer_ != nullptr) observer_->FamilyCreated(h->id, name, description, kind);
    *out = h.get();
    families_[h->id] = std::move(h);
    return {};
  }

  void DeleteFamily(ToriiMetricFamily* f) {
    if (f == nullptr) return;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = families_.find(f->id);
    if (it == families_.end() || it->second.get() != f) return;
    registry_->ReleaseFamily(f->family);
    if (observer_ != nullptr) observer_->FamilyDeleted(f->id);
    families_.erase(it);
  }

  Result NewMetric(ToriiMetricFamily* f, const char* const* names, const char* const* values,
                   size_t n, const double* buckets, size_t bucket_count, ToriiMetric** out) {
    if (f == nullptr || out == nullptr || (n > 0 && (names == nullptr || values == nullptr)) ||
        (bucket_count > 0 && buckets == nullptr)) {
      return Fail(TORII_STATUS_INVALID_ARGUMENT,
                  "metric_new: family, out, and the label and bucket arrays their counts name "
                  "are required");
    }
    Labels labels;
    for (size_t i = 0; i < n; ++i) {
      if (names[i] == nullptr || values[i] == nullptr) {
        return Fail(TORII_STATUS_INVALID_ARGUMENT,
                    "metric_new: label " + std::to_string(i) + " has a NULL name or value");
      }
      labels.emplace_back(names[i], values[i]);
    }
    return NewMetric(f, std::move(labels),
                     std::vector<double>(buckets, buckets + bucket_count), out);
  }

  Result NewMetric(ToriiMetricFamily* f, Labels labels, std::vector<double> buckets,
                   ToriiMetric** out) {
    std::lock_guard<std::mutex> lock(mu_);
    Result r = CheckHandles();
    if (!r.ok()) return r;
    auto h = std::make_unique<ToriiMetric>();
    r = registry_->AcquireSeries(f->family, std::move(labels), std::move(buckets), &h->series);
    if (!r.ok()) return r;
    h->owner = this;
    h->family = f->family;
    h->id = next_id_++;
    if (observer_ != nullptr) {
      observer_->MetricCreated(h->id, f->id, h->series->labels, h->series->bounds);
    }
    *out = h.get();
    metrics_[h->id] = std::move(h);
    return {};
  }

  void DeleteMetric(ToriiMetric* m) {
    if (m == nullptr) return;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = metrics_.find(m->id);
    if (it == metrics_.end() || it->second.get() != m) return;
    registry_->ReleaseSeries(m->family, m->series);
    if (observer_ != nullptr) observer_->MetricDeleted(m->id);
    metrics_.erase(it);
  }

  Result Update(ToriiMetric* m, Op op, double v) {
    if (m == nullptr) return Fail(TORII_STATUS_INVALID_ARGUMENT, "metric: NULL handle");
    // The owner's lock orders the local update and the forwarded one alike.
    std::lock_guard<std::mutex> lock(mu_);
    Result r = registry_->Update(*m->family, *m->series, op, v);
    if (r.ok() && observer_ != nullptr) observer_->Updated(m->id, op, v);
    return r;
  }

  Result Value(const ToriiMetric* m, double* out) const {
    if (m == nullptr || out == nullptr) {
      return Fail(TORII_STATUS_INVALID_ARGUMENT, "metric_value: metric and out are required");
    }
    return registry_->Value(*m->family, *m->series, out);
  }

 private:
  Result CheckHandles() const {
    if (families_.size() + metrics_.size() >= registry_->limits().max_handles) {
      return Fail(TORII_STATUS_RESOURCE_EXHAUSTED,
                  "the model already holds " + std::to_string(families_.size() + metrics_.size()) +
                      " metric handles, the most allowed; delete the ones it no longer uses");
    }
    return {};
  }

  Registry* const registry_;
  Observer* const observer_;
  mutable std::mutex mu_;
  uint64_t next_id_ = 1;
  std::map<uint64_t, std::unique_ptr<ToriiMetricFamily>> families_;
  std::map<uint64_t, std::unique_ptr<ToriiMetric>> metrics_;
};

}  // namespace host_metrics
}  // namespace torii

#endif  // TORII_METRIC_REGISTRY_H_
