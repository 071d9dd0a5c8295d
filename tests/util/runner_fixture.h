// Loads a runner library with a config written in the test, through the same
// server code the server uses (RunnerLibrary, RunnerModel), and builds
// validated requests for it.
#ifndef TORII_TESTS_UTIL_RUNNER_FIXTURE_H_
#define TORII_TESTS_UTIL_RUNNER_FIXTURE_H_

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "google/protobuf/text_format.h"
#include "server/core/request_validator.h"
#include "server/runner/runner_model.h"

namespace torii {
namespace testing {

struct LoadedModel {
  inference::ModelConfig config;
  std::unique_ptr<ModelSignature> signature;
  std::shared_ptr<RunnerLibrary> library;
  std::unique_ptr<RunnerModel> model;
};

/// Parses `config_text` and loads it into the runner at `library_path`.
inline absl::StatusOr<std::unique_ptr<LoadedModel>> LoadRunnerModel(
    const std::string& library_path, const std::string& config_text, uint32_t instances = 1) {
  auto m = std::make_unique<LoadedModel>();
  if (!google::protobuf::TextFormat::ParseFromString(config_text, &m->config)) {
    return absl::InvalidArgumentError("bad test config");
  }
  m->signature = std::make_unique<ModelSignature>(m->config);
  auto lib = RunnerLibrary::Open(library_path);
  if (!lib.ok()) return lib.status();
  m->library = *lib;
  RunnerModel::Options o;
  o.name = m->config.name();
  o.version = 1;
  o.directory = "/nonexistent";
  o.version_directory = "/nonexistent/1";
  o.config = &m->config;
  o.signature = m->signature.get();
  o.instance_count = instances;
  auto rm = RunnerModel::Create(m->library, o);
  if (!rm.ok()) return rm.status();
  m->model = std::move(*rm);
  return m;
}

/// A wire request plus its validated form and response, kept together.
struct TestRequest {
  inference::ModelInferRequest wire;
  inference::ModelInferResponse response;
  InferenceRequest request;
};

/// FP32 INPUT0 of shape [rows, cols] filled with `first`, first+1, ...
inline std::unique_ptr<TestRequest> Fp32Request(const LoadedModel& m, int64_t rows, int64_t cols,
                                                float first,
                                                std::vector<std::pair<std::string, std::string>> params = {}) {
  auto t = std::make_unique<TestRequest>();
  t->wire.set_model_name(m.config.name());
  auto* in = t->wire.add_inputs();
  in->set_name("INPUT0");
  in->set_datatype("FP32");
  in->add_shape(rows);
  in->add_shape(cols);
  std::string raw(static_cast<size_t>(rows * cols) * 4, '\0');
  for (int64_t i = 0; i < rows * cols; ++i) {
    const float v = first + static_cast<float>(i);
    std::memcpy(&raw[static_cast<size_t>(i) * 4], &v, 4);
  }
  t->wire.add_raw_input_contents(raw);
  for (const auto& [k, v] : params) {
    auto& p = (*t->wire.mutable_parameters())[k];
    int64_t n;
    if (absl::SimpleAtoi(v, &n)) p.set_int64_param(n); else p.set_string_param(v);
  }
  REQUIRE(ValidateRequest(m.config.name(), *m.signature, t->wire, {}, &t->request).ok());
  t->request.response = &t->response;
  t->request.arrival = InferenceRequest::Clock::now();
  return t;
}

inline std::vector<float> OutputFloats(const inference::ModelInferResponse& r, int index) {
  const std::string& raw = r.raw_output_contents(index);
  std::vector<float> v(raw.size() / 4);
  std::memcpy(v.data(), raw.data(), raw.size());
  return v;
}

inline std::vector<int64_t> OutputInts(const inference::ModelInferResponse& r, int index) {
  const std::string& raw = r.raw_output_contents(index);
  std::vector<int64_t> v(raw.size() / 8);
  std::memcpy(v.data(), raw.data(), raw.size());
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
