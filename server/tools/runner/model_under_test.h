// A model version loaded exactly as torii-server loads it, driven without a
// server: the spec is built by BuildModelSpec from the config and the
// runner's manifest; the model runs in this process (RunnerModel) or, when
// the spec says so (the runner's manifest or the config's isolation
// parameter), in torii-runner-host child processes (IsolatedRunnerModel), as
// the server would run it. Requests are core InferenceRequests checked by the
// server's ValidateRequest, run as one batch by the backend's Execute, and
// answered through a collecting ResponseSink. So what torii-runner reports is
// what the server would do.
#ifndef TORII_SERVER_TOOLS_RUNNER_MODEL_UNDER_TEST_H_
#define TORII_SERVER_TOOLS_RUNNER_MODEL_UNDER_TEST_H_

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model_config.pb.h"
#include "server/core/execution_backend.h"
#include "server/core/inference_request.h"
#include "server/core/model_spec.h"
#include "server/core/request_validator.h"
#include "server/runner/runner_library.h"
#include "server/tools/runner/model_location.h"

namespace torii {
class IsolatedRunnerModel;

namespace runner_tool {

/// A tensor that owns its bytes (little-endian, row-major; BYTES
/// length-prefixed).
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
  /// OK, or the first error response's status.
  absl::Status status;
  /// In the order the responses list them (all responses of a decoupled
  /// model, in order).
  std::vector<HostTensor> outputs;
  const HostTensor* output(const std::string& name) const;
};

/// Keeps every response of one request until it is read.
class CollectingSink : public ResponseSink {
 public:
  void Deliver(std::unique_ptr<InferenceResponse> response, bool final) override;
  /// Waits until the final response came or `deadline` passed; true if it came.
  bool WaitFinal(std::chrono::steady_clock::time_point deadline);
  /// The responses so far, as a TestResponse (`final` false: the request was
  /// never finished, which is an error).
  TestResponse Collect(bool final) const;
  /// Just the status Collect() would report.
  absl::Status Status(bool final) const;
  void Reset();

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<InferenceResponse>> responses_;
  bool final_ = false;
};

/// A request validated once against a spec; runs again and again (bench).
/// Its inputs view bytes it owns.
class PreparedRequest {
 public:
  static absl::StatusOr<std::unique_ptr<PreparedRequest>> Create(const ModelSpec& spec,
                                                                 int64_t version,
                                                                 const TestRequest& request);
  PreparedRequest(const PreparedRequest&) = delete;
  PreparedRequest& operator=(const PreparedRequest&) = delete;

  /// The request to hand to a backend (clears earlier responses).
  std::unique_ptr<InferenceRequest> Take();
  /// Takes the request back after Execute (a decoupled model may keep it:
  /// the next Take() then makes a new one).
  void Give(std::unique_ptr<InferenceRequest> request) { request_ = std::move(request); }
  CollectingSink& sink() { return *sink_; }

 private:
  PreparedRequest() = default;
  TestRequest data_;             // the bytes the inputs view
  InferenceRequest validated_;   // as ValidateRequest left it
  std::unique_ptr<InferenceRequest> request_;
  std::shared_ptr<CollectingSink> sink_;
};

class ModelUnderTest {
 public:
  struct Options {
    /// Instances to create; 0 uses the config's instance_group counts.
    uint32_t instance_count = 0;
    /// In process only: reuse an open library (the reload check opens its
    /// own each time).
    std::shared_ptr<RunnerLibrary> library;
    /// How long a request may wait for its final response after Execute
    /// returned (a decoupled model answers from its own threads).
    std::chrono::milliseconds final_wait{60000};
  };

  /// Builds the spec, opens the runner and loads the model version into it,
  /// in process or in runner host processes. Errors are the server's own
  /// load errors.
  static absl::StatusOr<std::unique_ptr<ModelUnderTest>> Load(const ModelLocation& location,
                                                              Options options);

  /// Destroys the instances and unloads the model (in process, the library
  /// stays open while someone holds it; isolated, the children exit).
  ~ModelUnderTest();

  const ModelLocation& location() const { return location_; }
  /// The spec it runs with (completed by the runner when it did so).
  const ModelSpec& spec() const { return *spec_; }
  /// The config it runs with, and whether the runner completed it.
  const inference::ModelConfig& config() const { return config_; }
  bool config_completed() const { return config_completed_; }
  size_t instance_count() const { return backend_->instance_count(); }
  RunnerProvenance provenance() const { return backend_->provenance(); }
  /// Where it runs (spec().isolation.mode): kNone in this process.
  IsolationMode isolation() const { return spec_->isolation.mode; }
  bool isolated() const { return isolated_ != nullptr; }
  /// The runner host processes (isolated), one per slot; empty in process.
  std::vector<pid_t> runner_pids() const;

  /// Validates each request like the server; the valid ones run as one batch
  /// on `instance` (callers keep one thread per instance). One response per
  /// request, in order.
  std::vector<TestResponse> Execute(size_t instance, const std::vector<TestRequest>& requests);
  TestResponse Infer(const TestRequest& request, size_t instance = 0) {
    return Execute(instance, {request})[0];
  }

  /// Runs already validated requests as one batch and waits for their final
  /// responses (for timing); each request's final status.
  std::vector<absl::Status> ExecutePrepared(size_t instance,
                                            const std::vector<PreparedRequest*>& requests);

 private:
  explicit ModelUnderTest(const ModelLocation& location) : location_(location) {}

  ModelLocation location_;
  std::chrono::milliseconds final_wait_{60000};
  inference::ModelConfig config_;
  bool config_completed_ = false;
  std::shared_ptr<const ModelSpec> spec_;
  std::shared_ptr<RunnerLibrary> library_;  // in process
  std::unique_ptr<ExecutionBackend> backend_;
  IsolatedRunnerModel* isolated_ = nullptr;  // backend_, when isolated
};

/// "[1,4]"
std::string ShapeString(const std::vector<int64_t>& shape);

/// The elements of a BYTES buffer (4-byte little-endian length, then the
/// bytes, repeated); views into `data`. INVALID_ARGUMENT when a length runs
/// past the end.
absl::StatusOr<std::vector<absl::string_view>> DecodeBytesElements(absl::string_view data);

}  // namespace runner_tool
}  // namespace torii

#endif  // TORII_SERVER_TOOLS_RUNNER_MODEL_UNDER_TEST_H_
