// Calls to other models (ABI 1.2, ModelCall / infer_request_*), against the
// fake host: a handler model, a runner's model loaded from its library, a
// decoupled runner streaming back, failures as results, timeouts, and the
// ownership of the caller's input bytes.
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstring>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "scripted_runner.h"

namespace {

using torii::testing::FakeHost;
using torii::testing::Request;
using torii::testing::Response;
using torii::testing::Tensor;

std::vector<Response> One(Response r) {
  std::vector<Response> v;
  v.push_back(std::move(r));
  return v;
}

Response Floats(const std::string& name, const std::vector<float>& v) {
  Response r;
  r.outputs = {Tensor::Of<float>(name, {static_cast<int64_t>(v.size())}, v)};
  return r;
}

TEST_CASE("ModelCall.Run calls a model and returns its results, owned", "[sdk]") {
  std::mutex mu;
  Request seen;  // what the called model received (written on a host thread)
  std::thread::id handler_thread;
  std::optional<torii::CallResult> kept;
  scripted::UseScript script(
      {nullptr, [&](const torii::ModelContext& ctx, torii::Batch& batch) {
         torii::ModelCall call(ctx, "double");
         {
           const auto x = batch.input("X").values<float>();
           std::vector<float> scratch(x.begin(), x.end());
           call.AddInput<float>("IN", {static_cast<int64_t>(scratch.size())}, scratch);
         }  // the builder copied `scratch`
         call.RequestOutput("OUT")
             .SetId("call-1")
             .SetParameter("scale", torii::Parameter::Double(2))
             .SetParameter("note", torii::Parameter::String("hi"))
             .SetTimeout(std::chrono::seconds(30));
         std::vector<torii::CallResult> results = call.Run();
         REQUIRE(results.size() == 1);
         kept = results[0];
         batch.CopyOutput("Y", results[0].ThrowIfError().output("OUT"));
       }});
  FakeHost host;
  host.AddModel("double", [&](const Request& r) {
    std::lock_guard<std::mutex> lock(mu);
    seen = r;
    handler_thread = std::this_thread::get_id();
    std::vector<float> out;
    for (float v : Tensor(r.inputs.at(0)).values<float>()) out.push_back(v * 2);
    return One(Floats("OUT", out));
  });
  auto model = host.Load(scripted::Spec());
  auto out = model->CreateInstance()->Infer({Tensor::Of<float>("X", {3}, {1, 2, 3})});
  REQUIRE(out.ok());
  CHECK(out.output("Y").values<float>() == std::vector<float>{2, 4, 6});

  std::lock_guard<std::mutex> lock(mu);
  CHECK(handler_thread != std::this_thread::get_id());  // a host thread, not the caller
  CHECK(seen.id == "call-1");
  CHECK(seen.requested_outputs == std::vector<std::string>{"OUT"});
  CHECK(seen.parameters.at("scale").double_value == 2.0);
  CHECK(seen.parameters.at("note").string_value == "hi");
  CHECK(seen.deadline_ns > torii::testing::MonotonicNs());
  REQUIRE(seen.inputs.size() == 1);
  CHECK(seen.inputs[0].shape == std::vector<int64_t>{3});
  // A CallResult owns the host's result: its views outlive the call.
  REQUIRE(kept);
  CHECK(kept->output("OUT").values<float>().size() == 3);
  CHECK(kept->output("OUT").values<float>()[2] == 6.0f);
  CHECK_THROWS_WITH(kept->output("NONE"), Catch::Contains("call result has no output 'NONE'"));
}

TEST_CASE("ModelCall.RunAsync delivers each response in order on a host thread", "[sdk]") {
  struct Got {
    std::thread::id thread;
    bool final;
    bool empty;
    float value;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Got> got;
  bool done = false;
  scripted::UseScript script(
      {nullptr, [&](const torii::ModelContext& ctx, torii::Batch& batch) {
         const std::string target = batch.request_id(0);
         {
           std::lock_guard<std::mutex> lock(mu);
           got.clear();
           done = false;
         }
         torii::ModelCall(ctx, target).AddInput(
             "IN", TORII_TYPE_FP32, {1}, batch.input("X").data(), 4)
             .RunAsync([&](torii::CallResult r, bool final) {
               std::lock_guard<std::mutex> lock(mu);
               got.push_back({std::this_thread::get_id(), final, r.empty(),
                              r.empty() ? 0.f : r.output("OUT").values<float>()[0]});
               if (final) {
                 done = true;
                 cv.notify_all();
               }
             });
         std::unique_lock<std::mutex> lock(mu);
         REQUIRE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return done; }));
         scripted::Echo(batch);
       }});
  FakeHost host;
  host.AddModel("three", [](const Request&) {
    std::vector<Response> v;
    for (float f : {1.f, 2.f, 3.f}) v.push_back(Floats("OUT", {f}));
    return v;
  });
  host.AddModel("none", [](const Request&) { return std::vector<Response>{}; });
  auto model = host.Load(scripted::Spec());
  auto instance = model->CreateInstance();

  REQUIRE(instance->Submit(scripted::Req({0}, false, "three"))->Wait().at(0).ok());
  {
    std::lock_guard<std::mutex> lock(mu);
    REQUIRE(got.size() == 3);
    for (size_t i = 0; i < 3; ++i) {
      CHECK(got[i].value == float(i + 1));
      CHECK(got[i].final == (i == 2));
      CHECK_FALSE(got[i].empty);
      CHECK(got[i].thread != std::this_thread::get_id());
      CHECK(got[i].thread == got[0].thread);  // never concurrently for one call
    }
  }
  REQUIRE(instance->Submit(scripted::Req({0}, false, "none"))->Wait().at(0).ok());
  std::lock_guard<std::mutex> lock(mu);
  REQUIRE(got.size() == 1);
  CHECK(got[0].final);
  CHECK(got[0].empty);  // the final flag without a response
}

