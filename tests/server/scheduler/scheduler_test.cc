// Scheduler behaviour: batching, instances, queue bounds, deadlines.
#include "server/scheduler/scheduler.h"

#include <catch2/catch.hpp>
#include <thread>

#include "tests/util/runner_fixture.h"

namespace torii {
namespace {

using testing::Fp32Request;
using testing::LoadRunnerModel;
using testing::OutputValues;
using testing::ProbeConfig;
using std::chrono::milliseconds;

std::string ProbePath() { return std::string(TORII_FIXTURE_DIR) + "/libtorii_probe.so"; }

// A submitted request: get() waits (bounded) for its final answer.
struct Pending {
  testing::TestRequest* t;
  absl::Status enqueued;
  absl::Status get() {
    if (!enqueued.ok()) return enqueued;
    REQUIRE(t->sink->WaitFinal(std::chrono::seconds(20)));
    return t->status();
  }
  bool ready_within(std::chrono::seconds d) { return !enqueued.ok() || t->sink->WaitFinal(d); }
};

struct Harness {
  std::unique_ptr<testing::LoadedModel> m;
  ModelStatistics stats;
  std::unique_ptr<Scheduler> scheduler;

  Harness(const std::string& extra, int max_batch, uint32_t instances) {
    auto loaded = LoadRunnerModel(ProbePath(), ProbeConfig("probe", max_batch, extra), instances);
    REQUIRE(loaded.ok());
    m = std::move(*loaded);
    scheduler = std::make_unique<Scheduler>(Scheduler::FromSpec(*m->spec), m->model.get(), &stats);
  }
  ~Harness() { scheduler->Shutdown(); }

  // Waits until every queued request was taken by an instance.
  void WaitQueueEmpty() {
    for (int i = 0; i < 10000 && scheduler->pending() != 0; ++i) {
      std::this_thread::sleep_for(milliseconds(1));
    }
    REQUIRE(scheduler->pending() == 0);
  }

