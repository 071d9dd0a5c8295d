// A fake Torii host for unit-testing a runner without the server.
//
// It implements the host side of runner_abi.h in memory: you describe the
// model (what config.pbtxt would say), send requests, and read responses.
// Requests passed together to Execute() are concatenated along the batch
// dimension exactly as the server's batcher does, and outputs are split back.
//
//   torii::testing::FakeHost host;                      // runner linked in
//   torii::testing::ModelSpec spec;
//   spec.max_batch_size = 8;
//   spec.inputs = {{"INPUT0", TORII_TYPE_FP32, {4}}};
//   spec.outputs = {{"OUTPUT0", TORII_TYPE_FP32, {4}}};
//   auto model = host.Load(spec);                       // throws on error
//   auto instance = model->CreateInstance();
//   auto out = instance->Infer({torii::testing::Tensor::Of<float>(
//       "INPUT0", {1, 4}, {1, 2, 3, 4})});
//   REQUIRE(out.ok());
//
// FakeHost() uses the torii_runner_* symbols linked into the test binary;
// FakeHost::Open(path) dlopens a built runner library instead.
#ifndef TORII_TESTING_FAKE_HOST_H_
#define TORII_TESTING_FAKE_HOST_H_

#include <dlfcn.h>

#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "torii/runner.h"

namespace torii {
namespace testing {

/// A tensor that owns its bytes.
struct Tensor {
  std::string name;
  ToriiDataType datatype = TORII_TYPE_INVALID;
  std::vector<int64_t> shape;
  std::string data;  // raw little-endian bytes (BYTES: length-prefixed)

  template <typename T>
  static Tensor Of(std::string name, std::vector<int64_t> shape,
                   const std::vector<T>& values) {
    Tensor t{std::move(name), DataTypeOf<T>::value, std::move(shape), {}};
    t.data.resize(values.size() * sizeof(T));
    if (!values.empty()) std::memcpy(&t.data[0], values.data(), t.data.size());
    return t;
  }
  /// BOOL tensors (std::vector<bool> has no contiguous storage).
  static Tensor Bools(std::string name, std::vector<int64_t> shape,
                      const std::vector<bool>& values) {
    Tensor t{std::move(name), TORII_TYPE_BOOL, std::move(shape), {}};
    for (bool b : values) t.data.push_back(b ? 1 : 0);
    return t;
  }
  static Tensor Strings(std::string name, std::vector<int64_t> shape,
                        const std::vector<std::string>& values) {
    Tensor t{std::move(name), TORII_TYPE_BYTES, std::move(shape), {}};
    for (const auto& v : values) AppendBytesElement(t.data, v);
    return t;
  }
  template <typename T>
  std::vector<T> values() const {
    if (DataTypeOf<T>::value != datatype) {
      throw std::logic_error("tensor '" + name + "' is " +
                             DataTypeName(datatype));
    }
    std::vector<T> v(data.size() / sizeof(T));
    if (!v.empty()) std::memcpy(v.data(), data.data(), v.size() * sizeof(T));
    return v;
  }
  std::vector<std::string> strings() const {
    std::vector<std::string> out;
    for (auto sv : DecodeBytes(data.data(), data.size())) out.emplace_back(sv);
    return out;
  }
};

/// What config.pbtxt would declare.
struct ModelSpec {
  std::string name = "model";
  int64_t version = 1;
  std::string directory = ".";
  std::string version_directory = "./1";
  int32_t max_batch_size = 0;
  std::vector<TensorSpec> inputs;
  std::vector<TensorSpec> outputs;
  std::map<std::string, std::string> parameters;
  std::string config_json = "{}";
};

/// One inference request.
struct Request {
  std::vector<Tensor> inputs;
  std::vector<std::string> requested_outputs;  // empty: all
  std::map<std::string, Parameter> parameters;
};

/// One response: a status, and the outputs when ok().
struct Response {
  ToriiStatusCode code = TORII_STATUS_OK;
  std::string message;
  std::vector<Tensor> outputs;