TEST_CASE("a runner's model loaded from its library serves calls (add_sub)", "[sdk]") {
  auto add_sub_host = FakeHost::Open(TORII_ADD_SUB_RUNNER);  // outlives `host`
  std::vector<std::string> failures;
  scripted::UseScript script(
      {nullptr, [&](const torii::ModelContext& ctx, torii::Batch& batch) {
         torii::Input x = batch.input("X");
         const int64_t n = x.shape()[0];
         torii::ModelCall sum(ctx, "add_sub");
         sum.AddInput("INPUT0", TORII_TYPE_FP32, {1, n}, x.data(), x.byte_size())
             .AddInput("INPUT1", TORII_TYPE_FP32, {1, n}, x.data(), x.byte_size())
             .RequestOutput("OUTPUT0");
         const torii::CallResult r = sum.Run().at(0).ThrowIfError();
         CHECK(r.output_count() == 1);  // only what was asked for
         auto y = batch.AllocateOutput<float>("Y", {n});
         std::memcpy(y.data(), r.output("OUTPUT0").data(), y.size() * sizeof(float));

         const std::vector<int32_t> ints(static_cast<size_t>(n), 1);
         auto fail = [&](torii::ModelCall call) {
           const auto results = call.Run();
           failures.push_back(results.size() == 1 && !results[0].ok()
                                  ? std::to_string(results[0].code()) + " " + results[0].message()
                                  : "(no single failed result)");
         };
         fail(torii::ModelCall(ctx, "add_sub")
                  .AddInput("INPUT0", TORII_TYPE_FP32, {1, n}, x.data(), x.byte_size())
                  .AddInput<int32_t>("INPUT1", {1, n}, ints));
         fail(torii::ModelCall(ctx, "add_sub").AddInput("INPUT0", x));
         fail(torii::ModelCall(ctx, "add_sub", 7));
         fail(torii::ModelCall(ctx, "nobody"));
       }});
  auto add_sub = add_sub_host->Load([] {
    torii::testing::ModelSpec s;
    s.name = "add_sub";
    s.max_batch_size = 4;
    s.inputs = {{"INPUT0", TORII_TYPE_FP32, {-1}}, {"INPUT1", TORII_TYPE_FP32, {-1}}};
    s.outputs = {{"OUTPUT0", TORII_TYPE_FP32, {-1}}, {"OUTPUT1", TORII_TYPE_FP32, {-1}}};
    return s;
  }());
  FakeHost host;
  host.AddModel(add_sub);
  auto model = host.Load(scripted::Spec());
  auto out = model->CreateInstance()->Infer({Tensor::Of<float>("X", {3}, {1, -2, 3.5f})});
  REQUIRE(out.ok());
  CHECK(out.output("Y").values<float>() == std::vector<float>{2, -4, 7});
  REQUIRE(failures.size() == 4);
  CHECK_THAT(failures[0], Catch::StartsWith("3 ") &&
                              Catch::Contains("input 'INPUT1' of model 'add_sub': expected FP32, "
                                              "got INT32"));
  CHECK_THAT(failures[1], Catch::StartsWith("3 ") &&
                              Catch::Contains("input 'INPUT0' of model 'add_sub': expected shape "
                                              "[-1,-1], got [3]"));
  CHECK_THAT(failures[2], Catch::StartsWith("5 ") &&
                              Catch::Contains("model 'add_sub' version 7 is not served"));
  CHECK_THAT(failures[3], Catch::StartsWith("5 ") &&
                              Catch::Contains("register it with FakeHost::AddModel"));
}

