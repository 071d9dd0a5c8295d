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
//
// What it checks is what torii-server checks (torii/host_checks.h is the one
// copy both use): the runner's ABI version at load; every output allocation
// (declared name, datatype, shape with the batch dimension, byte size,
// element-count overflow); BYTES outputs after execute and at each send; a
// requested output the runner did not produce (INTERNAL); a second response
// from a model that is not decoupled; and it never writes past the
// struct_size a runner sets on a ToriiTensor or ToriiParameter.
//
// ABI 1.2 in the fake host:
//   - Streams: FakeInstance::Submit() runs one batch and returns a Stream per
//     request, which collects the responses a runner sends through its
//     ResponseSender, during or after execute, in order, until the final
//     flag. Infer()/Execute() wait for it (bounded by wait_timeout(), then
//     they throw); InferAll()/ExecuteAll() return every response. Unlike the
//     server, sends never block (no back-pressure).
//   - Deadlines and cancellation: Request::deadline_ns (CLOCK_MONOTONIC, see
//     DeadlineIn()), Request::cancelled, Stream::Cancel().
//   - Model calls: register the models a runner may call with
//     FakeHost::AddModel(): a handler (Request -> Responses) or a model loaded
//     from a runner. Results reach the runner's callback on a thread of the
//     fake host, never the caller's.
//   - model_set_config_json (only during load) and model_report_property are
//     recorded: FakeModel::completed_config_json(), spec(), properties().
//
// ABI 1.3 in the fake host: runner-defined metrics go into one registry per
// FakeHost (torii/metric_registry.h, the server's own rules and limits);
// FakeHost::metrics() reads it, MetricValue() finds one series. A model's
// handles are released after its model_unload, as in the server.
#ifndef TORII_TESTING_FAKE_HOST_H_
#define TORII_TESTING_FAKE_HOST_H_

#include <dlfcn.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <limits>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "torii/host_checks.h"
#include "torii/metric_registry.h"
#include "torii/runner.h"

namespace torii {
namespace testing {

/// Now on CLOCK_MONOTONIC, in nanoseconds (the clock of deadlines).
inline uint64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

/// A deadline `d` from now, for Request::deadline_ns.
inline uint64_t DeadlineIn(std::chrono::nanoseconds d) {
  return MonotonicNs() + static_cast<uint64_t>(std::max<int64_t>(0, d.count()));
}

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
  /// What model_config_json returns. Left "{}", the fake host renders the
  /// fields above as the server would (protobuf JSON, config.pbtxt names).
  std::string config_json = "{}";
  /// model_transaction_policy { decoupled: true }: the model may answer a
  /// request with any number of responses.
  bool decoupled = false;
};

/// One inference request.
struct Request {
  std::vector<Tensor> inputs;
  std::vector<std::string> requested_outputs;  // empty: all
  std::map<std::string, Parameter> parameters;
  std::string id;            // the client's request id (batch_request_id)
  uint64_t deadline_ns = 0;  // absolute, CLOCK_MONOTONIC (DeadlineIn()); 0: none
  bool cancelled = false;    // the client cancelled before the batch ran
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
    throw std::out_of_range("response has no output '" + name + "'" +
                            (ok() ? std::string() : " (error: " + message + ")"));
  }
};

/// A model a runner may call (FakeHost::AddModel): one request in, its
/// responses out (several for a decoupled model, none to end with only the
/// final flag). Throwing fails the call with INTERNAL. Runs on a thread of
/// the fake host.
using ModelHandler = std::function<std::vector<Response>(const Request&)>;

/// The runner's entry points.
struct RunnerSymbols {
  decltype(&torii_runner_info) info = nullptr;
  decltype(&torii_runner_model_load) model_load = nullptr;
  decltype(&torii_runner_model_unload) model_unload = nullptr;
  decltype(&torii_runner_instance_create) instance_create = nullptr;
  decltype(&torii_runner_instance_destroy) instance_destroy = nullptr;
  decltype(&torii_runner_instance_execute) instance_execute = nullptr;
};

class FakeInstance;
class FakeModel;

namespace fake_detail {
struct CallJob;

// --- a little JSON, for model_config_json / model_set_config_json ----------

struct Json {
  enum Kind { kNull, kBool, kNumber, kString, kArray, kObject };
  Kind kind = kNull;
  bool boolean = false;
  std::string text;  // a number as written, or a string's value
  std::vector<Json> items;
  std::vector<std::pair<std::string, Json>> members;

  const Json* Find(const std::string& key) const {
    for (const auto& m : members) {
      if (m.first == key) return &m.second;
    }
    return nullptr;
  }
  // Protobuf's JSON parser accepts both the proto name and lowerCamelCase.
  const Json* Find(const std::string& key, const std::string& camel) const {
    const Json* j = Find(key);
    return j != nullptr ? j : Find(camel);
  }
  bool operator==(const Json& o) const {
    return kind == o.kind && boolean == o.boolean && text == o.text && items == o.items &&
           members == o.members;
  }
  bool operator!=(const Json& o) const { return !(*this == o); }
};

class JsonReader {
 public:
  explicit JsonReader(const std::string& s) : s_(s) {}
  // Parses the whole text; on failure returns false with `error` set.
  bool Parse(Json* out, std::string* error) {
    SkipSpace();
    if (Value(out, 0)) {
      SkipSpace();
      if (pos_ == s_.size()) return true;
      error_ = "unexpected text after the JSON value";
    }
    *error = error_ + " at byte " + std::to_string(pos_);
    return false;
  }