  // Enqueues; the answer arrives in the request's sink.
  Pending Submit(testing::TestRequest& t) {
    std::unique_ptr<InferenceRequest> req = std::move(t.request);
    absl::Status s = scheduler->Enqueue(req);
    return {&t, s};
  }
};

TEST_CASE("dynamic batching merges concurrent requests and each client gets its own rows") {
  Harness h(R"(dynamic_batching { max_queue_delay_microseconds: 200000 })", 8, 1);
  std::vector<std::unique_ptr<testing::TestRequest>> reqs;
  std::vector<Pending> done;
  for (int i = 0; i < 8; ++i) reqs.push_back(Fp32Request(*h.m, 1, 3, float(100 * i)));
  for (auto& r : reqs) done.push_back(h.Submit(*r));
  for (auto& d : done) REQUIRE(d.get().ok());
  for (int i = 0; i < 8; ++i) {
    CHECK(OutputValues<float>(reqs[i]->response(), "OUTPUT0") ==
          std::vector<float>{float(100 * i), float(100 * i + 1), float(100 * i + 2)});
    // 8 rows reach max_batch_size: executed as one batch without waiting.
    CHECK(OutputValues<int64_t>(reqs[i]->response(), "BATCH") == std::vector<int64_t>{8});
  }
}

TEST_CASE("requests with different inner shapes are not merged") {
  Harness h(R"(dynamic_batching { max_queue_delay_microseconds: 50000 })", 8, 1);
  auto a = Fp32Request(*h.m, 1, 2, 0);
  auto b = Fp32Request(*h.m, 1, 3, 0);
  auto fa = h.Submit(*a);
  auto fb = h.Submit(*b);
  REQUIRE(fa.get().ok());
  REQUIRE(fb.get().ok());
  CHECK(OutputValues<int64_t>(a->response(), "BATCH") == std::vector<int64_t>{1});
  CHECK(OutputValues<int64_t>(b->response(), "BATCH") == std::vector<int64_t>{1});
}

TEST_CASE("a preferred batch size is executed without waiting for the delay") {
  // A 10 s delay: only the preferred size (or a full batch) can release it.
  Harness h(R"(dynamic_batching { preferred_batch_size: [ 2 ] max_queue_delay_microseconds: 10000000 })", 8, 1);
  auto a = Fp32Request(*h.m, 1, 1, 0);
  auto b = Fp32Request(*h.m, 1, 1, 1);
  auto fa = h.Submit(*a);
  auto fb = h.Submit(*b);
  REQUIRE(fa.ready_within(std::chrono::seconds(5)));
  REQUIRE(fa.get().ok());
  REQUIRE(fb.get().ok());
  CHECK(OutputValues<int64_t>(a->response(), "BATCH") == std::vector<int64_t>{2});
}

TEST_CASE("the max queue delay releases a partial batch") {
  Harness h(R"(dynamic_batching { max_queue_delay_microseconds: 20000 })", 8, 1);
  auto a = Fp32Request(*h.m, 3, 1, 0);
  auto fa = h.Submit(*a);
  REQUIRE(fa.ready_within(std::chrono::seconds(5)));
  REQUIRE(fa.get().ok());
  CHECK(OutputValues<int64_t>(a->response(), "BATCH") == std::vector<int64_t>{3, 3, 3});
}

TEST_CASE("two instances run batches at the same time") {
  Harness h("instance_group [ { count: 2 kind: KIND_CPU } ]", 8, 2);
  // Each execution waits (up to 10 s) for a second one to be in flight: only
  // two instances running at once can see two.
  auto a = Fp32Request(*h.m, 1, 1, 0, {{"peers", "2"}});
  auto b = Fp32Request(*h.m, 1, 1, 0, {{"peers", "2"}});
  auto fa = h.Submit(*a);
  auto fb = h.Submit(*b);
  REQUIRE(fa.get().ok());
  REQUIRE(fb.get().ok());
  CHECK(OutputValues<int64_t>(a->response(), "CONCURRENT") == std::vector<int64_t>{2});  // CONCURRENT
  CHECK(OutputValues<int64_t>(b->response(), "CONCURRENT") == std::vector<int64_t>{2});
  CHECK(OutputValues<int64_t>(a->response(), "INSTANCE") != OutputValues<int64_t>(b->response(), "INSTANCE"));  // INSTANCE differs
}

TEST_CASE("one instance never runs two batches at once") {
  Harness h("", 8, 1);
  auto a = Fp32Request(*h.m, 1, 1, 0, {{"sleep_ms", "100"}});
  auto b = Fp32Request(*h.m, 1, 1, 0, {{"sleep_ms", "100"}});
  auto fa = h.Submit(*a);
  auto fb = h.Submit(*b);
  REQUIRE(fa.get().ok());
  REQUIRE(fb.get().ok());
  CHECK(OutputValues<int64_t>(a->response(), "CONCURRENT") == std::vector<int64_t>{1});
  CHECK(OutputValues<int64_t>(b->response(), "CONCURRENT") == std::vector<int64_t>{1});
}

TEST_CASE("a full queue answers RESOURCE_EXHAUSTED naming the model and the limit") {
  Harness h(R"(dynamic_batching { default_queue_policy { max_queue_size: 2 } })", 8, 1);
  auto busy = Fp32Request(*h.m, 1, 1, 0, {{"sleep_ms", "300"}});
  auto fbusy = h.Submit(*busy);
  h.WaitQueueEmpty();  // the worker took it
  auto q1 = Fp32Request(*h.m, 1, 1, 0);
  auto q2 = Fp32Request(*h.m, 1, 1, 0);
  auto q3 = Fp32Request(*h.m, 1, 1, 0);
  auto f1 = h.Submit(*q1);
  auto f2 = h.Submit(*q2);
  auto f3 = h.Submit(*q3);
  const absl::Status s3 = f3.get();
  CHECK(s3.code() == absl::StatusCode::kResourceExhausted);
  CHECK(std::string(s3.message()).find("model 'probe'") != std::string::npos);
  CHECK(std::string(s3.message()).find("max_queue_size 2") != std::string::npos);
  CHECK(fbusy.get().ok());
  CHECK(f1.get().ok());
  CHECK(f2.get().ok());
}

TEST_CASE("a request whose deadline passes while queued is answered and never executed") {
  Harness h("", 8, 1);
  auto busy = Fp32Request(*h.m, 1, 1, 0, {{"sleep_ms", "300"}});
  auto fbusy = h.Submit(*busy);
  auto late = Fp32Request(*h.m, 1, 1, 0, {{"mode", "throw"}});
  late->request->deadline = InferenceRequest::Clock::now() + milliseconds(50);
  auto flate = h.Submit(*late);
  const absl::Status s = flate.get();
  CHECK(s.code() == absl::StatusCode::kDeadlineExceeded);  // not INTERNAL: never ran
  CHECK(fbusy.get().ok());
  // Executions are counted after their answers go out: join the workers first.
  h.scheduler->Shutdown();
  CHECK(h.stats.Read().execution_count == 1);
}

TEST_CASE("a request cancelled while queued is answered CANCELLED and never executed") {
  Harness h("", 8, 1);
  auto busy = Fp32Request(*h.m, 1, 1, 0, {{"sleep_ms", "200"}});
  auto fbusy = h.Submit(*busy);
  auto gone = Fp32Request(*h.m, 1, 1, 0, {{"mode", "throw"}});
  auto cancelled = std::make_shared<std::atomic<bool>>(false);
  gone->request->is_cancelled = [cancelled] { return cancelled->load(); };
  auto fgone = h.Submit(*gone);
  cancelled->store(true);
  CHECK(fgone.get().code() == absl::StatusCode::kCancelled);
  CHECK(fbusy.get().ok());
}

TEST_CASE("queue policy REJECT times out waiting requests, DELAY runs them later") {
  SECTION("REJECT") {
    Harness h(R"(dynamic_batching { default_queue_policy { default_timeout_microseconds: 50000 } })", 8, 1);
    auto busy = Fp32Request(*h.m, 1, 1, 0, {{"sleep_ms", "300"}});
    auto fbusy = h.Submit(*busy);
    h.WaitQueueEmpty();
    auto waiting = Fp32Request(*h.m, 1, 1, 0);
    auto fw = h.Submit(*waiting);
    CHECK(fw.get().code() == absl::StatusCode::kUnavailable);
    CHECK(fbusy.get().ok());
  }
  SECTION("DELAY") {
    Harness h(R"(dynamic_batching { default_queue_policy { default_timeout_microseconds: 50000 timeout_action: DELAY } })", 8, 1);
    auto busy = Fp32Request(*h.m, 1, 1, 0, {{"sleep_ms", "300"}});
    auto fbusy = h.Submit(*busy);
    h.WaitQueueEmpty();
    auto waiting = Fp32Request(*h.m, 1, 1, 7);
    auto fw = h.Submit(*waiting);
    CHECK(fw.get().ok());
    CHECK(OutputValues<float>(waiting->response(), "OUTPUT0") == std::vector<float>{7});
    CHECK(fbusy.get().ok());
  }
}

TEST_CASE("shutdown drains queued requests and later ones get UNAVAILABLE") {
  Harness h("", 8, 1);
  auto busy = Fp32Request(*h.m, 1, 1, 0, {{"sleep_ms", "100"}});
  auto queued = Fp32Request(*h.m, 1, 1, 5);
  auto fbusy = h.Submit(*busy);
  auto fq = h.Submit(*queued);
  h.scheduler->Shutdown();
  CHECK(fbusy.get().ok());
  CHECK(fq.get().ok());
  auto after = Fp32Request(*h.m, 1, 1, 0);
  CHECK(h.Submit(*after).get().code() == absl::StatusCode::kUnavailable);
}

TEST_CASE("statistics count requests, executions and batch sizes") {
  Harness h(R"(dynamic_batching { max_queue_delay_microseconds: 100000 preferred_batch_size: [ 4 ] })", 8, 1);
  std::vector<std::unique_ptr<testing::TestRequest>> reqs;
  std::vector<Pending> done;
  for (int i = 0; i < 4; ++i) reqs.push_back(Fp32Request(*h.m, 1, 1, 0));
  for (auto& r : reqs) done.push_back(h.Submit(*r));
  for (auto& d : done) REQUIRE(d.get().ok());
  h.scheduler->Shutdown();  // executions are counted after their answers go out
  const ModelStatistics::Snapshot s = h.stats.Read();
  CHECK(s.inference_count == 4);
  CHECK(s.execution_count == 1);
  CHECK(s.success.count == 4);
  REQUIRE(s.batches.size() == 1);
  CHECK(s.batches.begin()->first == 4);
  CHECK(s.last_inference_ms > 0);
}

TEST_CASE("expired requests are answered at their deadline, not when an instance frees up") {
  Harness h("", 8, 1);
  // The only instance is busy for 2 s.
  auto busy = Fp32Request(*h.m, 1, 1, 0, {{"sleep_ms", "2000"}});
  auto fbusy = h.Submit(*busy);
  h.WaitQueueEmpty();
  auto late = Fp32Request(*h.m, 1, 1, 0, {{"mode", "throw"}});
  late->request->deadline = InferenceRequest::Clock::now() + milliseconds(100);
  const auto t0 = std::chrono::steady_clock::now();
  auto flate = h.Submit(*late);
  REQUIRE(flate.ready_within(std::chrono::seconds(1)));
  CHECK(std::chrono::steady_clock::now() - t0 < milliseconds(900));
  CHECK(flate.get().code() == absl::StatusCode::kDeadlineExceeded);
  // Its queue slot is free again at once.
  CHECK(h.scheduler->pending() == 0);
  CHECK(fbusy.get().ok());
  h.scheduler->Shutdown();  // executions are counted after their answers go out
  const ModelStatistics::Snapshot s = h.stats.Read();
  CHECK(s.execution_count == 1);  // never ran
  CHECK(s.failures_by_reason.at("expired") == 1);
}

TEST_CASE("queue policy REJECT answers at the timeout, counted with its reason") {
  Harness h(R"(dynamic_batching { default_queue_policy { default_timeout_microseconds: 100000 } })", 8, 1);
  auto busy = Fp32Request(*h.m, 1, 1, 0, {{"sleep_ms", "2000"}});
  auto fbusy = h.Submit(*busy);
  h.WaitQueueEmpty();
  auto waiting = Fp32Request(*h.m, 1, 1, 0);
  auto fw = h.Submit(*waiting);
  REQUIRE(fw.ready_within(std::chrono::seconds(1)));
  CHECK(fw.get().code() == absl::StatusCode::kUnavailable);
  CHECK(fbusy.get().ok());
  CHECK(h.stats.Read().failures_by_reason.at("queue_timeout") == 1);
}

TEST_CASE("a request cancelled while an instance is busy is answered without waiting for it") {
  Harness h("", 8, 1);
  auto busy = Fp32Request(*h.m, 1, 1, 0, {{"sleep_ms", "2000"}});
  auto fbusy = h.Submit(*busy);
  h.WaitQueueEmpty();
  auto gone = Fp32Request(*h.m, 1, 1, 0);
  auto cancelled = std::make_shared<std::atomic<bool>>(false);
  gone->request->is_cancelled = [cancelled] { return cancelled->load(); };
  auto fgone = h.Submit(*gone);
  cancelled->store(true);
  REQUIRE(fgone.ready_within(std::chrono::seconds(1)));
  CHECK(fgone.get().code() == absl::StatusCode::kCancelled);
  CHECK(fbusy.get().ok());
  CHECK(h.stats.Read().failures_by_reason.at("cancelled") == 1);
}

}  // namespace
}  // namespace torii