TEST_CASE("a decoupled runner streams back to its caller, and a timeout ends the call", "[sdk]") {
  std::mutex mu;
  std::vector<std::thread> threads;
  std::vector<std::string> seen;  // what the caller got
  scripted::UseScript script(
      {nullptr, [&](const torii::ModelContext& ctx, torii::Batch& batch) {
         const float x = batch.input("X").values<float>()[0];
         if (ctx.name() == "streamer") {  // on a host thread: no Catch2 here
           torii::ResponseSender sender = batch.TakeResponseSender(0);
           std::lock_guard<std::mutex> lock(mu);
           threads.emplace_back([sender, x] {
             // x >= 0: x responses; x < 0: until cancelled (or past the deadline).
             for (int i = 0; (x < 0 || i < x) && !sender.cancelled(); ++i) {
               torii::Response r = sender.NewResponse();
               r.AllocateOutput<float>("Y", {1})[0] = static_cast<float>(i);
               if (!sender.Send(std::move(r))) break;
               if (x < 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
             }
             sender.Finish();
           });
           return;
         }
         torii::ModelCall call(ctx, "streamer");
         call.AddInput<float>("X", {1}, {x});
         if (x < 0) call.SetTimeout(std::chrono::milliseconds(100));
         std::vector<std::string> got;
         for (const torii::CallResult& r : call.Run()) {
           got.push_back(r.ok() ? std::to_string(int(r.output("Y").values<float>()[0]))
                                : "error " + std::to_string(r.code()) + ": " + r.message());
         }
         seen = got;
         scripted::Echo(batch);
       }});
  FakeHost host;
  auto caller = host.Load(scripted::Spec());
  auto streamer_spec = scripted::Spec(0, /*decoupled=*/true);
  streamer_spec.name = "streamer";
  host.AddModel(host.Load(streamer_spec));
  auto instance = caller->CreateInstance();

  REQUIRE(instance->Infer({Tensor::Of<float>("X", {1}, {4})}).ok());
  CHECK(seen == std::vector<std::string>{"0", "1", "2", "3"});

  REQUIRE(instance->Infer({Tensor::Of<float>("X", {1}, {-1})}).ok());
  REQUIRE(seen.size() >= 2);
  CHECK(seen.front() == "0");
  CHECK_THAT(seen.back(), Catch::StartsWith("error 4: ") && Catch::Contains("timeout"));

  std::lock_guard<std::mutex> lock(mu);
  for (auto& t : threads) t.join();  // the streamer saw its deadline and finished
}

TEST_CASE("the host reads call inputs without copying: changing them fails the call", "[sdk]") {
  // Also: infer_result_output never writes past a runner's struct_size.
  std::optional<torii::ModelContext> ctx;
  scripted::UseScript script({[&](const torii::ModelContext& c) { ctx = c; }, nullptr});
  FakeHost host;
  std::promise<void> go;
  std::shared_future<void> go_future = go.get_future().share();
  host.AddModel("slow", [go_future](const Request& r) {
    go_future.wait();
    return One(Floats("OUT", Tensor(r.inputs.at(0)).values<float>()));
  });
  auto model = host.Load(scripted::Spec());
  REQUIRE(ctx);
  const ToriiHostApi* api = ctx->host();

  struct Got {
    const ToriiHostApi* api;
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    ToriiStatusCode code = TORII_STATUS_OK;
    std::string message;
    bool canary_intact = false;
    std::string name;
  } got;
  got.api = api;
  ToriiInferCallback callback = [](void* user_data, ToriiInferResult* result, bool final) {
    auto* g = static_cast<Got*>(user_data);
    std::lock_guard<std::mutex> lock(g->mu);
    if (result == nullptr) {  // the final flag alone
      g->done = final;
      g->cv.notify_all();
      return;
    }
    g->code = g->api->infer_result_code(result);
    g->message = g->api->infer_result_message(result);
    if (g->api->infer_result_output_count(result) > 0) {
      // A runner built against a smaller ToriiTensor: nothing past its size.
      union {
        ToriiTensor t;
        unsigned char bytes[sizeof(ToriiTensor) + 16];
      } small;
      std::memset(&small, 0xA5, sizeof small);
      small.t.struct_size = offsetof(ToriiTensor, data);
      g->api->infer_result_output(result, 0, &small.t);
      g->canary_intact = true;
      for (size_t i = offsetof(ToriiTensor, data); i < sizeof small; ++i) {
        g->canary_intact = g->canary_intact && small.bytes[i] == 0xA5;
      }
      g->name = small.t.name;
    }
    g->api->infer_result_delete(result);
    g->done = final;
    g->cv.notify_all();
  };
  auto call = [&](std::vector<float>& buf, bool change) {
    ToriiInferRequest* req = api->infer_request_new(ctx->handle(), "slow", -1);
    const int64_t shape[] = {static_cast<int64_t>(buf.size())};
    REQUIRE(api->infer_request_add_input(req, "IN", TORII_TYPE_FP32, shape, 1, buf.data(),
                                         buf.size() * sizeof(float)) == nullptr);
    // Breaks the contract (unchanged from add_input to the final callback);
    // before the send, so the test itself does not race with the host.
    if (change) buf[1] = 99;
    {
      std::lock_guard<std::mutex> lock(got.mu);
      got.done = false;
    }
    REQUIRE(api->infer_request_send(req, callback, &got) == nullptr);
    std::unique_lock<std::mutex> lock(got.mu);
    REQUIRE(got.cv.wait_for(lock, std::chrono::seconds(10), [&] { return got.done; }));
  };
  go.set_value();
  std::vector<float> kept{1, 2, 3};
  call(kept, false);
  CHECK(got.code == TORII_STATUS_OK);
  CHECK(got.canary_intact);
  CHECK(got.name == "OUT");

  std::vector<float> changed{1, 2, 3};
  call(changed, true);
  CHECK(got.code == TORII_STATUS_INTERNAL);
  CHECK_THAT(got.message, Catch::Contains("input 'IN' of the call to model 'slow' changed "
                                          "before the final callback"));

  // Inputs the host cannot take come back as the call's result ...
  const float one = 1;
  auto failure = [](const torii::ModelCall& call) {
    const auto results = call.Run();
    REQUIRE(results.size() == 1);
    CHECK(results[0].code() == TORII_STATUS_INVALID_ARGUMENT);
    return results[0].message();
  };
  CHECK_THAT(failure(torii::ModelCall(*ctx, "slow").AddInput("IN", TORII_TYPE_FP32, {2}, &one, 4)),
             Catch::Contains("input 'IN' of the call to 'slow': shape [2] of FP32 needs 2 x 4 "
                             "bytes, got 4"));
  CHECK_THAT(failure(torii::ModelCall(*ctx, "slow").AddInput("IN", TORII_TYPE_FP32, {-1}, &one, 4)),
             Catch::Contains("has a negative dimension"));
  CHECK_THAT(failure(torii::ModelCall(*ctx, "slow").AddBytesInput("S", {2}, {"only one"})),
             Catch::Contains("shape needs 2 BYTES elements, the data holds 1"));
  // ... a request the host refuses to send throws, and no callback runs.
  CHECK_THROWS_WITH(torii::ModelCall(*ctx, "slow").SetParameter("p", torii::Parameter()).Run(),
                    "ModelCall: parameter 'p' has no valid type");
  CHECK_THROWS_WITH(torii::ModelCall(*ctx, "slow").AddInput("IN", TORII_TYPE_FP32, {1}, nullptr, 4),
                    Catch::Contains("no data"));
}

}  // namespace
