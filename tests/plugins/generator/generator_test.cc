// The generator runner (plugins/generator) with the SDK's fake host: a
// decoupled model that answers each request with one response per token,
// from a thread of its own.
#include <catch2/catch.hpp>
#include <chrono>
#include <limits>
#include <string>
#include <vector>

#include "torii/testing/fake_host.h"

namespace {

using torii::testing::FakeHost;
using torii::testing::ModelSpec;
using torii::testing::Request;
using torii::testing::Response;
using torii::testing::Tensor;

// What its config.pbtxt says (docs/runner-guide.md).
ModelSpec Spec(bool decoupled = true) {
  ModelSpec spec;
  spec.name = "generator";
  spec.max_batch_size = 0;
  spec.decoupled = decoupled;
  spec.inputs = {{"PROMPT", TORII_TYPE_BYTES, {1}}, {"MAX_TOKENS", TORII_TYPE_INT32, {1}}};
  spec.outputs = {{"TOKEN", TORII_TYPE_BYTES, {1}}};
  return spec;
}

Request Prompt(const std::string& text, int32_t max_tokens) {
  Request r;
  r.inputs = {Tensor::Strings("PROMPT", {1}, {text}),
              Tensor::Of<int32_t>("MAX_TOKENS", {1}, {max_tokens})};
  return r;
}

std::vector<std::string> Tokens(const std::vector<Response>& responses) {
  std::vector<std::string> tokens;
  for (const auto& r : responses) {
    REQUIRE(r.ok());
    REQUIRE(r.output("TOKEN").shape == std::vector<int64_t>{1});
    tokens.push_back(r.output("TOKEN").strings().at(0));
  }
  return tokens;
}

TEST_CASE("generator: one response per token, in order, then the final flag", "[generator]") {
  FakeHost host;
  CHECK(std::string(host.info().name) == "generator");
  auto model = host.Load(Spec());
  auto instance = model->CreateInstance();
  auto first = instance->Submit(Prompt("the quick brown fox", 6));
  auto second = instance->Submit(Prompt("hello", 2));  // queues behind the first
  CHECK(first->answered_by_sender());
  CHECK(Tokens(first->Wait()) ==
        std::vector<std::string>{"the", "quick", "brown", "fox", "the", "quick"});
  CHECK(Tokens(second->Wait()) == std::vector<std::string>{"hello", "hello"});
  CHECK(first->finished());
}

TEST_CASE("generator: 1,000 responses for one request arrive complete and in order",
          "[generator]") {
  FakeHost host;
  auto model = host.Load(Spec());
  auto instance = model->CreateInstance();
  std::string prompt;
  std::vector<std::string> expected;
  for (int i = 0; i < 1000; ++i) {
    expected.push_back("w" + std::to_string(i));
    prompt += expected.back() + " ";
  }
  auto stream = instance->Submit(Prompt(prompt, 1000));
  CHECK(Tokens(stream->Wait()) == expected);
  CHECK(stream->dropped() == 0);
}

TEST_CASE("generator: a cancelled request stops early and still ends", "[generator]") {
  FakeHost host;
  auto model = host.Load(Spec());
  auto instance = model->CreateInstance();
  auto stream = instance->Submit(Prompt("on and on", std::numeric_limits<int32_t>::max()));
  REQUIRE(stream->WaitForResponses(10).size() >= 10);
  stream->Cancel();
  const auto responses = stream->Wait();  // the final flag came
  CHECK(responses.size() >= 10);
  CHECK(responses.size() < 100000000u);
  CHECK(stream->dropped() <= 1);  // at most the token in flight when it was cancelled

  // The instance serves the next request.
  CHECK(Tokens(instance->InferAll({Tensor::Strings("PROMPT", {1}, {"next"}),
                                   Tensor::Of<int32_t>("MAX_TOKENS", {1}, {1})})) ==
        std::vector<std::string>{"next"});
}

TEST_CASE("generator: a deadline stops the stream", "[generator]") {
  FakeHost host;
  auto model = host.Load(Spec());
  Request r = Prompt("tick tock", std::numeric_limits<int32_t>::max());
  r.deadline_ns = torii::testing::DeadlineIn(std::chrono::milliseconds(50));
  auto instance = model->CreateInstance();
  auto stream = instance->Submit(r);
  const auto responses = stream->Wait();
  CHECK(torii::testing::MonotonicNs() >= r.deadline_ns);
  CHECK_FALSE(responses.empty());
  size_t errors = 0;  // it just stopped: every response is a token
  for (const auto& response : responses) errors += response.ok() ? 0 : 1;
  CHECK(errors == 0);
}

TEST_CASE("generator: zero tokens, bad requests and a config that is not decoupled",
          "[generator]") {
  FakeHost host;
  auto model = host.Load(Spec());
  auto instance = model->CreateInstance();
  auto none = instance->Submit(Prompt("unused", 0));
  CHECK(none->Wait().empty());  // the final flag alone
  CHECK(none->finished());

  for (const auto& bad : {Prompt("   ", 3), Prompt("words", -1)}) {
    const auto out = instance->Submit(bad)->Wait();
    REQUIRE(out.size() == 1);
    CHECK(out[0].code == TORII_STATUS_INVALID_ARGUMENT);
    CHECK_THAT(out[0].message, Catch::Contains("PROMPT needs at least one word"));
  }

  // The host refuses a second response from a model that is not decoupled;
  // the generator ends the request with that reason.
  auto plain = host.Load(Spec(/*decoupled=*/false))->CreateInstance();
  const auto out = plain->Submit(Prompt("a b", 2))->Wait();
  REQUIRE(out.size() == 1);
  CHECK(out[0].code == TORII_STATUS_INTERNAL);
  CHECK_THAT(out[0].message, Catch::Contains("is not decoupled"));

  ModelSpec batching = Spec();
  batching.max_batch_size = 4;
  CHECK_THROWS_WITH(host.Load(batching), Catch::Contains("set max_batch_size: 0"));
}

TEST_CASE("generator: destroying the instance ends requests in flight", "[generator]") {
  FakeHost host;
  auto model = host.Load(Spec());
  auto instance = model->CreateInstance();
  auto running = instance->Submit(Prompt("forever", std::numeric_limits<int32_t>::max()));
  auto queued = instance->Submit(Prompt("later", 3));
  REQUIRE(running->WaitForResponses(1).size() >= 1);
  instance.reset();
  for (const auto& stream : {running, queued}) {
    REQUIRE(stream->finished());
    const auto responses = stream->responses();
    REQUIRE_FALSE(responses.empty());
    CHECK(responses.back().code == TORII_STATUS_UNAVAILABLE);
    CHECK_THAT(responses.back().message, Catch::Contains("shutting down"));
  }
}

}  // namespace