 private:
  void SkipSpace() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) {
      ++pos_;
    }
  }
  bool Fail(const char* what) {
    error_ = what;
    return false;
  }
  bool Literal(const char* word) {
    const size_t n = std::strlen(word);
    if (s_.compare(pos_, n, word) != 0) return Fail("invalid literal");
    pos_ += n;
    return true;
  }
  bool Value(Json* out, int depth) {
    if (depth > 64) return Fail("nested too deeply");
    if (pos_ >= s_.size()) return Fail("unexpected end of text");
    const char c = s_[pos_];
    if (c == '{') return Object(out, depth);
    if (c == '[') return Array(out, depth);
    if (c == '"') {
      out->kind = Json::kString;
      return String(&out->text);
    }
    if (c == 't' || c == 'f') {
      out->kind = Json::kBool;
      out->boolean = c == 't';
      return Literal(c == 't' ? "true" : "false");
    }
    if (c == 'n') {
      out->kind = Json::kNull;
      return Literal("null");
    }
    return Number(out);
  }
  bool Digits() {
    const size_t start = pos_;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    return pos_ > start;
  }
  bool Number(Json* out) {
    const size_t start = pos_;
    if (s_[pos_] == '-') ++pos_;
    if (!Digits()) return Fail("invalid value");
    if (pos_ < s_.size() && s_[pos_] == '.') {
      ++pos_;
      if (!Digits()) return Fail("invalid number");
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (!Digits()) return Fail("invalid number");
    }
    out->kind = Json::kNumber;
    out->text = s_.substr(start, pos_ - start);
    return true;
  }
  bool Hex4(uint32_t* v) {
    if (s_.size() - pos_ < 4) return Fail("truncated \\u escape");
    *v = 0;
    for (int i = 0; i < 4; ++i) {
      const char h = s_[pos_++];
      *v <<= 4;
      if (h >= '0' && h <= '9') {
        *v |= uint32_t(h - '0');
      } else if (h >= 'a' && h <= 'f') {
        *v |= uint32_t(h - 'a' + 10);
      } else if (h >= 'A' && h <= 'F') {
        *v |= uint32_t(h - 'A' + 10);
      } else {
        return Fail("invalid \\u escape");
      }
    }
    return true;
  }
  static void Utf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(char(cp));
    } else if (cp < 0x800) {
      out->push_back(char(0xC0 | (cp >> 6)));
      out->push_back(char(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(char(0xE0 | (cp >> 12)));
      out->push_back(char(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(char(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(char(0xF0 | (cp >> 18)));
      out->push_back(char(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(char(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(char(0x80 | (cp & 0x3F)));
    }
  }
  bool String(std::string* out) {
    ++pos_;  // opening quote
    while (true) {
      if (pos_ >= s_.size()) return Fail("unterminated string");
      const char c = s_[pos_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return Fail("control character in string");
      if (c != '\\') {
        out->push_back(c);
        continue;
      }
      if (pos_ >= s_.size()) return Fail("unterminated string");
      const char e = s_[pos_++];
      switch (e) {
        case '"': out->push_back('"'); break;
        case '\\': out->push_back('\\'); break;
        case '/': out->push_back('/'); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'n': out->push_back('\n'); break;
        case 'r': out->push_back('\r'); break;
        case 't': out->push_back('\t'); break;
        case 'u': {
          uint32_t cp = 0;
          if (!Hex4(&cp)) return false;
          if (cp >= 0xD800 && cp < 0xDC00 && s_.compare(pos_, 2, "\\u") == 0) {
            pos_ += 2;
            uint32_t low = 0;
            if (!Hex4(&low)) return false;
            if (low < 0xDC00 || low > 0xDFFF) return Fail("invalid surrogate pair");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          Utf8(cp, out);
          break;
        }
        default:
          return Fail("invalid escape in string");
      }
    }
  }
  bool Array(Json* out, int depth) {
    out->kind = Json::kArray;
    ++pos_;
    SkipSpace();
    if (pos_ < s_.size() && s_[pos_] == ']') {
      ++pos_;
      return true;
    }
    while (true) {
      SkipSpace();
      out->items.emplace_back();
      if (!Value(&out->items.back(), depth + 1)) return false;
      SkipSpace();
      if (pos_ >= s_.size()) return Fail("unterminated array");
      if (s_[pos_] == ']') {
        ++pos_;
        return true;
      }
      if (s_[pos_++] != ',') return Fail("expected ',' or ']' in array");
    }
  }
  bool Object(Json* out, int depth) {
    out->kind = Json::kObject;
    ++pos_;
    SkipSpace();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
      return true;
    }
    while (true) {
      SkipSpace();
      if (pos_ >= s_.size() || s_[pos_] != '"') return Fail("expected a member name");
      std::string key;
      if (!String(&key)) return false;
      SkipSpace();
      if (pos_ >= s_.size() || s_[pos_++] != ':') return Fail("expected ':' in object");
      SkipSpace();
      Json value;
      if (!Value(&value, depth + 1)) return false;
      out->members.emplace_back(std::move(key), std::move(value));
      SkipSpace();
      if (pos_ >= s_.size()) return Fail("unterminated object");
      if (s_[pos_] == '}') {
        ++pos_;
        return true;
      }
      if (s_[pos_++] != ',') return Fail("expected ',' or '}' in object");
    }
  }

  const std::string& s_;
  size_t pos_ = 0;
  std::string error_;
};

inline std::string JsonQuote(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out.push_back(c);
        }
    }
  }
  return out + "\"";
}

// config.pbtxt's data_type names: TYPE_FP32, ..., TYPE_STRING for BYTES.
inline std::string ConfigTypeName(ToriiDataType t) {
  return t == TORII_TYPE_BYTES ? "TYPE_STRING" : std::string("TYPE_") + DataTypeName(t);
}
inline ToriiDataType ConfigType(const std::string& name) {
  for (int t = TORII_TYPE_BOOL; t <= TORII_TYPE_BF16; ++t) {
    if (ConfigTypeName(static_cast<ToriiDataType>(t)) == name) return static_cast<ToriiDataType>(t);
  }
  return TORII_TYPE_INVALID;
}

// An integer as protobuf JSON writes one: a number, or (int64) a string.
inline bool JsonInt(const Json& j, int64_t* out) {
  if (j.kind != Json::kNumber && j.kind != Json::kString) return false;
  const std::string& t = j.text;
  if (t.empty() || t.size() > 19 + (t[0] == '-' ? 1 : 0)) return false;
  size_t i = t[0] == '-' ? 1 : 0;
  if (i == t.size()) return false;
  int64_t v = 0;
  for (; i < t.size(); ++i) {
    if (t[i] < '0' || t[i] > '9') return false;
    const int64_t d = t[i] - '0';
    if (v > (std::numeric_limits<int64_t>::max() - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = t[0] == '-' ? -v : v;
  return true;
}

// The spec as the server renders a config (preserving proto field names).
inline std::string RenderConfig(const ModelSpec& spec) {
  auto tensors = [](const std::vector<TensorSpec>& ts) {
    std::string s = "[";
    for (size_t i = 0; i < ts.size(); ++i) {
      if (i > 0) s += ",";
      s += "{\"name\":" + JsonQuote(ts[i].name) + ",\"data_type\":\"" +
           ConfigTypeName(ts[i].datatype) + "\",\"dims\":[";
      for (size_t d = 0; d < ts[i].dims.size(); ++d) {
        if (d > 0) s += ",";
        s += "\"" + std::to_string(ts[i].dims[d]) + "\"";
      }
      s += "]}";
    }
    return s + "]";
  };
  std::string s = "{\"name\":" + JsonQuote(spec.name);
  if (spec.max_batch_size != 0) s += ",\"max_batch_size\":" + std::to_string(spec.max_batch_size);
  if (!spec.inputs.empty()) s += ",\"input\":" + tensors(spec.inputs);
  if (!spec.outputs.empty()) s += ",\"output\":" + tensors(spec.outputs);
  if (!spec.parameters.empty()) {
    s += ",\"parameters\":{";
    bool first = true;
    for (const auto& kv : spec.parameters) {
      if (!first) s += ",";
      first = false;
      s += JsonQuote(kv.first) + ":{\"string_value\":" + JsonQuote(kv.second) + "}";
    }
    s += "}";
  }
  if (spec.decoupled) s += ",\"model_transaction_policy\":{\"decoupled\":true}";
  return s + "}";
}

// Reads the tensors of a config's "input" or "output" list.
inline std::string ConfigTensors(const Json* list, const char* what,
                                 std::vector<TensorSpec>* out) {
  out->clear();
  if (list == nullptr) return "";
  if (list->kind != Json::kArray) return std::string("'") + what + "' must be a list";
  for (size_t i = 0; i < list->items.size(); ++i) {
    const Json& t = list->items[i];
    const std::string where = std::string(what) + "[" + std::to_string(i) + "]";
    if (t.kind != Json::kObject) return where + " must be an object";
    TensorSpec spec;
    const Json* name = t.Find("name");
    if (name == nullptr || name->kind != Json::kString || name->text.empty()) {
      return where + " needs a name";
    }
    spec.name = name->text;
    const Json* type = t.Find("data_type", "dataType");
    if (type == nullptr || type->kind != Json::kString) {
      return where + " ('" + spec.name + "') needs a data_type";
    }
    spec.datatype = ConfigType(type->text);
    if (spec.datatype == TORII_TYPE_INVALID) {
      return where + " ('" + spec.name + "'): unknown data_type '" + type->text + "'";
    }
    if (const Json* dims = t.Find("dims")) {
      if (dims->kind != Json::kArray) return where + " ('" + spec.name + "'): dims must be a list";
      for (const Json& d : dims->items) {
        int64_t v = 0;
        if (!JsonInt(d, &v) || v < -1) {
          return where + " ('" + spec.name + "'): dims must be integers >= -1";
        }
        spec.dims.push_back(v);
      }
    }
    out->push_back(std::move(spec));
  }
  return "";
}

// Checks a config a runner completed (model_set_config_json) like the server
// checks a config.pbtxt, and fills `next` from it. Empty string: accepted.
inline std::string ApplyConfigJson(const std::string& json, const ModelSpec& current,
                                   ModelSpec* next) {
  Json config;
  std::string error;
  if (!JsonReader(json).Parse(&config, &error)) return "not valid JSON: " + error;
  if (config.kind != Json::kObject) return "the config must be a JSON object";
  if (const Json* name = config.Find("name")) {
    if (name->kind != Json::kString || name->text != current.name) {
      return "the name cannot change (the model is '" + current.name + "')";
    }
  }
  Json old;
  if (JsonReader(current.config_json).Parse(&old, &error) && old.kind == Json::kObject) {
    const char* fixed[][2] = {{"backend", "backend"},
                              {"platform", "platform"},
                              {"instance_group", "instanceGroup"}};
    for (const auto& f : fixed) {
      const Json* a = old.Find(f[0], f[1]);
      const Json* b = config.Find(f[0], f[1]);
      if ((a == nullptr) != (b == nullptr) || (a != nullptr && *a != *b)) {
        return std::string("'") + f[0] + "' cannot change";
      }
    }
  }
  *next = current;
  next->config_json = json;
  next->max_batch_size = 0;
  if (const Json* mbs = config.Find("max_batch_size", "maxBatchSize")) {
    int64_t v = 0;
    if (!JsonInt(*mbs, &v) || v < 0 || v > std::numeric_limits<int32_t>::max()) {
      return "max_batch_size must be an integer >= 0";
    }
    next->max_batch_size = static_cast<int32_t>(v);
  }
  error = ConfigTensors(config.Find("input"), "input", &next->inputs);
  if (error.empty()) error = ConfigTensors(config.Find("output"), "output", &next->outputs);
  if (!error.empty()) return error;
  next->parameters.clear();
  if (const Json* params = config.Find("parameters")) {
    if (params->kind != Json::kObject) return "parameters must be an object";
    for (const auto& kv : params->members) {
      const Json* v = kv.second.Find("string_value", "stringValue");
      if (kv.second.kind != Json::kObject || v == nullptr || v->kind != Json::kString) {
        return "parameter '" + kv.first + "' needs a string_value";
      }
      next->parameters[kv.first] = v->text;
    }
  }
  next->decoupled = false;
  if (const Json* policy = config.Find("model_transaction_policy", "modelTransactionPolicy")) {
    const Json* d = policy->Find("decoupled");
    if (policy->kind != Json::kObject || (d != nullptr && d->kind != Json::kBool)) {
      return "model_transaction_policy.decoupled must be true or false";
    }
    next->decoupled = d != nullptr && d->boolean;
  }
  return "";
}

// --- threads of the fake host ----------------------------------------------

// The threads that deliver model-call results: joined when done (so a test
// making thousands of calls does not keep thousands of stacks) and at the end.
class ThreadSet {
 public:
  ~ThreadSet() { JoinAll(); }
  void Spawn(std::function<void()> fn) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = threads_.begin(); it != threads_.end();) {
      if (it->done->load()) {
        it->thread.join();
        it = threads_.erase(it);
      } else {
        ++it;
      }
    }
    auto done = std::make_shared<std::atomic<bool>>(false);
    threads_.push_back({std::thread([fn = std::move(fn), done] {
                          fn();
                          done->store(true);
                        }),
                        done});
  }
  void JoinAll() {
    std::list<Entry> all;
    {
      std::lock_guard<std::mutex> lock(mu_);
      all.swap(threads_);
    }
    for (auto& e : all) {
      if (e.thread.get_id() == std::this_thread::get_id()) {
        e.thread.detach();  // the last owner let go on this very thread
      } else {
        e.thread.join();
      }
    }
  }

 private:
  struct Entry {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::mutex mu_;
  std::list<Entry> threads_;
};

// Model calls a model has in flight: it is not unloaded before they end.
struct CallCounter {
  std::mutex mu;
  std::condition_variable cv;
  int64_t running = 0;
  void Add() {
    std::lock_guard<std::mutex> lock(mu);
    ++running;
  }
  void Done() {
    std::lock_guard<std::mutex> lock(mu);
    if (--running == 0) cv.notify_all();
  }
  bool WaitIdle(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, timeout, [&] { return running == 0; });
  }
};

// One model a runner may call.
struct ServedModel {
  std::string name;
  int64_t version = 1;
  ModelHandler handler;                    // either a handler ...
  std::shared_ptr<FakeModel> model;        // ... or a runner's model
  std::shared_ptr<FakeInstance> instance;  // and its instance
};

// What a FakeHost shares with the models it loaded.
struct HostState {
  host_metrics::Registry metrics;  // runner-defined metrics (ABI 1.3)
  std::mutex mu;
  std::map<std::string, std::map<int64_t, std::shared_ptr<ServedModel>>> models;
  std::atomic<int64_t> wait_timeout_ms{10000};
  ThreadSet threads;

  std::chrono::milliseconds wait_timeout() const {
    return std::chrono::milliseconds(wait_timeout_ms.load());
  }
};

// One request from arrival to its final response: what a Stream shows.
struct RequestState {
  Request request;
  size_t index = 0;  // in its batch
  int64_t rows = 1;
  const ToriiModel* model = nullptr;
  std::string model_name;
  bool decoupled = false;
  std::chrono::milliseconds wait_timeout{10000};
  std::atomic<bool> cancelled{false};

  mutable std::mutex mu;
  mutable std::condition_variable cv;
  std::vector<Response> responses;   // guarded by mu
  bool finished = false;             // guarded by mu
  bool final_with_response = false;  // guarded by mu
  bool taken = false;                // answered through a sender; guarded by mu
  size_t dropped = 0;                // sends after the client went; guarded by mu
  ToriiStatusCode ended_gone = TORII_STATUS_OK;  // the final came after the client went

  // The client no longer wants an answer: cancelled or past its deadline.
  ToriiStatusCode Gone() const {
    if (cancelled.load()) return TORII_STATUS_CANCELLED;
    if (request.deadline_ns != 0 && MonotonicNs() >= request.deadline_ns) {
      return TORII_STATUS_DEADLINE_EXCEEDED;
    }
    return TORII_STATUS_OK;
  }
  std::string What() const {
    return "request #" + std::to_string(index) +
           (request.id.empty() ? std::string() : " ('" + request.id + "')") + " of model '" +
           model_name + "'";
  }
  // Appends `r` (if any) and, when `final`, ends the request. Holds mu.
  void AppendLocked(std::optional<Response> r, bool final) {
    if (r) responses.push_back(std::move(*r));
    if (final) {
      finished = true;
      final_with_response = r.has_value();
    }
    cv.notify_all();
  }
};

// A runner's error as the server reports it: codes are gRPC's, OK is a bug.
inline Response ErrorResponse(ToriiStatusCode code, const std::string& message) {
  Response r;
  if (code == TORII_STATUS_OK) {
    r.code = TORII_STATUS_INTERNAL;
    r.message = "runner reported a failure with status OK: " + message;
  } else if (code < 0 || code > TORII_STATUS_UNAUTHENTICATED) {
    r.code = TORII_STATUS_UNKNOWN;
    r.message = message;
  } else {
    r.code = code;
    r.message = message;
  }
  return r;
}

}  // namespace fake_detail
}  // namespace testing
}  // namespace torii

// The host-side objects behind the opaque handles.
struct ToriiError {
  ToriiStatusCode code;
  std::string message;
};

struct ToriiModel {
  torii::testing::ModelSpec spec;  // as loaded
  std::vector<std::string> log;    // guarded by mu

  // --- ABI 1.2 (a ToriiModel built by hand has none of this set up) ------
  // What the accessors return: `spec`, or the last config the runner set with
  // model_set_config_json. Every config is kept until unload, so strings the
  // runner got from an earlier one stay valid.
  const torii::testing::ModelSpec* active = &spec;
  std::vector<std::unique_ptr<torii::testing::ModelSpec>> completed;
  std::shared_ptr<torii::testing::fake_detail::HostState> host;
  std::shared_ptr<torii::testing::fake_detail::CallCounter> calls =
      std::make_shared<torii::testing::fake_detail::CallCounter>();
  bool loading = false;  // inside torii_runner_model_load

  // ABI 1.3: the model's metric handles, released after model_unload.
  std::unique_ptr<torii::host_metrics::Owner> metrics;

  mutable std::mutex mu;  // guards log and the members below
  std::vector<std::pair<std::string, std::string>> properties;
  std::vector<std::unique_ptr<ToriiResponseSender>> senders;

  const torii::testing::ModelSpec& current() const { return *active; }
};

struct ToriiBatch {
  const ToriiModel* model = nullptr;
  std::vector<const torii::testing::Request*> requests;
  std::vector<int64_t> rows;
  std::vector<torii::testing::Tensor> inputs;  // concatenated
  std::map<std::string, torii::testing::Tensor> outputs;
  std::vector<std::unique_ptr<ToriiError>> failed;  // per request, may be null
  // --- ABI 1.2 (empty in a batch built by hand) ---
  std::vector<std::shared_ptr<torii::testing::fake_detail::RequestState>> states;
  std::vector<ToriiResponseSender*> senders;  // per request, once taken

  int64_t total_rows() const {
    int64_t n = 0;
    for (int64_t r : rows) n += r;
    return n;
  }
};

struct ToriiResponseSender {
  ToriiModel* model = nullptr;
  std::shared_ptr<torii::testing::fake_detail::RequestState> state;
};

struct ToriiResponse {
  ToriiResponseSender* sender = nullptr;
  std::list<torii::testing::Tensor> outputs;  // a list: buffers never move
};

struct ToriiInferRequest {
  struct Input {
    std::string name;
    ToriiDataType datatype;
    std::vector<int64_t> shape;
    const void* data;  // the runner's bytes, not copied (as the server)
    size_t byte_size;
    uint64_t hash;     // to catch bytes changed before the final callback
  };
  const ToriiModel* caller = nullptr;
  std::string model_name;
  int64_t model_version = -1;
  std::vector<Input> inputs;
  std::vector<std::string> outputs;
  std::string id;
  std::map<std::string, torii::Parameter> parameters;
  uint64_t timeout_us = 0;
};

struct ToriiInferResult {
  ToriiStatusCode code = TORII_STATUS_OK;
  std::string message;
  std::vector<torii::testing::Tensor> outputs;
};

namespace torii {
namespace testing {
namespace fake_detail {

inline ToriiError* NewError(ToriiStatusCode code, std::string message) {
  return new ToriiError{code, std::move(message)};
}

// Every ToriiTensor / ToriiParameter the fake host fills for a runner goes
// through FillSized: never a byte past the runner's struct_size.
inline void Fill(const TensorSpec& s, ToriiTensor* out) {
  ToriiTensor t;
  std::memset(&t, 0, sizeof t);
  t.struct_size = sizeof t;
  t.name = s.name.c_str();
  t.datatype = s.datatype;
  t.shape = s.dims.data();
  t.ndim = s.dims.size();
  host_checks::FillSized(t, out);
}

inline void Fill(const Tensor& src, ToriiTensor* out) {
  ToriiTensor t;
  std::memset(&t, 0, sizeof t);
  t.struct_size = sizeof t;
  t.name = src.name.c_str();
  t.datatype = src.datatype;
  t.shape = src.shape.data();
  t.ndim = src.shape.size();
  t.data = src.data.data();
  t.byte_size = src.data.size();
  host_checks::FillSized(t, out);
}

inline void Fill(const Parameter& p, ToriiParameter* out) {
  ToriiParameter v;
  std::memset(&v, 0, sizeof v);
  v.struct_size = sizeof v;
  v.type = p.type;
  v.bool_value = p.bool_value;
  v.int64_value = p.int64_value;
  v.uint64_value = p.uint64_value;
  v.double_value = p.double_value;
  v.string_value = p.string_value.c_str();
  v.string_size = p.string_value.size();
  host_checks::FillSized(v, out);
}

// Reads a struct the runner allocated, no further than its struct_size;
// fields past it read as zero.
template <typename T>
T ReadSized(const T* in) {
  T v;
  std::memset(&v, 0, sizeof v);
  const size_t n = std::min<size_t>(in->struct_size, sizeof v);
  std::memcpy(&v, in, n);
  return v;
}

inline const TensorSpec* FindTensor(const std::vector<TensorSpec>& ts, const std::string& name) {
  for (const auto& t : ts) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

inline bool Wants(const Request& r, const std::string& output) {
  if (r.requested_outputs.empty()) return true;
  return std::find(r.requested_outputs.begin(), r.requested_outputs.end(), output) !=
         r.requested_outputs.end();
}

inline std::string Quoted(const char* s) { return s == nullptr ? "(null)" : s; }

// The shared part of batch_output_allocate and response_output_allocate.
inline ToriiError* CheckAllocation(const ModelSpec& spec, const char* name, int64_t batch_rows,
                                   ToriiDataType dt, const int64_t* shape, size_t ndim,
                                   size_t byte_size, bool already) {
  const std::string who = "model '" + spec.name + "' output '" + Quoted(name) + "'";
  const TensorSpec* t = name == nullptr ? nullptr : FindTensor(spec.outputs, name);
  if (t == nullptr) return NewError(TORII_STATUS_INTERNAL, who + " is not declared in config.pbtxt");
  if (already) return NewError(TORII_STATUS_INTERNAL, who + " was allocated twice");
  const std::string msg = host_checks::CheckOutputAllocation(
      who, {t->datatype, &t->dims}, spec.max_batch_size > 0 ? batch_rows : -1, dt, shape, ndim,
      byte_size);
  if (!msg.empty()) return NewError(TORII_STATUS_INTERNAL, msg);
  return nullptr;
}

inline Tensor NewOutput(const char* name, ToriiDataType dt, const int64_t* shape, size_t ndim,
                        size_t byte_size) {
  Tensor t;
  t.name = name;
  t.datatype = dt;
  t.shape.assign(shape, shape + ndim);
  t.data.assign(byte_size, '\0');
  return t;
}

// A runner-written BYTES output must be well formed before a client sees it.
inline std::string CheckOutputBytes(const std::string& model, const Tensor& t) {
  if (t.datatype != TORII_TYPE_BYTES) return "";
  int64_t elements = 0;
  host_checks::ElementCount(t.shape.data(), t.shape.size(), &elements);
  return host_checks::CheckBytesBuffer(t.data.data(), t.data.size(), elements,
                                       "model '" + model + "': runner output '" + t.name + "'");
}

// --- ABI 1.2: answering through a sender ------------------------------------

inline ToriiResponseSender* BatchResponseSender(ToriiBatch* b, size_t r) {
  // A batch built by hand (no request states) cannot be answered this way.
  if (b == nullptr || r >= b->states.size() || !b->states[r]) return nullptr;
  if (b->senders.size() < b->states.size()) b->senders.resize(b->states.size(), nullptr);
  if (b->senders[r] != nullptr) return b->senders[r];
  auto sender = std::make_unique<ToriiResponseSender>();
  ToriiModel* model = const_cast<ToriiModel*>(b->model);
  sender->model = model;
  sender->state = b->states[r];
  {
    std::lock_guard<std::mutex> lock(sender->state->mu);
    sender->state->taken = true;
  }
  b->senders[r] = sender.get();
  std::lock_guard<std::mutex> lock(model->mu);
  model->senders.push_back(std::move(sender));
  return b->senders[r];
}

inline ToriiResponse* ResponseNew(ToriiResponseSender* s) {
  if (s == nullptr) return nullptr;
  std::lock_guard<std::mutex> lock(s->state->mu);
  if (s->state->finished) return nullptr;
  auto* r = new ToriiResponse;
  r->sender = s;
  return r;
}

inline ToriiError* ResponseOutputAllocate(ToriiResponse* resp, const char* name,
                                          ToriiDataType dt, const int64_t* shape, size_t ndim,
                                          size_t byte_size, void** buffer) {
  if (buffer != nullptr) *buffer = nullptr;
  if (resp == nullptr || buffer == nullptr) {
    return NewError(TORII_STATUS_INVALID_ARGUMENT,
                    "response_output_allocate needs a response and a buffer pointer");
  }
  bool already = false;
  for (const auto& t : resp->outputs) already = already || (name != nullptr && t.name == name);
  const auto& state = *resp->sender->state;
  {
    std::lock_guard<std::mutex> lock(state.mu);
    if (state.finished) {
      return NewError(TORII_STATUS_FAILED_PRECONDITION,
                      "response_output_allocate: " + state.What() + " is already finished");
    }
  }
  if (ToriiError* e = CheckAllocation(resp->sender->model->current(), name, state.rows, dt, shape,
                                      ndim, byte_size, already)) {
    return e;
  }
  resp->outputs.push_back(NewOutput(name, dt, shape, ndim, byte_size));
  *buffer = &resp->outputs.back().data[0];
  return nullptr;
}

// The response a client gets for what the runner sent, after the host's
// checks: when they fail (`refusal` set), an INTERNAL error in its place.
inline Response CheckedResponse(const ToriiResponseSender& s, ToriiResponse* resp,
                                std::string* refusal) {
  const ModelSpec& spec = s.model->current();
  const RequestState& st = *s.state;
  Response out;
  for (auto& t : resp->outputs) {
    const std::string bad = CheckOutputBytes(spec.name, t);
    if (!bad.empty()) {
      *refusal = bad;
      return ErrorResponse(TORII_STATUS_INTERNAL, bad);
    }
  }
  if (!spec.decoupled) {
    // The one response of a model that is not decoupled: every requested
    // output must be there, as for a batch.
    for (const auto& o : spec.outputs) {
      if (!Wants(st.request, o.name)) continue;
      bool found = false;
      for (const auto& t : resp->outputs) found = found || t.name == o.name;
      if (!found) {
        *refusal = "model '" + spec.name + "': the runner produced no output '" + o.name + "'";
        return ErrorResponse(TORII_STATUS_INTERNAL, *refusal);
      }
    }
  }
  for (const auto& o : spec.outputs) {  // declared order, requested only
    if (!Wants(st.request, o.name)) continue;
    for (auto& t : resp->outputs) {
      if (t.name == o.name) out.outputs.push_back(std::move(t));
    }
  }
  return out;
}

inline ToriiError* SenderSend(ToriiResponseSender* s, ToriiResponse* resp, ToriiError* err,
                              uint32_t flags) {
  std::unique_ptr<ToriiResponse> response(resp);
  std::unique_ptr<ToriiError> error(err);
  if (s == nullptr) return NewError(TORII_STATUS_INVALID_ARGUMENT, "sender_send: no sender");
  RequestState& st = *s->state;
  const bool final = (flags & TORII_RESPONSE_FINAL) != 0;
  std::lock_guard<std::mutex> lock(st.mu);
  if (st.finished) {
    return NewError(TORII_STATUS_FAILED_PRECONDITION,
                    "sender_send: " + st.What() + " is already finished");
  }
  if (response && error) {
    return NewError(TORII_STATUS_INVALID_ARGUMENT,
                    "sender_send takes a response or an error, not both");
  }
  if (response && response->sender != s) {
    return NewError(TORII_STATUS_INVALID_ARGUMENT,
                    "sender_send: the response belongs to the sender of another request");
  }
  if (!response && !error && !final) {
    return NewError(TORII_STATUS_INVALID_ARGUMENT,
                    "sender_send: nothing to send (no response, no error, no "
                    "TORII_RESPONSE_FINAL)");
  }
  if (!st.decoupled && !final) {
    return NewError(TORII_STATUS_FAILED_PRECONDITION,
                    "model '" + st.model_name +
                        "' is not decoupled (config.pbtxt: model_transaction_policy { "
                        "decoupled: true }): it answers " +
                        st.What() + " with one response, sent with TORII_RESPONSE_FINAL");
  }
  if (const ToriiStatusCode gone = st.Gone()) {
    // Nobody reads it; a final send still ends the request.
    if (response || error) ++st.dropped;
    if (final) {
      st.ended_gone = gone;
      st.AppendLocked(std::nullopt, true);
      return nullptr;
    }
    return NewError(gone, st.What() + (gone == TORII_STATUS_CANCELLED
                                           ? " was cancelled by its client"
                                           : " is past its deadline"));
  }
  // A response that fails the host's checks reaches the client as INTERNAL;
  // as in the server, the send itself succeeds.
  std::string refusal;
  std::optional<Response> out;
  if (error) {
    out = ErrorResponse(error->code, error->message);
  } else if (response) {
    out = CheckedResponse(*s, response.get(), &refusal);
  } else if (!st.decoupled) {
    out = ErrorResponse(TORII_STATUS_INTERNAL, "model '" + st.model_name +
                                                   "' is not decoupled, but its runner ended " +
                                                   st.What() + " without a response");
  }
  st.AppendLocked(std::move(out), final);
  return nullptr;
}

inline bool SenderIsCancelled(const ToriiResponseSender* s) {
  if (s == nullptr) return true;
  {
    std::lock_guard<std::mutex> lock(s->state->mu);
    if (s->state->finished) return true;
  }
  return s->state->Gone() != TORII_STATUS_OK;
}

// --- ABI 1.2: calling other models ------------------------------------------

inline uint64_t Fnv1a(const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

// Only a malformed call is refused here; what is wrong with the inputs
// themselves comes back as the call's result, as in the server.
inline ToriiError* InferRequestAddInput(ToriiInferRequest* req, const char* name,
                                        ToriiDataType dt, const int64_t* shape, size_t ndim,
                                        const void* data, size_t byte_size) {
  if (req == nullptr || name == nullptr || (shape == nullptr && ndim > 0) ||
      (data == nullptr && byte_size > 0)) {
    return NewError(TORII_STATUS_INVALID_ARGUMENT, "infer_request_add_input: NULL argument");
  }
  req->inputs.push_back({name, dt, std::vector<int64_t>(shape, shape + ndim), data, byte_size,
                         Fnv1a(data, byte_size)});
  return nullptr;
}

// What the host checks of a call's inputs before any model sees them.
inline std::string CheckCallInputs(const ToriiInferRequest& req) {
  for (size_t i = 0; i < req.inputs.size(); ++i) {
    const auto& in = req.inputs[i];
    const std::string what = "input '" + in.name + "' of the call to '" + req.model_name + "'";
    for (size_t j = 0; j < i; ++j) {
      if (req.inputs[j].name == in.name) return what + " is given twice";
    }
    if (in.datatype < TORII_TYPE_BOOL || in.datatype > TORII_TYPE_BF16) {
      return what + " has no valid datatype";
    }
    int64_t elements = 0;
    if (!host_checks::ElementCount(in.shape.data(), in.shape.size(), &elements)) {
      return what + ": shape " + host_checks::ShapeText(in.shape.data(), in.shape.size()) +
             " has a negative dimension or too many elements";
    }
    const size_t esize = host_checks::TypeSize(in.datatype);
    if (esize == 0) {
      const std::string bad =
          host_checks::CheckBytesBuffer(in.data, in.byte_size, elements, what);
      if (!bad.empty()) return bad;
    } else if (static_cast<uint64_t>(elements) > SIZE_MAX / esize ||
               in.byte_size != static_cast<size_t>(elements) * esize) {
      return what + ": shape " + host_checks::ShapeText(in.shape.data(), in.shape.size()) +
             " of " + DataTypeName(in.datatype) + " needs " + std::to_string(elements) + " x " +
             std::to_string(esize) + " bytes, got " + std::to_string(in.byte_size);
    }
  }
  return "";
}

inline ToriiError* InferRequestSetParameter(ToriiInferRequest* req, const char* key,
                                            const ToriiParameter* value) {
  if (req == nullptr || key == nullptr || value == nullptr) {
    return NewError(TORII_STATUS_INVALID_ARGUMENT,
                    "infer_request_set_parameter needs a request, a key and a value");
  }
  const ToriiParameter p = ReadSized(value);
  if (p.type < TORII_PARAMETER_BOOL || p.type > TORII_PARAMETER_UINT64) {
    return NewError(TORII_STATUS_INVALID_ARGUMENT,
                    std::string("parameter '") + key + "' has no valid type");
  }
  Parameter out;
  out.type = p.type;
  out.bool_value = p.bool_value;
  out.int64_value = p.int64_value;
  out.uint64_value = p.uint64_value;
  out.double_value = p.double_value;
  if (p.type == TORII_PARAMETER_STRING && p.string_value != nullptr) {
    out.string_value.assign(p.string_value, p.string_size);
  }
  req->parameters[key] = std::move(out);
  return nullptr;
}

inline ToriiError* InferRequestSend(ToriiInferRequest* req, ToriiInferCallback cb,
                                    void* user_data);

// --- the table -------------------------------------------------------------

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
      if (m == nullptr) return;
      std::lock_guard<std::mutex> lock(m->mu);
      const_cast<ToriiModel*>(m)->log.emplace_back(msg ? msg : "");
    };
    a.model_name = [](const ToriiModel* m) { return m->current().name.c_str(); };
    a.model_version = [](const ToriiModel* m) { return m->current().version; };
    a.model_directory = [](const ToriiModel* m) { return m->current().directory.c_str(); };
    a.model_version_directory = [](const ToriiModel* m) {
      return m->current().version_directory.c_str();
    };
    a.model_max_batch_size = [](const ToriiModel* m) { return m->current().max_batch_size; };
    a.model_config_json = [](const ToriiModel* m) { return m->current().config_json.c_str(); };
    a.model_input_count = [](const ToriiModel* m) { return m->current().inputs.size(); };
    a.model_input = [](const ToriiModel* m, size_t i, ToriiTensor* out) {
      if (i >= m->current().inputs.size()) return false;
      Fill(m->current().inputs[i], out);
      return true;
    };
    a.model_output_count = [](const ToriiModel* m) { return m->current().outputs.size(); };
    a.model_output = [](const ToriiModel* m, size_t i, ToriiTensor* out) {
      if (i >= m->current().outputs.size()) return false;
      Fill(m->current().outputs[i], out);
      return true;
    };
    a.model_parameter = [](const ToriiModel* m, const char* key) -> const char* {
      if (key == nullptr) return nullptr;
      auto it = m->current().parameters.find(key);
      return it == m->current().parameters.end() ? nullptr : it->second.c_str();
    };
    a.batch_request_count = [](const ToriiBatch* b) { return b->requests.size(); };
    a.batch_request_rows = [](const ToriiBatch* b, size_t r) -> int64_t {
      return r < b->rows.size() ? b->rows[r] : 0;
    };
    a.batch_input_count = [](const ToriiBatch* b) { return b->inputs.size(); };
    a.batch_input = [](const ToriiBatch* b, size_t i, ToriiTensor* out) {
      if (i >= b->inputs.size()) return false;
      Fill(b->inputs[i], out);
      return true;
    };
    a.batch_input_by_name = [](const ToriiBatch* b, const char* name, ToriiTensor* out) {
      if (name == nullptr) return false;
      for (const Tensor& t : b->inputs) {
        if (t.name == name) {
          Fill(t, out);
          return true;
        }
      }
      return false;
    };
    a.batch_output_requested = [](const ToriiBatch* b, const char* name) {
      if (name == nullptr) return false;
      for (const Request* r : b->requests) {
        if (Wants(*r, name)) return true;
      }
      return false;
    };
    a.batch_output_allocate = [](ToriiBatch* b, const char* name, ToriiDataType dt,
                                 const int64_t* shape, size_t ndim, size_t byte_size,
                                 void** buffer) -> ToriiError* {
      if (buffer == nullptr) {
        return NewError(TORII_STATUS_INVALID_ARGUMENT, "batch_output_allocate: no buffer pointer");
      }
      *buffer = nullptr;
      const bool already = name != nullptr && b->outputs.count(name) != 0;
      if (ToriiError* e = CheckAllocation(b->model->current(), name, b->total_rows(), dt, shape, ndim,
                                          byte_size, already)) {
        return e;
      }
      Tensor& t = b->outputs[name] = NewOutput(name, dt, shape, ndim, byte_size);
      *buffer = &t.data[0];
      return nullptr;
    };
    a.batch_fail_request = [](ToriiBatch* b, size_t r, ToriiError* e) {
      if (r < b->failed.size()) {
        b->failed[r].reset(e);
      } else {
        delete e;
      }
    };
    a.batch_request_parameter = [](const ToriiBatch* b, size_t r, const char* key,
                                   ToriiParameter* out) {
      if (r >= b->requests.size() || key == nullptr) return false;
      const auto& params = b->requests[r]->parameters;
      auto it = params.find(key);
      if (it == params.end()) return false;
      Fill(it->second, out);
      return true;
    };
    a.batch_deadline_ns = [](const ToriiBatch* b) -> uint64_t {
      uint64_t earliest = 0;
      for (const Request* r : b->requests) {
        const uint64_t d = r->deadline_ns;
        if (d != 0 && (earliest == 0 || d < earliest)) earliest = d;
      }
      return earliest;
    };
    a.batch_is_cancelled = [](const ToriiBatch* b) {
      for (size_t r = 0; r < b->requests.size(); ++r) {
        if (r < b->states.size() ? b->states[r]->Gone() == TORII_STATUS_OK
                                 : !b->requests[r]->cancelled &&
                                       (b->requests[r]->deadline_ns == 0 ||
                                        MonotonicNs() < b->requests[r]->deadline_ns)) {
          return false;
        }
      }
      return true;
    };
    // --- 1.2 ---
    a.batch_request_id = [](const ToriiBatch* b, size_t r) -> const char* {
      return r < b->requests.size() ? b->requests[r]->id.c_str() : "";
    };
    a.batch_request_output_requested = [](const ToriiBatch* b, size_t r, const char* name) {
      return r < b->requests.size() && name != nullptr && Wants(*b->requests[r], name);
    };
    a.batch_request_parameter_count = [](const ToriiBatch* b, size_t r) -> size_t {
      return r < b->requests.size() ? b->requests[r]->parameters.size() : 0;
    };
    a.batch_request_parameter_at = [](const ToriiBatch* b, size_t r, size_t i, const char** key,
                                      ToriiParameter* out) {
      if (r >= b->requests.size()) return false;
      const auto& params = b->requests[r]->parameters;
      if (i >= params.size()) return false;
      auto it = params.begin();
      std::advance(it, static_cast<std::ptrdiff_t>(i));
      if (key != nullptr) *key = it->first.c_str();
      if (out != nullptr) Fill(it->second, out);
      return true;
    };
    a.batch_response_sender = BatchResponseSender;
    a.response_new = ResponseNew;
    a.response_output_allocate = ResponseOutputAllocate;
    a.response_delete = [](ToriiResponse* r) { delete r; };
    a.sender_send = SenderSend;
    a.sender_is_cancelled = SenderIsCancelled;
    a.infer_request_new = [](const ToriiModel* caller, const char* name, int64_t version) {
      auto* r = new ToriiInferRequest;
      r->caller = caller;
      r->model_name = name == nullptr ? "" : name;
      r->model_version = version;
      return r;
    };
    a.infer_request_add_input = InferRequestAddInput;
    a.infer_request_add_output = [](ToriiInferRequest* r, const char* name) -> ToriiError* {
      if (r == nullptr || name == nullptr || *name == '\0') {
        return NewError(TORII_STATUS_INVALID_ARGUMENT, "infer_request_add_output needs a name");
      }
      if (std::find(r->outputs.begin(), r->outputs.end(), name) != r->outputs.end()) {
        return NewError(TORII_STATUS_INVALID_ARGUMENT,
                        std::string("output '") + name + "' requested twice");
      }
      r->outputs.emplace_back(name);
      return nullptr;
    };
    a.infer_request_set_id = [](ToriiInferRequest* r, const char* id) {
      if (r != nullptr) r->id = id == nullptr ? "" : id;
    };
    a.infer_request_set_parameter = InferRequestSetParameter;
    a.infer_request_set_timeout_us = [](ToriiInferRequest* r, uint64_t us) {
      if (r != nullptr) r->timeout_us = us;
    };
    a.infer_request_delete = [](ToriiInferRequest* r) { delete r; };
    a.infer_request_send = InferRequestSend;
    a.infer_result_code = [](const ToriiInferResult* r) { return r->code; };
    a.infer_result_message = [](const ToriiInferResult* r) { return r->message.c_str(); };
    a.infer_result_output_count = [](const ToriiInferResult* r) { return r->outputs.size(); };
    a.infer_result_output = [](const ToriiInferResult* r, size_t i, ToriiTensor* out) {
      if (i >= r->outputs.size()) return false;
      Fill(r->outputs[i], out);
      return true;
    };
    a.infer_result_delete = [](ToriiInferResult* r) { delete r; };
    a.model_set_config_json = [](ToriiModel* m, const char* json) -> ToriiError* {
      if (m == nullptr || json == nullptr) {
        return NewError(TORII_STATUS_INVALID_ARGUMENT, "model_set_config_json needs a config");
      }
      if (!m->loading) {
        return NewError(TORII_STATUS_FAILED_PRECONDITION,
                        "model '" + m->current().name +
                            "': model_set_config_json is only valid during "
                            "torii_runner_model_load");
      }
      auto next = std::make_unique<ModelSpec>();
      const std::string bad = ApplyConfigJson(json, m->current(), next.get());
      if (!bad.empty()) {
        return NewError(TORII_STATUS_INVALID_ARGUMENT,
                        "model '" + m->current().name + "': the completed config is refused: " + bad);
      }
      std::lock_guard<std::mutex> lock(m->mu);
      m->active = next.get();
      m->completed.push_back(std::move(next));
      return nullptr;
    };
    a.model_report_property = [](const ToriiModel* m, const char* key, const char* value) {
      if (m == nullptr || key == nullptr) return;
      std::lock_guard<std::mutex> lock(m->mu);
      const_cast<ToriiModel*>(m)->properties.emplace_back(key, value == nullptr ? "" : value);
    };
    // ABI 1.3: the same registry code as the server.
    a.metric_family_new = [](const ToriiModel* m, const char* name, const char* description,
                             ToriiMetricKind kind, ToriiMetricFamily** out) -> ToriiError* {
      if (m == nullptr || m->metrics == nullptr) {
        return NewError(TORII_STATUS_INVALID_ARGUMENT,
                        "metric_family_new: a model loaded by the fake host is required");
      }
      auto r = m->metrics->NewFamily(name, description, kind, out);
      return r.ok() ? nullptr : NewError(r.code, r.message);
    };
    a.metric_family_delete = [](ToriiMetricFamily* f) {
      if (f != nullptr) f->owner->DeleteFamily(f);
    };
    a.metric_new = [](ToriiMetricFamily* f, const char* const* names, const char* const* values,
                      size_t n, const double* buckets, size_t bucket_count,
                      ToriiMetric** out) -> ToriiError* {
      if (f == nullptr) return NewError(TORII_STATUS_INVALID_ARGUMENT, "metric_new: NULL family");
      auto r = f->owner->NewMetric(f, names, values, n, buckets, bucket_count, out);
      return r.ok() ? nullptr : NewError(r.code, r.message);
    };
    a.metric_delete = [](ToriiMetric* m) {
      if (m != nullptr) m->owner->DeleteMetric(m);
    };
    a.metric_increment = [](ToriiMetric* m, double v) -> ToriiError* {
      if (m == nullptr) return NewError(TORII_STATUS_INVALID_ARGUMENT, "metric_increment: NULL");
      auto r = m->owner->Update(m, host_metrics::Op::kIncrement, v);
      return r.ok() ? nullptr : NewError(r.code, r.message);
    };
    a.metric_set = [](ToriiMetric* m, double v) -> ToriiError* {
      if (m == nullptr) return NewError(TORII_STATUS_INVALID_ARGUMENT, "metric_set: NULL");
      auto r = m->owner->Update(m, host_metrics::Op::kSet, v);
      return r.ok() ? nullptr : NewError(r.code, r.message);
    };
    a.metric_observe = [](ToriiMetric* m, double v) -> ToriiError* {
      if (m == nullptr) return NewError(TORII_STATUS_INVALID_ARGUMENT, "metric_observe: NULL");
      auto r = m->owner->Update(m, host_metrics::Op::kObserve, v);
      return r.ok() ? nullptr : NewError(r.code, r.message);
    };
    a.metric_value = [](const ToriiMetric* m, double* v) -> ToriiError* {
      if (m == nullptr) return NewError(TORII_STATUS_INVALID_ARGUMENT, "metric_value: NULL");
      auto r = m->owner->Value(m, v);
      return r.ok() ? nullptr : NewError(r.code, r.message);
    };
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

// What the server checks of a request before a runner sees it (here: the
// requests of model calls to a runner's model).
inline std::string ValidateRequest(const ModelSpec& spec, const Request& r) {
  const std::string m = "model '" + spec.name + "'";
  const bool batching = spec.max_batch_size > 0;
  int64_t rows = -1;
  for (size_t i = 0; i < r.inputs.size(); ++i) {
    const Tensor& t = r.inputs[i];
    const TensorSpec* d = FindTensor(spec.inputs, t.name);
    if (d == nullptr) return m + " has no input '" + t.name + "'";
    for (size_t j = 0; j < i; ++j) {
      if (r.inputs[j].name == t.name) return "input '" + t.name + "' is given twice";
    }
    const std::string in = "input '" + t.name + "' of " + m;
    if (t.datatype != d->datatype) {
      return in + ": expected " + DataTypeName(d->datatype) + ", got " + DataTypeName(t.datatype);
    }
    std::vector<int64_t> want;
    if (batching) want.push_back(-1);
    want.insert(want.end(), d->dims.begin(), d->dims.end());
    bool ok = t.shape.size() == want.size();
    for (size_t k = 0; ok && k < want.size(); ++k) {
      ok = t.shape[k] >= 0 && (want[k] == -1 || want[k] == t.shape[k]);
    }
    if (ok && batching) {
      ok = t.shape[0] >= 1 && t.shape[0] <= spec.max_batch_size && (rows < 0 || rows == t.shape[0]);
      rows = t.shape[0];
    }
    if (!ok) {
      return in + ": expected shape " + host_checks::ShapeText(want.data(), want.size()) +
             ", got " + host_checks::ShapeText(t.shape.data(), t.shape.size()) +
             (batching ? " (1.." + std::to_string(spec.max_batch_size) +
                             " rows, the same for every input)"
                       : std::string());
    }
  }
  for (const auto& d : spec.inputs) {
    bool found = false;
    for (const auto& t : r.inputs) found = found || t.name == d.name;
    if (!found) return m + " needs input '" + d.name + "'";
  }
  for (const auto& o : r.requested_outputs) {
    if (FindTensor(spec.outputs, o) == nullptr) return m + " has no output '" + o + "'";
  }
  return "";
}

}  // namespace fake_detail

/// The answer to one request as it arrives: the responses a runner sent (or
/// the one the host made from the batch's outputs), in order, and whether the
/// final flag came. Thread-safe; the runner may still be sending.
class Stream {
 public:
  explicit Stream(std::shared_ptr<fake_detail::RequestState> state) : s_(std::move(state)) {}

  const Request& request() const { return s_->request; }
  /// Whether the runner took the request over with batch_response_sender.
  bool answered_by_sender() const {
    std::lock_guard<std::mutex> lock(s_->mu);
    return s_->taken;
  }
  bool finished() const {
    std::lock_guard<std::mutex> lock(s_->mu);
    return s_->finished;
  }
  /// The responses so far.
  std::vector<Response> responses() const {
    std::lock_guard<std::mutex> lock(s_->mu);
    return s_->responses;
  }
  /// Sends the runner made after the client went away (dropped, as the
  /// server drops them).
  size_t dropped() const {
    std::lock_guard<std::mutex> lock(s_->mu);
    return s_->dropped;
  }
  /// The client cancels: sender_is_cancelled / batch_is_cancelled turn true
  /// and non-final sends fail with CANCELLED. The runner must still end the
  /// request with a final send.
  void Cancel() {
    s_->cancelled.store(true);
    std::lock_guard<std::mutex> lock(s_->mu);
    s_->cv.notify_all();
  }

  /// Waits for the final flag and returns every response; throws
  /// std::runtime_error when it does not come within FakeHost::wait_timeout().
  std::vector<Response> Wait() const { return Wait(s_->wait_timeout); }
  std::vector<Response> Wait(std::chrono::milliseconds timeout) const {
    std::unique_lock<std::mutex> lock(s_->mu);
    if (!s_->cv.wait_for(lock, timeout, [&] { return s_->finished; })) {
      throw std::runtime_error(
          "fake host: " + s_->What() + " got " + std::to_string(s_->responses.size()) +
          " response(s) but no TORII_RESPONSE_FINAL within " + std::to_string(timeout.count()) +
          " ms; a runner that takes a request's response sender must end it with a final "
          "send (ResponseSender::Finish)");
    }
    return s_->responses;
  }
  /// Waits until at least `n` responses arrived or the request finished;
  /// throws std::runtime_error on timeout.
  std::vector<Response> WaitForResponses(size_t n) const {
    return WaitForResponses(n, s_->wait_timeout);
  }
  std::vector<Response> WaitForResponses(size_t n, std::chrono::milliseconds timeout) const {
    std::unique_lock<std::mutex> lock(s_->mu);
    if (!s_->cv.wait_for(lock, timeout,
                         [&] { return s_->finished || s_->responses.size() >= n; })) {
      throw std::runtime_error("fake host: " + s_->What() + " got " +
                               std::to_string(s_->responses.size()) + " of " + std::to_string(n) +
                               " response(s) within " + std::to_string(timeout.count()) + " ms");
    }
    return s_->responses;
  }

 private:
  friend struct fake_detail::CallJob;
  std::shared_ptr<fake_detail::RequestState> s_;
};

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

  /// Runs the requests as one batch (concatenated along dimension 0 for a
  /// batching model) and returns a Stream per request. Returns when execute
  /// returns: requests the runner answered from the batch are finished, those
  /// it took over with a response sender may still be streaming.
  std::vector<std::shared_ptr<Stream>> Submit(std::vector<Request> requests) {
    std::lock_guard<std::mutex> lock(mu_);  // one instance never runs twice
    const ModelSpec& spec = model_->current();
    const bool batching = spec.max_batch_size > 0;
    const auto timeout = model_->host ? model_->host->wait_timeout() : std::chrono::seconds(10);
    ToriiBatch batch;
    batch.model = model_;
    std::vector<std::shared_ptr<Stream>> streams;
    for (size_t i = 0; i < requests.size(); ++i) {
      auto st = std::make_shared<fake_detail::RequestState>();
      st->request = std::move(requests[i]);
      st->index = i;
      st->model = model_;
      st->model_name = spec.name;
      st->decoupled = spec.decoupled;
      st->wait_timeout = timeout;
      st->cancelled.store(st->request.cancelled);
      const auto& ins = st->request.inputs;
      st->rows = batching && !ins.empty() && !ins[0].shape.empty() ? ins[0].shape[0] : 1;
      batch.requests.push_back(&st->request);
      batch.rows.push_back(st->rows);
      batch.states.push_back(st);
      streams.push_back(std::make_shared<Stream>(st));
    }
    BuildInputs(&batch);
    batch.failed.resize(batch.requests.size());
    batch.senders.assign(batch.requests.size(), nullptr);
    ToriiError* err = sym_.instance_execute(state_, &batch);
    Answer(batch, err);
    delete err;
    return streams;
  }
  std::shared_ptr<Stream> Submit(Request request) {
    std::vector<Request> one;
    one.push_back(std::move(request));
    return Submit(std::move(one))[0];
  }

  /// Executes the requests as one batch and returns one response per
  /// request, waiting (bounded by FakeHost::wait_timeout()) for requests
  /// answered through a sender. A request answered with several responses
  /// throws std::logic_error: read those with ExecuteAll().
  std::vector<Response> Execute(const std::vector<Request>& requests) {
    std::vector<Response> out;
    for (auto& all : ExecuteAll(requests)) {
      if (all.size() > 1) {
        throw std::logic_error("fake host: a request got " + std::to_string(all.size()) +
                               " responses; read them with ExecuteAll() or InferAll()");
      }
      out.push_back(all.empty() ? Response{} : std::move(all[0]));
    }
    return out;
  }

  /// Every response of every request, in order, once each is final.
  std::vector<std::vector<Response>> ExecuteAll(std::vector<Request> requests) {
    std::vector<std::vector<Response>> out;
    for (const auto& s : Submit(std::move(requests))) out.push_back(s->Wait());
    return out;
  }

  /// Executes a single request.
  Response Infer(std::vector<Tensor> inputs) {
    Request r;
    r.inputs = std::move(inputs);
    return Execute({r})[0];
  }
  /// Executes a single request and returns all its responses (a decoupled
  /// model's stream), once final.
  std::vector<Response> InferAll(std::vector<Tensor> inputs) {
    Request r;
    r.inputs = std::move(inputs);
    return Submit(std::move(r))->Wait();
  }

 private:
  // Inputs in the order the config declares them (then any others the first
  // request has), concatenated along dimension 0 when requests were merged.
  void BuildInputs(ToriiBatch* b) const {
    if (b->requests.empty()) return;
    const ModelSpec& spec = model_->current();
    const auto& first = b->requests[0]->inputs;
    std::vector<const Tensor*> order;
    for (const auto& d : spec.inputs) {
      for (const auto& t : first) {
        if (t.name == d.name) order.push_back(&t);
      }
    }
    for (const auto& t : first) {
      if (fake_detail::FindTensor(spec.inputs, t.name) == nullptr) order.push_back(&t);
    }
    for (const Tensor* t : order) {
      Tensor merged = *t;
      for (size_t r = 1; r < b->requests.size(); ++r) {
        for (const auto& other : b->requests[r]->inputs) {
          if (other.name != t->name) continue;
          merged.data += other.data;
          if (!merged.shape.empty() && !other.shape.empty()) merged.shape[0] += other.shape[0];
        }
      }
      b->inputs.push_back(std::move(merged));
    }
  }

  // After execute: the response of every request the runner did not take.
  void Answer(const ToriiBatch& b, const ToriiError* err) const {
    const ModelSpec& spec = model_->current();
    const bool whole = b.requests.size() == 1 || spec.max_batch_size == 0;
    std::map<std::string, std::string> bad_bytes;  // checked once per batch
    for (const auto& kv : b.outputs) {
      bad_bytes[kv.first] = fake_detail::CheckOutputBytes(spec.name, kv.second);
    }
    for (size_t r = 0; r < b.requests.size(); ++r) {
      if (b.senders[r] != nullptr) continue;  // answered by its sender only
      fake_detail::RequestState& st = *b.states[r];
      Response resp;
      if (b.failed[r]) {
        resp = fake_detail::ErrorResponse(b.failed[r]->code, b.failed[r]->message);
      } else if (err != nullptr) {
        resp = fake_detail::ErrorResponse(err->code, err->message);
      } else {
        for (const auto& o : spec.outputs) {
          if (!fake_detail::Wants(st.request, o.name)) continue;
          auto it = b.outputs.find(o.name);
          if (it == b.outputs.end()) {
            resp = fake_detail::ErrorResponse(
                TORII_STATUS_INTERNAL,
                "model '" + spec.name + "': the runner produced no output '" + o.name + "'");
            break;
          }
          if (!bad_bytes[o.name].empty()) {
            resp = fake_detail::ErrorResponse(TORII_STATUS_INTERNAL, bad_bytes[o.name]);
            break;
          }
          resp.outputs.push_back(whole ? it->second : fake_detail::Slice(it->second, b.rows, r));
        }
      }
      std::lock_guard<std::mutex> lock(st.mu);
      st.AppendLocked(std::move(resp), true);
    }
  }

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
  ~FakeModel() {
    // Model calls it made are still delivering results into its code.
    const auto timeout = model_->host ? model_->host->wait_timeout() : std::chrono::seconds(10);
    if (!model_->calls->WaitIdle(timeout)) {
      std::fprintf(stderr,
                   "fake host: model '%s' is being unloaded with model calls still running "
                   "after %lld ms; a runner must wait for the final callback of its calls "
                   "before it unloads\n",
                   model_->current().name.c_str(), static_cast<long long>(timeout.count()));
      std::abort();
    }
    sym_.model_unload(state_);
    // As the server: what the runner did not delete leaves the metrics now.
    model_->metrics.reset();
    // As the server: a request never finished ends with INTERNAL at unload.
    std::lock_guard<std::mutex> lock(model_->mu);
    for (const auto& s : model_->senders) {
      auto& st = *s->state;
      std::lock_guard<std::mutex> slock(st.mu);
      if (st.finished) continue;
      st.AppendLocked(fake_detail::ErrorResponse(
                          TORII_STATUS_INTERNAL,
                          "model '" + model_->current().name + "' was unloaded before its runner "
                              "ended " + st.What() + " (no TORII_RESPONSE_FINAL)"),
                      true);
    }
  }
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

  /// Lines the runner logged through the host (read while the runner is idle).
  const std::vector<std::string>& log() const { return model_->log; }

  /// The model's config as the runner sees it now: the ModelSpec it was
  /// loaded with, or what the runner completed with model_set_config_json.
  const ModelSpec& spec() const { return model_->current(); }
  /// The JSON model_config_json returns.
  std::string config_json() const { return model_->current().config_json; }
  /// The config the runner set with model_set_config_json (the last one
  /// accepted), if it did.
  std::optional<std::string> completed_config_json() const {
    std::lock_guard<std::mutex> lock(model_->mu);
    if (model_->completed.empty()) return std::nullopt;
    return model_->completed.back()->config_json;
  }
  /// What the runner reported with model_report_property (the last value of
  /// each key).
  std::map<std::string, std::string> properties() const {
    std::lock_guard<std::mutex> lock(model_->mu);
    std::map<std::string, std::string> out;
    for (const auto& kv : model_->properties) out[kv.first] = kv.second;
    return out;
  }

 private:
  friend class FakeHost;
  std::shared_ptr<void> library_;  // a dlopened runner stays loaded while its models live
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
  /// Models loaded from it keep the library loaded, wherever they are served.
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
    // Calls in flight end first (bounded by wait_timeout()); then the models
    // served to them unload. The library goes with the last of its models.
    state_->threads.JoinAll();
    decltype(state_->models) served;
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      served.swap(state_->models);
    }
    served.clear();
  }
  FakeHost(const FakeHost&) = delete;
  FakeHost& operator=(const FakeHost&) = delete;

  const ToriiRunnerInfo& info() const { return *sym_.info(); }

  /// Loads a model version; throws torii::Error when the runner fails, or
  /// FAILED_PRECONDITION when its ABI version does not fit this host's (as
  /// the server refuses it).
  std::shared_ptr<FakeModel> Load(const ModelSpec& spec) {
    CheckAbi();
    auto model = std::make_unique<ToriiModel>();
    model->spec = spec;
    if (spec.config_json.empty() || spec.config_json == "{}") {
      model->spec.config_json = fake_detail::RenderConfig(spec);
    }
    model->host = state_;
    model->metrics = std::make_unique<host_metrics::Owner>(&state_->metrics);
    void* state = nullptr;
    model->loading = true;
    ToriiError* err = sym_.model_load(fake_detail::Api(), model.get(), &state);
    model->loading = false;
    if (err != nullptr) {
      Error e(err->code, err->message);
      delete err;
      throw e;
    }
    auto loaded = std::make_shared<FakeModel>(sym_, std::move(model), state);
    loaded->library_ = library_;
    return loaded;
  }

  /// Serves a model the runner may call (ModelCall / infer_request_*) with
  /// `handler`. Calls with version -1 get the highest version registered.
  void AddModel(const std::string& name, ModelHandler handler, int64_t version = 1) {
    auto served = std::make_shared<fake_detail::ServedModel>();
    served->name = name;
    served->version = version;
    served->handler = std::move(handler);
    Register(std::move(served));
  }
  /// Serves a model loaded from a runner (this host's or another FakeHost's)
  /// to model calls, under its spec's name and version unless given; the
  /// host creates one instance of it. Calls are validated against its spec.
  void AddModel(const std::shared_ptr<FakeModel>& model, const std::string& name = "",
                int64_t version = -1) {
    auto served = std::make_shared<fake_detail::ServedModel>();
    served->name = name.empty() ? model->spec().name : name;
    served->version = version < 0 ? model->spec().version : version;
    served->model = model;
    served->instance = model->CreateInstance();
    Register(std::move(served));
  }

  /// How long Infer()/Execute()/Stream::Wait() and model calls wait for a
  /// runner's final response before failing (default 10 s).
  void set_wait_timeout(std::chrono::milliseconds timeout) {
    state_->wait_timeout_ms.store(timeout.count());
  }
  std::chrono::milliseconds wait_timeout() const { return state_->wait_timeout(); }

  /// Runner-defined metrics (ABI 1.3) of every model of this host: what the
  /// server would show on /metrics.
  const host_metrics::Registry& metrics() const { return state_->metrics; }
  /// The value of the counter or gauge series `family`{labels}, or nullopt
  /// when there is none.
  std::optional<double> MetricValue(const std::string& family,
                                    host_metrics::Labels labels = {}) const {
    std::sort(labels.begin(), labels.end());
    for (const auto& f : state_->metrics.Snapshot()) {
      if (f.name != family) continue;
      auto it = f.series.find(labels);
      if (it != f.series.end()) return it->second->value;
    }
    return std::nullopt;
  }

 private:
  explicit FakeHost(void* handle) : library_(handle, [](void* h) { dlclose(h); }) {}

  void Register(std::shared_ptr<fake_detail::ServedModel> served) {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->models[served->name][served->version] = std::move(served);
  }

  // The server's load-time check: same major, runner minor <= host minor.
  void CheckAbi() const {
    const ToriiRunnerInfo* info = sym_.info();
    if (info == nullptr || info->struct_size < sizeof(ToriiRunnerInfo)) {
      throw Error(TORII_STATUS_FAILED_PRECONDITION,
                  "fake host: torii_runner_info() returned no ToriiRunnerInfo or one smaller "
                  "than ABI 1.0's");
    }
    const std::string runner = std::to_string(info->abi_version_major) + "." +
                               std::to_string(info->abi_version_minor);
    const std::string host = std::to_string(TORII_RUNNER_ABI_VERSION_MAJOR) + "." +
                             std::to_string(TORII_RUNNER_ABI_VERSION_MINOR);
    if (info->abi_version_major != TORII_RUNNER_ABI_VERSION_MAJOR) {
      throw Error(TORII_STATUS_FAILED_PRECONDITION,
                  "runner was built for runner ABI " + runner + " but this host implements ABI " +
                      host + "; the major versions must be equal");
    }
    if (info->abi_version_minor > TORII_RUNNER_ABI_VERSION_MINOR) {
      throw Error(TORII_STATUS_FAILED_PRECONDITION,
                  "runner needs runner ABI " + runner + " but this host implements only ABI " +
                      host);
    }
  }

  RunnerSymbols sym_;
  std::shared_ptr<void> library_;  // dlopened runner (Open), shared with its models
  std::shared_ptr<fake_detail::HostState> state_ = std::make_shared<fake_detail::HostState>();
};

namespace fake_detail {

inline ToriiInferResult* ToResult(const Response& r) {
  return new ToriiInferResult{r.code, r.message, r.outputs};
}

// One model call, on its own thread of the fake host.
struct CallJob {
  std::unique_ptr<ToriiInferRequest> request;
  ToriiInferCallback callback = nullptr;
  void* user_data = nullptr;
  std::shared_ptr<ServedModel> served;  // null: no such model
  std::shared_ptr<CallCounter> counter;
  std::chrono::milliseconds wait_timeout{10000};
  uint64_t deadline_ns = 0;

  std::string Target() const {
    return "model '" + request->model_name + "'" +
           (request->model_version >= 0 ? " version " + std::to_string(request->model_version)
                                        : std::string());
  }

  // Delivers one result; before the final one, checks the caller kept its
  // input bytes unchanged (the host reads them without copying).
  void Deliver(ToriiInferResult* result, bool final) {
    if (final) {
      for (const auto& in : request->inputs) {
        if (Fnv1a(in.data, in.byte_size) != in.hash) {
          delete result;
          result = new ToriiInferResult{
              TORII_STATUS_INTERNAL,
              "fake host: the bytes of input '" + in.name + "' of the call to " + Target() +
                  " changed before the final callback; the host reads call inputs without "
                  "copying them, so they must stay valid and unchanged until then",
              {}};
          break;
        }
      }
    }
    callback(user_data, result, final);
  }
  void Fail(ToriiStatusCode code, const std::string& message) {
    Deliver(new ToriiInferResult{code, message, {}}, true);
  }

  Request BuildRequest() const {
    Request r;
    for (const auto& in : request->inputs) {
      Tensor t;
      t.name = in.name;
      t.datatype = in.datatype;
      t.shape = in.shape;
      if (in.byte_size > 0) t.data.assign(static_cast<const char*>(in.data), in.byte_size);
      r.inputs.push_back(std::move(t));
    }
    r.requested_outputs = request->outputs;
    r.parameters = request->parameters;
    r.id = request->id;
    r.deadline_ns = deadline_ns;
    return r;
  }

  void RunHandler(const Request& r) {
    std::vector<Response> responses;
    try {
      responses = served->handler(r);
    } catch (const std::exception& e) {
      return Fail(TORII_STATUS_INTERNAL, Target() + " (a fake handler) threw: " + e.what());
    }
    if (responses.empty()) return Deliver(nullptr, true);
    for (size_t i = 0; i < responses.size(); ++i) {
      Deliver(ToResult(responses[i]), i + 1 == responses.size());
    }
  }

  void RunModel(Request r) {
    const std::string bad = ValidateRequest(served->model->spec(), r);
    if (!bad.empty()) return Fail(TORII_STATUS_INVALID_ARGUMENT, bad);
    std::shared_ptr<Stream> stream = served->instance->Submit(std::move(r));
    RequestState& st = *stream->s_;
    // Gives up when the model stays silent for wait_timeout.
    auto give_up = std::chrono::steady_clock::now() + wait_timeout;
    size_t next = 0;
    while (true) {
      std::vector<Response> fresh;
      bool finished = false, final_with_response = false;
      ToriiStatusCode ended_gone = TORII_STATUS_OK;
      {
        std::unique_lock<std::mutex> lock(st.mu);
        auto wake = give_up;
        if (deadline_ns != 0) {
          const uint64_t now = MonotonicNs();
          const uint64_t left = deadline_ns > now ? deadline_ns - now : 0;
          wake = std::min(wake, std::chrono::steady_clock::now() + std::chrono::nanoseconds(left));
        }
        st.cv.wait_until(lock, wake, [&] { return st.finished || st.responses.size() > next; });
        fresh.assign(st.responses.begin() + static_cast<std::ptrdiff_t>(next), st.responses.end());
        next = st.responses.size();
        finished = st.finished;
        final_with_response = st.final_with_response;
        ended_gone = st.ended_gone;
      }
      // A final response is appended together with the final flag, so the
      // snapshot that sees `finished` holds it as its last response.
      for (size_t i = 0; i < fresh.size(); ++i) {
        Deliver(ToResult(fresh[i]), finished && final_with_response && i + 1 == fresh.size());
      }
      if (finished && ended_gone == TORII_STATUS_DEADLINE_EXCEEDED) {
        // The model noticed the deadline first; the caller still gets it.
        return Fail(TORII_STATUS_DEADLINE_EXCEEDED,
                    "the call to " + Target() + " did not finish within its timeout");
      }
      if (finished) {
        if (!final_with_response) Deliver(nullptr, true);
        return;
      }
      if (!fresh.empty()) give_up = std::chrono::steady_clock::now() + wait_timeout;
      if (deadline_ns != 0 && MonotonicNs() >= deadline_ns) {
        stream->Cancel();
        return Fail(TORII_STATUS_DEADLINE_EXCEEDED,
                    "the call to " + Target() + " did not finish within its timeout");
      }
      if (std::chrono::steady_clock::now() >= give_up) {
        stream->Cancel();
        return Fail(TORII_STATUS_INTERNAL, "fake host: " + Target() +
                                               " sent no response and no final flag for " +
                                               std::to_string(wait_timeout.count()) + " ms");
      }
    }
  }

  void Run() {
    struct Done {
      CallCounter* c;
      ~Done() { c->Done(); }
    } done{counter.get()};
    if (!served) {
      return Fail(TORII_STATUS_NOT_FOUND,
                  Target() + " is not served by this fake host (register it with "
                             "FakeHost::AddModel)");
    }
    if (deadline_ns != 0 && MonotonicNs() >= deadline_ns) {
      return Fail(TORII_STATUS_DEADLINE_EXCEEDED,
                  "the call to " + Target() + " did not finish within its timeout");
    }
    const std::string bad = CheckCallInputs(*request);
    if (!bad.empty()) return Fail(TORII_STATUS_INVALID_ARGUMENT, bad);
    Request r = BuildRequest();
    if (served->handler) return RunHandler(r);
    try {
      RunModel(std::move(r));
    } catch (const std::exception& e) {
      // Stream waits time out with an exception: the call ends all the same.
      Fail(TORII_STATUS_INTERNAL, std::string("fake host: ") + e.what());
    }
  }
};

}  // namespace fake_detail

namespace fake_detail {

inline ToriiError* InferRequestSend(ToriiInferRequest* req, ToriiInferCallback cb,
                                    void* user_data) {
  std::unique_ptr<ToriiInferRequest> request(req);  // ours, whatever happens
  if (!request) return NewError(TORII_STATUS_INVALID_ARGUMENT, "infer_request_send: no request");
  if (cb == nullptr) {
    return NewError(TORII_STATUS_INVALID_ARGUMENT, "infer_request_send needs a callback");
  }
  if (request->caller == nullptr || !request->caller->host) {
    return NewError(TORII_STATUS_INVALID_ARGUMENT,
                    "infer_request_new needs the calling model (the ToriiModel* of model_load)");
  }
  if (request->model_name.empty()) {
    return NewError(TORII_STATUS_INVALID_ARGUMENT, "infer_request_new needs a model name");
  }
  HostState& host = *request->caller->host;
  auto job = std::make_shared<CallJob>();
  {
    std::lock_guard<std::mutex> lock(host.mu);
    auto it = host.models.find(request->model_name);
    if (it != host.models.end() && !it->second.empty()) {
      if (request->model_version < 0) {
        job->served = it->second.rbegin()->second;
      } else if (it->second.count(request->model_version) != 0) {
        job->served = it->second[request->model_version];
      }
    }
  }
  job->callback = cb;
  job->user_data = user_data;
  job->wait_timeout = host.wait_timeout();
  if (request->timeout_us != 0) job->deadline_ns = MonotonicNs() + request->timeout_us * 1000;
  job->counter = request->caller->calls;
  job->counter->Add();
  job->request = std::move(request);
  // Results reach the runner on a thread of the host, never the caller's.
  host.threads.Spawn([job] { job->Run(); });
  return nullptr;
}

}  // namespace fake_detail


}  // namespace testing
}  // namespace torii

#endif  // TORII_TESTING_FAKE_HOST_H_
