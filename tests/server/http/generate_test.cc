// Triton's generate extension (/generate and /generate_stream), driven in
// process with fakes behind ModelService and InferenceDispatcher: how members
// become inputs and parameters, the answer's JSON, one response versus many,
// server-sent events, errors before and during a stream, back-pressure and a
// client that goes away. http_server_test.cc covers the wire.
#include <chrono>
#include <thread>

#include <catch2/catch.hpp>

#include "server/http/http_api.h"
#include "tests/server/http/fakes.h"

namespace torii {
namespace http {
namespace {

using testing::CapturingResponder;
using testing::FakeDispatcher;
using testing::FakeModelService;

struct Api {
  FakeModelService models;
  FakeDispatcher dispatcher;
  std::unique_ptr<HttpApi> api;

  Api() {
    HttpApi::Options o;
    o.models = &models;
    o.dispatcher = &dispatcher;
    o.max_request_bytes = 1 << 20;
    api = std::make_unique<HttpApi>(o);
  }

  // Posts `body` to `path`; the answer (or the streamed head) comes through
  // the returned responder.
  std::shared_ptr<CapturingResponder> Post(const std::string& path, std::string body,
                                           std::shared_ptr<CapturingResponder> responder = nullptr) {
    auto req = std::make_unique<HttpRequest>();
    req->method = "POST";
    req->path = path;
    req->body = std::move(body);
    EnsureBodyPadding(req->body);
    if (responder == nullptr) responder = std::make_shared<CapturingResponder>();
    api->Handle(std::move(req), responder);
    return responder;
  }

  HttpResponse Generate(const std::string& model, std::string body) {
    return Post("/v2/models/" + model + "/generate", std::move(body))->Wait();
  }

