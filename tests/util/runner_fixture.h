// Loads a runner library with a config written in the test, through the same
// server code the server uses (BuildModelSpec, RunnerLibrary, RunnerModel),
// and builds validated requests for it whose responses a test can read.
#ifndef TORII_TESTS_UTIL_RUNNER_FIXTURE_H_
#define TORII_TESTS_UTIL_RUNNER_FIXTURE_H_

#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "google/protobuf/text_format.h"
#include "server/core/request_validator.h"
#include "server/repository/model_spec_builder.h"
#include "server/runner/runner_model.h"

namespace torii {
namespace testing {

/// Parses a config written in a test and builds its spec.
inline std::shared_ptr<const ModelSpec> SpecFromText(const std::string& config_text) {
  inference::ModelConfig config;
  REQUIRE(google::protobuf::TextFormat::ParseFromString(config_text, &config));
  RunnerManifest runner;
  runner.runner = config.backend();
  auto spec = BuildModelSpec(config, runner, SpecDefaults{});
  INFO(spec.status().message());
  REQUIRE(spec.ok());
  return std::make_shared<const ModelSpec>(std::move(*spec));
}

struct LoadedModel {
  std::shared_ptr<const ModelSpec> spec;
  std::shared_ptr<RunnerLibrary> library;
  std::unique_ptr<RunnerModel> model;
};

/// Parses `config_text` and loads it into the runner at `library_path`.
inline absl::StatusOr<std::unique_ptr<LoadedModel>> LoadRunnerModel(
    const std::string& library_path, const std::string& config_text, uint32_t instances = 1,
    InferenceDispatcher* dispatcher = nullptr) {
  auto m = std::make_unique<LoadedModel>();
  m->spec = SpecFromText(config_text);
  auto lib = RunnerLibrary::Open(library_path);
  if (!lib.ok()) return lib.status();
  m->library = *lib;
  RunnerModel::Options o;
  o.name = m->spec->name;
  o.version = 1;
  o.directory = "/nonexistent";
  o.version_directory = "/nonexistent/1";
  o.spec = m->spec;
  o.dispatcher = dispatcher;
  o.instance_count = instances;
  auto rm = RunnerModel::Create(m->library, o);
  if (!rm.ok()) return rm.status();
  m->model = std::move(*rm);
  return m;
}

/// Keeps every response a request gets, in order.
class CollectingSink : public ResponseSink {
 public:
  void Deliver(std::unique_ptr<InferenceResponse> response, bool final) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (response != nullptr) responses_.push_back(std::move(response));
      if (final) ++finals_;
    }
    cv_.notify_all();
  }
  /// Waits up to `d` for the final response; true once it came.
  bool WaitFinal(std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, d, [&] { return finals_ > 0; });
  }
  int finals() const {
    std::lock_guard<std::mutex> lock(mu_);
    return finals_;
  }
  size_t count() const {
    std::lock_guard<std::mutex> lock(mu_);
    return responses_.size();
  }
  /// The last response (the only one for a model that is not decoupled).
  const InferenceResponse& last() const {
    std::lock_guard<std::mutex> lock(mu_);
    REQUIRE(!responses_.empty());
    return *responses_.back();
  }
  const InferenceResponse& at(size_t i) const {
    std::lock_guard<std::mutex> lock(mu_);
    REQUIRE(i < responses_.size());
    return *responses_[i];
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<InferenceResponse>> responses_;
  int finals_ = 0;
};

/// A request with the storage its inputs view and the sink its answer goes
/// to. `request` is handed to the code under test (and then null); the
/// answer stays readable through `sink`.
struct TestRequest {
  std::deque<std::string> storage;  // push_back keeps earlier strings in place
  std::shared_ptr<CollectingSink> sink = std::make_shared<CollectingSink>();
  std::unique_ptr<InferenceRequest> request = std::make_unique<InferenceRequest>();

