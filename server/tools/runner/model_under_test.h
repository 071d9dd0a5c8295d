// A model version loaded into its runner exactly as torii-server loads it
// (RunnerLibrary::Open, RunnerModel::Create), driven without gRPC: requests
// are built as wire messages, checked by the server's ValidateRequest, merged
// into one batch by RunnerModel::Execute, and the outputs read back from the
// response. So what torii-runner reports is what the server would do.
#ifndef TORII_SERVER_TOOLS_RUNNER_MODEL_UNDER_TEST_H_
#define TORII_SERVER_TOOLS_RUNNER_MODEL_UNDER_TEST_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "inference.pb.h"
#include "server/core/inference_request.h"
#include "server/core/model_signature.h"
#include "server/core/request_validator.h"
#include "server/runner/runner_library.h"
#include "server/runner/runner_model.h"
#include "server/tools/runner/model_location.h"

namespace torii {
namespace runner_tool {

/// A tensor that owns its bytes (little-endian, row-major; BYTES
/// length-prefixed), as it travels in raw_input_contents.
struct HostTensor {
  std::string name;
  ToriiDataType datatype = TORII_TYPE_INVALID;
  std::vector<int64_t> shape;
  std::string data;
};

struct TestRequest {
  std::vector<HostTensor> inputs;
  std::vector<std::string> outputs;  // requested outputs; empty = all
};

struct TestResponse {
  absl::Status status;
  std::vector<HostTensor> outputs;  // in the order the response lists them
  const HostTensor* output(const std::string& name) const;
};

/// A wire request validated once; reusable across Execute calls (bench).
class PreparedRequest {
 public:
  static absl::StatusOr<std::unique_ptr<PreparedRequest>> Create(
      const std::string& model_name, const ModelSignature& signature,
      const TestRequest& request);
  InferenceRequest* request() { return &request_; }
  /// Clears the response so the request can run again.
  void Reset() { response_.Clear(); }
  TestResponse Response(const absl::Status& status) const;

 private:
  PreparedRequest() = default;
  inference::ModelInferRequest wire_;
  inference::ModelInferResponse response_;
  InferenceRequest request_;
};

class ModelUnderTest {
 public:
  struct Options {
    /// Instances to create; 0 uses the config's instance_group counts.
    uint32_t instance_count = 0;
    /// Reuse an open library (the reload check opens its own each time).
    std::shared_ptr<RunnerLibrary> library;
  };

  /// Opens the runner library (unless given) and loads the model version
  /// into it. Errors are the server's own load errors.
  static absl::StatusOr<std::unique_ptr<ModelUnderTest>> Load(const ModelLocation& location,
                                                              Options options);

  const ModelLocation& location() const { return location_; }
  const ModelSignature& signature() const { return *signature_; }
  const RunnerLibrary& library() const { return *library_; }
  size_t instance_count() const { return runner_->instance_count(); }

  /// Validates each request like the server; the valid ones run as one batch
  /// on `instance` (callers keep one thread per instance). One response per
  /// request, in order.
  std::vector<TestResponse> Execute(size_t instance, const std::vector<TestRequest>& requests);
  TestResponse Infer(const TestRequest& request, size_t instance = 0) {
    return Execute(instance, {request})[0];
  }

  /// Runs already validated requests as one batch (for timing).
  std::vector<absl::Status> ExecutePrepared(size_t instance,
                                            const std::vector<InferenceRequest*>& requests);

  /// Destroys the instances and unloads the model (the library stays open
  /// while someone holds it).
  ~ModelUnderTest();

 private:
  explicit ModelUnderTest(const ModelLocation& location) : location_(location) {}

  ModelLocation location_;
  std::unique_ptr<ModelSignature> signature_;
  std::shared_ptr<RunnerLibrary> library_;
  std::unique_ptr<RunnerModel> runner_;
};

/// "[1,4]"
std::string ShapeString(const std::vector<int64_t>& shape);

}  // namespace runner_tool
}  // namespace torii

#endif  // TORII_SERVER_TOOLS_RUNNER_MODEL_UNDER_TEST_H_
