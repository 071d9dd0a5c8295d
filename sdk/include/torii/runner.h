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
#ifndef TORII_RUNNER_H_
#define TORII_RUNNER_H_

#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

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
inline const char* DataTypeName(ToriiDataType t) {
  switch (t) {
    case TORII_TYPE_BOOL: return "BOOL";
    case TORII_TYPE_UINT8: return "UINT8";
    case TORII_TYPE_UINT16: return "UINT16";
    case TORII_TYPE_UINT32: return "UINT32";
    case TORII_TYPE_UINT64: return "UINT64";
    case TORII_TYPE_INT8: return "INT8";
    case TORII_TYPE_INT16: return "INT16";
    case TORII_TYPE_INT32: return "INT32";
    case TORII_TYPE_INT64: return "INT64";
    case TORII_TYPE_FP16: return "FP16";
    case TORII_TYPE_FP32: return "FP32";
    case TORII_TYPE_FP64: return "FP64";
    case TORII_TYPE_BYTES: return "BYTES";
    case TORII_TYPE_BF16: return "BF16";
    default: return "INVALID";
  }
}

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

/// A read-only input tensor of a batch. Valid during Execute() only.
class Input {
 public:
  explicit Input(const ToriiTensor& t) : t_(t) {}
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

/// A request or model parameter value.
struct Parameter {
  ToriiParameterType type = TORII_PARAMETER_NONE;
  bool bool_value = false;
  int64_t int64_value = 0;
  uint64_t uint64_value = 0;
  double double_value = 0;
  std::string string_value;
};

// ---------------------------------------------------------------------------
// Model context and batch
// ---------------------------------------------------------------------------

namespace detail {
inline ToriiTensor EmptyTensor() {
  ToriiTensor t;
  std::memset(&t, 0, sizeof(t));
  t.struct_size = sizeof(ToriiTensor);
  return t;
}
inline void ThrowIfError(const ToriiHostApi* host, ToriiError* err,
                         const std::string& what);
}  // namespace detail

/// What the host tells a runner about the model version being loaded.
/// Valid for the lifetime of the Model object built from it.
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

/// The requests of one execute call. Inputs are the requests' rows
/// concatenated along the batch dimension; outputs must have the same number
/// of rows. Valid during Execute() only.
class Batch {
 public:
  Batch(const ToriiHostApi* host, ToriiBatch* batch)
      : host_(host), batch_(batch) {}

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

  bool output_requested(const std::string& name) const {
    return host_->batch_output_requested(batch_, name.c_str());
  }

  /// Allocates an output buffer of `byte_size` bytes in host memory, which
  /// becomes the response without another copy.
  void* AllocateOutput(const std::string& name, ToriiDataType datatype,
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
  void CopyOutput(const std::string& name, const Input& like) {
    std::vector<int64_t> shape(like.shape().begin(), like.shape().end());
    void* p = AllocateOutput(name, like.datatype(), shape, like.byte_size());
    if (like.byte_size() > 0) std::memcpy(p, like.data(), like.byte_size());
  }

  /// Sets a BYTES output from its elements.
  template <typename Strings>
  void SetBytesOutput(const std::string& name,
                      const std::vector<int64_t>& shape,
                      const Strings& elements) {
    std::string encoded;
    for (const auto& e : elements) AppendBytesElement(encoded, e);
    void* p = AllocateOutput(name, TORII_TYPE_BYTES, shape, encoded.size());
    if (!encoded.empty()) std::memcpy(p, encoded.data(), encoded.size());
  }

  /// Fails one request; the other requests of the batch still succeed.
  void FailRequest(size_t r, ToriiStatusCode code, const std::string& message) {
    host_->batch_fail_request(batch_, r, host_->error_new(code, message.c_str()));
  }

  /// A parameter the client set on request `r`.
  std::optional<Parameter> request_parameter(size_t r,
                                             const std::string& key) const {
    ToriiParameter p;
    std::memset(&p, 0, sizeof(p));
    p.struct_size = sizeof(p);
    if (!host_->batch_request_parameter(batch_, r, key.c_str(), &p)) {
      return std::nullopt;
    }
    Parameter out;
    out.type = p.type;
    out.bool_value = p.bool_value;
    out.int64_value = p.int64_value;
    out.uint64_value = p.uint64_value;
    out.double_value = p.double_value;
    if (p.string_value != nullptr) out.string_value.assign(p.string_value, p.string_size);
    return out;
  }

  /// CLOCK_MONOTONIC nanoseconds by which the most urgent request must be
  /// answered; 0 if none has a deadline.
  uint64_t deadline_ns() const { return host_->batch_deadline_ns(batch_); }

  /// True when no request of the batch still wants an answer (all cancelled
  /// or past their deadline). False on hosts older than ABI 1.1.
  bool cancelled() const {
    return TORII_HOST_HAS(host_, batch_is_cancelled) && host_->batch_is_cancelled(batch_);
  }

 private:
  const ToriiHostApi* host_;
  ToriiBatch* batch_;
};

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

inline void ThrowIfError(const ToriiHostApi* host, ToriiError* err,
                         const std::string& what) {
  if (err == nullptr) return;
  const ToriiStatusCode code = host->error_code(err);
  std::string message = what + ": " + host->error_message(err);
  host->error_delete(err);
  throw Error(code, message);
}

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
