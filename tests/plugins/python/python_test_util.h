// Helpers for the Python runner's tests: the built libtorii_python.so behind
// the SDK's fake host, temporary model folders holding the test models of
// tests/plugins/python/models, and the config JSON the server would hand
// the runner (protobuf's JSON mapping: int64 dims as strings, zero values
// left out).
#ifndef TORII_TESTS_PLUGINS_PYTHON_PYTHON_TEST_UTIL_H_
#define TORII_TESTS_PLUGINS_PYTHON_PYTHON_TEST_UTIL_H_

#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/util/fake_model_log.h"
#include "tests/util/temp_dir.h"
#include "torii/testing/fake_host.h"

namespace torii_python_test {

using torii::TensorSpec;
using torii::testing::FakeHost;
using torii::testing::FakeModel;
using torii::testing::JoinedLog;
using torii::testing::LogContains;
using torii::testing::ModelSpec;
using torii::testing::Request;
using torii::testing::Response;
using torii::testing::Tensor;

inline const char* RunnerPath() { return TORII_PYTHON_RUNNER_PATH; }
inline std::string TestModels() { return TORII_PYTHON_TEST_MODELS; }

/// The runner library, opened once per process.
inline FakeHost& Host() {
  static std::unique_ptr<FakeHost> host = FakeHost::Open(RunnerPath());
  return *host;
}

/// A directory under $TMPDIR (or /tmp), removed with everything in it.
struct TempDir : torii::testing::TempDir {
  TempDir() : torii::testing::TempDir("torii-python-") {}
};

inline void WriteFile(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream out(path, std::ios::binary);
  out << text;
  REQUIRE(out.good());
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline std::string ConfigTypeName(ToriiDataType t) {
  return t == TORII_TYPE_BYTES ? "TYPE_STRING" : std::string("TYPE_") + torii::DataTypeName(t);
}

inline std::string TensorsJson(const std::vector<TensorSpec>& ts) {
  std::string out = "[";
  for (size_t i = 0; i < ts.size(); ++i) {
    if (i > 0) out += ",";
    out += "{\"name\":\"" + ts[i].name + "\",\"data_type\":\"" + ConfigTypeName(ts[i].datatype) +
           "\",\"dims\":[";
    for (size_t d = 0; d < ts[i].dims.size(); ++d) {
      out += (d > 0 ? ",\"" : "\"") + std::to_string(ts[i].dims[d]) + "\"";
    }
    out += "]}";
  }
  return out + "]";
}

/// The config JSON the server renders for `spec` (protobuf JSON mapping);
/// `extra` is appended as further members, e.g. "\"dynamic_batching\":{}".
inline std::string ConfigJson(const ModelSpec& spec, const std::string& extra = "") {
  std::string j = "{\"name\":\"" + spec.name + "\",\"backend\":\"python\"";
  if (spec.max_batch_size != 0) j += ",\"max_batch_size\":" + std::to_string(spec.max_batch_size);
  if (!spec.inputs.empty()) j += ",\"input\":" + TensorsJson(spec.inputs);
  if (!spec.outputs.empty()) j += ",\"output\":" + TensorsJson(spec.outputs);
  if (!spec.parameters.empty()) {
    j += ",\"parameters\":{";
    bool first = true;
    for (const auto& kv : spec.parameters) {
      j += std::string(first ? "" : ",") + "\"" + kv.first + "\":{\"string_value\":\"" +
           kv.second + "\"}";
      first = false;
    }
    j += "}";
  }
  if (!extra.empty()) j += "," + extra;
  return j + "}";
}

/// A model folder <dir>/<name>/1/model.py holding the file `model_file`, and
/// its spec.
inline ModelSpec MakeModelFrom(const TempDir& dir, const std::string& model_file,
                               const std::string& name, int32_t max_batch_size,
                               std::vector<TensorSpec> inputs, std::vector<TensorSpec> outputs,
                               const std::string& extra_json = "",
                               std::map<std::string, std::string> parameters = {}) {
  ModelSpec spec;
  spec.name = name;
  spec.directory = dir.path() + "/" + name;
  spec.version_directory = spec.directory + "/1";
  spec.max_batch_size = max_batch_size;
  spec.inputs = std::move(inputs);
  spec.outputs = std::move(outputs);
  spec.parameters = std::move(parameters);
  WriteFile(spec.version_directory + "/model.py", ReadFile(model_file));
  spec.config_json = ConfigJson(spec, extra_json);
  return spec;
}

/// A model folder <dir>/<name>/1/model.py holding test model `source`
/// (tests/plugins/python/models/<source>/model.py), and its spec.
inline ModelSpec MakeModel(const TempDir& dir, const std::string& source, const std::string& name,
                           int32_t max_batch_size, std::vector<TensorSpec> inputs,
                           std::vector<TensorSpec> outputs, const std::string& extra_json = "",
                           std::map<std::string, std::string> parameters = {}) {
  return MakeModelFrom(dir, TestModels() + "/" + source + "/model.py", name, max_batch_size,
                       std::move(inputs), std::move(outputs), extra_json, std::move(parameters));
}

/// Test model "batching" (max_batch_size 8, dynamic batching): IN FP32 [3]
/// -> OUT FP32 [3], COUNT INT64 [2], ID BYTES [1], PARAMS BYTES [1].
inline ModelSpec BatchingModel(const TempDir& dir) {
  return MakeModel(dir, "batching", "batching", 8, {{"IN", TORII_TYPE_FP32, {3}}},
                   {{"OUT", TORII_TYPE_FP32, {3}},
                    {"COUNT", TORII_TYPE_INT64, {2}},
                    {"ID", TORII_TYPE_BYTES, {1}},
                    {"PARAMS", TORII_TYPE_BYTES, {1}}},
                   "\"dynamic_batching\":{}");
}

/// The error message of loading `spec` ("" when it loads).
inline std::string LoadError(const ModelSpec& spec) {
  try {
    auto m = Host().Load(spec);
    return "";
  } catch (const torii::Error& e) {
    return e.what();
  }
}

}  // namespace torii_python_test

#endif  // TORII_TESTS_PLUGINS_PYTHON_PYTHON_TEST_UTIL_H_