  bool ok() const { return code == TORII_STATUS_OK; }
  const Tensor& output(const std::string& name) const {
    for (const auto& t : outputs) {
      if (t.name == name) return t;
    }
    throw std::out_of_range("response has no output '" + name + "'");
  }
};

/// The runner's entry points.
struct RunnerSymbols {
  decltype(&torii_runner_info) info = nullptr;
  decltype(&torii_runner_model_load) model_load = nullptr;
  decltype(&torii_runner_model_unload) model_unload = nullptr;
  decltype(&torii_runner_instance_create) instance_create = nullptr;
  decltype(&torii_runner_instance_destroy) instance_destroy = nullptr;
  decltype(&torii_runner_instance_execute) instance_execute = nullptr;
};

}  // namespace testing
}  // namespace torii

// The host-side objects behind the opaque handles.
struct ToriiError {
  ToriiStatusCode code;
  std::string message;
};

struct ToriiModel {
  torii::testing::ModelSpec spec;
  std::vector<std::string> log;
};

struct ToriiBatch {
  const ToriiModel* model = nullptr;
  std::vector<const torii::testing::Request*> requests;
  std::vector<int64_t> rows;
  std::vector<torii::testing::Tensor> inputs;  // concatenated
  std::map<std::string, torii::testing::Tensor> outputs;
  std::vector<std::unique_ptr<ToriiError>> failed;  // per request, may be null
};