  // Waits up to 5 s for the fake's decoupled answer to finish.
  bool WaitDecoupledDone() {
    for (int i = 0; i < 500 && !dispatcher.decoupled_done; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return dispatcher.decoupled_done;
  }
};

const std::string* Header(const HttpResponse& r, const std::string& name) {
  for (const auto& h : r.headers) {
    if (h.first == name) return &h.second;
  }
  return nullptr;
}

std::string Bytes(const std::string& s) {
  const uint32_t n = static_cast<uint32_t>(s.size());
  return std::string(reinterpret_cast<const char*>(&n), 4) + s;
}

TEST_CASE("generate: members become inputs or parameters, shapes are inferred", "[http][generate]") {
  Api a;
  HttpResponse r = a.Generate(
      "text",
      R"({"id":"g1","PROMPT":"hello","IDS":[1,2,3],"temperature":0.5,"stream":false,)"
      R"("parameters":{"max":3,"tag":"x"}})");
  REQUIRE(r.status == 200);
  CHECK(*Header(r, "Content-Type") == "application/json");
  {
    std::lock_guard<std::mutex> lock(a.dispatcher.mu);
    CHECK(a.dispatcher.last_model == "text");
    CHECK(a.dispatcher.last_id == "g1");
    REQUIRE(a.dispatcher.last_inputs.size() == 2);
    CHECK(a.dispatcher.last_inputs[0].name == "PROMPT");
    CHECK(a.dispatcher.last_inputs[0].datatype == TORII_TYPE_BYTES);
    CHECK(a.dispatcher.last_inputs[0].shape == Shape{1});
    CHECK(a.dispatcher.last_input_bytes[0] == Bytes("hello"));
    CHECK(a.dispatcher.last_inputs[1].name == "IDS");
    CHECK(a.dispatcher.last_inputs[1].shape == Shape{1, 3});  // [1,-1]: the rest
    const int32_t ids[3] = {1, 2, 3};
    CHECK(a.dispatcher.last_input_bytes[1] == std::string(reinterpret_cast<const char*>(ids), 12));
    // Every member that is not an input is a parameter, "id" too (as Triton).
    const Parameters& p = a.dispatcher.last_parameters;
    CHECK(p.size() == 5);
    CHECK(p.Find("id")->as_string() == "g1");
    CHECK(p.Find("temperature")->as_double() == 0.5);
    CHECK(p.Find("stream")->as_bool() == false);
    CHECK(p.Find("max")->as_int64() == 3);
    CHECK(p.Find("tag")->as_string() == "x");
  }
  // Members sorted by name (Triton's map): outputs, the response's parameters
  // (the fake echoes the request's), id, model_name, model_version. One
  // element alone, more as an array.
  CHECK(r.body ==
        R"({"OUTPUT0":"hello","OUTPUT1":[1,2,3],"id":"g1","max":3,"model_name":"text",)"
        R"("model_version":"1","stream":false,"tag":"x","temperature":0.5})");
}

TEST_CASE("generate: the batch dimension and fixed dimensions share the values", "[http][generate]") {
  Api a;
  // identity: INPUT0 FP32 [-1,4] (a batching model): 8 values are [2,4].
  HttpResponse r = a.Generate("identity", R"({"INPUT0":[1,2,3,4,5,6,7,8]})");
  REQUIRE(r.status == 200);
  {
    std::lock_guard<std::mutex> lock(a.dispatcher.mu);
    CHECK(a.dispatcher.last_inputs.at(0).shape == Shape{2, 4});
  }
  CHECK(r.body ==
        R"({"OUTPUT0":[1,2,3,4,5,6,7,8],"model_name":"identity","model_version":"1"})");
  HttpResponse bad = a.Generate("identity", R"({"INPUT0":[1,2,3]})");
  CHECK(bad.status == 400);
  CHECK(bad.body == R"j({"error":"input 'INPUT0' has shape [-1,4]: 3 value(s) do not fill it (a multiple of 4 is needed)"})j");
  HttpResponse fixed = a.Generate("text", R"({"PROMPT":["a","b"]})");
  CHECK(fixed.status == 400);
  CHECK(fixed.body == R"j({"error":"input 'PROMPT' has shape [1]: it takes 1 value(s), got 2"})j");
}

TEST_CASE("generate: malformed requests answer 400 and name what is wrong", "[http][generate]") {
  Api a;
  struct Case {
    const char* body;
    const char* message;
  };
  const Case cases[] = {
      {"{", "the request body is not valid JSON"},
      {"[1]", "the request body must be a JSON object"},
      {R"({"PROMPT":"a","parameters":1})", "expected a JSON object for 'parameters', got a number"},
      {R"({"PROMPT":"a","parameters":{"nested":{"twice":1}}})",
       "'parameters': parameter 'nested' has invalid type"},
      {R"({"PROMPT":"a","PARAMS":{"P":0}})", "parameter 'PARAMS' has invalid type"},
      {R"({"PROMPT":123})", "input 'PROMPT': element 0 of the value must be a string for BYTES, got 123"},
      {R"({"PROMPT":{"USER":"x"}})", "input 'PROMPT' must be a value or a flat array of values of BYTES, got an object"},
      {R"({"PROMPT":"a","IDS":[1,"x"]})", "input 'IDS': element 1 of the value must be an integer"},
      {R"({"PROMPT":"a","id":5})", "'id' must be a string, got 5"},
  };
  for (const Case& c : cases) {
    INFO(c.body);
    HttpResponse r = a.Generate("text", c.body);
    CHECK(r.status == 400);
    CHECK(*Header(r, "Content-Type") == "application/json");
    CHECK(r.body.find(c.message) != std::string::npos);
  }
  HttpResponse unknown = a.Generate("nope", R"({"PROMPT":"a"})");
  CHECK(unknown.status == 404);
  CHECK(unknown.body == R"({"error":"unknown model 'nope'"})");
  HttpResponse stream_unknown = a.Post("/v2/models/nope/generate_stream", "{}")->Wait();
  CHECK(stream_unknown.status == 404);
  auto get = std::make_unique<HttpRequest>();
  get->method = "GET";
  get->path = "/v2/models/text/generate";
  auto responder = std::make_shared<CapturingResponder>();
  a.api->Handle(std::move(get), responder);
  CHECK(responder->Wait().status == 405);
}

TEST_CASE("generate: a decoupled model must answer with exactly one response", "[http][generate]") {
  Api a;
  HttpResponse one = a.Generate("text", R"({"PROMPT":"a","fake_responses":1})");
  REQUIRE(a.WaitDecoupledDone());
  CHECK(one.status == 200);
  CHECK(one.body.find(R"("index":0)") != std::string::npos);

  HttpResponse many = a.Generate("text", R"({"PROMPT":"a","fake_responses":1000})");
  REQUIRE(a.WaitDecoupledDone());
  CHECK(many.status == 500);
  CHECK(many.body.find("generate expects model to produce exactly 1 response, got more than one") !=
        std::string::npos);
  // The second response ends it: the model is told to stop.
  CHECK(a.dispatcher.decoupled_sent == 2);

  HttpResponse none = a.Generate("text", R"({"PROMPT":"a","fake_responses":0})");
  REQUIRE(a.WaitDecoupledDone());
  CHECK(none.status == 500);
  CHECK(none.body.find("exactly 1 response, got none") != std::string::npos);

  HttpResponse failed = a.Generate("text", R"({"PROMPT":"a","fake_fail":true})");
  CHECK(failed.status == 500);
  CHECK(failed.body == R"({"error":"runner failed: boom"})");
  CHECK(a.api->InFlight() == 0);
}

TEST_CASE("generate_stream: one server-sent event per response, in order", "[http][generate]") {
  Api a;
  auto r = a.Post("/v2/models/text/generate_stream", R"({"id":"s","PROMPT":"hi","fake_responses":3})");
  HttpResponse head = r->Wait();
  REQUIRE(r->streamed());
  CHECK(head.status == 200);
  CHECK(*Header(head, "Content-Type") == "text/event-stream; charset=utf-8");
  REQUIRE(r->stream->WaitEnd());
  const auto events = r->stream->WaitPieces(3);
  REQUIRE(events.size() == 3);
  for (int i = 0; i < 3; ++i) {
    CHECK(events[i] == "data: {\"OUTPUT0\":\"hi\",\"id\":\"s\",\"index\":" + std::to_string(i) +
                           ",\"model_name\":\"text\",\"model_version\":\"1\"}\n\n");
  }
  REQUIRE(a.WaitDecoupledDone());
  CHECK(a.api->InFlight() == 0);
  bool counted = false;
  for (const auto& c : a.api->RequestCounts()) {
    if (std::string(c.endpoint) == "generate_stream" && c.status == 200) counted = c.count == 1;
  }
  CHECK(counted);
}

TEST_CASE("generate_stream: errors", "[http][generate]") {
  Api a;
  SECTION("an error mid-stream is an error event; the stream goes on") {
    auto r = a.Post("/v2/models/text/generate_stream",
                    R"({"PROMPT":"hi","fake_responses":3,"fake_error_at":1})");
    CHECK(r->Wait().status == 200);
    REQUIRE(r->stream->WaitEnd());
    const auto events = r->stream->WaitPieces(3);
    REQUIRE(events.size() == 3);
    CHECK(events[0].find(R"("index":0)") != std::string::npos);
    CHECK(events[1] == "data: {\"error\":\"fake error at 1\"}\n\n");
    CHECK(events[2].find(R"("index":2)") != std::string::npos);
  }
  SECTION("an error as the first response sets the status of the stream") {
    auto r = a.Post("/v2/models/text/generate_stream",
                    R"({"PROMPT":"hi","fake_responses":2,"fake_error_at":0})");
    HttpResponse head = r->Wait();
    REQUIRE(r->streamed());
    CHECK(head.status == 500);
    REQUIRE(r->stream->WaitEnd());
    CHECK(r->stream->WaitPieces(2).at(0) == "data: {\"error\":\"fake error at 0\"}\n\n");
  }
  SECTION("a request that fails before any response is a plain JSON error") {
    auto r = a.Post("/v2/models/text/generate_stream", R"({"PROMPT":"hi","fake_fail":true})");
    HttpResponse answer = r->Wait();
    CHECK_FALSE(r->streamed());
    CHECK(answer.status == 500);
    CHECK(*Header(answer, "Content-Type") == "application/json");
    CHECK(answer.body == R"({"error":"runner failed: boom"})");
  }
  SECTION("no response at all: an empty stream") {
    auto r = a.Post("/v2/models/text/generate_stream", R"({"PROMPT":"hi","fake_responses":0})");
    CHECK(r->Wait().status == 200);
    REQUIRE(r->stream->WaitEnd());
    CHECK(r->stream->WaitPieces(1).empty());
  }
  if (a.dispatcher.decoupled_sent >= 0) REQUIRE(a.WaitDecoupledDone());
  CHECK(a.api->InFlight() == 0);
}

TEST_CASE("generate_stream: a client that does not read holds the model back", "[http][generate]") {
  Api a;
  auto responder = std::make_shared<CapturingResponder>();
  responder->stream->auto_take = false;
  a.Post("/v2/models/text/generate_stream", R"({"PROMPT":"hi","fake_responses":100})", responder);
  const size_t bound = HttpApi::kGenerateStreamMaxUnwritten;
  REQUIRE(responder->stream->WaitPieces(bound).size() == bound);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK(responder->stream->WaitPieces(bound).size() == bound);
  CHECK(a.dispatcher.decoupled_sent == static_cast<int>(bound));
  responder->stream->Take(1000);
  for (int i = 0; i < 10 && !a.dispatcher.decoupled_done; ++i) {
    responder->stream->Take(1000);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  REQUIRE(a.WaitDecoupledDone());
  responder->stream->Take(1000);
  REQUIRE(responder->stream->WaitEnd());
  CHECK(responder->stream->WaitPieces(100).size() == 100);
}

TEST_CASE("generate_stream: a client that goes away stops the model", "[http][generate]") {
  Api a;
  auto responder = std::make_shared<CapturingResponder>();
  a.Post("/v2/models/text/generate_stream",
         R"({"PROMPT":"hi","fake_responses":100000,"fake_delay_ms":1})", responder);
  REQUIRE(responder->stream->WaitPieces(5).size() >= 5);
  responder->stream->SetGone();
  REQUIRE(a.WaitDecoupledDone());
  CHECK(a.dispatcher.decoupled_sent < 100000);
  CHECK(a.api->InFlight() == 0);

  // Gone before the first response (the request is still queued).
  auto early = std::make_shared<CapturingResponder>();
  early->gone = true;
  a.Post("/v2/models/text/generate_stream", R"({"PROMPT":"hi","fake_responses":100000})", early);
  REQUIRE(a.WaitDecoupledDone());
  CHECK(a.dispatcher.decoupled_sent == 0);
}

}  // namespace
}  // namespace http
}  // namespace torii
