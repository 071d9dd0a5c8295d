// Decoupled runners (ABI 1.2 senders) and model calls on the two backends:
// RunnerModel in process and IsolatedRunnerModel over the events channel,
// with the stream test runner (fixtures/stream_runner.cc).
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include "server/core/inference_dispatcher.h"
#include "server/isolation/isolated_runner_model.h"
#include "server/repository/model_spec_builder.h"
#include "tests/util/runner_fixture.h"

namespace torii {
namespace testing {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

std::string StreamConfig(const std::string& name, bool isolated, int instances = 1) {
  return "name: \"" + name + R"(" backend: "stream" max_batch_size: 0
    input [ { name: "COUNT" data_type: TYPE_INT32 dims: [ 1 ] } ]
    output [ { name: "INDEX" data_type: TYPE_INT32 dims: [ 1 ] },
             { name: "PID" data_type: TYPE_INT64 dims: [ 1 ] } ]
    model_transaction_policy { decoupled: true }
    instance_group [ { count: )" + std::to_string(instances) + " } ]\n" +
         (isolated ? R"(parameters { key: "isolation" value { string_value: "process" } })" : "");
}

// A sink that records every response and can hold the sender back:
// AwaitCapacity blocks while `capacity` responses are unread, and fails once
// `gone` is set.
class PacedSink : public CollectingSink {
 public:
  bool AwaitCapacity(const InferenceRequest&) override {
    std::unique_lock<std::mutex> lock(mu_);
    ++waits_;
    cv_.wait(lock, [&] { return gone_ || capacity_ < 0 || taken_ < capacity_; });
    if (gone_) return false;
    ++taken_;
    return true;
  }
  void Limit(int capacity) {
    std::lock_guard<std::mutex> lock(mu_);
    capacity_ = capacity;
    cv_.notify_all();
  }
  void Go() {
    std::lock_guard<std::mutex> lock(mu_);
    gone_ = true;
    cv_.notify_all();
  }
  int waits() {
    std::lock_guard<std::mutex> lock(mu_);
    return waits_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int capacity_ = -1;  // < 0: no limit
  int taken_ = 0;
  int waits_ = 0;
  bool gone_ = false;
};

struct Backend {
  std::shared_ptr<const ModelSpec> spec;
  std::unique_ptr<LoadedModel> in_process;
  std::unique_ptr<IsolatedRunnerModel> isolated;
  ExecutionBackend& get() {
    return isolated != nullptr ? static_cast<ExecutionBackend&>(*isolated) : *in_process->model;
  }
};

std::unique_ptr<Backend> Start(bool isolated, InferenceDispatcher* dispatcher = nullptr,
                               const std::string& name = "stream") {
  auto b = std::make_unique<Backend>();
  const std::string text = StreamConfig(name, isolated);
  b->spec = SpecFromText(text);
  if (!isolated) {
    auto m = LoadRunnerModel(TORII_STREAM_RUNNER, text, 1, dispatcher);
    REQUIRE(m.ok());
    b->in_process = std::move(*m);
    return b;
  }
  inference::ModelConfig config;
  REQUIRE(google::protobuf::TextFormat::ParseFromString(text, &config));
  IsolatedRunnerModel::Options o;
  o.name = name;
  o.version = 1;
  o.directory = "/nonexistent";
  o.version_directory = "/nonexistent/1";
  o.spec = b->spec;
  config.SerializeToString(&o.config);
  o.library_path = TORII_STREAM_RUNNER;
  o.runner = "stream";
  o.host_path = TORII_RUNNER_HOST_BINARY;
  o.dispatcher = dispatcher;
  auto m = IsolatedRunnerModel::Create(std::move(o));
  INFO(m.status().message());
  REQUIRE(m.ok());
  b->isolated = std::move(*m);
  return b;
}

std::unique_ptr<TestRequest> CountRequest(const ModelSpec& spec, int32_t count,
                                          std::shared_ptr<CollectingSink> sink = nullptr) {
  auto t = std::make_unique<TestRequest>();
  if (sink != nullptr) t->sink = std::move(sink);
  t->request->model_name = spec.name;
  t->request->id = "req-" + std::to_string(count);
  t->request->sink = t->sink;
  std::string raw(4, '\0');
  std::memcpy(&raw[0], &count, 4);
  t->AddInput("COUNT", TORII_TYPE_INT32, {1}, raw);
  absl::Status s = ValidateRequest(spec, ValidationLimits{}, t->request.get());
  INFO(s.message());
  REQUIRE(s.ok());
  return t;
}

int32_t Index(const InferenceResponse& r) { return OutputValues<int32_t>(r, "INDEX")[0]; }

// Runs `t` alone on instance 0; the backend answers it later (decoupled).
void Submit(ExecutionBackend& b, TestRequest& t) {
  RequestBatch batch;
  batch.push_back(std::move(t.request));
  b.Execute(0, batch, nullptr);
}

// Calls go to a model of this test, run on a thread of their own (what the
// server's InferenceCore does through the scheduler).
class TestDispatcher : public InferenceDispatcher {
 public:
  ExecutionBackend* target = nullptr;
  std::shared_ptr<const ModelSpec> spec;
  std::atomic<int> calls{0};
  ~TestDispatcher() override {
    for (auto& t : threads_) t.join();
  }
  void Infer(std::unique_ptr<InferenceRequest> request) override {
    ++calls;
    request->served_version = "1";
    absl::Status s = ValidateRequest(*spec, ValidationLimits{}, request.get());
    if (!s.ok()) return request->RespondError(s);
    std::lock_guard<std::mutex> lock(mu_);
    threads_.emplace_back([this, r = std::move(request)]() mutable {
      RequestBatch batch;
      batch.push_back(std::move(r));
      target->Execute(0, batch, nullptr);
    });
  }