namespace torii {
namespace testing {
namespace fake_detail {

inline void Fill(const TensorSpec& s, ToriiTensor* out) {
  out->name = s.name.c_str();
  out->datatype = s.datatype;
  out->shape = s.dims.data();
  out->ndim = s.dims.size();
  out->data = nullptr;
  out->byte_size = 0;
}

inline void Fill(const Tensor& t, ToriiTensor* out) {
  out->name = t.name.c_str();
  out->datatype = t.datatype;
  out->shape = t.shape.data();
  out->ndim = t.shape.size();
  out->data = t.data.data();
  out->byte_size = t.data.size();
}

inline const ToriiHostApi* Api() {
  static const ToriiHostApi api = [] {
    ToriiHostApi a;
    std::memset(&a, 0, sizeof(a));
    a.struct_size = sizeof(ToriiHostApi);
    a.abi_version_major = TORII_RUNNER_ABI_VERSION_MAJOR;
    a.abi_version_minor = TORII_RUNNER_ABI_VERSION_MINOR;
    a.error_new = [](ToriiStatusCode code, const char* msg) {
      return new ToriiError{code, msg ? msg : ""};
    };
    a.error_delete = [](ToriiError* e) { delete e; };
    a.error_code = [](const ToriiError* e) { return e->code; };
    a.error_message = [](const ToriiError* e) { return e->message.c_str(); };
    a.log = [](const ToriiModel* m, ToriiLogLevel, const char* msg) {
      if (m != nullptr) const_cast<ToriiModel*>(m)->log.emplace_back(msg);
    };
    a.model_name = [](const ToriiModel* m) { return m->spec.name.c_str(); };
    a.model_version = [](const ToriiModel* m) { return m->spec.version; };
    a.model_directory = [](const ToriiModel* m) {
      return m->spec.directory.c_str();
    };
    a.model_version_directory = [](const ToriiModel* m) {
      return m->spec.version_directory.c_str();
    };
    a.model_max_batch_size = [](const ToriiModel* m) {
      return m->spec.max_batch_size;
    };
    a.model_config_json = [](const ToriiModel* m) {
      return m->spec.config_json.c_str();
    };
    a.model_input_count = [](const ToriiModel* m) {
      return m->spec.inputs.size();
    };
    a.model_input = [](const ToriiModel* m, size_t i, ToriiTensor* out) {
      if (i >= m->spec.inputs.size()) return false;
      Fill(m->spec.inputs[i], out);
      return true;
    };
    a.model_output_count = [](const ToriiModel* m) {
      return m->spec.outputs.size();
    };
    a.model_output = [](const ToriiModel* m, size_t i, ToriiTensor* out) {
      if (i >= m->spec.outputs.size()) return false;
      Fill(m->spec.outputs[i], out);
      return true;
    };
    a.model_parameter = [](const ToriiModel* m, const char* key) -> const char* {
      auto it = m->spec.parameters.find(key);
      return it == m->spec.parameters.end() ? nullptr : it->second.c_str();
    };
    a.batch_request_count = [](const ToriiBatch* b) {
      return b->requests.size();
    };
    a.batch_request_rows = [](const ToriiBatch* b, size_t r) -> int64_t {
      return r < b->rows.size() ? b->rows[r] : 0;
    };
    a.batch_input_count = [](const ToriiBatch* b) { return b->inputs.size(); };
    a.batch_input = [](const ToriiBatch* b, size_t i, ToriiTensor* out) {
      if (i >= b->inputs.size()) return false;
      Fill(b->inputs[i], out);
      return true;
    };
    a.batch_input_by_name = [](const ToriiBatch* b, const char* name,
                               ToriiTensor* out) {
      for (const auto& t : b->inputs) {
        if (t.name == name) {
          Fill(t, out);
          return true;
        }
      }
      return false;
    };
    a.batch_output_requested = [](const ToriiBatch* b, const char* name) {
      for (const auto* r : b->requests) {
        if (r->requested_outputs.empty()) return true;
        for (const auto& o : r->requested_outputs) {
          if (o == name) return true;
        }
      }
      return false;
    };
    a.batch_output_allocate = [](ToriiBatch* b, const char* name,
                                 ToriiDataType dt, const int64_t* shape,
                                 size_t ndim, size_t byte_size,
                                 void** buffer) -> ToriiError* {
      const TensorSpec* spec = nullptr;
      for (const auto& o : b->model->spec.outputs) {
        if (o.name == name) spec = &o;
      }
      if (spec == nullptr) {
        return new ToriiError{TORII_STATUS_INTERNAL,
                              std::string("model declares no output '") +
                                  name + "'"};
      }
      if (spec->datatype != dt) {
        return new ToriiError{TORII_STATUS_INTERNAL,
                              std::string("output '") + name + "' declared " +
                                  DataTypeName(spec->datatype) +
                                  ", runner produced " + DataTypeName(dt)};
      }
      if (b->outputs.count(name) != 0) {
        return new ToriiError{TORII_STATUS_INTERNAL,
                              std::string("output '") + name +
                                  "' allocated twice"};
      }
      int64_t total = 0;
      for (int64_t r : b->rows) total += r;
      if (b->model->spec.max_batch_size > 0 && (ndim == 0 || shape[0] != total)) {
        return new ToriiError{TORII_STATUS_INTERNAL,
                              std::string("output '") + name +
                                  "' must have the batch's " +
                                  std::to_string(total) + " rows"};
      }
      const size_t esize = DataTypeSize(dt);
      if (esize != 0 &&
          byte_size != static_cast<size_t>(ElementCount({shape, ndim})) * esize) {
        return new ToriiError{TORII_STATUS_INTERNAL,
                              std::string("output '") + name +
                                  "': byte size does not match shape"};
      }
      Tensor& t = b->outputs[name];
      t.name = name;
      t.datatype = dt;
      t.shape.assign(shape, shape + ndim);
      t.data.assign(byte_size, '\0');
      *buffer = t.data.empty() ? nullptr : &t.data[0];
      return nullptr;
    };
    a.batch_fail_request = [](ToriiBatch* b, size_t r, ToriiError* e) {
      if (r < b->failed.size()) {
        b->failed[r].reset(e);
      } else {
        delete e;
      }
    };
    a.batch_request_parameter = [](const ToriiBatch* b, size_t r,
                                   const char* key, ToriiParameter* out) {
      if (r >= b->requests.size()) return false;
      auto it = b->requests[r]->parameters.find(key);
      if (it == b->requests[r]->parameters.end()) return false;
      const Parameter& p = it->second;
      out->type = p.type;
      out->bool_value = p.bool_value;
      out->int64_value = p.int64_value;
      out->uint64_value = p.uint64_value;
      out->double_value = p.double_value;
      out->string_value = p.string_value.c_str();
      out->string_size = p.string_value.size();
      return true;
    };
    a.batch_deadline_ns = [](const ToriiBatch*) -> uint64_t { return 0; };
    a.batch_is_cancelled = [](const ToriiBatch*) { return false; };
    return a;
  }();
  return &api;
}

// Splits `t` (rows of all requests) into request `r`'s rows.
inline Tensor Slice(const Tensor& t, const std::vector<int64_t>& rows,
                    size_t r) {
  int64_t before = 0;
  for (size_t i = 0; i < r; ++i) before += rows[i];
  Tensor out{t.name, t.datatype, t.shape, {}};
  out.shape[0] = rows[r];
  if (t.datatype == TORII_TYPE_BYTES) {
    const auto elems = DecodeBytes(t.data.data(), t.data.size());
    const int64_t total = t.shape[0];
    const size_t per_row = total == 0 ? 0 : elems.size() / size_t(total);
    for (size_t i = size_t(before) * per_row;
         i < size_t(before + rows[r]) * per_row; ++i) {
      AppendBytesElement(out.data, elems[i]);
    }
  } else {
    const size_t row_bytes =
        t.shape[0] == 0 ? 0 : t.data.size() / size_t(t.shape[0]);
    out.data = t.data.substr(size_t(before) * row_bytes,
                             size_t(rows[r]) * row_bytes);
  }
  return out;
}

}  // namespace fake_detail

class FakeModel;

/// One runner instance created through the fake host.
class FakeInstance {
 public:
  /// `owner` keeps the model loaded for as long as the instance lives.
  FakeInstance(const RunnerSymbols& sym, const ToriiModel* model, void* state,
               std::shared_ptr<const void> owner = nullptr)
      : sym_(sym), model_(model), state_(state), owner_(std::move(owner)) {}
  ~FakeInstance() { sym_.instance_destroy(state_); }
  FakeInstance(const FakeInstance&) = delete;
  FakeInstance& operator=(const FakeInstance&) = delete;

