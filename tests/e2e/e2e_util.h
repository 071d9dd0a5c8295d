// Helpers for end-to-end tests: temporary repositories and request builders.
#ifndef TORII_TESTS_E2E_E2E_UTIL_H_
#define TORII_TESTS_E2E_E2E_UTIL_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "inference.grpc.pb.h"
#include "tests/util/temp_dir.h"

namespace torii {
namespace testing {

/// A copy of examples/model_repository in a fresh directory under $TMPDIR,
/// removed with the object.
class TempRepository {
 public:
  TempRepository() : dir_(MakeTempDir("torii-repo-")) {
    std::filesystem::copy(TORII_EXAMPLE_REPOSITORY, dir_, std::filesystem::copy_options::recursive);
    // The TorchScript example needs a runner this build may not have; so does
    // the pipeline ensemble example (Python), tested in ensemble_e2e_test.cc.
    for (const char* m : {"mlp", "pipeline", "pipeline_preprocess", "pipeline_postprocess"}) {
      std::filesystem::remove_all(dir_ + "/" + m);
    }
  }
  ~TempRepository() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  TempRepository(const TempRepository&) = delete;
  TempRepository& operator=(const TempRepository&) = delete;
  const std::string& path() const { return dir_; }
  void Write(const std::string& rel, const std::string& text) const {
    std::filesystem::create_directories(std::filesystem::path(dir_ + "/" + rel).parent_path());
    std::ofstream(dir_ + "/" + rel) << text;
  }

 private:
  std::string dir_;
};

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

inline void SetDeadline(grpc::ClientContext& ctx, std::chrono::milliseconds ms) {
  ctx.set_deadline(std::chrono::system_clock::now() + ms);
}

}  // namespace testing
}  // namespace torii

#endif  // TORII_TESTS_E2E_E2E_UTIL_H_
