// Answering requests through ResponseSender (ABI 1.2, decoupled models),
// against the fake host: order, threads, the host's checks on every
// response, the one-response rule of models that are not decoupled,
// cancellation, deadlines, and what happens to responses and senders a
// runner drops.
#include <catch2/catch.hpp>
#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "scripted_runner.h"

namespace {

using torii::testing::FakeHost;
using torii::testing::Request;
using torii::testing::Response;
using torii::testing::Tensor;

// Threads a test's runner starts; joined before the test's locals go.
struct Threads {
  std::mutex mu;
  std::vector<std::thread> all;
  template <typename Fn>
  void Start(Fn&& fn) {
    std::lock_guard<std::mutex> lock(mu);
    all.emplace_back(std::forward<Fn>(fn));
  }
  void Join() {
    std::lock_guard<std::mutex> lock(mu);
    for (auto& t : all) {
      if (t.joinable()) t.join();
    }
  }
  ~Threads() { Join(); }
};

float ValueOf(const Response& r) {
  REQUIRE(r.ok());
  return r.output("Y").values<float>().at(0);
}

TEST_CASE("a runner streams responses from its own thread after execute returns", "[sdk]") {
  Threads threads;  // (no Catch2 assertions on other threads: they are not thread-safe)
  std::thread::id execute_thread;
  std::atomic<int> refused{0};
  scripted::UseScript script(
      {nullptr, [&](const torii::ModelContext&, torii::Batch& batch) {
         execute_thread = std::this_thread::get_id();
         const float first = batch.input("X").values<float>()[0];
         torii::ResponseSender sender = batch.TakeResponseSender(0);
         threads.Start([sender, first, &refused] {
           for (int i = 0; i < 5; ++i) {
             torii::Response r = sender.NewResponse();
             r.AllocateOutput<float>("Y", {1})[0] = first + static_cast<float>(i);
             if (!sender.Send(std::move(r))) ++refused;
           }
           sender.Finish();
         });
       }});
  FakeHost host;
  auto model = host.Load(scripted::Spec(0, /*decoupled=*/true));
  auto instance = model->CreateInstance();
  auto stream = instance->Submit(scripted::Req({10}));
  CHECK(stream->answered_by_sender());
  const auto responses = stream->Wait();
  REQUIRE(responses.size() == 5);
  for (size_t i = 0; i < 5; ++i) CHECK(ValueOf(responses[i]) == 10.0f + static_cast<float>(i));
  CHECK(stream->finished());
  CHECK(execute_thread == std::this_thread::get_id());  // Submit runs execute here
  CHECK(refused == 0);

  // The same through InferAll; Infer refuses a stream of several.
  CHECK(instance->InferAll({Tensor::Of<float>("X", {1}, {1})}).size() == 5);
  CHECK_THROWS_WITH(instance->Infer({Tensor::Of<float>("X", {1}, {1})}),
                    Catch::Contains("read them with ExecuteAll() or InferAll()"));
}

TEST_CASE("each request of a batch has its own sender, and its responses carry its own rows",
          "[sdk]") {
  scripted::UseScript script(
      {nullptr, [&](const torii::ModelContext&, torii::Batch& batch) {
         const auto x = batch.input("X").values<float>();
         size_t row = 0;
         for (size_t r = 0; r < batch.request_count(); ++r) {
           const int64_t rows = batch.request_rows(r);
           torii::ResponseSender sender = batch.TakeResponseSender(r);
           torii::Response resp = sender.NewResponse();
           // The batch's total rows are wrong for one request's response.
           if (batch.request_count() > 1) {
             CHECK_THROWS_WITH(resp.AllocateOutput<float>("Y", {batch.input("X").shape()[0], 2}),
                               Catch::Contains("expected shape [" + std::to_string(rows) + ",-1]"));
           }
           auto y = resp.AllocateOutput<float>("Y", {rows, 2});
           for (size_t i = 0; i < y.size(); ++i) y[i] = x[row * 2 + i] * 10;
           row += static_cast<size_t>(rows);
           sender.Send(std::move(resp), /*final=*/true);
         }
         // Batch outputs are not sent to requests taken by a sender.
         scripted::Echo(batch);
       }});
  FakeHost host;
  auto model = host.Load(scripted::Spec(8, /*decoupled=*/true));
  auto instance = model->CreateInstance();
  Request a, b;
  a.inputs = {Tensor::Of<float>("X", {1, 2}, {1, 2})};
  b.inputs = {Tensor::Of<float>("X", {2, 2}, {3, 4, 5, 6})};
  auto out = instance->ExecuteAll({a, b});
  REQUIRE(out[0].size() == 1);
  REQUIRE(out[1].size() == 1);
  CHECK(out[0][0].output("Y").shape == std::vector<int64_t>{1, 2});
  CHECK(out[0][0].output("Y").values<float>() == std::vector<float>{10, 20});
  CHECK(out[1][0].output("Y").shape == std::vector<int64_t>{2, 2});
  CHECK(out[1][0].output("Y").values<float>() == std::vector<float>{30, 40, 50, 60});
}

TEST_CASE("the host checks every response like a batch's outputs", "[sdk]") {
  std::vector<std::string> refusals;
  scripted::UseScript script(
      {nullptr, [&](const torii::ModelContext&, torii::Batch& batch) {
         torii::ResponseSender sender = batch.TakeResponseSender(0);
         auto refused = [&](auto&& fn) {
           torii::Response r = sender.NewResponse();
           try {
             fn(r);
             refusals.push_back("(accepted)");
           } catch (const torii::Error& e) {
             CHECK(e.code() == TORII_STATUS_INTERNAL);
             refusals.push_back(e.what());
           }
         };
         refused([](torii::Response& r) { r.AllocateOutput("NOPE", TORII_TYPE_FP32, {1}, 4); });
         refused([](torii::Response& r) { r.AllocateOutput("Y", TORII_TYPE_INT32, {1}, 4); });
         refused([](torii::Response& r) { r.AllocateOutput("Y", TORII_TYPE_FP32, {1, 1}, 4); });
         refused([](torii::Response& r) { r.AllocateOutput("Y", TORII_TYPE_FP32, {2}, 4); });
         refused([](torii::Response& r) {
           r.AllocateOutput("Y", TORII_TYPE_FP32, {int64_t(1) << 62}, 0);
         });
         refused([](torii::Response& r) {
           r.AllocateOutput("M", TORII_TYPE_FP32, {int64_t(1) << 32, int64_t(1) << 32}, 0);
         });
         refused([](torii::Response& r) {
           r.AllocateOutput("Y", TORII_TYPE_FP32, {1}, 4);
           r.AllocateOutput("Y", TORII_TYPE_FP32, {1}, 4);
         });
         // A malformed BYTES response is sent, but the client gets INTERNAL instead.
         torii::Response bad = sender.NewResponse();
         char* p = static_cast<char*>(bad.AllocateOutput("TEXT", TORII_TYPE_BYTES, {1}, 6));
         std::memcpy(p, "\x09\x00\x00\x00" "ab", 6);
         CHECK(sender.Send(std::move(bad)));
         torii::Response good = sender.NewResponse();
         good.SetBytesOutput("TEXT", {1}, {"fine"});
         sender.Send(std::move(good), true);
       }});
  FakeHost host;
  auto spec = scripted::Spec(0, /*decoupled=*/true);
  spec.outputs.push_back({"TEXT", TORII_TYPE_BYTES, {1}});
  spec.outputs.push_back({"M", TORII_TYPE_FP32, {-1, -1}});
  auto model = host.Load(spec);
  auto responses = model->CreateInstance()->InferAll({Tensor::Of<float>("X", {1}, {1})});
  REQUIRE(refusals.size() == 7);
  CHECK_THAT(refusals[0], Catch::Contains("output 'NOPE' is not declared in config.pbtxt"));
  CHECK_THAT(refusals[1], Catch::Contains("config declares FP32, the runner produced INT32"));
  CHECK_THAT(refusals[2], Catch::Contains("expected shape [-1], the runner produced [1,1]"));
  CHECK_THAT(refusals[3], Catch::Contains("shape [2] of FP32 needs 2 x 4 bytes, the runner asked for 4"));
  CHECK_THAT(refusals[4], Catch::Contains("needs 4611686018427387904 x 4 bytes"));
  CHECK_THAT(refusals[5], Catch::Contains("shape [4294967296,4294967296] has more elements "
                                          "than fit in int64"));
  CHECK_THAT(refusals[6], Catch::Contains("output 'Y' was allocated twice"));
  REQUIRE(responses.size() == 2);
  CHECK(responses[0].code == TORII_STATUS_INTERNAL);
  CHECK_THAT(responses[0].message,
             Catch::Contains("runner output 'TEXT': BYTES element 0 declares 9 bytes but only "
                             "2 remain"));
  REQUIRE(responses[1].ok());
  CHECK(responses[1].output("TEXT").strings() == std::vector<std::string>{"fine"});
}

TEST_CASE("a model that is not decoupled answers with exactly one final response", "[sdk]") {
  std::string non_final, second;
  scripted::UseScript script(
      {nullptr, [&](const torii::ModelContext&, torii::Batch& batch) {
         torii::ResponseSender sender = batch.TakeResponseSender(0);
         torii::Response r = sender.NewResponse();
         r.CopyOutput("Y", batch.input("X"));
         try {
           sender.Send(std::move(r));  // not final: refused, dropped
         } catch (const torii::Error& e) {
           CHECK(e.code() == TORII_STATUS_FAILED_PRECONDITION);
           non_final = e.what();
         }
         if (batch.request_id(0) == "missing") {
           sender.Send(sender.NewResponse(), true);  // no Y: the client gets INTERNAL
           return;
         }
         torii::Response ok = sender.NewResponse();
         ok.CopyOutput("Y", batch.input("X"));
         REQUIRE(sender.Send(std::move(ok), true));
         try {
           sender.Send(sender.NewResponse(), true);
         } catch (const torii::Error& e) {
           CHECK(e.code() == TORII_STATUS_FAILED_PRECONDITION);
           second = e.what();
         }
       }});
  FakeHost host;
  auto model = host.Load(scripted::Spec(0, /*decoupled=*/false));
  auto instance = model->CreateInstance();
  auto out = instance->Infer({Tensor::Of<float>("X", {2}, {1, 2})});
  REQUIRE(out.ok());
  CHECK(out.output("Y").values<float>() == std::vector<float>{1, 2});
  CHECK_THAT(non_final, Catch::Contains("is not decoupled") &&
                            Catch::Contains("model_transaction_policy { decoupled: true }"));
  CHECK_THAT(second, Catch::Contains("is already finished"));

  auto failed = instance->Submit(scripted::Req({1}, false, "missing"))->Wait();
  REQUIRE(failed.size() == 1);
  CHECK(failed[0].code == TORII_STATUS_INTERNAL);
  CHECK_THAT(failed[0].message, Catch::Contains("the runner produced no output 'Y'"));
}

TEST_CASE("a decoupled model may send errors mid-stream and end without a response", "[sdk]") {
  scripted::UseScript script({nullptr, [&](const torii::ModelContext&, torii::Batch& batch) {
                                torii::ResponseSender s = batch.TakeResponseSender(0);
                                torii::Response r = s.NewResponse();
                                r.CopyOutput("Y", batch.input("X"));
                                s.Send(std::move(r));
                                s.SendError(TORII_STATUS_RESOURCE_EXHAUSTED, "slow down",
                                            /*final=*/false);
                                s.SendError(TORII_STATUS_OK, "not an error?", false);
                                s.Finish();
                                CHECK(s.finished());
                                CHECK(s.cancelled());  // finished: nothing more to produce
                                CHECK_THROWS_WITH(s.Finish(), Catch::Contains("already finished"));
                                CHECK_THROWS_WITH(s.NewResponse(),
                                                  Catch::Contains("already finished"));
                              }});
  FakeHost host;
  auto model = host.Load(scripted::Spec(0, true));
  auto responses = model->CreateInstance()->InferAll({Tensor::Of<float>("X", {1}, {4})});
  REQUIRE(responses.size() == 3);
  CHECK(ValueOf(responses[0]) == 4.0f);
  CHECK(responses[1].code == TORII_STATUS_RESOURCE_EXHAUSTED);
  CHECK(responses[1].message == "slow down");
  CHECK(responses[2].code == TORII_STATUS_INTERNAL);  // as the server maps OK-as-error
  CHECK_THAT(responses[2].message, Catch::Contains("runner reported a failure with status OK"));
}

TEST_CASE("a Response never sent is deleted, and a sender released unfinished ends its request",
          "[sdk]") {
  scripted::UseScript script({nullptr, [&](const torii::ModelContext&, torii::Batch& batch) {
                                torii::ResponseSender s = batch.TakeResponseSender(0);
                                torii::Response unsent = s.NewResponse();
                                unsent.CopyOutput("Y", batch.input("X"));
                                torii::Response moved = std::move(unsent);
                                CHECK(unsent.empty());
                                CHECK_THROWS_WITH(s.Send(std::move(unsent)),
                                                  Catch::Contains("the Response is empty"));
                                // `moved` and every copy of `s` go out of scope here.
                              }});
  FakeHost host;
  auto model = host.Load(scripted::Spec(0, true));
  auto stream = model->CreateInstance()->Submit(scripted::Req({1}, false, "dropped"));
  REQUIRE(stream->finished());
  const auto responses = stream->responses();
  REQUIRE(responses.size() == 1);
  CHECK(responses[0].code == TORII_STATUS_INTERNAL);
  CHECK_THAT(responses[0].message,
             Catch::Contains("released the response sender of request 'dropped' without a "
                             "final send"));
}

TEST_CASE("a request taken by a sender is answered only by it, whatever execute does",
          "[sdk]") {
  torii::ResponseSender kept;
  scripted::UseScript script({nullptr, [&](const torii::ModelContext&, torii::Batch& batch) {
                                kept = batch.TakeResponseSender(0);
                                throw torii::Error(TORII_STATUS_INTERNAL, "too late to fail");
                              }});
  FakeHost host;
  host.set_wait_timeout(std::chrono::milliseconds(200));
  auto model = host.Load(scripted::Spec(0, true));
  auto instance = model->CreateInstance();
  auto stream = instance->Submit(scripted::Req({1}, false, "held"));
  CHECK_FALSE(stream->finished());
  CHECK_THROWS_WITH(stream->Wait(), Catch::Contains("request #0 ('held') of model 'scripted'") &&
                                        Catch::Contains("no TORII_RESPONSE_FINAL within 200 ms"));
  torii::Response r = kept.NewResponse();
  r.AllocateOutput<float>("Y", {1})[0] = 5;
  kept.Send(std::move(r), true);
  REQUIRE(stream->Wait().size() == 1);
  CHECK(ValueOf(stream->responses()[0]) == 5.0f);
}

TEST_CASE("a cancelled request: the sender sees it, sends are dropped, Finish ends it",
          "[sdk]") {
  Threads threads;
  std::atomic<int> sent_after_cancel{0};
  std::atomic<bool> finished_ok{false};
  scripted::UseScript script(
      {nullptr, [&](const torii::ModelContext&, torii::Batch& batch) {
         torii::ResponseSender sender = batch.TakeResponseSender(0);
         threads.Start([sender, &sent_after_cancel, &finished_ok] {
           for (int i = 0; !sender.cancelled(); ++i) {
             torii::Response r = sender.NewResponse();
             r.AllocateOutput<float>("Y", {1})[0] = static_cast<float>(i);
             sender.Send(std::move(r));
             std::this_thread::sleep_for(std::chrono::microseconds(200));
           }
           // The client is gone: a response now is dropped and Send says so.
           torii::Response late = sender.NewResponse();
           late.AllocateOutput<float>("Y", {1})[0] = -1;
           if (!sender.Send(std::move(late))) ++sent_after_cancel;
           finished_ok = sender.Finish();
         });
       }});
  FakeHost host;
  auto model = host.Load(scripted::Spec(0, true));
  auto stream = model->CreateInstance()->Submit(scripted::Req({0}));
  REQUIRE(stream->WaitForResponses(3).size() >= 3);
  stream->Cancel();
  const auto responses = stream->Wait();
  CHECK(responses.size() >= 3);
  for (size_t i = 0; i < responses.size(); ++i) CHECK(ValueOf(responses[i]) == float(i));
  threads.Join();
  CHECK(stream->dropped() >= 1);
  CHECK(sent_after_cancel == 1);
  CHECK(finished_ok);
}

TEST_CASE("deadlines: the batch reports the earliest, senders and the batch see them pass",
          "[sdk]") {
  uint64_t batch_deadline = 0;
  bool batch_cancelled = true;
  std::vector<bool> sender_cancelled;
  std::vector<bool> sent;
  scripted::UseScript script({nullptr, [&](const torii::ModelContext&, torii::Batch& batch) {
                                batch_deadline = batch.deadline_ns();
                                batch_cancelled = batch.cancelled();
                                for (size_t r = 0; r < batch.request_count(); ++r) {
                                  torii::ResponseSender s = batch.TakeResponseSender(r);
                                  sender_cancelled.push_back(s.cancelled());
                                  torii::Response resp = s.NewResponse();
                                  resp.AllocateOutput<float>("Y", {1, 1})[0] = 1;
                                  sent.push_back(s.Send(std::move(resp)));
                                  s.Finish();
                                }
                              }});
  FakeHost host;
  auto model = host.Load(scripted::Spec(4, true));
  auto instance = model->CreateInstance();
  Request past = scripted::Req({1}, true);
  past.deadline_ns = torii::testing::MonotonicNs() - 1;
  Request later = scripted::Req({2}, true);
  later.deadline_ns = torii::testing::DeadlineIn(std::chrono::seconds(60));
  auto out = instance->ExecuteAll({later, past});
  CHECK(batch_deadline == past.deadline_ns);
  CHECK_FALSE(batch_cancelled);  // `later` still wants an answer
  CHECK(sender_cancelled == std::vector<bool>{false, true});
  CHECK(sent == std::vector<bool>{true, false});
  CHECK(out[0].size() == 1);
  CHECK(out[1].empty());

  Request gone = scripted::Req({3}, true);
  gone.cancelled = true;
  sender_cancelled.clear();
  sent.clear();
  instance->ExecuteAll({past, gone});
  CHECK(batch_cancelled);  // nobody wants an answer
  CHECK(sender_cancelled == std::vector<bool>{true, true});
}

}  // namespace
