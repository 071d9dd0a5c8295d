// Torii C++ runner SDK: header-only sugar over the C ABI in runner_abi.h.
//
// A runner is two small classes and one macro:
//
//   class MyInstance : public torii::Instance {
//    public:
//     void Execute(torii::Batch& batch) override { ... }
//   };
//   class MyModel : public torii::Model {
//    public:
//     explicit MyModel(const torii::ModelContext& ctx) { ... load weights ... }
//     std::unique_ptr<torii::Instance> CreateInstance(uint32_t index) override {
//       return std::make_unique<MyInstance>(...);
//     }
//   };
//   TORII_RUNNER(MyModel, "my_runner", "1.0.0")
//
// Throw torii::Error(code, message) (or any std::exception) to fail; the
// macro's entry points catch everything, so no exception crosses the ABI.
// Threading: Execute() of one instance is never called concurrently; different
// instances run in parallel, so share only immutable state through the Model.
//
// ABI 1.2 adds (each throws torii::Error(TORII_STATUS_UNIMPLEMENTED) on an
// older host):
//   - per request: Batch::request_id(), request_output_requested(),
//     request_parameters();
//   - many responses per request, from any thread, during or after Execute()
//     (decoupled models): Batch::TakeResponseSender(), ResponseSender,
//     Response;
//   - calls to other models of the server: ModelCall, CallResult;
//   - ModelContext::SetConfigJson() (auto-complete, in the Model constructor)
//     and ModelContext::ReportProperty() (provenance facts).
//
// ABI 1.3 adds runner-defined metrics on the server's /metrics:
// ModelContext::NewMetricFamily() -> MetricFamily, MetricFamily::NewMetric()
// -> Metric (Increment, Set, Observe, Value). On an older host they throw
// torii::Error(TORII_STATUS_UNIMPLEMENTED).
#ifndef TORII_RUNNER_H_
#define TORII_RUNNER_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "torii/host_checks.h"
#include "torii/runner_abi.h"

#define TORII_SDK_VERSION "0.1.0"

// Set by torii_add_runner() from the runner's git revision.
#ifndef TORII_RUNNER_SOURCE_REVISION
#define TORII_RUNNER_SOURCE_REVISION "unknown"
#endif

#if defined(__clang__)
#define TORII_SDK_COMPILER "clang " __clang_version__
#elif defined(__GNUC__)
#define TORII_SDK_COMPILER "gcc " __VERSION__
#else
#define TORII_SDK_COMPILER "unknown"
#endif

namespace torii {

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// An error with a status code. Throw it from any runner method; the client
/// receives `code` (a gRPC code) and the message.
class Error : public std::runtime_error {
 public:
  Error(ToriiStatusCode code, const std::string& message)
      : std::runtime_error(message), code_(code) {}
  ToriiStatusCode code() const { return code_; }

 private:
  ToriiStatusCode code_;
};

// ---------------------------------------------------------------------------
// Datatypes
// ---------------------------------------------------------------------------

/// Bytes per element; 0 for BYTES (variable) and INVALID.
inline size_t DataTypeSize(ToriiDataType t) {
  switch (t) {
    case TORII_TYPE_BOOL:
    case TORII_TYPE_UINT8:
    case TORII_TYPE_INT8:
      return 1;
    case TORII_TYPE_UINT16:
    case TORII_TYPE_INT16:
    case TORII_TYPE_FP16:
    case TORII_TYPE_BF16:
      return 2;
    case TORII_TYPE_UINT32:
    case TORII_TYPE_INT32:
    case TORII_TYPE_FP32:
      return 4;
    case TORII_TYPE_UINT64:
    case TORII_TYPE_INT64:
    case TORII_TYPE_FP64:
      return 8;
    default:
      return 0;
  }
}

/// The v2 datatype name ("FP32", "BYTES", ...).
inline const char* DataTypeName(ToriiDataType t) { return host_checks::TypeName(t); }

/// Maps a C++ element type to its datatype, for typed views.
template <typename T> struct DataTypeOf;
template <> struct DataTypeOf<bool> { static constexpr ToriiDataType value = TORII_TYPE_BOOL; };
template <> struct DataTypeOf<uint8_t> { static constexpr ToriiDataType value = TORII_TYPE_UINT8; };
template <> struct DataTypeOf<uint16_t> { static constexpr ToriiDataType value = TORII_TYPE_UINT16; };
template <> struct DataTypeOf<uint32_t> { static constexpr ToriiDataType value = TORII_TYPE_UINT32; };
template <> struct DataTypeOf<uint64_t> { static constexpr ToriiDataType value = TORII_TYPE_UINT64; };
template <> struct DataTypeOf<int8_t> { static constexpr ToriiDataType value = TORII_TYPE_INT8; };
template <> struct DataTypeOf<int16_t> { static constexpr ToriiDataType value = TORII_TYPE_INT16; };
template <> struct DataTypeOf<int32_t> { static constexpr ToriiDataType value = TORII_TYPE_INT32; };
template <> struct DataTypeOf<int64_t> { static constexpr ToriiDataType value = TORII_TYPE_INT64; };
template <> struct DataTypeOf<float> { static constexpr ToriiDataType value = TORII_TYPE_FP32; };
template <> struct DataTypeOf<double> { static constexpr ToriiDataType value = TORII_TYPE_FP64; };

// ---------------------------------------------------------------------------
// Views
// ---------------------------------------------------------------------------

/// A non-owning array view (C++17 has no std::span).
template <typename T>
class Span {
 public:
  Span() = default;
  Span(T* data, size_t size) : data_(data), size_(size) {}
  T* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  T& operator[](size_t i) const { return data_[i]; }
  T* begin() const { return data_; }
  T* end() const { return data_ + size_; }