  /// Executes the requests as one batch (concatenated along dimension 0 for a
  /// batching model) and returns one response per request.
  std::vector<Response> Execute(const std::vector<Request>& requests) {
    std::lock_guard<std::mutex> lock(mu_);  // one instance never runs twice
    ToriiBatch batch;
    batch.model = model_;
    for (const auto& r : requests) {
      batch.requests.push_back(&r);
      const bool batching = model_->spec.max_batch_size > 0;
      batch.rows.push_back(batching && !r.inputs.empty() &&
                                   !r.inputs[0].shape.empty()
                               ? r.inputs[0].shape[0]
                               : 1);
    }
    batch.failed.resize(requests.size());
    if (!requests.empty()) {
      for (const auto& first : requests[0].inputs) {
        Tensor merged = first;
        for (size_t r = 1; r < requests.size(); ++r) {
          for (const auto& t : requests[r].inputs) {
            if (t.name != first.name) continue;
            merged.data += t.data;
            merged.shape[0] += t.shape[0];
          }
        }
        batch.inputs.push_back(std::move(merged));
      }
    }
    ToriiError* err = sym_.instance_execute(state_, &batch);
    std::vector<Response> responses(requests.size());
    for (size_t r = 0; r < requests.size(); ++r) {
      Response& resp = responses[r];
      if (batch.failed[r]) {
        resp.code = batch.failed[r]->code;
        resp.message = batch.failed[r]->message;
      } else if (err != nullptr) {
        resp.code = err->code;
        resp.message = err->message;
      } else {
        for (const auto& kv : batch.outputs) {
          const auto& wanted = requests[r].requested_outputs;
          bool want = wanted.empty();
          for (const auto& w : wanted) want = want || w == kv.first;
          if (!want) continue;
          resp.outputs.push_back(requests.size() == 1 ||
                                         model_->spec.max_batch_size == 0
                                     ? kv.second
                                     : fake_detail::Slice(kv.second,
                                                          batch.rows, r));
        }
      }
    }
    delete err;
    return responses;
  }

  /// Executes a single request.
  Response Infer(std::vector<Tensor> inputs) {
    Request r;
    r.inputs = std::move(inputs);
    return Execute({r})[0];
  }

