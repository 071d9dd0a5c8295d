// Helpers for end-to-end tests: temporary repositories and request builders
// (the client calls are in tests/util/e2e_client.h).
#ifndef TORII_TESTS_E2E_E2E_UTIL_H_
#define TORII_TESTS_E2E_E2E_UTIL_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "inference.grpc.pb.h"
#include "tests/util/e2e_client.h"
#include "tests/util/server_process.h"
#include "tests/util/temp_dir.h"

namespace torii {
namespace testing {

/// A model repository in a fresh directory under $TMPDIR, removed with the
/// object: a copy of examples/model_repository (kExamples) or empty (kEmpty).
class TempRepository {
 public:
  enum class Contents { kExamples, kEmpty };

  explicit TempRepository(Contents contents = Contents::kExamples) : dir_("torii-repo-") {
    if (contents == Contents::kEmpty) return;
    std::filesystem::copy(TORII_EXAMPLE_REPOSITORY, path(),
                          std::filesystem::copy_options::recursive);
    // The TorchScript example needs a runner this build may not have; so does
    // the pipeline ensemble example (Python), tested in ensemble_e2e_test.cc.
    for (const char* m : {"mlp", "pipeline", "pipeline_preprocess", "pipeline_postprocess"}) {
      std::filesystem::remove_all(path() + "/" + m);
    }
  }
  const std::string& path() const { return dir_.path(); }
  /// Writes `text` to <repository>/<rel>, creating the folders on the way.
  void Write(const std::string& rel, const std::string& text) const {
    std::filesystem::create_directories(std::filesystem::path(path() + "/" + rel).parent_path());
    std::ofstream(path() + "/" + rel) << text;
  }
  /// Copies model folder `name` from the repository at `from`.
  void CopyModel(const std::string& from, const std::string& name) const {
    std::filesystem::copy(from + "/" + name, path() + "/" + name,
                          std::filesystem::copy_options::recursive);
  }
  /// Copies the file `from` to <repository>/<rel>.
  void CopyFile(const std::string& from, const std::string& rel) const {
    std::filesystem::copy_file(from, path() + "/" + rel,
                               std::filesystem::copy_options::overwrite_existing);
  }
  /// Model `name` (version 1) served by the runner library `library`, shipped
  /// in the model's folder as libtorii_<backend>.so: INPUT0 -> OUTPUT0, FP32
  /// [-1], max_batch_size 8, then `extra_config` (config.pbtxt text).
  void AddRunnerModel(const std::string& name, const std::string& library,
                      const std::string& backend, const std::string& extra_config = "") const {
    Write(name + "/config.pbtxt", "name: \"" + name + "\"\nbackend: \"" + backend + R"("
max_batch_size: 8
input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
)" + extra_config);
    Write(name + "/1/.keep", "");
    CopyFile(library, name + "/libtorii_" + backend + ".so");
  }

 private:
  TempDir dir_;
};

/// torii-server serving `repo` with `args`, on free loopback ports (see
/// ServerProcess::Options for the rest).
inline std::unique_ptr<ServerProcess> StartServer(
    const TempRepository& repo, std::vector<std::string> args = {}, bool wait_ready = true,
    std::chrono::seconds start_timeout = std::chrono::seconds(60)) {
  ServerProcess::Options o;
  o.repository = repo.path();
  o.extra_args = std::move(args);
  o.wait_ready = wait_ready;
  o.start_timeout = start_timeout;
  return ServerProcess::Start(std::move(o));
}

/// A config.pbtxt `parameters` entry with a string value, on one line.
inline std::string ConfigParameter(const std::string& key, const std::string& value) {
  return "parameters { key: \"" + key + "\" value { string_value: \"" + value + "\" } }\n";
}

inline std::string Fp32Raw(const std::vector<float>& v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(s.data(), v.data(), s.size());
  return s;
}

inline std::vector<float> Fp32Values(const std::string& raw) {
  std::vector<float> v(raw.size() / 4);
  std::memcpy(v.data(), raw.data(), raw.size());
  return v;
}

/// identity request: INPUT0 FP32 [1, n] with the given values.
inline inference::ModelInferRequest IdentityRequest(const std::vector<float>& values,
                                                    const std::string& model = "identity") {
  inference::ModelInferRequest r;
  r.set_model_name(model);
  auto* in = r.add_inputs();
  in->set_name("INPUT0");
  in->set_datatype("FP32");
  in->add_shape(1);
  in->add_shape(static_cast<int64_t>(values.size()));
  r.add_raw_input_contents(Fp32Raw(values));
  return r;
}

}  // namespace testing
}  // namespace torii

#endif  // TORII_TESTS_E2E_E2E_UTIL_H_
