// The fake host checks what torii-server checks (torii/host_checks.h) and
// records what a runner reports: output allocations, BYTES outputs, the
// config a runner completes at load, provenance properties, and requests a
// runner never finished.
#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "scripted_runner.h"

namespace {

using torii::testing::FakeHost;
using torii::testing::Request;
using torii::testing::Tensor;

TEST_CASE("batch outputs: name, datatype, shape with the batch's rows, byte size, overflow",
          "[sdk]") {
  std::vector<std::string> refusals;
  scripted::UseScript script(
      {nullptr, [&](const torii::ModelContext&, torii::Batch& batch) {
         auto refused = [&](const std::string& name, ToriiDataType dt, std::vector<int64_t> shape,
                            size_t bytes) {
           try {
             batch.AllocateOutput(name, dt, shape, bytes);
             refusals.push_back("(accepted)");
           } catch (const torii::Error& e) {
             refusals.push_back(std::to_string(e.code()) + " " + e.what());
           }
         };
         refused("NOPE", TORII_TYPE_FP32, {3, 2}, 24);
         refused("Y", TORII_TYPE_FP64, {3, 2}, 48);
         refused("Y", TORII_TYPE_FP32, {1, 2}, 8);  // one request's rows, not the batch's 3
         refused("Y", TORII_TYPE_FP32, {3}, 12);
         refused("Y", TORII_TYPE_FP32, {3, 2}, 25);
         refused("Y", TORII_TYPE_FP32, {3, int64_t(1) << 62}, 0);
         refused("Y", TORII_TYPE_FP32, {3, -2}, 0);
         scripted::Echo(batch);
         refused("Y", TORII_TYPE_FP32, {3, 2}, 24);
       }});
  FakeHost host;
  auto model = host.Load(scripted::Spec(8));
  Request a, b;
  a.inputs = {Tensor::Of<float>("X", {1, 2}, {1, 2})};
  b.inputs = {Tensor::Of<float>("X", {2, 2}, {3, 4, 5, 6})};
  auto out = model->CreateInstance()->Execute({a, b});
  REQUIRE(out[0].ok());
  REQUIRE(out[1].ok());
  CHECK(out[1].output("Y").values<float>() == std::vector<float>{3, 4, 5, 6});
  REQUIRE(refusals.size() == 8);
  const std::string who = "13 allocating output '";
  CHECK_THAT(refusals[0], Catch::StartsWith(who + "NOPE'") &&
                              Catch::Contains("model 'scripted' output 'NOPE' is not declared"));
  CHECK_THAT(refusals[1], Catch::EndsWith("config declares FP32, the runner produced FP64"));
  CHECK_THAT(refusals[2], Catch::EndsWith("expected shape [3,-1], the runner produced [1,2]"));
  CHECK_THAT(refusals[3], Catch::EndsWith("expected shape [3,-1], the runner produced [3]"));
  CHECK_THAT(refusals[4], Catch::EndsWith("shape [3,2] of FP32 needs 6 x 4 bytes, the runner "
                                          "asked for 25"));
  CHECK_THAT(refusals[5], Catch::EndsWith("shape [3,4611686018427387904] has more elements than "
                                          "fit in int64"));
  CHECK_THAT(refusals[6], Catch::EndsWith("expected shape [3,-1], the runner produced [3,-2]"));
  CHECK_THAT(refusals[7], Catch::EndsWith("model 'scripted' output 'Y' was allocated twice"));
}

TEST_CASE("malformed BYTES outputs fail the requests that asked for them", "[sdk]") {
  scripted::UseScript script(
      {nullptr, [&](const torii::ModelContext&, torii::Batch& batch) {
         scripted::Echo(batch);
         const int64_t rows = batch.input("X").shape()[0];
         // Every element claims 200 bytes: the prefixes run past the buffer.
         std::string bad;
         for (int64_t i = 0; i < rows; ++i) bad += std::string("\xc8\x00\x00\x00", 4) + "x";
         void* p = batch.AllocateOutput("T", TORII_TYPE_BYTES, {rows, 1}, bad.size());
         std::memcpy(p, bad.data(), bad.size());
       }});
  FakeHost host;
  auto spec = scripted::Spec(8);
  spec.outputs.push_back({"T", TORII_TYPE_BYTES, {1}});
  auto model = host.Load(spec);
  Request wants_y = scripted::Req({1}, true), wants_t = scripted::Req({2}, true);
  wants_y.requested_outputs = {"Y"};
  wants_t.requested_outputs = {"T"};
  auto out = model->CreateInstance()->Execute({wants_y, wants_t});
  REQUIRE(out[0].ok());
  CHECK(out[0].output("Y").values<float>() == std::vector<float>{1});
  CHECK(out[1].code == TORII_STATUS_INTERNAL);
  CHECK_THAT(out[1].message, Catch::Contains("model 'scripted': runner output 'T': BYTES element 0 "
                                             "declares 200 bytes but only 6 remain"));
}

TEST_CASE("the config: rendered as the server does, completed at load, fixed afterwards",
          "[sdk]") {
  std::string seen_json;
  std::vector<std::string> refusals;
  std::vector<std::string> outputs_after;
  std::optional<std::string> added_parameter;
  auto refuse = [&](const torii::ModelContext& ctx, const std::string& json) {
    try {
      ctx.SetConfigJson(json);
      refusals.push_back("(accepted)");
    } catch (const torii::Error& e) {
      refusals.push_back(std::to_string(e.code()) + " " + e.what());
    }
  };
  scripted::UseScript script(
      {[&](const torii::ModelContext& ctx) {
         seen_json = ctx.config_json();
         refuse(ctx, "{\"name\": \"scripted\", \"input\": [");
         refuse(ctx, R"({"name": "renamed"})");
         refuse(ctx, R"({"name": "scripted", "output": [{"name": "Z", "data_type": "TYPE_FP33"}]})");
         refuse(ctx, R"({"name": "scripted", "backend": "other"})");
         // Auto-complete: declare an output the ModelSpec lacks.
         ctx.SetConfigJson(R"({"name": "scripted", "max_batch_size": 4,
             "input": [{"name": "X", "data_type": "TYPE_FP32", "dims": ["-1"]}],
             "output": [{"name": "Y", "data_type": "TYPE_FP32", "dims": ["-1"]},
                        {"name": "Z", "dataType": "TYPE_STRING", "dims": [1]}],
             "parameters": {"added": {"string_value": "yes \u00e9"}},
             "model_transaction_policy": {"decoupled": true}})");
         for (const auto& o : ctx.outputs()) outputs_after.push_back(o.name);
         added_parameter = ctx.parameter("added");
       },
       [&](const torii::ModelContext& ctx, torii::Batch& batch) {
         refuse(ctx, ctx.config_json());
         scripted::Echo(batch);
       }});
  FakeHost host;
  auto model = host.Load(scripted::Spec(4));
  CHECK(seen_json ==
        R"({"name":"scripted","max_batch_size":4,"input":[{"name":"X","data_type":"TYPE_FP32",)"
        R"("dims":["-1"]}],"output":[{"name":"Y","data_type":"TYPE_FP32","dims":["-1"]}]})");
  REQUIRE(refusals.size() == 4);
  CHECK_THAT(refusals[0], Catch::StartsWith("3 SetConfigJson: model 'scripted': the completed "
                                            "config is refused: not valid JSON"));
  CHECK_THAT(refusals[1], Catch::EndsWith("the name cannot change (the model is 'scripted')"));
  CHECK_THAT(refusals[2], Catch::EndsWith("output[0] ('Z'): unknown data_type 'TYPE_FP33'"));
  CHECK_THAT(refusals[3], Catch::EndsWith("'backend' cannot change"));
  CHECK(outputs_after == std::vector<std::string>{"Y", "Z"});
  CHECK(added_parameter == std::string("yes \xc3\xa9"));
  REQUIRE(model->completed_config_json());
  CHECK_THAT(*model->completed_config_json(), Catch::Contains("\"dataType\": \"TYPE_STRING\""));
  CHECK(model->spec().decoupled);
  CHECK(model->spec().outputs.at(1).datatype == TORII_TYPE_BYTES);
  CHECK(model->config_json() == *model->completed_config_json());

