// Fakes behind the HTTP frontend's two seams: ModelService (the manager) and
// InferenceDispatcher (the request path). Shared by the HTTP tests.
#ifndef TORII_TESTS_SERVER_HTTP_FAKES_H_
#define TORII_TESTS_SERVER_HTTP_FAKES_H_

#include <algorithm>
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

// Knows two models: "identity" (versions 1 and 2; 2 is not ready), with one
// FP32 input and output of shape [-1, 4]; and "text" (version 1, not
// batching) with inputs PROMPT BYTES [1] and IDS INT32 [1,-1] and an output
// per input, for generate. Load/Unload record their calls.
class FakeModelService : public ModelService {
 public:
  std::atomic<bool> ready{true};
  std::mutex mu;
  std::vector<std::string> calls;

  bool ServerReady() const override { return ready; }

  absl::StatusOr<bool> ModelReady(const std::string& name, const std::string& version) const override {
    if (name == "text") {
      if (version.empty() || version == "1") return true;
      return absl::NotFoundError("model 'text' has no version " + version);
    }
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
    if (name == "text") {
      m.platform = "text";
      m.inputs.push_back({"PROMPT", TORII_TYPE_BYTES, {1}});
      m.inputs.push_back({"IDS", TORII_TYPE_INT32, {1, -1}});
      m.outputs.push_back({"OUTPUT0", TORII_TYPE_BYTES, {1}});
      m.outputs.push_back({"OUTPUT1", TORII_TYPE_INT32, {1, -1}});
      return m;
    }
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
// without a response; so do the request parameters "fake_fail" (a runner
// error) and "fake_responses" (n), which makes it
// decoupled: from a thread, n responses with the identity outputs and the
// parameter "index" = i, each after AwaitCapacity as a runner's send, then the
// final flag alone; "fake_error_at" (k) makes response k an error,
// "fake_delay_ms" sleeps before each. It stops early when AwaitCapacity fails
// and records how many it sent in `decoupled_sent`. The last request is kept
// for inspection.
class FakeDispatcher : public InferenceDispatcher {
 public:
  ~FakeDispatcher() override {
    for (auto& t : threads_) t.join();
  }

  std::atomic<int> decoupled_sent{-1};
  std::atomic<bool> decoupled_done{false};

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
    if (request->parameters.Find("fake_fail") != nullptr) {
      return request->RespondError(absl::InternalError("runner failed: boom"));
    }
    if (const Parameter* n = request->parameters.Find("fake_responses")) {
      decoupled_sent = 0;
      decoupled_done = false;
      std::lock_guard<std::mutex> lock(mu);
      threads_.emplace_back([this, count = n->as_int64(), r = std::move(request)]() mutable {
        Decoupled(count, std::move(r));
      });
      return;
    }
    if (m == "slow") {
      std::thread([r = std::move(request)]() mutable {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        Answer(std::move(r));
      }).detach();
      return;
    }
    Answer(std::move(request));
  }

  // The identity response (outputs "OUTPUTi" = input i).
  static absl::StatusOr<std::unique_ptr<InferenceResponse>> Identity(const InferenceRequest& request) {
    auto response = request.NewResponse();
    response->parameters = request.parameters;
    for (size_t i = 0; i < request.inputs.size(); ++i) {
      const InferenceInput& in = request.inputs[i];
      auto buf = response->AddOutput("OUTPUT" + std::to_string(i), in.datatype, in.shape, in.byte_size);
      if (!buf.ok()) return buf.status();
      if (in.byte_size > 0) std::memcpy(*buf, in.data, in.byte_size);
    }
    return response;
  }

  static void Answer(std::unique_ptr<InferenceRequest> request) {
    auto response = Identity(*request);
    if (!response.ok()) return request->RespondError(response.status());
    request->Respond(*std::move(response), true);
  }

  void Decoupled(int64_t count, std::unique_ptr<InferenceRequest> request) {
    int64_t error_at = -1, delay_ms = 0;
    if (const Parameter* p = request->parameters.Find("fake_error_at")) error_at = p->as_int64();
    if (const Parameter* p = request->parameters.Find("fake_delay_ms")) delay_ms = p->as_int64();
    request->parameters.clear();
    int sent = 0;
    for (int64_t i = 0; i < count; ++i) {
      if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
      if (request->Cancelled() || !request->sink->AwaitCapacity(*request)) break;
      std::unique_ptr<InferenceResponse> response;
      if (i == error_at) {
        response = request->NewResponse();
        response->status = absl::InternalError("fake error at " + std::to_string(i));
      } else {
        auto r = Identity(*request);
        if (!r.ok()) break;
        response = *std::move(r);
        response->parameters.Set("index", static_cast<int64_t>(i));
      }
      request->Respond(std::move(response), false);
      decoupled_sent = ++sent;
    }
    request->Respond(nullptr, true);
    decoupled_done = true;
  }

 private:
  std::vector<std::thread> threads_;  // decoupled answers, joined at the end
};

// Captures a streamed body. The client "reads" a piece only when told
// (Take) unless `auto_take`; AwaitRoom counts the pieces not read.
class CapturingStream : public HttpStream {
 public:
  bool auto_take = true;