 private:
  std::mutex mu_;
  std::vector<std::thread> threads_;
};

TEST_CASE("1000 responses for one request arrive complete and in order (in process and isolated)", "[decoupled]") {
  for (bool isolated : {false, true}) {
    for (const char* where : {"thread", "execute"}) {
      INFO((isolated ? "isolated" : "in process") << ", sent from " << where);
      auto b = Start(isolated);
      auto t = CountRequest(*b->spec, 1000);
      t->request->parameters.Set("where", std::string(where));
      Submit(b->get(), *t);
      REQUIRE(t->sink->WaitFinal(milliseconds(30000)));
      CHECK(t->sink->finals() == 1);
      REQUIRE(t->sink->count() == 1000);  // the final flag alone adds no response
      bool in_order = true;
      for (size_t i = 0; i < 1000; ++i) in_order &= Index(t->sink->at(i)) == static_cast<int32_t>(i);
      CHECK(in_order);
      CHECK(t->sink->at(0).id == "req-1000");
      const int64_t pid = OutputValues<int64_t>(t->sink->at(999), "PID")[0];
      if (isolated) {
        CHECK(pid == b->isolated->pid());
      } else {
        CHECK(pid == getpid());
      }
    }
  }
}

TEST_CASE("the last response may carry the final flag and zero responses are a final alone", "[decoupled]") {
  for (bool isolated : {false, true}) {
    INFO((isolated ? "isolated" : "in process"));
    auto b = Start(isolated);
    auto t = CountRequest(*b->spec, 3);
    t->request->parameters.Set("final_with_last", true);
    auto none = CountRequest(*b->spec, 0);
    Submit(b->get(), *t);
    Submit(b->get(), *none);
    REQUIRE(t->sink->WaitFinal(milliseconds(10000)));
    REQUIRE(none->sink->WaitFinal(milliseconds(10000)));
    CHECK(t->sink->count() == 3);
    CHECK(Index(t->sink->at(2)) == 2);
    CHECK(none->sink->count() == 0);
    CHECK(none->sink->finals() == 1);
  }
}

TEST_CASE("back-pressure: a receiver that does not read holds the sender back (bounded)", "[decoupled]") {
  for (bool isolated : {false, true}) {
    INFO((isolated ? "isolated" : "in process"));
    auto b = Start(isolated);
    auto sink = std::make_shared<PacedSink>();
    sink->Limit(5);
    auto t = CountRequest(*b->spec, 200, sink);
    Submit(b->get(), *t);
    // The runner gets 5 sends through; isolated, at most 4 more wait in the
    // child heap for the server to take them, none reach the receiver.
    std::this_thread::sleep_for(milliseconds(500));
    CHECK(sink->count() == 5);
    CHECK(sink->finals() == 0);
    sink->Limit(-1);
    REQUIRE(sink->WaitFinal(milliseconds(20000)));
    CHECK(sink->count() == 200);
    bool in_order = true;
    for (size_t i = 0; i < 200; ++i) in_order &= Index(sink->at(i)) == static_cast<int32_t>(i);
    CHECK(in_order);
  }
}

TEST_CASE("a receiver that goes away makes the sends fail and the runner stop", "[decoupled]") {
  for (bool isolated : {false, true}) {
    INFO((isolated ? "isolated" : "in process"));
    auto b = Start(isolated);
    auto sink = std::make_shared<PacedSink>();
    sink->Limit(3);
    auto t = CountRequest(*b->spec, 100000, sink);
    t->request->parameters.Set("delay_us", int64_t{100});
    Submit(b->get(), *t);
    const auto until = Clock::now() + std::chrono::seconds(10);
    while (sink->count() < 3 && Clock::now() < until) std::this_thread::sleep_for(milliseconds(5));
    sink->Go();
    // The runner sees its send fail, stops, and still ends the request.
    REQUIRE(sink->WaitFinal(milliseconds(10000)));
    CHECK(sink->count() == 3);
  }
}

TEST_CASE("cancellation after execute returned reaches the runner", "[decoupled]") {
  for (bool isolated : {false, true}) {
    INFO((isolated ? "isolated" : "in process"));
    auto b = Start(isolated);
    auto t = CountRequest(*b->spec, 100000);
    t->request->parameters.Set("delay_us", int64_t{1000});
    auto cancelled = std::make_shared<std::atomic<bool>>(false);
    t->request->is_cancelled = [cancelled] { return cancelled->load(); };
    auto sink = t->sink;
    Submit(b->get(), *t);
    const auto until = Clock::now() + std::chrono::seconds(10);
    while (sink->count() < 10 && Clock::now() < until) std::this_thread::sleep_for(milliseconds(5));
    *cancelled = true;
    REQUIRE(sink->WaitFinal(milliseconds(10000)));
    // Within the 50 ms the server takes to pass it on (isolated).
    CHECK(sink->count() < 1000);
  }
}

TEST_CASE("a child that crashes with open decoupled requests ends each with the signal", "[decoupled]") {
  auto b = Start(/*isolated=*/true);
  auto slow = CountRequest(*b->spec, 100000);
  slow->request->parameters.Set("delay_us", int64_t{2000});
  auto crash = CountRequest(*b->spec, 100000);
  crash->request->parameters.Set("delay_us", int64_t{2000});
  crash->request->parameters.Set("crash_after", int64_t{20});
  auto slow_sink = slow->sink;
  auto crash_sink = crash->sink;
  Submit(*b->isolated, *slow);
  Submit(*b->isolated, *crash);
  for (auto* sink : {slow_sink.get(), crash_sink.get()}) {
    REQUIRE(sink->WaitFinal(milliseconds(20000)));
    const InferenceResponse& last = sink->last();
    CHECK(absl::IsUnavailable(last.status));
    CHECK(std::string(last.status.message()).find("SIGABRT") != std::string::npos);
    CHECK(sink->count() >= 2);  // some responses, then the error
  }
  CHECK(crash_sink->count() >= 21);
  // And the model serves again.
  const auto until = Clock::now() + std::chrono::seconds(20);
  while (!b->isolated->healthy() && Clock::now() < until) std::this_thread::sleep_for(milliseconds(20));
  auto again = CountRequest(*b->spec, 3);
  Submit(*b->isolated, *again);
  REQUIRE(again->sink->WaitFinal(milliseconds(10000)));
  CHECK(again->sink->count() == 3);
}

TEST_CASE("unloading ends requests still open with an error", "[decoupled]") {
  for (bool isolated : {false, true}) {
    INFO((isolated ? "isolated" : "in process"));
    auto b = Start(isolated);
    auto t = CountRequest(*b->spec, 1000000);
    t->request->parameters.Set("delay_us", int64_t{1000});
    auto sink = t->sink;
    Submit(b->get(), *t);
    const auto until = Clock::now() + std::chrono::seconds(10);
    while (sink->count() < 3 && Clock::now() < until) std::this_thread::sleep_for(milliseconds(5));
    b.reset();  // the runner's thread sees its sends fail and ends
    REQUIRE(sink->WaitFinal(milliseconds(10000)));
    CHECK(sink->finals() == 1);
  }
}

TEST_CASE("an isolated runner calls another model and reads every response of it", "[decoupled]") {
  TestDispatcher dispatcher;
  auto callee = Start(/*isolated=*/false, nullptr, "callee");
  dispatcher.target = &callee->get();
  dispatcher.spec = callee->spec;
  for (bool isolated : {false, true}) {
    INFO((isolated ? "isolated" : "in process"));
    auto b = Start(isolated, &dispatcher);
    auto t = CountRequest(*b->spec, 250);
    t->request->parameters.Set("call", std::string("callee"));
    Submit(b->get(), *t);
    REQUIRE(t->sink->WaitFinal(milliseconds(20000)));
    REQUIRE(t->sink->count() == 1);
    INFO(t->sink->last().status.message());
    REQUIRE(t->sink->last().status.ok());
    CHECK(Index(t->sink->last()) == 250);  // the callee's 250 responses, each read
  }
  CHECK(dispatcher.calls == 2);
}

TEST_CASE("a runner may send from a call's callback: the callback does not hold up the channel", "[decoupled]") {
  TestDispatcher dispatcher;
  auto callee = Start(/*isolated=*/false, nullptr, "callee");
  dispatcher.target = &callee->get();
  dispatcher.spec = callee->spec;
  for (bool isolated : {false, true}) {
    INFO((isolated ? "isolated" : "in process"));
    auto b = Start(isolated, &dispatcher);
    // Each of the callee's 300 responses is sent on from the callback,
    // far beyond the child's window of unacknowledged responses.
    auto t = CountRequest(*b->spec, 300);
    t->request->parameters.Set("call", std::string("callee"));
    t->request->parameters.Set("forward", true);
    Submit(b->get(), *t);
    REQUIRE(t->sink->WaitFinal(milliseconds(20000)));
    REQUIRE(t->sink->count() == 301);
    bool ordered = true;
    for (size_t i = 0; i < 300; ++i) ordered &= Index(t->sink->at(i)) == static_cast<int32_t>(i);
    CHECK(ordered);
    CHECK(Index(t->sink->at(300)) == 300);
  }
}

}  // namespace
}  // namespace testing
}  // namespace torii
