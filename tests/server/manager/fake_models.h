// A fake request path for ensemble tests: models defined in the test (a spec
// and a function computing the outputs), served by worker threads through
// the same validation as the server's (ValidateRequest). A test can hold a
// model's requests back and release them later, make a model fail, and see
// every request a model received (the input buffers it viewed, its deadline,
// its cancellation probe).
#ifndef TORII_TESTS_SERVER_MANAGER_FAKE_MODELS_H_
#define TORII_TESTS_SERVER_MANAGER_FAKE_MODELS_H_

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/core/request_validator.h"
#include "server/manager/ensemble_model.h"

namespace torii {
namespace testing {

class FakeModels : public ComposingModels, public InferenceDispatcher {
 public:
  /// Answers one request (validated against its model's spec): adds outputs
  /// to `response`, or returns an error for the request.
  using Handler = std::function<absl::Status(const InferenceRequest&, InferenceResponse*)>;

  /// What a model saw of one request.
  struct Seen {
    std::string id;
    std::vector<const char*> input_data;  // per declared input
    InferenceRequest::Clock::time_point deadline;
    std::vector<std::string> requested_outputs;
    std::function<bool()> is_cancelled;
    std::string parameters;
  };

  explicit FakeModels(int threads = 2) {
    for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { Work(); });
  }
  ~FakeModels() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
      for (auto& [name, m] : models_) {
        for (auto& r : m.held) queue_.push_back(std::move(r));
        m.held.clear();
      }
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
  }

  void Add(std::shared_ptr<const ModelSpec> spec, Handler handler) {
    std::lock_guard<std::mutex> lock(mu_);
    Model& m = models_[spec->name];
    m.spec = std::move(spec);
    m.handler = std::move(handler);
    m.serving = true;
  }
  /// The model stops serving (its spec stays known).
  void SetServing(const std::string& name, bool serving) {
    std::lock_guard<std::mutex> lock(mu_);
    models_.at(name).serving = serving;
  }
  /// Requests for `name` wait until Release(name).
  void Hold(const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    models_.at(name).hold = true;
  }
  void Release(const std::string& name) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      Model& m = models_.at(name);
      m.hold = false;
      for (auto& r : m.held) queue_.push_back(std::move(r));
      m.held.clear();
    }
    cv_.notify_all();
  }
  /// Waits until `n` requests for `name` are held; false after `d`.
  bool WaitHeld(const std::string& name, size_t n, std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> lock(mu_);
    return seen_cv_.wait_for(lock, d, [&] { return models_.at(name).held.size() >= n; });
  }
  /// Every request `name` received so far.
  std::vector<Seen> SeenBy(const std::string& name) const {
    std::lock_guard<std::mutex> lock(mu_);
    return models_.at(name).seen;
  }
  /// The output buffers `name` allocated, in order.
  std::vector<const char*> OutputsOf(const std::string& name) const {
    std::lock_guard<std::mutex> lock(mu_);
    return models_.at(name).output_buffers;
  }

  absl::StatusOr<std::shared_ptr<const ModelSpec>> ServingSpec(const std::string& name,
                                                               int64_t) const override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = models_.find(name);
    if (it == models_.end()) return absl::NotFoundError(absl::StrCat("unknown model '", name, "'"));
    if (!it->second.serving) {
      return absl::UnavailableError(absl::StrCat("model '", name, "' is not ready: unloaded"));
    }
    return it->second.spec;
  }

  void Infer(std::unique_ptr<InferenceRequest> request) override {
    std::unique_lock<std::mutex> lock(mu_);
    auto it = models_.find(request->model_name);
    if (it == models_.end() || !it->second.serving) {
      lock.unlock();
      request->RespondError(absl::UnavailableError(
          absl::StrCat("model '", request->model_name, "' is not ready")));
      return;
    }
    Model& m = it->second;
    absl::Status s = ValidateRequest(*m.spec, ValidationLimits{}, request.get());
    if (!s.ok()) {
      lock.unlock();
      request->RespondError(s);
      return;
    }
    Seen seen;
    seen.id = request->id;
    for (const auto& in : request->inputs) seen.input_data.push_back(in.data);
    seen.deadline = request->deadline;
    for (const auto& o : request->requested_outputs) seen.requested_outputs.push_back(o.name);
    seen.is_cancelled = request->is_cancelled;
    for (const auto& p : request->parameters) seen.parameters += p.first + ";";
    m.seen.push_back(std::move(seen));
    if (m.hold) {
      m.held.push_back(std::move(request));
      seen_cv_.notify_all();
      return;
    }
    queue_.push_back(std::move(request));
    lock.unlock();
    cv_.notify_one();
  }

 private:
  struct Model {
    std::shared_ptr<const ModelSpec> spec;
    Handler handler;
    bool serving = true;
    bool hold = false;
    std::deque<std::unique_ptr<InferenceRequest>> held;
    std::vector<Seen> seen;
    std::vector<const char*> output_buffers;
  };

  void Work() {
    for (;;) {
      std::unique_ptr<InferenceRequest> r;
      Handler handler;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;
        r = std::move(queue_.front());
        queue_.pop_front();
        handler = models_.at(r->model_name).handler;
      }
      if (r->Cancelled()) {
        r->RespondError(absl::CancelledError(
            absl::StrCat("model '", r->model_name, "': the request was cancelled while queued")));
        continue;
      }
      auto response = r->NewResponse();
      absl::Status s = handler(*r, response.get());
      if (!s.ok()) {
        r->RespondError(s);
        continue;
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (const auto& o : response->outputs()) {
          models_.at(r->model_name).output_buffers.push_back(o.data);
        }
      }
      r->Respond(std::move(response), /*final=*/true);
    }
  }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable seen_cv_;
  std::map<std::string, Model> models_;
  std::deque<std::unique_ptr<InferenceRequest>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace testing
}  // namespace torii

#endif  // TORII_TESTS_SERVER_MANAGER_FAKE_MODELS_H_