  bool Write(std::string piece) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (gone_ || ended_) return false;
    pieces_.push_back(std::move(piece));
    if (auto_take) taken_ = pieces_.size();
    cv_.notify_all();
    return true;
  }
  void End() override {
    std::lock_guard<std::mutex> lock(mu_);
    ended_ = true;
    cv_.notify_all();
  }
  bool AwaitRoom(size_t max, Clock::time_point deadline) override {
    std::unique_lock<std::mutex> lock(mu_);
    auto room = [&] { return gone_ || pieces_.size() - taken_ < max; };
    if (!cv_.wait_until(lock, std::min(deadline, Clock::now() + std::chrono::seconds(10)), room)) {
      return false;
    }
    return !gone_;
  }
  bool Gone() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return gone_;
  }

  // The client reads `n` more pieces, or goes away.
  void Take(size_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    taken_ = std::min(pieces_.size(), taken_ + n);
    cv_.notify_all();
  }
  void SetGone() {
    std::lock_guard<std::mutex> lock(mu_);
    gone_ = true;
    cv_.notify_all();
  }
  // Waits up to 5 s for `n` pieces (or the end); returns the pieces so far.
  std::vector<std::string> WaitPieces(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(5), [&] { return ended_ || pieces_.size() >= n; });
    return pieces_;
  }
  // Waits up to 5 s for End(); false if it did not come.
  bool WaitEnd() {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(5), [&] { return ended_; });
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> pieces_;
  size_t taken_ = 0;
  bool gone_ = false;
  bool ended_ = false;
};

// Captures what a handler sends: an answer, or the head of a streamed one.
class CapturingResponder : public HttpResponder {
 public:
  std::atomic<bool> gone{false};
  // The stream StartStream hands out (set it up before the request).
  std::shared_ptr<CapturingStream> stream = std::make_shared<CapturingStream>();

  void Send(HttpResponse r) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (sent_) return;
    response_ = std::move(r);
    sent_ = true;
    cv_.notify_all();
  }
  std::shared_ptr<HttpStream> StartStream(HttpResponse head) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (sent_) return nullptr;
    response_ = std::move(head);
    sent_ = true;
    streamed_ = true;
    cv_.notify_all();
    return stream;
  }
  bool Gone() const override { return gone; }

  // Waits up to 5 s for the answer (of a streamed one: its head).
  HttpResponse Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(5), [&] { return sent_; });
    return sent_ ? std::move(response_) : HttpResponse{-1, {}, "no answer", {}, nullptr, false};
  }
  bool streamed() {
    std::lock_guard<std::mutex> lock(mu_);
    return streamed_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  HttpResponse response_;
  bool sent_ = false;
  bool streamed_ = false;
};

}  // namespace testing
}  // namespace http
}  // namespace torii

#endif  // TORII_TESTS_SERVER_HTTP_FAKES_H_
