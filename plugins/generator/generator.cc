// The generator runner: a decoupled "token generator", the worked example of
// answering one request with many responses (docs/runner-guide.md).
//
//   input  PROMPT      BYTES [1]  words separated by spaces
//   input  MAX_TOKENS  INT32 [1]
//   output TOKEN       BYTES [1]  one response per token
//
// It "generates" the prompt's words in turn, MAX_TOKENS of them, one response
// each, from a thread of its own, then ends the request with the final flag.
// It stops early when the client cancels or the deadline passes. The model's
// config.pbtxt says max_batch_size: 0 and model_transaction_policy {
// decoupled: true }.
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "torii/runner.h"

namespace {

// One request being answered.
struct Job {
  std::vector<std::string> words;
  int32_t max_tokens = 0;
  torii::ResponseSender sender;
};

class GeneratorInstance : public torii::Instance {
 public:
  GeneratorInstance() : worker_([this] { Work(); }) {}
  ~GeneratorInstance() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    wake_.notify_all();
    worker_.join();
  }

  // Checks the request, takes it over and returns at once: the worker thread
  // answers it while this instance executes the next batch.
  void Execute(torii::Batch& batch) override {
    // max_batch_size: 0, so a batch holds exactly one request.
    Job job;
    std::istringstream prompt(std::string(batch.input("PROMPT").strings().at(0)));
    for (std::string word; prompt >> word;) job.words.push_back(word);
    job.max_tokens = batch.input("MAX_TOKENS").values<int32_t>()[0];
    if (job.words.empty() || job.max_tokens < 0) {
      // Not taken over yet: throwing answers the request with this error.
      throw torii::Error(TORII_STATUS_INVALID_ARGUMENT,
                         "generator: PROMPT needs at least one word and MAX_TOKENS must be "
                         ">= 0, got " + std::to_string(job.words.size()) + " word(s) and " +
                             std::to_string(job.max_tokens));
    }
    job.sender = batch.TakeResponseSender(0);
    {
      std::lock_guard<std::mutex> lock(mu_);
      jobs_.push_back(std::move(job));
    }
    wake_.notify_one();
  }

 private:
  void Work() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      wake_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping, and nothing left to end
      Job job = std::move(jobs_.front());
      jobs_.pop_front();
      lock.unlock();
      Generate(job);
      lock.lock();
    }
  }

  void Generate(const Job& job) {
    try {
      for (int32_t i = 0; i < job.max_tokens; ++i) {
        if (job.sender.cancelled() || stopping_) break;
        torii::Response response = job.sender.NewResponse();
        response.SetBytesOutput("TOKEN", {1}, {job.words[size_t(i) % job.words.size()]});
        // Blocks while the client lags; false: the client went away.
        if (!job.sender.Send(std::move(response))) break;
      }
      if (stopping_) {
        job.sender.SendError(TORII_STATUS_UNAVAILABLE, "generator: the instance is shutting down");
      } else {
        job.sender.Finish();
      }
    } catch (const std::exception& e) {
      // E.g. a response the host refused: end the request with the reason.
      // (Were that to fail too, the SDK ends it when the last sender goes.)
      try {
        if (!job.sender.finished()) job.sender.SendError(TORII_STATUS_INTERNAL, e.what());
      } catch (const std::exception&) {
      }
    }
  }

  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Job> jobs_;  // guarded by mu_
  std::atomic<bool> stopping_{false};
  std::thread worker_;  // last: starts once the members above exist
};

class GeneratorModel : public torii::Model {
 public:
  explicit GeneratorModel(const torii::ModelContext& ctx) {
    if (ctx.max_batch_size() != 0) {
      throw torii::Error(TORII_STATUS_INVALID_ARGUMENT,
                         "generator: set max_batch_size: 0 (each request is its own stream), "
                         "got " + std::to_string(ctx.max_batch_size()));
    }
  }
  std::unique_ptr<torii::Instance> CreateInstance(uint32_t) override {
    return std::make_unique<GeneratorInstance>();
  }
};

}  // namespace

TORII_RUNNER(GeneratorModel, "generator", "1.0.0");