 private:
  RunnerSymbols sym_;
  const ToriiModel* model_;
  void* state_;
  std::shared_ptr<const void> owner_;
  std::mutex mu_;
};

/// One loaded model version. Instances keep it alive, so
/// `host.Load(spec)->CreateInstance()` is safe.
class FakeModel : public std::enable_shared_from_this<FakeModel> {
 public:
  FakeModel(const RunnerSymbols& sym, std::unique_ptr<ToriiModel> model,
            void* state)
      : sym_(sym), model_(std::move(model)), state_(state) {}
  ~FakeModel() { sym_.model_unload(state_); }
  FakeModel(const FakeModel&) = delete;
  FakeModel& operator=(const FakeModel&) = delete;

  /// Creates an instance; throws torii::Error when the runner fails.
  std::unique_ptr<FakeInstance> CreateInstance(uint32_t index = 0) {
    void* state = nullptr;
    ToriiError* err = sym_.instance_create(state_, index, &state);
    if (err != nullptr) {
      Error e(err->code, err->message);
      delete err;
      throw e;
    }
    return std::make_unique<FakeInstance>(sym_, model_.get(), state, shared_from_this());
  }

  /// Lines the runner logged through the host.
  const std::vector<std::string>& log() const { return model_->log; }

 private:
  RunnerSymbols sym_;
  std::unique_ptr<ToriiModel> model_;
  void* state_;
};

/// The fake host itself.
class FakeHost {
 public:
  /// Uses the runner linked into this binary.
  FakeHost() {
    sym_.info = &torii_runner_info;
    sym_.model_load = &torii_runner_model_load;
    sym_.model_unload = &torii_runner_model_unload;
    sym_.instance_create = &torii_runner_instance_create;
    sym_.instance_destroy = &torii_runner_instance_destroy;
    sym_.instance_execute = &torii_runner_instance_execute;
  }

  /// dlopens a built runner library (libtorii_<name>.so).
  static std::unique_ptr<FakeHost> Open(const std::string& path) {
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      throw std::runtime_error(std::string("dlopen failed: ") + dlerror());
    }
    std::unique_ptr<FakeHost> host(new FakeHost(handle));
    auto get = [&](const char* name) {
      void* p = dlsym(handle, name);
      if (p == nullptr) {
        throw std::runtime_error(path + " does not export " + name);
      }
      return p;
    };
    host->sym_.info = reinterpret_cast<decltype(host->sym_.info)>(
        get(TORII_RUNNER_SYMBOL_INFO));
    host->sym_.model_load = reinterpret_cast<decltype(host->sym_.model_load)>(
        get(TORII_RUNNER_SYMBOL_MODEL_LOAD));
    host->sym_.model_unload =
        reinterpret_cast<decltype(host->sym_.model_unload)>(
            get(TORII_RUNNER_SYMBOL_MODEL_UNLOAD));
    host->sym_.instance_create =
        reinterpret_cast<decltype(host->sym_.instance_create)>(
            get(TORII_RUNNER_SYMBOL_INSTANCE_CREATE));
    host->sym_.instance_destroy =
        reinterpret_cast<decltype(host->sym_.instance_destroy)>(
            get(TORII_RUNNER_SYMBOL_INSTANCE_DESTROY));
    host->sym_.instance_execute =
        reinterpret_cast<decltype(host->sym_.instance_execute)>(
            get(TORII_RUNNER_SYMBOL_INSTANCE_EXECUTE));
    return host;
  }

  ~FakeHost() {
    if (handle_ != nullptr) dlclose(handle_);
  }
  FakeHost(const FakeHost&) = delete;
  FakeHost& operator=(const FakeHost&) = delete;

  const ToriiRunnerInfo& info() const { return *sym_.info(); }

  /// Loads a model version; throws torii::Error when the runner fails.
  std::shared_ptr<FakeModel> Load(const ModelSpec& spec) {
    auto model = std::make_unique<ToriiModel>();
    model->spec = spec;
    void* state = nullptr;
    ToriiError* err = sym_.model_load(fake_detail::Api(), model.get(), &state);
    if (err != nullptr) {
      Error e(err->code, err->message);
      delete err;
      throw e;
    }
    return std::make_shared<FakeModel>(sym_, std::move(model), state);
  }

 private:
  explicit FakeHost(void* handle) : handle_(handle) {}
  RunnerSymbols sym_;
  void* handle_ = nullptr;
};

}  // namespace testing
}  // namespace torii

#endif  // TORII_TESTING_FAKE_HOST_H_
