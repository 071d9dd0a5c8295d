// Fakes behind the HTTP frontend's two seams: ModelService (the manager) and
// InferenceDispatcher (the request path). Shared by the HTTP tests.
#ifndef TORII_TESTS_SERVER_HTTP_FAKES_H_
#define TORII_TESTS_SERVER_HTTP_FAKES_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "server/core/inference_dispatcher.h"
#include "server/http/http_message.h"
#include "server/http/model_service.h"

namespace torii {
namespace http {
namespace testing {

// Knows one model, "identity" (versions 1 and 2; 2 is not ready), with one
// FP32 input and output of shape [-1, 4]. Load/Unload record their calls.
class FakeModelService : public ModelService {
 public:
  std::atomic<bool> ready{true};
  std::mutex mu;
  std::vector<std::string> calls;

  bool ServerReady() const override { return ready; }

  absl::StatusOr<bool> ModelReady(const std::string& name, const std::string& version) const override {
    if (name != "identity") return absl::NotFoundError("unknown model '" + name + "'");
    if (version.empty() || version == "1") return true;
    if (version == "2") return false;
    return absl::NotFoundError("model 'identity' has no version " + version);
  }

  absl::StatusOr<ModelMetadata> Metadata(const std::string& name,
                                         const std::string& version) const override {
    auto r = ModelReady(name, version);
    if (!r.ok()) return r.status();
    ModelMetadata m;
    m.name = name;
    m.versions = {"1"};
    m.platform = "identity";
    m.max_batch_size = 8;
    m.inputs.push_back({"INPUT0", TORII_TYPE_FP32, {-1, 4}});
    m.outputs.push_back({"OUTPUT0", TORII_TYPE_FP32, {-1, 4}});
    m.properties = {{"runner", "identity"}};
    return m;
  }

  absl::StatusOr<std::string> ConfigJson(const std::string& name,
                                         const std::string& version) const override {
    auto r = ModelReady(name, version);
    if (!r.ok()) return r.status();
    return std::string(R"({"name":"identity","max_batch_size":8})");
  }

  absl::StatusOr<std::vector<ModelStats>> Statistics(const std::string& name,
                                                     const std::string& version) const override {
    if (!name.empty()) {
      auto r = ModelReady(name, version);
      if (!r.ok()) return r.status();
    }
    ModelStats s;
    s.name = "identity";
    s.version = "1";
    s.inference_count = 3;
    s.success = {3, 3000};
    s.batch_stats.push_back({1, {3, 10}, {3, 20}, {3, 30}});
    return std::vector<ModelStats>{s};
  }

  std::vector<ModelIndexEntry> Index(bool ready_only) const override {
    std::vector<ModelIndexEntry> v = {{"identity", "1", "READY", ""}};
    if (!ready_only) v.push_back({"other", "", "UNAVAILABLE", "not loaded"});
    return v;
  }

  absl::Status Load(const std::string& name, const ModelOverride& override) override {
    std::lock_guard<std::mutex> lock(mu);
    std::string call = "load " + name;
    if (override.config_json) call += " config=" + *override.config_json;
    for (const auto& [path, bytes] : override.files) {
      call += " " + path + "=" + std::string(bytes);
    }
    calls.push_back(call);
    if (name == "broken") return absl::InvalidArgumentError("config.pbtxt: bad field");
    return absl::OkStatus();
  }

  absl::Status Unload(const std::string& name, bool unload_dependents) override {
    std::lock_guard<std::mutex> lock(mu);
    calls.push_back("unload " + name + (unload_dependents ? " +dependents" : ""));
    return absl::OkStatus();
  }
};

// Answers every request like an identity model: output "OUTPUTi" = input i,
// written through the response's own allocator. Model names pick other
// behaviours: "missing" NOT_FOUND, "full" RESOURCE_EXHAUSTED, "fail" a runner
// error, "slow" answers from another thread after 200 ms, "nothing" ends
// without a response. The last request is kept for inspection.
class FakeDispatcher : public InferenceDispatcher {
 public:
  std::mutex mu;
  // Copies of what the last request carried.
  std::string last_model, last_version, last_id;
  std::vector<InferenceInput> last_inputs;
  std::vector<std::string> last_input_bytes;
  std::vector<RequestedOutput> last_outputs;
  Parameters last_parameters;

  void Infer(std::unique_ptr<InferenceRequest> request) override {
    {
      std::lock_guard<std::mutex> lock(mu);
      last_model = request->model_name;
      last_version = request->model_version;
      last_id = request->id;
      last_inputs = request->inputs;
      last_input_bytes.clear();
      for (const auto& in : request->inputs) last_input_bytes.emplace_back(in.data, in.byte_size);
      last_outputs = request->requested_outputs;
      last_parameters = request->parameters;
    }
    request->served_version = request->model_version.empty() ? "1" : request->model_version;
    const std::string& m = request->model_name;
    if (m == "missing") return request->RespondError(absl::NotFoundError("unknown model 'missing'"));
    if (m == "full") return request->RespondError(absl::ResourceExhaustedError("queue is full"));
    if (m == "fail") return request->RespondError(absl::InternalError("runner failed: boom"));
    if (m == "nothing") return request->Respond(nullptr, true);
    if (m == "slow") {
      std::thread([r = std::move(request)]() mutable {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        Answer(std::move(r));
      }).detach();
      return;
    }
    Answer(std::move(request));
  }

  static void Answer(std::unique_ptr<InferenceRequest> request) {
    auto response = request->NewResponse();
    response->parameters = request->parameters;
    for (size_t i = 0; i < request->inputs.size(); ++i) {
      const InferenceInput& in = request->inputs[i];
      auto buf = response->AddOutput("OUTPUT" + std::to_string(i), in.datatype, in.shape, in.byte_size);
      if (!buf.ok()) return request->RespondError(buf.status());
      if (in.byte_size > 0) std::memcpy(*buf, in.data, in.byte_size);
    }
    request->Respond(std::move(response), true);
  }
};

// Captures what a handler sends.
class CapturingResponder : public HttpResponder {
 public:
  void Send(HttpResponse r) override {
    std::lock_guard<std::mutex> lock(mu_);
    response_ = std::move(r);
    sent_ = true;
    cv_.notify_all();
  }
  bool Gone() const override { return false; }

  // Waits up to 5 s for the answer.
  HttpResponse Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(5), [&] { return sent_; });
    return sent_ ? std::move(response_) : HttpResponse{-1, {}, "no answer", {}, nullptr, false};
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  HttpResponse response_;
  bool sent_ = false;
};

}  // namespace testing
}  // namespace http
}  // namespace torii

#endif  // TORII_TESTS_SERVER_HTTP_FAKES_H_