 private:
  T* data_ = nullptr;
  size_t size_ = 0;
};

/// Product of the dimensions (1 for a scalar).
inline int64_t ElementCount(Span<const int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

/// Decodes a BYTES buffer (4-byte little-endian length + bytes, repeated)
/// into views of its elements. Throws INVALID_ARGUMENT if the prefixes do
/// not tile the buffer exactly.
inline std::vector<std::string_view> DecodeBytes(const void* data,
                                                 size_t byte_size) {
  std::vector<std::string_view> out;
  const auto* p = static_cast<const unsigned char*>(data);
  size_t pos = 0;
  while (pos < byte_size) {
    if (byte_size - pos < 4) {
      throw Error(TORII_STATUS_INVALID_ARGUMENT,
                  "BYTES tensor: truncated length prefix");
    }
    const uint32_t len = uint32_t(p[pos]) | (uint32_t(p[pos + 1]) << 8) |
                         (uint32_t(p[pos + 2]) << 16) |
                         (uint32_t(p[pos + 3]) << 24);
    pos += 4;
    if (len > byte_size - pos) {
      throw Error(TORII_STATUS_INVALID_ARGUMENT,
                  "BYTES tensor: element length runs past the buffer");
    }
    out.emplace_back(reinterpret_cast<const char*>(p + pos), len);
    pos += len;
  }
  return out;
}

/// Appends one BYTES element (length prefix + bytes) to `out`.
inline void AppendBytesElement(std::string& out, std::string_view element) {
  const auto len = static_cast<uint32_t>(element.size());
  const char prefix[4] = {char(len & 0xff), char((len >> 8) & 0xff),
                          char((len >> 16) & 0xff), char((len >> 24) & 0xff)};
  out.append(prefix, 4);
  out.append(element.data(), element.size());
}

/// A declared input or output of the model (from config.pbtxt).
struct TensorSpec {
  std::string name;
  ToriiDataType datatype = TORII_TYPE_INVALID;
  std::vector<int64_t> dims;  // without the batch dimension; -1 = variable
};

/// A read-only view of a tensor the host owns: an input of a batch (valid
/// during Execute() only) or an output of a CallResult (valid as long as a
/// copy of that CallResult lives).
class TensorView {
 public:
  explicit TensorView(const ToriiTensor& t) : t_(t) {}
  std::string_view name() const { return t_.name; }
  ToriiDataType datatype() const { return t_.datatype; }
  Span<const int64_t> shape() const { return {t_.shape, t_.ndim}; }
  int64_t element_count() const { return ElementCount(shape()); }
  const void* data() const { return t_.data; }
  size_t byte_size() const { return t_.byte_size; }

  /// Typed view of the elements; throws INVALID_ARGUMENT if T does not match
  /// the datatype.
  template <typename T>
  Span<const T> values() const {
    if (DataTypeOf<T>::value != t_.datatype) {
      throw Error(TORII_STATUS_INVALID_ARGUMENT,
                  "input '" + std::string(name()) + "' is " +
                      DataTypeName(t_.datatype) + ", read as " +
                      DataTypeName(DataTypeOf<T>::value));
    }
    return {static_cast<const T*>(t_.data), t_.byte_size / sizeof(T)};
  }

  /// The elements of a BYTES tensor.
  std::vector<std::string_view> strings() const {
    if (t_.datatype != TORII_TYPE_BYTES) {
      throw Error(TORII_STATUS_INVALID_ARGUMENT,
                  "input '" + std::string(name()) + "' is not BYTES");
    }
    return DecodeBytes(t_.data, t_.byte_size);
  }

 private:
  ToriiTensor t_;
};

/// A read-only input tensor of a batch. Valid during Execute() only.
using Input = TensorView;

/// A request or model parameter value.
struct Parameter {
  ToriiParameterType type = TORII_PARAMETER_NONE;
  bool bool_value = false;
  int64_t int64_value = 0;
  uint64_t uint64_value = 0;
  double double_value = 0;
  std::string string_value;

  static Parameter Bool(bool v) {
    Parameter p;
    p.type = TORII_PARAMETER_BOOL;
    p.bool_value = v;
    return p;
  }
  static Parameter Int64(int64_t v) {
    Parameter p;
    p.type = TORII_PARAMETER_INT64;
    p.int64_value = v;
    return p;
  }
  static Parameter Uint64(uint64_t v) {
    Parameter p;
    p.type = TORII_PARAMETER_UINT64;
    p.uint64_value = v;
    return p;
  }
  static Parameter Double(double v) {
    Parameter p;
    p.type = TORII_PARAMETER_DOUBLE;
    p.double_value = v;
    return p;
  }
  static Parameter String(std::string v) {
    Parameter p;
    p.type = TORII_PARAMETER_STRING;
    p.string_value = std::move(v);
    return p;
  }
};

// ---------------------------------------------------------------------------
// Helpers shared by the classes below
// ---------------------------------------------------------------------------

namespace detail {
inline ToriiTensor EmptyTensor() {
  ToriiTensor t;
  std::memset(&t, 0, sizeof(t));
  t.struct_size = sizeof(ToriiTensor);
  return t;
}

inline ToriiParameter EmptyParameter() {
  ToriiParameter p;
  std::memset(&p, 0, sizeof(p));
  p.struct_size = sizeof(ToriiParameter);
  return p;
}

inline Parameter ToParameter(const ToriiParameter& p) {
  Parameter out;
  out.type = p.type;
  out.bool_value = p.bool_value;
  out.int64_value = p.int64_value;
  out.uint64_value = p.uint64_value;
  out.double_value = p.double_value;
  if (p.string_value != nullptr) out.string_value.assign(p.string_value, p.string_size);
  return out;
}

inline ToriiParameter FromParameter(const Parameter& p) {
  ToriiParameter out = EmptyParameter();
  out.type = p.type;
  out.bool_value = p.bool_value;
  out.int64_value = p.int64_value;
  out.uint64_value = p.uint64_value;
  out.double_value = p.double_value;
  out.string_value = p.string_value.c_str();
  out.string_size = p.string_value.size();
  return out;
}

/// Turns a host error into a torii::Error (releasing the host's object).
inline void ThrowIfError(const ToriiHostApi* host, ToriiError* err,
                         const std::string& what) {
  if (err == nullptr) return;
  const ToriiStatusCode code = host->error_code(err);
  std::string message = what + ": " + host->error_message(err);
  host->error_delete(err);
  throw Error(code, message);
}

inline std::string HostAbi(const ToriiHostApi* host) {
  return std::to_string(host->abi_version_major) + "." +
         std::to_string(host->abi_version_minor);
}

[[noreturn]] inline void ThrowUnimplemented(const ToriiHostApi* host,
                                            const char* feature,
                                            const char* function) {
  if (host->abi_version_major == 1 && host->abi_version_minor >= 2) {
    throw Error(TORII_STATUS_UNIMPLEMENTED,
                std::string(feature) + " needs the host function " + function +
                    ", which this host (runner ABI " + HostAbi(host) +
                    ") does not provide");
  }
  throw Error(TORII_STATUS_UNIMPLEMENTED,
              std::string(feature) +
                  " needs a host with runner ABI 1.2; this host has " +
                  HostAbi(host));
}

/// Allocation helpers shared by Batch and Response: Derived provides
/// AllocateRaw(name, datatype, shape, byte_size).
template <typename Derived>
class OutputWriter {
 public:
  /// Allocates an output buffer of `byte_size` bytes in host memory, which
  /// becomes the response without another copy.
  void* AllocateOutput(const std::string& name, ToriiDataType datatype,
                       const std::vector<int64_t>& shape, size_t byte_size) {
    return static_cast<Derived*>(this)->AllocateRaw(name, datatype, shape,
                                                    byte_size);
  }

  /// Allocates a fixed-size output of element type T and returns a view to
  /// fill.
  template <typename T>
  Span<T> AllocateOutput(const std::string& name,
                         const std::vector<int64_t>& shape) {
    const auto n = static_cast<size_t>(
        ElementCount({shape.data(), shape.size()}));
    void* p = AllocateOutput(name, DataTypeOf<T>::value, shape, n * sizeof(T));
    return {static_cast<T*>(p), n};
  }

  /// Allocates an output with the datatype and shape of `like` and copies
  /// `like`'s bytes into it (any datatype, including BYTES).
  void CopyOutput(const std::string& name, const TensorView& like) {
    std::vector<int64_t> shape(like.shape().begin(), like.shape().end());
    void* p = AllocateOutput(name, like.datatype(), shape, like.byte_size());
    if (like.byte_size() > 0) std::memcpy(p, like.data(), like.byte_size());
  }

  /// Sets a BYTES output from its elements (any container of things
  /// convertible to std::string_view).
  template <typename Strings>
  void SetBytesOutput(const std::string& name,
                      const std::vector<int64_t>& shape,
                      const Strings& elements) {
    std::string encoded;
    for (const auto& e : elements) AppendBytesElement(encoded, e);
    void* p = AllocateOutput(name, TORII_TYPE_BYTES, shape, encoded.size());
    if (!encoded.empty()) std::memcpy(p, encoded.data(), encoded.size());
  }
  /// The same from a braced list: SetBytesOutput("TOKEN", {1}, {token}).
  void SetBytesOutput(const std::string& name,
                      const std::vector<int64_t>& shape,
                      std::initializer_list<std::string_view> elements) {
    SetBytesOutput<std::initializer_list<std::string_view>>(name, shape,
                                                            elements);
  }
};

struct SenderState;
}  // namespace detail

// TORII_SDK_REQUIRE_1_2(host, field, feature): throws UNIMPLEMENTED unless
// the host provides `field` (an ABI 1.2 function). #undef'd at the end.
#define TORII_SDK_REQUIRE_1_2(host, field, feature)                    \
  do {                                                                 \
    if (!TORII_HOST_HAS(host, field)) {                                \
      ::torii::detail::ThrowUnimplemented(host, feature, #field);      \
    }                                                                  \
  } while (0)

namespace detail {
[[noreturn]] inline void ThrowUnimplemented13(const ToriiHostApi* host,
                                              const char* feature) {
  throw Error(TORII_STATUS_UNIMPLEMENTED,
              std::string(feature) +
                  " needs a host with runner ABI 1.3; this host has " +
                  HostAbi(host));
}
}  // namespace detail

// ---------------------------------------------------------------------------
// Runner-defined metrics (ABI 1.3)
// ---------------------------------------------------------------------------

/// One series of a metric family (a label set). Copies share the handle;
/// the last copy releases it (the series leaves /metrics with its last
/// handle in the server). Keep metrics in the Model or its instances: they
/// must go before the model unloads. Thread-safe.
class Metric {
 public:
  Metric() = default;
  /// Counter: adds `value` >= 0; gauge: adds any value.
  void Increment(double value) const {
    Check(host_->metric_increment(handle_.get(), value), "Metric::Increment");
  }
  /// Gauge only.
  void Set(double value) const {
    Check(host_->metric_set(handle_.get(), value), "Metric::Set");
  }
  /// Histogram only.
  void Observe(double value) const {
    Check(host_->metric_observe(handle_.get(), value), "Metric::Observe");
  }
  /// Counter or gauge.
  double Value() const {
    double v = 0;
    Check(host_->metric_value(handle_.get(), &v), "Metric::Value");
    return v;
  }
  explicit operator bool() const { return handle_ != nullptr; }

 private:
  friend class MetricFamily;
  Metric(const ToriiHostApi* host, ToriiMetric* m)
      : host_(host), handle_(m, [host](ToriiMetric* p) { host->metric_delete(p); }) {}
  void Check(ToriiError* err, const char* what) const {
    if (handle_ == nullptr) {
      if (err != nullptr) host_->error_delete(err);
      throw Error(TORII_STATUS_FAILED_PRECONDITION, std::string(what) + ": an empty Metric");
    }
    detail::ThrowIfError(host_, err, what);
  }
  const ToriiHostApi* host_ = nullptr;
  std::shared_ptr<ToriiMetric> handle_;
};

/// A named family of metrics (counter, gauge or histogram). Copies share
/// the handle. Thread-safe.
class MetricFamily {
 public:
  MetricFamily() = default;
  /// A series with `labels` (may be empty); histograms need `buckets`
  /// (upper bounds, strictly increasing; +Inf is implicit).
  Metric NewMetric(const std::vector<std::pair<std::string, std::string>>& labels = {},
                   const std::vector<double>& buckets = {}) const {
    if (handle_ == nullptr) {
      throw Error(TORII_STATUS_FAILED_PRECONDITION,
                  "MetricFamily::NewMetric: an empty MetricFamily");
    }
    std::vector<const char*> names, values;
    for (const auto& kv : labels) {
      names.push_back(kv.first.c_str());
      values.push_back(kv.second.c_str());
    }
    ToriiMetric* m = nullptr;
    detail::ThrowIfError(
        host_,
        host_->metric_new(handle_.get(), names.data(), values.data(), names.size(),
                          buckets.empty() ? nullptr : buckets.data(), buckets.size(), &m),
        "MetricFamily::NewMetric");
    return Metric(host_, m);
  }
  explicit operator bool() const { return handle_ != nullptr; }

 private:
  friend class ModelContext;
  MetricFamily(const ToriiHostApi* host, ToriiMetricFamily* f)
      : host_(host),
        handle_(f, [host](ToriiMetricFamily* p) { host->metric_family_delete(p); }) {}
  const ToriiHostApi* host_ = nullptr;
  std::shared_ptr<ToriiMetricFamily> handle_;
};

// ---------------------------------------------------------------------------
// Model context
// ---------------------------------------------------------------------------

/// What the host tells a runner about the model version being loaded.
/// Valid for the lifetime of the Model object built from it; cheap to copy
/// (keep a copy in an instance to call other models from Execute()).
class ModelContext {
 public:
  ModelContext(const ToriiHostApi* host, ToriiModel* model)
      : host_(host), model_(model) {}

  std::string name() const { return host_->model_name(model_); }
  int64_t version() const { return host_->model_version(model_); }
  /// <repository>/<model>
  std::string directory() const { return host_->model_directory(model_); }
  /// <repository>/<model>/<version>: where the artifacts are.
  std::string version_directory() const {
    return host_->model_version_directory(model_);
  }
  int32_t max_batch_size() const { return host_->model_max_batch_size(model_); }
  /// The parsed config.pbtxt as JSON.
  std::string config_json() const { return host_->model_config_json(model_); }
  std::vector<TensorSpec> inputs() const {
    return Specs(host_->model_input_count, host_->model_input);
  }
  std::vector<TensorSpec> outputs() const {
    return Specs(host_->model_output_count, host_->model_output);
  }
  /// A `parameters` entry of config.pbtxt, if present.
  std::optional<std::string> parameter(const std::string& key) const {
    const char* v = host_->model_parameter(model_, key.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  }
  void Log(ToriiLogLevel level, const std::string& message) const {
    host_->log(model_, level, message.c_str());
  }

  /// ABI 1.2. Replaces the model's config with a completed one (Triton's
  /// auto-complete), as JSON in the mapping config_json() returns. Only valid
  /// in the Model constructor (i.e. during model load); the host checks it
  /// like a config.pbtxt and throws its error otherwise. From then on
  /// config_json(), inputs(), outputs(), ... return the new config. The
  /// model's name, runner and instance groups cannot change.
  void SetConfigJson(const std::string& json) const {
    TORII_SDK_REQUIRE_1_2(host_, model_set_config_json,
                          "ModelContext::SetConfigJson");
    detail::ThrowIfError(host_,
                         host_->model_set_config_json(model_, json.c_str()),
                         "SetConfigJson");
  }

  /// ABI 1.2. Reports a fact about the code that runs the model (e.g.
  /// "tokenizer" = "sha256:..."); shown in ModelMetadata properties and
  /// logged. Any time while the model is loaded, from any thread.
  void ReportProperty(const std::string& key, const std::string& value) const {
    TORII_SDK_REQUIRE_1_2(host_, model_report_property,
                          "ModelContext::ReportProperty");
    host_->model_report_property(model_, key.c_str(), value.c_str());
  }

  /// ABI 1.3. A metric family on the server's /metrics (Prometheus name
  /// rules; server-wide: the same name and kind from anywhere is the same
  /// family). Throws the host's error (INVALID_ARGUMENT for a bad name or a
  /// name taken by another kind, RESOURCE_EXHAUSTED past the limits).
  MetricFamily NewMetricFamily(const std::string& name,
                               const std::string& description,
                               ToriiMetricKind kind) const {
    if (!TORII_HOST_HAS(host_, metric_value)) {
      detail::ThrowUnimplemented13(host_, "ModelContext::NewMetricFamily");
    }
    ToriiMetricFamily* f = nullptr;
    detail::ThrowIfError(host_,
                         host_->metric_family_new(model_, name.c_str(),
                                                  description.c_str(), kind, &f),
                         "NewMetricFamily('" + name + "')");
    return MetricFamily(host_, f);
  }

  const ToriiHostApi* host() const { return host_; }
  ToriiModel* handle() const { return model_; }

 private:
  using CountFn = size_t (*)(const ToriiModel*);
  using GetFn = bool (*)(const ToriiModel*, size_t, ToriiTensor*);
  std::vector<TensorSpec> Specs(CountFn count, GetFn get) const {
    std::vector<TensorSpec> specs;
    const size_t n = count(model_);
    for (size_t i = 0; i < n; ++i) {
      ToriiTensor t = detail::EmptyTensor();
      if (!get(model_, i, &t)) break;
      specs.push_back({t.name, t.datatype,
                       std::vector<int64_t>(t.shape, t.shape + t.ndim)});
    }
    return specs;
  }

  const ToriiHostApi* host_;
  ToriiModel* model_;
};

// ---------------------------------------------------------------------------
// Answering a request yourself: ResponseSender and Response (ABI 1.2)
// ---------------------------------------------------------------------------

namespace detail {
// What every copy of one request's ResponseSender shares. Non-final sends,
// NewResponse() and cancelled() hold `mu` shared; the final send holds it
// exclusively, so no copy touches the host's sender after it was finished.
struct SenderState {
  const ToriiHostApi* host = nullptr;
  ToriiResponseSender* sender = nullptr;
  std::string what;  // "request 'id'" or "request #r", for messages
  std::shared_mutex mu;
  bool finished = false;  // guarded by mu

  SenderState() = default;
  SenderState(const SenderState&) = delete;
  SenderState& operator=(const SenderState&) = delete;
  // The last handle is gone but the request was never ended: end it now with
  // INTERNAL, so its client does not wait until the model unloads.
  ~SenderState() {
    if (finished || sender == nullptr) return;
    try {
      const std::string message =
          "the runner released the response sender of " + what +
          " without a final send";
      ToriiError* e = host->error_new(TORII_STATUS_INTERNAL, message.c_str());
      ToriiError* r = host->sender_send(sender, nullptr, e, TORII_RESPONSE_FINAL);
      if (r != nullptr) host->error_delete(r);
    } catch (...) {
    }
  }
};
}  // namespace detail

/// One response being built for a request answered through a ResponseSender.
/// Allocate its outputs like a Batch's (same checks, with the request's own
/// rows as the batch dimension), then hand it to ResponseSender::Send().
/// Move-only; a Response that is never sent is deleted with it.
class Response : public detail::OutputWriter<Response> {
 public:
  Response() = default;
  Response(Response&& o) noexcept
      : host_(o.host_),
        response_(std::exchange(o.response_, nullptr)),
        owner_(std::move(o.owner_)) {}
  Response& operator=(Response&& o) noexcept {
    if (this != &o) {
      Reset();
      host_ = o.host_;
      response_ = std::exchange(o.response_, nullptr);
      owner_ = std::move(o.owner_);
    }
    return *this;
  }
  Response(const Response&) = delete;
  Response& operator=(const Response&) = delete;
  ~Response() { Reset(); }

  /// True once sent or moved from.
  bool empty() const { return response_ == nullptr; }

 private:
  friend class ResponseSender;
  friend class detail::OutputWriter<Response>;
  Response(const ToriiHostApi* host, ToriiResponse* response,
           std::weak_ptr<detail::SenderState> owner)
      : host_(host), response_(response), owner_(std::move(owner)) {}

  void* AllocateRaw(const std::string& name, ToriiDataType datatype,
                    const std::vector<int64_t>& shape, size_t byte_size) {
    if (response_ == nullptr) {
      throw Error(TORII_STATUS_FAILED_PRECONDITION,
                  "Response: allocating output '" + name +
                      "' of a response that was already sent or moved from");
    }
    void* buffer = nullptr;
    detail::ThrowIfError(
        host_,
        host_->response_output_allocate(response_, name.c_str(), datatype,
                                        shape.data(), shape.size(), byte_size,
                                        &buffer),
        "allocating output '" + name + "' of a response");
    return buffer;
  }
  void Reset() {
    if (response_ != nullptr) host_->response_delete(response_);
    response_ = nullptr;
  }

  const ToriiHostApi* host_ = nullptr;
  ToriiResponse* response_ = nullptr;
  std::weak_ptr<detail::SenderState> owner_;
};

/// Answers one request with any number of responses, then a final flag, from
/// any thread, during or after Execute() (Batch::TakeResponseSender). A cheap
/// handle: copies share one state and may be used from several threads at
/// once; responses keep the order of their Send() calls.
///
/// Only a decoupled model (config.pbtxt: model_transaction_policy {
/// decoupled: true }) may send more than one response; for other models the
/// first send must be final (Send(r, true), SendError(), Finish()).
///
/// Send() blocks while the client has not taken earlier responses
/// (back-pressure, bounded by the server). It returns false when the request
/// is over on the client's side (cancelled, gone, or past its deadline): stop
/// producing and Finish(). Other refusals throw torii::Error.
///
/// A request must end with exactly one final send. If the last handle of a
/// request that was never finished is destroyed, the SDK ends the request
/// with INTERNAL ("the runner released the response sender ... without a
/// final send"); keep a handle (e.g. in a job queue) for as long as you
/// answer. Without the SDK, the host would end it only at model unload.
class ResponseSender {
 public:
  /// An empty handle (every call throws FAILED_PRECONDITION).
  ResponseSender() = default;

  /// A new, empty response for this request; throws FAILED_PRECONDITION once
  /// the request is finished.
  Response NewResponse() const {
    detail::SenderState& s = State();
    std::shared_lock<std::shared_mutex> lock(s.mu);
    if (s.finished) ThrowFinished(s, "NewResponse");
    ToriiResponse* r = s.host->response_new(s.sender);
    if (r == nullptr) ThrowFinished(s, "NewResponse");
    return Response(s.host, r, state_);
  }

  /// Sends `response` (its outputs as allocated), ending the request when
  /// `final`. Returns false when the request is over on the client's side
  /// (the response was dropped; stop and Finish()). Throws torii::Error for
  /// anything else the host refuses (e.g. a response that fails the host's
  /// checks, a second response of a model that is not decoupled).
  bool Send(Response&& response, bool final = false) const {
    detail::SenderState& s = State();
    if (response.empty()) {
      throw Error(TORII_STATUS_INVALID_ARGUMENT,
                  "ResponseSender::Send: the Response is empty (already sent "
                  "or moved from)");
    }
    if (response.owner_.lock() != state_) {
      throw Error(TORII_STATUS_INVALID_ARGUMENT,
                  "ResponseSender::Send: the Response was made by the sender "
                  "of another request");
    }
    ToriiResponse* r = std::exchange(response.response_, nullptr);
    return Deliver(s, r, nullptr, final, "Send");
  }

  /// Sends an error response (ending the request unless `final` is false; a
  /// decoupled model may report an error and go on).
  bool SendError(ToriiStatusCode code, const std::string& message,
                 bool final = true) const {
    detail::SenderState& s = State();
    return Deliver(s, nullptr, s.host->error_new(code, message.c_str()), final,
                   "SendError");
  }

  /// Ends the request without another response.
  bool Finish() const { return Deliver(State(), nullptr, nullptr, true, "Finish"); }

  /// True once the client cancelled or went away, the request's deadline
  /// passed, or the request was finished: stop producing (and Finish() if
  /// you have not).
  bool cancelled() const {
    if (!state_) return true;
    std::shared_lock<std::shared_mutex> lock(state_->mu);
    return state_->finished || state_->host->sender_is_cancelled(state_->sender);
  }

  /// True once a final send was made through any copy of this handle.
  bool finished() const {
    if (!state_) return true;
    std::shared_lock<std::shared_mutex> lock(state_->mu);
    return state_->finished;
  }

  explicit operator bool() const { return state_ != nullptr; }

 private:
  friend class Batch;
  explicit ResponseSender(std::shared_ptr<detail::SenderState> state)
      : state_(std::move(state)) {}

  detail::SenderState& State() const {
    if (!state_) {
      throw Error(TORII_STATUS_FAILED_PRECONDITION,
                  "ResponseSender: empty handle (use Batch::TakeResponseSender)");
    }
    return *state_;
  }
  [[noreturn]] static void ThrowFinished(const detail::SenderState& s,
                                         const char* what) {
    throw Error(TORII_STATUS_FAILED_PRECONDITION,
                std::string("ResponseSender::") + what + ": " + s.what +
                    " is already finished");
  }

  // Takes ownership of `response` and `error` whatever happens.
  static bool Deliver(detail::SenderState& s, ToriiResponse* response,
                      ToriiError* error, bool final, const char* what) {
    ToriiError* result = nullptr;
    {
      std::unique_lock<std::shared_mutex> exclusive(s.mu, std::defer_lock);
      std::shared_lock<std::shared_mutex> shared(s.mu, std::defer_lock);
      if (final) {
        exclusive.lock();
      } else {
        shared.lock();
      }
      if (s.finished) {
        if (response != nullptr) s.host->response_delete(response);
        if (error != nullptr) s.host->error_delete(error);
        ThrowFinished(s, what);
      }
      // After a final send the host's sender is gone, whatever it answered.
      if (final) s.finished = true;
      result = s.host->sender_send(s.sender, response, error,
                                   final ? TORII_RESPONSE_FINAL : 0u);
    }
    if (result == nullptr) return true;
    const ToriiStatusCode code = s.host->error_code(result);
    if (code == TORII_STATUS_CANCELLED || code == TORII_STATUS_DEADLINE_EXCEEDED) {
      s.host->error_delete(result);
      return false;
    }
    detail::ThrowIfError(s.host, result,
                         std::string("ResponseSender::") + what + " (" + s.what + ")");
    return true;
  }

  std::shared_ptr<detail::SenderState> state_;
};

// ---------------------------------------------------------------------------
// Batch
// ---------------------------------------------------------------------------

/// The requests of one execute call. Inputs are the requests' rows
/// concatenated along the batch dimension; outputs must have the same number
/// of rows. Valid during Execute() only (not copyable).
class Batch : public detail::OutputWriter<Batch> {
 public:
  Batch(const ToriiHostApi* host, ToriiBatch* batch)
      : host_(host), batch_(batch) {}
  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;

  size_t request_count() const { return host_->batch_request_count(batch_); }
  /// Rows request `r` contributes (1 for a non-batching model).
  int64_t request_rows(size_t r) const {
    return host_->batch_request_rows(batch_, r);
  }

  size_t input_count() const { return host_->batch_input_count(batch_); }
  Input input(size_t index) const {
    ToriiTensor t = detail::EmptyTensor();
    if (!host_->batch_input(batch_, index, &t)) {
      throw Error(TORII_STATUS_INVALID_ARGUMENT,
                  "batch has no input #" + std::to_string(index));
    }
    return Input(t);
  }
  Input input(const std::string& name) const {
    ToriiTensor t = detail::EmptyTensor();
    if (!host_->batch_input_by_name(batch_, name.c_str(), &t)) {
      throw Error(TORII_STATUS_INVALID_ARGUMENT,
                  "batch has no input '" + name + "'");
    }
    return Input(t);
  }

  /// Whether any request of the batch asked for output `name`.
  bool output_requested(const std::string& name) const {
    return host_->batch_output_requested(batch_, name.c_str());
  }

  // AllocateOutput(name, datatype, shape, byte_size), AllocateOutput<T>(name,
  // shape), CopyOutput(name, like) and SetBytesOutput(name, shape, elements)
  // come from detail::OutputWriter: each output once, for the whole batch.

  /// Fails one request; the other requests of the batch still succeed.
  void FailRequest(size_t r, ToriiStatusCode code, const std::string& message) {
    host_->batch_fail_request(batch_, r, host_->error_new(code, message.c_str()));
  }

  /// A parameter the client set on request `r`.
  std::optional<Parameter> request_parameter(size_t r,
                                             const std::string& key) const {
    ToriiParameter p = detail::EmptyParameter();
    if (!host_->batch_request_parameter(batch_, r, key.c_str(), &p)) {
      return std::nullopt;
    }
    return detail::ToParameter(p);
  }

  /// CLOCK_MONOTONIC nanoseconds by which the most urgent request must be
  /// answered; 0 if none has a deadline.
  uint64_t deadline_ns() const { return host_->batch_deadline_ns(batch_); }

  /// True when no request of the batch still wants an answer (all cancelled
  /// or past their deadline). False on hosts older than ABI 1.1.
  bool cancelled() const {
    return TORII_HOST_HAS(host_, batch_is_cancelled) && host_->batch_is_cancelled(batch_);
  }

  /// The C handles, for code that mixes in the C ABI.
  const ToriiHostApi* host() const { return host_; }
  ToriiBatch* handle() const { return batch_; }

  // --- ABI 1.2 --------------------------------------------------------------

  /// The client's id of request `r` (may be empty).
  std::string request_id(size_t r) const {
    TORII_SDK_REQUIRE_1_2(host_, batch_request_id, "Batch::request_id");
    const char* id = host_->batch_request_id(batch_, r);
    return id == nullptr ? std::string() : std::string(id);
  }

  /// Whether request `r` asked for output `name` (a request that names no
  /// outputs asks for all of them).
  bool request_output_requested(size_t r, const std::string& name) const {
    TORII_SDK_REQUIRE_1_2(host_, batch_request_output_requested,
                          "Batch::request_output_requested");
    return host_->batch_request_output_requested(batch_, r, name.c_str());
  }

  /// Every parameter the client set on request `r`, e.g. to pass them on to
  /// a ModelCall.
  std::map<std::string, Parameter> request_parameters(size_t r) const {
    TORII_SDK_REQUIRE_1_2(host_, batch_request_parameter_at,
                          "Batch::request_parameters");
    std::map<std::string, Parameter> out;
    const size_t n = host_->batch_request_parameter_count(batch_, r);
    for (size_t i = 0; i < n; ++i) {
      const char* key = nullptr;
      ToriiParameter p = detail::EmptyParameter();
      if (!host_->batch_request_parameter_at(batch_, r, i, &key, &p) || key == nullptr) {
        continue;
      }
      out[key] = detail::ToParameter(p);
    }
    return out;
  }

  /// Takes over answering request `r`: from now on the runner answers it
  /// through the returned sender, during or after Execute(), and outputs
  /// allocated on the batch are not sent to it (nor is an error thrown from
  /// Execute()). Calling it again for `r` returns the same sender. Check
  /// inputs first: once taken, a request is answered only by its sender.
  ResponseSender TakeResponseSender(size_t r) {
    TORII_SDK_REQUIRE_1_2(host_, batch_response_sender,
                          "Batch::TakeResponseSender");
    TORII_SDK_REQUIRE_1_2(host_, sender_is_cancelled,
                          "Batch::TakeResponseSender");
    std::lock_guard<std::mutex> lock(senders_mu_);
    const size_t n = request_count();
    if (r >= n) {
      throw Error(TORII_STATUS_INVALID_ARGUMENT,
                  "TakeResponseSender: the batch has no request #" +
                      std::to_string(r) + " (it has " + std::to_string(n) + ")");
    }
    if (senders_.size() < n) senders_.resize(n);
    if (!senders_[r]) {
      ToriiResponseSender* sender = host_->batch_response_sender(batch_, r);
      if (sender == nullptr) {
        throw Error(TORII_STATUS_INTERNAL,
                    "TakeResponseSender: the host returned no sender for request #" +
                        std::to_string(r));
      }
      auto state = std::make_shared<detail::SenderState>();
      state->host = host_;
      state->sender = sender;
      const std::string id = request_id(r);
      state->what = id.empty() ? "request #" + std::to_string(r) : "request '" + id + "'";
      senders_[r] = std::move(state);
    }
    return ResponseSender(senders_[r]);
  }

 private:
  friend class detail::OutputWriter<Batch>;
  void* AllocateRaw(const std::string& name, ToriiDataType datatype,
                    const std::vector<int64_t>& shape, size_t byte_size) {
    void* buffer = nullptr;
    detail::ThrowIfError(
        host_,
        host_->batch_output_allocate(batch_, name.c_str(), datatype,
                                     shape.data(), shape.size(), byte_size,
                                     &buffer),
        "allocating output '" + name + "'");
    return buffer;
  }

  const ToriiHostApi* host_;
  ToriiBatch* batch_;
  std::mutex senders_mu_;
  std::vector<std::shared_ptr<detail::SenderState>> senders_;
};

// ---------------------------------------------------------------------------
// Calling other models of the server (ABI 1.2)
// ---------------------------------------------------------------------------

/// One response of a ModelCall: a status and, when ok(), the outputs. Owns
/// the host's result; copies share it, and the TensorViews of its outputs
/// stay valid as long as a copy lives. Any thread.
class CallResult {
 public:
  /// An empty result: the final callback of a call whose model ended without
  /// a last response (a decoupled model).
  CallResult() = default;
  CallResult(const ToriiHostApi* host, ToriiInferResult* result) : host_(host) {
    if (result != nullptr) {
      result_.reset(result, [host](ToriiInferResult* r) { host->infer_result_delete(r); });
    }
  }

  bool empty() const { return !result_; }
  ToriiStatusCode code() const {
    return result_ ? host_->infer_result_code(result_.get()) : TORII_STATUS_OK;
  }
  bool ok() const { return code() == TORII_STATUS_OK; }
  std::string message() const {
    const char* m = result_ ? host_->infer_result_message(result_.get()) : nullptr;
    return m == nullptr ? std::string() : std::string(m);
  }
  /// Throws torii::Error(code(), message()) unless ok().
  const CallResult& ThrowIfError() const {
    if (!ok()) throw Error(code(), message());
    return *this;
  }

  size_t output_count() const {
    return result_ ? host_->infer_result_output_count(result_.get()) : 0;
  }
  TensorView output(size_t index) const {
    ToriiTensor t = detail::EmptyTensor();
    if (!result_ || !host_->infer_result_output(result_.get(), index, &t)) {
      throw Error(TORII_STATUS_OUT_OF_RANGE,
                  "call result has no output #" + std::to_string(index) + " (it has " +
                      std::to_string(output_count()) + ")");
    }
    return TensorView(t);
  }
  bool has_output(const std::string& name) const {
    for (size_t i = 0; i < output_count(); ++i) {
      if (output(i).name() == name) return true;
    }
    return false;
  }
  TensorView output(const std::string& name) const {
    for (size_t i = 0; i < output_count(); ++i) {
      TensorView t = output(i);
      if (t.name() == name) return t;
    }
    throw Error(TORII_STATUS_NOT_FOUND, "call result has no output '" + name + "'" +
                                            (ok() ? "" : " (the call failed: " + message() + ")"));
  }
  std::vector<TensorView> outputs() const {
    std::vector<TensorView> out;
    for (size_t i = 0; i < output_count(); ++i) out.push_back(output(i));
    return out;
  }

 private:
  const ToriiHostApi* host_ = nullptr;
  std::shared_ptr<ToriiInferResult> result_;
};

namespace detail {
struct PendingCall {
  const ToriiHostApi* host;
  const ToriiModel* caller;
  std::function<void(CallResult, bool)> callback;
  // Input bytes the host reads without copying, kept until the final callback.
  std::vector<std::shared_ptr<const std::string>> keep_alive;
};

inline void OnCallResult(void* user_data, ToriiInferResult* result, bool final) {
  auto* p = static_cast<PendingCall*>(user_data);
  try {
    p->callback(CallResult(p->host, result), final);
  } catch (const std::exception& e) {
    p->host->log(p->caller, TORII_LOG_ERROR,
                 (std::string("ModelCall callback threw: ") + e.what()).c_str());
  } catch (...) {
    p->host->log(p->caller, TORII_LOG_ERROR, "ModelCall callback threw");
  }
  if (final) delete p;
}
}  // namespace detail

/// A request to another model of the same server, through the same
/// validation, scheduler and statistics as a client's request (no network
/// hop). Build it, then Run() it (wait for every response) or RunAsync() it
/// (a callback per response, on a host thread). The builder copies what it
/// is given (or shares a std::shared_ptr<const std::string>) and keeps the
/// bytes alive until the call's final callback, so the caller's buffers may
/// go away at once. A ModelCall can be run several times.
///
///   torii::ModelCall call(ctx_, "add_sub");
///   call.AddInput<float>("INPUT0", {1, 4}, a).AddInput<float>("INPUT1", {1, 4}, b)
///       .RequestOutput("OUTPUT0").SetTimeout(std::chrono::milliseconds(100));
///   torii::CallResult sum = call.Run().at(0).ThrowIfError();
///
/// Deadlock warning: Run() from Execute() waits for the other model; a model
/// that (directly or not) calls itself synchronously needs more instances
/// than concurrent calls.
class ModelCall {
 public:
  using Callback = std::function<void(CallResult result, bool final)>;

  /// `model_version` -1: the highest ready version.
  ModelCall(const ModelContext& caller, std::string model_name,
            int64_t model_version = -1)
      : host_(caller.host()),
        caller_(caller.handle()),
        model_(std::move(model_name)),
        version_(model_version) {}

  /// Adds an input; copies `byte_size` bytes from `data`.
  ModelCall& AddInput(const std::string& name, ToriiDataType datatype,
                      std::vector<int64_t> shape, const void* data,
                      size_t byte_size) {
    if (data == nullptr && byte_size > 0) {
      throw Error(TORII_STATUS_INVALID_ARGUMENT,
                  "ModelCall::AddInput: input '" + name + "' has no data but " +
                      std::to_string(byte_size) + " bytes");
    }
    auto bytes = std::make_shared<std::string>(
        byte_size == 0 ? std::string() : std::string(static_cast<const char*>(data), byte_size));
    return AddInput(name, datatype, std::move(shape), std::move(bytes));
  }
  /// Adds an input without copying: the call shares `bytes`.
  ModelCall& AddInput(const std::string& name, ToriiDataType datatype,
                      std::vector<int64_t> shape,
                      std::shared_ptr<const std::string> bytes) {
    if (!bytes) bytes = std::make_shared<const std::string>();
    inputs_.push_back({name, datatype, std::move(shape), std::move(bytes)});
    return *this;
  }
  /// Adds a fixed-size input from values (copied).
  template <typename T>
  ModelCall& AddInput(const std::string& name, std::vector<int64_t> shape,
                      const std::vector<T>& values) {
    static_assert(!std::is_same<T, bool>::value,
                  "std::vector<bool> is not contiguous: pass BOOL bytes with "
                  "AddInput(name, TORII_TYPE_BOOL, shape, data, size)");
    return AddInput(name, DataTypeOf<T>::value, std::move(shape), values.data(),
                    values.size() * sizeof(T));
  }
  /// Adds a copy of a tensor (e.g. a batch input) under `name`.
  ModelCall& AddInput(const std::string& name, const TensorView& tensor) {
    return AddInput(name, tensor.datatype(),
                    std::vector<int64_t>(tensor.shape().begin(), tensor.shape().end()),
                    tensor.data(), tensor.byte_size());
  }
  /// Adds a BYTES input from its elements.
  template <typename Strings>
  ModelCall& AddBytesInput(const std::string& name, std::vector<int64_t> shape,
                           const Strings& elements) {
    auto encoded = std::make_shared<std::string>();
    for (const auto& e : elements) AppendBytesElement(*encoded, e);
    return AddInput(name, TORII_TYPE_BYTES, std::move(shape), std::move(encoded));
  }
  ModelCall& AddBytesInput(const std::string& name, std::vector<int64_t> shape,
                           std::initializer_list<std::string_view> elements) {
    return AddBytesInput<std::initializer_list<std::string_view>>(name, std::move(shape),
                                                                  elements);
  }

  /// Asks for one output; a call that asks for none gets all of them.
  ModelCall& RequestOutput(const std::string& name) {
    outputs_.push_back(name);
    return *this;
  }
  ModelCall& SetId(std::string id) {
    id_ = std::move(id);
    return *this;
  }
  /// E.g. SetParameter("temperature", torii::Parameter::Double(0.7)), or
  /// every parameter of a batch request: batch.request_parameters(r).
  ModelCall& SetParameter(const std::string& key, Parameter value) {
    parameters_[key] = std::move(value);
    return *this;
  }
  /// A deadline for the call, from the moment it is sent; zero: none. The
  /// call then ends with DEADLINE_EXCEEDED if the model has not finished.
  ModelCall& SetTimeout(std::chrono::microseconds timeout) {
    timeout_ = timeout;
    return *this;
  }

  /// Sends the call and waits for its final response; returns every
  /// response in order (one for a model that is not decoupled). A failure of
  /// the call itself (unknown model, invalid inputs, the model's error,
  /// deadline) is a result whose code() is not OK; a request the host refuses
  /// to send throws torii::Error.
  std::vector<CallResult> Run() const {
    struct Sync {
      std::mutex mu;
      std::condition_variable cv;
      std::vector<CallResult> results;
      bool done = false;
    };
    auto sync = std::make_shared<Sync>();
    RunAsync([sync](CallResult result, bool final) {
      std::lock_guard<std::mutex> lock(sync->mu);
      if (!result.empty()) sync->results.push_back(std::move(result));
      if (final) {
        sync->done = true;
        sync->cv.notify_all();
      }
    });
    std::unique_lock<std::mutex> lock(sync->mu);
    sync->cv.wait(lock, [&] { return sync->done; });
    return std::move(sync->results);
  }

  /// Sends the call; `on_response` gets each response in order, on a host
  /// thread (never concurrently for one call), the last one with `final`
  /// true (an empty() result when the model ended without a last response).
  /// It must not block for long, and exceptions it throws are logged and
  /// dropped. Throws torii::Error if the host refuses the request (then
  /// `on_response` is never called).
  void RunAsync(Callback on_response) const {
    TORII_SDK_REQUIRE_1_2(host_, infer_request_send, "ModelCall");
    TORII_SDK_REQUIRE_1_2(host_, infer_result_delete, "ModelCall");
    ToriiInferRequest* request = Build();
    auto* pending = new detail::PendingCall{host_, caller_, std::move(on_response), {}};
    for (const auto& in : inputs_) pending->keep_alive.push_back(in.bytes);
    // The callback may run (and free `pending`) before send returns.
    ToriiError* err = host_->infer_request_send(request, &detail::OnCallResult, pending);
    if (err != nullptr) {
      delete pending;  // the callback is never called after an error here
      detail::ThrowIfError(host_, err, "ModelCall to '" + model_ + "'");
    }
  }

 private:
  struct CallInput {
    std::string name;
    ToriiDataType datatype;
    std::vector<int64_t> shape;
    std::shared_ptr<const std::string> bytes;
  };

  ToriiInferRequest* Build() const {
    ToriiInferRequest* request = host_->infer_request_new(caller_, model_.c_str(), version_);
    if (request == nullptr) {
      throw Error(TORII_STATUS_INTERNAL,
                  "ModelCall to '" + model_ + "': the host created no request");
    }
    auto check = [&](ToriiError* err) {
      if (err == nullptr) return;
      host_->infer_request_delete(request);
      detail::ThrowIfError(host_, err, "ModelCall");
    };
    for (const auto& in : inputs_) {
      check(host_->infer_request_add_input(request, in.name.c_str(), in.datatype,
                                           in.shape.data(), in.shape.size(),
                                           in.bytes->data(), in.bytes->size()));
    }
    for (const auto& out : outputs_) {
      check(host_->infer_request_add_output(request, out.c_str()));
    }
    if (!id_.empty()) host_->infer_request_set_id(request, id_.c_str());
    for (const auto& kv : parameters_) {
      const ToriiParameter p = detail::FromParameter(kv.second);
      check(host_->infer_request_set_parameter(request, kv.first.c_str(), &p));
    }
    if (timeout_.count() > 0) {
      host_->infer_request_set_timeout_us(request, static_cast<uint64_t>(timeout_.count()));
    }
    return request;
  }

  const ToriiHostApi* host_;
  const ToriiModel* caller_;
  std::string model_;
  int64_t version_;
  std::vector<CallInput> inputs_;
  std::vector<std::string> outputs_;
  std::string id_;
  std::map<std::string, Parameter> parameters_;
  std::chrono::microseconds timeout_{0};
};

#undef TORII_SDK_REQUIRE_1_2

// ---------------------------------------------------------------------------
// What a runner implements
// ---------------------------------------------------------------------------

/// One execution instance. Execute() is never called concurrently on the same
/// instance; different instances run in parallel.
class Instance {
 public:
  virtual ~Instance() = default;
  /// Runs one batch. Throw torii::Error to fail the whole batch, or call
  /// batch.FailRequest() to fail single requests.
  virtual void Execute(Batch& batch) = 0;
};

/// One loaded model version. Construct from `const ModelContext&` (the
/// constructor loads artifacts and may throw). CreateInstance() is called
/// `instance_group.count` times, from one thread.
class Model {
 public:
  virtual ~Model() = default;
  virtual std::unique_ptr<Instance> CreateInstance(uint32_t index) = 0;
};

namespace detail {

// Runs `fn` and converts every exception into a host-owned error.
template <typename Fn>
ToriiError* Guard(const ToriiHostApi* host, Fn&& fn) noexcept {
  try {
    fn();
    return nullptr;
  } catch (const Error& e) {
    return host->error_new(e.code(), e.what());
  } catch (const std::exception& e) {
    return host->error_new(TORII_STATUS_INTERNAL,
                           (std::string("runner threw: ") + e.what()).c_str());
  } catch (...) {
    return host->error_new(TORII_STATUS_INTERNAL,
                           "runner threw a non-standard exception");
  }
}

struct ModelHolder {
  ModelContext context;
  std::unique_ptr<Model> model;
};

struct InstanceHolder {
  const ToriiHostApi* host;
  std::unique_ptr<Instance> instance;
};

}  // namespace detail
}  // namespace torii

/// Exports the C entry points for a runner whose model class is `ModelClass`
/// (constructible from `const torii::ModelContext&`). Use once per library.
#define TORII_RUNNER(ModelClass, runner_name, runner_version)                  \
  extern "C" {                                                                 \
  TORII_RUNNER_EXPORT const ToriiRunnerInfo* torii_runner_info(void) {         \
    static const ToriiRunnerInfo info = {                                      \
        sizeof(ToriiRunnerInfo),     TORII_RUNNER_ABI_VERSION_MAJOR,           \
        TORII_RUNNER_ABI_VERSION_MINOR, runner_name,                           \
        runner_version,              TORII_SDK_VERSION,                        \
        TORII_SDK_COMPILER,          TORII_RUNNER_SOURCE_REVISION};            \
    return &info;                                                              \
  }                                                                            \
  TORII_RUNNER_EXPORT ToriiError* torii_runner_model_load(                     \
      const ToriiHostApi* host, ToriiModel* model, void** model_state) {       \
    return ::torii::detail::Guard(host, [&] {                                  \
      auto holder = std::make_unique<::torii::detail::ModelHolder>(            \
          ::torii::detail::ModelHolder{::torii::ModelContext(host, model),     \
                                       nullptr});                              \
      holder->model = std::make_unique<ModelClass>(holder->context);           \
      *model_state = holder.release();                                         \
    });                                                                        \
  }                                                                            \
  TORII_RUNNER_EXPORT void torii_runner_model_unload(void* model_state) {      \
    auto* holder = static_cast<::torii::detail::ModelHolder*>(model_state);    \
    try {                                                                      \
      delete holder;                                                           \
    } catch (...) {                                                            \
    }                                                                          \
  }                                                                            \
  TORII_RUNNER_EXPORT ToriiError* torii_runner_instance_create(                \
      void* model_state, uint32_t instance_index, void** instance_state) {     \
    auto* holder = static_cast<::torii::detail::ModelHolder*>(model_state);    \
    const ToriiHostApi* host = holder->context.host();                         \
    return ::torii::detail::Guard(host, [&] {                                  \
      auto inst = std::make_unique<::torii::detail::InstanceHolder>(           \
          ::torii::detail::InstanceHolder{                                     \
              host, holder->model->CreateInstance(instance_index)});           \
      if (!inst->instance) {                                                   \
        throw ::torii::Error(TORII_STATUS_INTERNAL,                            \
                             "CreateInstance returned null");                  \
      }                                                                        \
      *instance_state = inst.release();                                        \
    });                                                                        \
  }                                                                            \
  TORII_RUNNER_EXPORT void torii_runner_instance_destroy(                      \
      void* instance_state) {                                                  \
    try {                                                                      \
      delete static_cast<::torii::detail::InstanceHolder*>(instance_state);    \
    } catch (...) {                                                            \
    }                                                                          \
  }                                                                            \
  TORII_RUNNER_EXPORT ToriiError* torii_runner_instance_execute(               \
      void* instance_state, ToriiBatch* batch) {                               \
    auto* inst = static_cast<::torii::detail::InstanceHolder*>(instance_state);\
    return ::torii::detail::Guard(inst->host, [&] {                            \
      ::torii::Batch b(inst->host, batch);                                     \
      inst->instance->Execute(b);                                              \
    });                                                                        \
  }                                                                            \
  } /* extern "C" */                                                           \
  static_assert(true, "TORII_RUNNER needs a trailing semicolon")

#endif  // TORII_RUNNER_H_
