#include "server/repository/model_config_parser.h"

#include <catch2/catch.hpp>

namespace torii {
namespace {

constexpr char kGood[] = R"pb(
  name: "m"
  backend: "identity"
  max_batch_size: 8
  input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ -1, 3 ] } ]
  output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1, 3 ] } ]
  instance_group [ { count: 2 kind: KIND_CPU } ]
  dynamic_batching { preferred_batch_size: [ 4, 8 ] max_queue_delay_microseconds: 100 }
  parameters { key: "k" value { string_value: "v" } }
)pb";

TEST_CASE("a Triton-style config parses with every implemented field") {
  auto parsed = ParseModelConfig(kGood, "m/config.pbtxt", "m");
  REQUIRE(parsed.ok());
  const auto& c = parsed->config;
  CHECK(c.max_batch_size() == 8);
  CHECK(c.input(0).dims_size() == 2);
  CHECK(c.instance_group(0).count() == 2);
  CHECK(c.dynamic_batching().preferred_batch_size_size() == 2);
  CHECK(c.parameters().at("k").string_value() == "v");
  CHECK(parsed->warnings.empty());
}

TEST_CASE("an empty name is taken from the model directory") {
  auto parsed = ParseModelConfig(R"(backend: "identity"
    input [ { name: "I" data_type: TYPE_INT32 dims: [1] } ]
    output [ { name: "O" data_type: TYPE_INT32 dims: [1] } ])",
                                 "x/config.pbtxt", "x");
  REQUIRE(parsed.ok());
  CHECK(parsed->config.name() == "x");
}

TEST_CASE("a malformed config names file, line and field") {
  auto parsed = ParseModelConfig("name: \"m\"\nbackend: \"identity\"\nmax_batch_sise: 4\n",
                                 "repo/m/config.pbtxt", "m");
  REQUIRE_FALSE(parsed.ok());
  CHECK(parsed.status().code() == absl::StatusCode::kInvalidArgument);
  const std::string msg(parsed.status().message());
  CHECK(msg.find("repo/m/config.pbtxt") != std::string::npos);
  CHECK(msg.find("line 3") != std::string::npos);
  CHECK(msg.find("max_batch_sise") != std::string::npos);
}

TEST_CASE("a wrongly typed value is an error naming the field") {
  auto parsed = ParseModelConfig("name: \"m\"\nmax_batch_size: \"eight\"\n", "c.pbtxt", "m");
  REQUIRE_FALSE(parsed.ok());
  CHECK(std::string(parsed.status().message()).find("max_batch_size") != std::string::npos);
}

TEST_CASE("fields Torii parses but does not implement are named in warnings") {
  std::string text = kGood;
  text += R"(optimization { cuda { graphs: true } }
             response_cache { enable: true }
             input [ { name: "INPUT1" data_type: TYPE_FP32 dims: [1] reshape { shape: [] } } ])";
  auto parsed = ParseModelConfig(text, "m/config.pbtxt", "m");
  REQUIRE(parsed.ok());
  std::string all;
  for (const auto& w : parsed->warnings) all += w + "\n";
  CHECK(all.find("'optimization'") != std::string::npos);
  CHECK(all.find("'response_cache'") != std::string::npos);
  CHECK(all.find("'input.reshape'") != std::string::npos);
}

TEST_CASE("semantic errors name the offending field") {
  struct Case {
    const char* text;
    const char* expect;
  };
  const Case cases[] = {
      {R"(name: "m" max_batch_size: -1 input [{name:"I" data_type:TYPE_FP32 dims:[1]}] output [{name:"O" data_type:TYPE_FP32 dims:[1]}])",
       "max_batch_size"},
      {R"(name: "m" output [{name:"O" data_type:TYPE_FP32 dims:[1]}])", "no 'input'"},
      {R"(name: "m" input [{name:"I" data_type:TYPE_FP32 dims:[1]}])", "no 'output'"},
      {R"(name: "m" input [{name:"I" data_type:TYPE_FP32 dims:[1]}, {name:"I" data_type:TYPE_FP32 dims:[1]}] output [{name:"O" data_type:TYPE_FP32 dims:[1]}])",
       "declared twice"},
      {R"(name: "m" input [{name:"I" dims:[1]}] output [{name:"O" data_type:TYPE_FP32 dims:[1]}])",
       "data_type"},
      {R"(name: "m" input [{name:"I" data_type:TYPE_FP32 dims:[-2]}] output [{name:"O" data_type:TYPE_FP32 dims:[1]}])",
       "dims"},
      {R"(name: "other" input [{name:"I" data_type:TYPE_FP32 dims:[1]}] output [{name:"O" data_type:TYPE_FP32 dims:[1]}])",
       "model directory"},
      {R"(name: "m" input [{name:"I" data_type:TYPE_FP32 dims:[1]}] output [{name:"O" data_type:TYPE_FP32 dims:[1]}] dynamic_batching {})",
       "max_batch_size"},
      {R"(name: "m" max_batch_size: 4 input [{name:"I" data_type:TYPE_FP32 dims:[1]}] output [{name:"O" data_type:TYPE_FP32 dims:[1]}] dynamic_batching { preferred_batch_size: 8 })",
       "preferred_batch_size"},
      {R"(name: "m" backend: "../evil" input [{name:"I" data_type:TYPE_FP32 dims:[1]}] output [{name:"O" data_type:TYPE_FP32 dims:[1]}])",
       "plain runner name"},
      {R"(name: "m" input [{name:"I" data_type:TYPE_FP32 dims:[1]}] output [{name:"O" data_type:TYPE_FP32 dims:[1]}] instance_group [{kind: KIND_GPU}])",
       "KIND_GPU"},
      {R"(name: "m" input [{name:"I" data_type: 42 dims:[1]}] output [{name:"O" data_type:TYPE_FP32 dims:[1]}])",
       "'data_type' 42 is not a TYPE_* value"},
      {R"(name: "m" input [{name:"I" data_type:TYPE_FP32 dims:[1]}] output [{name:"O" data_type:TYPE_FP32 dims:[1]}] instance_group [{kind: 7}])",
       "'instance_group.kind' 7"},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    auto parsed = ParseModelConfig(c.text, "m/config.pbtxt", "m");
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(std::string(parsed.status().message()).find(c.expect) != std::string::npos);
  }
}

TEST_CASE("a missing config file is NOT_FOUND naming the path") {
  auto parsed = LoadModelConfig("/nonexistent/m/config.pbtxt", "m");
  REQUIRE_FALSE(parsed.ok());
  CHECK(parsed.status().code() == absl::StatusCode::kNotFound);
  CHECK(std::string(parsed.status().message()).find("/nonexistent/m/config.pbtxt") !=
        std::string::npos);
}

}  // namespace
}  // namespace torii