  Request r = scripted::Req({1}, true);
  r.requested_outputs = {"Y"};
  REQUIRE(model->CreateInstance()->Submit(r)->Wait().at(0).ok());
  REQUIRE(refusals.size() == 5);
  CHECK(refusals[4] ==
        "9 SetConfigJson: model 'scripted': model_set_config_json is only valid during "
        "torii_runner_model_load");
}

TEST_CASE("reported properties are recorded, from any thread", "[sdk]") {
  scripted::UseScript script({[](const torii::ModelContext& ctx) {
                                ctx.ReportProperty("tokenizer", "sha256:0123");
                                ctx.ReportProperty("python", "3.10");
                                ctx.ReportProperty("python", "3.11.2");
                              },
                              [](const torii::ModelContext& ctx, torii::Batch& batch) {
                                std::thread t([ctx] { ctx.ReportProperty("warm", "yes"); });
                                t.join();
                                scripted::Echo(batch);
                              }});
  FakeHost host;
  auto model = host.Load(scripted::Spec());
  CHECK(model->properties() ==
        std::map<std::string, std::string>{{"python", "3.11.2"}, {"tokenizer", "sha256:0123"}});
  REQUIRE(model->CreateInstance()->Infer({Tensor::Of<float>("X", {1}, {1})}).ok());
  CHECK(model->properties().at("warm") == "yes");
}

TEST_CASE("a request the runner never finished ends with INTERNAL when the model unloads",
          "[sdk]") {
  // Through the C ABI (the SDK's ResponseSender would end it when released).
  scripted::UseScript script({nullptr, [](const torii::ModelContext&, torii::Batch& batch) {
                                batch.host()->batch_response_sender(batch.handle(), 0);
                              }});
  FakeHost host;
  auto model = host.Load(scripted::Spec(0, true));
  auto stream = model->CreateInstance()->Submit(scripted::Req({1}, false, "forgotten"));
  CHECK_FALSE(stream->finished());
  model.reset();  // the instance went with the Submit's temporary
  REQUIRE(stream->finished());
  const auto responses = stream->responses();
  REQUIRE(responses.size() == 1);
  CHECK(responses[0].code == TORII_STATUS_INTERNAL);
  CHECK_THAT(responses[0].message, Catch::Contains("model 'scripted' was unloaded before its "
                                                   "runner ended request #0 ('forgotten')"));
}

}  // namespace