  /// The final status: OK, or the error response's status.
  absl::Status status() const { return sink->last().status; }
  const InferenceResponse& response() const { return sink->last(); }

  /// Adds an input viewing `bytes` (kept here).
  void AddInput(const std::string& name, ToriiDataType dt, Shape shape, std::string bytes) {
    storage.push_back(std::move(bytes));
    InferenceInput in;
    in.name = name;
    in.datatype = dt;
    in.shape = std::move(shape);
    in.data = storage.back().data();
    in.byte_size = storage.back().size();
    request->inputs.push_back(std::move(in));
  }
};

inline std::string FloatBytes(const std::vector<float>& v) {
  std::string raw(v.size() * 4, '\0');
  if (!v.empty()) std::memcpy(&raw[0], v.data(), raw.size());
  return raw;
}

/// FP32 INPUT0 of shape [rows, cols] filled with `first`, first+1, ...,
/// validated against `spec`.
inline std::unique_ptr<TestRequest> Fp32Request(
    const ModelSpec& spec, int64_t rows, int64_t cols, float first,
    std::vector<std::pair<std::string, std::string>> params = {}) {
  auto t = std::make_unique<TestRequest>();
  t->request->model_name = spec.name;
  t->request->served_version = "1";
  t->request->sink = t->sink;
  std::vector<float> values(static_cast<size_t>(rows * cols));
  for (size_t i = 0; i < values.size(); ++i) values[i] = first + static_cast<float>(i);
  t->AddInput("INPUT0", TORII_TYPE_FP32, {rows, cols}, FloatBytes(values));
  for (const auto& [k, v] : params) {
    int64_t n;
    if (absl::SimpleAtoi(v, &n)) {
      t->request->parameters.Set(k, n);
    } else {
      t->request->parameters.Set(k, v);
    }
  }
  absl::Status s = ValidateRequest(spec, ValidationLimits{}, t->request.get());
  INFO(s.message());
  REQUIRE(s.ok());
  return t;
}
inline std::unique_ptr<TestRequest> Fp32Request(
    const LoadedModel& m, int64_t rows, int64_t cols, float first,
    std::vector<std::pair<std::string, std::string>> params = {}) {
  return Fp32Request(*m.spec, rows, cols, first, std::move(params));
}

/// Runs `requests` as one batch on instance `instance` (their requests are
/// handed over; the answers stay in their sinks).
inline void RunBatch(ExecutionBackend& model, std::vector<TestRequest*> requests,
                     size_t instance = 0) {
  RequestBatch batch;
  for (TestRequest* t : requests) batch.push_back(std::move(t->request));
  model.Execute(instance, batch, nullptr);
}

inline const OutputTensor& Output(const InferenceResponse& r, const std::string& name) {
  for (const auto& o : r.outputs()) {
    if (o.name == name) return o;
  }
  FAIL("response has no output '" << name << "'");
  return r.outputs().front();
}

template <typename T>
std::vector<T> OutputValues(const InferenceResponse& r, const std::string& name) {
  const OutputTensor& o = Output(r, name);
  std::vector<T> v(o.byte_size / sizeof(T));
  if (!v.empty()) std::memcpy(v.data(), o.data, v.size() * sizeof(T));
  return v;
}

/// Config text of the probe runner (tests/util/probe_runner.cc).
inline std::string ProbeConfig(const std::string& name, int max_batch_size, const std::string& extra = "") {
  return "name: \"" + name + "\" backend: \"probe\" max_batch_size: " + std::to_string(max_batch_size) +
         R"(
    input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
    output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1 ] },
             { name: "BATCH" data_type: TYPE_INT64 dims: [ 1 ] },
             { name: "INSTANCE" data_type: TYPE_INT64 dims: [ 1 ] },
             { name: "CONCURRENT" data_type: TYPE_INT64 dims: [ 1 ] } ]
  )" + extra;
}

}  // namespace testing
}  // namespace torii

#endif  // TORII_TESTS_UTIL_RUNNER_FIXTURE_H_
