// The frontend-neutral checks every request passes (whatever frontend or
// in-server caller built it). The wire-specific path is in
// tests/server/grpc/wire_request_test.cc.
#include "server/core/request_validator.h"

#include <catch2/catch.hpp>

#include "tests/util/runner_fixture.h"

namespace torii {
namespace {

const ModelSpec& Spec() {
  static const auto spec = testing::SpecFromText(R"(
    name: "m" max_batch_size: 4
    input [ { name: "A" data_type: TYPE_FP32 dims: [ 2 ] },
            { name: "B" data_type: TYPE_INT32 dims: [ 1 ] } ]
    output [ { name: "X" data_type: TYPE_FP32 dims: [ 2 ] } ])");
  return *spec;
}

std::unique_ptr<testing::TestRequest> Request() {
  auto t = std::make_unique<testing::TestRequest>();
  t->request->model_name = "m";
  t->request->sink = t->sink;
  // Declared order is A, B; the caller sends B first.
  t->AddInput("B", TORII_TYPE_INT32, {3, 1}, std::string(12, '\0'));
  t->AddInput("A", TORII_TYPE_FP32, {3, 2}, std::string(24, '\0'));
  return t;
}

TEST_CASE("inputs are put in declared order and the batch rows are read once") {
  auto t = Request();
  REQUIRE(ValidateRequest(Spec(), {}, t->request.get()).ok());
  REQUIRE(t->request->inputs.size() == 2);
  CHECK(t->request->inputs[0].name == "A");
  CHECK(t->request->inputs[1].name == "B");
  CHECK(t->request->rows == 3);
  CHECK(t->request->output_requested == std::vector<char>{1});
}

TEST_CASE("the queue-policy timeout parameter is read once, with one rule") {
  auto t = Request();
  t->request->parameters.Set("timeout", int64_t{1500});
  REQUIRE(ValidateRequest(Spec(), {}, t->request.get()).ok());
  CHECK(t->request->queue_timeout == std::chrono::microseconds(1500));

  auto u = Request();
  u->request->parameters.Set("timeout", uint64_t{7});
  REQUIRE(ValidateRequest(Spec(), {}, u->request.get()).ok());
  CHECK(u->request->queue_timeout == std::chrono::microseconds(7));

  for (Parameter::Value bad : {Parameter::Value(std::string("soon")), Parameter::Value(-1.0),
                               Parameter::Value(int64_t{-5})}) {
    auto v = Request();
    v->request->parameters.Set("timeout", bad);
    const absl::Status s = ValidateRequest(Spec(), {}, v->request.get());
    CHECK(s.code() == absl::StatusCode::kInvalidArgument);
    CHECK(std::string(s.message()).find("'timeout' parameter") != std::string::npos);
  }
}

TEST_CASE("a shape whose element count overflows is refused, not wrapped") {
  auto t = std::make_unique<testing::TestRequest>();
  t->request->model_name = "m";
  t->request->sink = t->sink;
  t->AddInput("A", TORII_TYPE_FP32, {1, int64_t{1} << 62}, std::string(8, '\0'));
  t->AddInput("B", TORII_TYPE_INT32, {1, 1}, std::string(4, '\0'));
  const absl::Status s = ValidateRequest(Spec(), {}, t->request.get());
  CHECK(s.code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("CheckedElementCount guards the product") {
  CHECK(CheckedElementCount({2, 3, 4}, 100) == 24);
  CHECK(CheckedElementCount({}, 100) == 1);
  CHECK(CheckedElementCount({0, int64_t{1} << 62}, 100) == 0);
  CHECK(CheckedElementCount({int64_t{1} << 40, int64_t{1} << 40}, ~uint64_t{0}) == -1);
  CHECK(CheckedElementCount({-1, 2}, 100) == -1);
  CHECK(CheckedElementCount({11, 10}, 100) == -1);
}

}  // namespace
}  // namespace torii
