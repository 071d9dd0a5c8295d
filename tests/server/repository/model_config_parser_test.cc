#include "server/repository/model_config_parser.h"

#include <catch2/catch.hpp>

#include <set>
#include <string>

#include "google/protobuf/text_format.h"

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
      // A Latin-1 file (0xe9), and a lone UTF-16 surrogate in UTF-8 form.
      {"name: \"m\" input [{name:\"I\" data_type:TYPE_FP32 dims:[1]}] output [{name:\"O\" data_type:TYPE_FP32 dims:[1]}] parameters { key: \"k\" value { string_value: \"caf\xe9\" } }",
       "field 'parameters.value.string_value' is not valid UTF-8"},
      {"name: \"m\" input [{name:\"I\xed\xa0\x80\" data_type:TYPE_FP32 dims:[1]}] output [{name:\"O\" data_type:TYPE_FP32 dims:[1]}]",
       "field 'input.name' is not valid UTF-8"},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    auto parsed = ParseModelConfig(c.text, "m/config.pbtxt", "m");
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(std::string(parsed.status().message()).find(c.expect) != std::string::npos);
  }
}

// A Triton config that sets every top-level field of ModelConfig except the
// two other members of the scheduling oneof (kEnsemble and kSequence set
// those), with the newer nested fields (graph_spec, model_metrics, ...) too.
constexpr char kEveryField[] = R"pb(
  name: "m"
  platform: "pytorch_libtorch"
  backend: "pytorch"
  runtime: "model.py"
  version_policy { specific { versions: [ 1, 3 ] } }
  max_batch_size: 8
  input [
    {
      name: "INPUT__0"
      data_type: TYPE_FP32
      format: FORMAT_NCHW
      dims: [ 3, -1 ]
      reshape { shape: [ 3, -1, 1 ] }
      allow_ragged_batch: true
      optional: true
    }
  ]
  output [ { name: "OUTPUT__0" data_type: TYPE_FP32 dims: [ 10 ] label_filename: "labels.txt" } ]
  batch_input [ { kind: BATCH_ELEMENT_COUNT target_name: "N" data_type: TYPE_INT32 source_input: "INPUT__0" } ]
  batch_output [ { target_name: "OUTPUT__0" kind: BATCH_SCATTER_WITH_INPUT_SHAPE source_input: "INPUT__0" } ]
  optimization {
    graph { level: 1 }
    priority: PRIORITY_MAX
    cuda {
      graphs: true
      graph_spec [
        {
          batch_size: 4
          input { key: "INPUT__0" value { dim: [ 3, 16 ] } }
          graph_lower_bound { batch_size: 1 input { key: "INPUT__0" value { dim: [ 3, 1 ] } } }
        }
      ]
    }
    execution_accelerators { cpu_execution_accelerator [ { name: "openvino" } ] }
    input_pinned_memory { enable: true }
    output_pinned_memory { enable: true }
    gather_kernel_buffer_threshold: 2
    eager_batching: true
  }
  dynamic_batching {
    preferred_batch_size: [ 4, 8 ]
    max_queue_delay_microseconds: 100
    preserve_ordering: true
    priority_levels: 2
    default_priority_level: 1
    default_queue_policy { timeout_action: DELAY max_queue_size: 16 }
    priority_queue_policy { key: 1 value { max_queue_size: 4 } }
  }
  instance_group [
    {
      name: "cpu"
      kind: KIND_CPU
      count: 2
      rate_limiter { resources [ { name: "R" global: true count: 1 } ] priority: 2 }
      profile: [ "p" ]
      host_policy: "numa0"
    }
  ]
  default_model_filename: "model.pt"
  cc_model_filenames { key: "7.5" value: "model_t4.pt" }
  metric_tags { key: "team" value: "search" }
  parameters { key: "INTRA_OP_THREAD_COUNT" value { string_value: "1" } }
  model_warmup [ { name: "w" batch_size: 1 inputs { key: "INPUT__0" value { data_type: TYPE_FP32 dims: [ 3, 4 ] zero_data: true } } count: 2 } ]
  model_operations { op_library_filename: [ "libcustom_ops.so" ] }
  model_transaction_policy { decoupled: true }
  model_repository_agents { agents [ { name: "checksum" parameters { key: "MD5:1/model.pt" value: "abc" } } ] }
  response_cache { enable: true }
  model_metrics {
    metric_control [
      {
        metric_identifier { family: "nv_inference_first_response_histogram_ms" }
        histogram_options { buckets: [ 1, 10, 100 ] }
      }
    ]
  }
)pb";

constexpr char kEnsemble[] = R"pb(
  name: "m"
  platform: "ensemble"
  max_batch_size: 4
  input [ { name: "RAW" data_type: TYPE_STRING dims: [ 1 ] } ]
  output [ { name: "SCORES" data_type: TYPE_FP32 dims: [ 10 ] } ]
  ensemble_scheduling {
    step [
      { model_name: "pre" model_version: -1 input_map { key: "IN" value: "RAW" } output_map { key: "OUT" value: "t" } },
      { model_name: "cls" model_version: 1 input_map { key: "INPUT__0" value: "t" } output_map { key: "OUTPUT__0" value: "SCORES" } model_namespace: "team_a" }
    ]
    max_inflight_requests: 16
  }
)pb";

constexpr char kSequence[] = R"pb(
  name: "m"
  backend: "pytorch"
  max_batch_size: 2
  input [ { name: "IN" data_type: TYPE_INT32 dims: [ 1 ] } ]
  output [ { name: "OUT" data_type: TYPE_INT32 dims: [ 1 ] } ]
  sequence_batching {
    max_sequence_idle_microseconds: 5000000
    control_input [ { name: "START" control [ { kind: CONTROL_SEQUENCE_START int32_false_true: [ 0, 1 ] } ] } ]
    state [
      {
        input_name: "STATE_IN"
        output_name: "STATE_OUT"
        data_type: TYPE_FP32
        dims: [ 4 ]
        initial_state [ { name: "zeros" data_type: TYPE_FP32 dims: [ 4 ] zero_data: true } ]
        use_growable_memory: true
      }
    ]
    iterative_sequence: true
    oldest { max_candidate_sequences: 2 }
  }
)pb";

std::string AllWarnings(const ParsedModelConfig& parsed) {
  std::string all;
  for (const auto& w : parsed.warnings) all += w + "\n";
  return all;
}

TEST_CASE("the fixtures together set every top-level field of Triton's schema") {
  // Parsed without Torii's checks, so sequence_batching counts too. When a
  // field is added to proto/model_config.proto this fails until a fixture
  // above uses it.
  std::set<std::string> set_fields;
  for (const char* text : {kEveryField, kEnsemble, kSequence}) {
    inference::ModelConfig config;
    REQUIRE(google::protobuf::TextFormat::ParseFromString(text, &config));
    std::vector<const google::protobuf::FieldDescriptor*> fields;
    config.GetReflection()->ListFields(config, &fields);
    for (const auto* f : fields) set_fields.insert(f->name());
  }
  const auto* d = inference::ModelConfig::descriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    INFO("ModelConfig." << d->field(i)->name() << " = " << d->field(i)->number());
    CHECK(set_fields.count(d->field(i)->name()) == 1);
  }
  CHECK(d->FindFieldByName("model_metrics")->number() == 26);
  CHECK(d->FindFieldByName("response_cache")->number() == 24);
}

TEST_CASE("a config using every field of Triton's schema parses, unimplemented fields warned") {
  auto parsed = ParseModelConfig(kEveryField, "m/config.pbtxt", "m");
  REQUIRE(parsed.ok());
  const auto& c = parsed->config;
  CHECK(c.optimization().cuda().graph_spec(0).input().at("INPUT__0").dim_size() == 2);
  CHECK(c.optimization().cuda().graph_spec(0).graph_lower_bound().batch_size() == 1);
  CHECK(c.model_metrics().metric_control(0).histogram_options().buckets_size() == 3);
  CHECK(c.model_transaction_policy().decoupled());

  const std::string all = AllWarnings(*parsed);
  INFO(all);
  // Every warning has the documented form.
  for (const auto& w : parsed->warnings) {
    CHECK(w.rfind("m/config.pbtxt: field '", 0) == 0);
    CHECK(w.find("' is not implemented by Torii and is ignored") != std::string::npos);
  }
  // The outermost unimplemented field is named, never a field inside it.
  const std::set<std::string> expected = {
      "runtime", "batch_input", "batch_output", "optimization", "cc_model_filenames",
      "metric_tags", "model_operations", "model_repository_agents", "response_cache",
      "model_metrics", "input.format", "input.reshape", "input.allow_ragged_batch",
      "input.optional", "output.label_filename", "instance_group.rate_limiter",
      "instance_group.profile", "instance_group.host_policy",
      "dynamic_batching.preserve_ordering", "dynamic_batching.priority_levels",
      "dynamic_batching.default_priority_level", "dynamic_batching.priority_queue_policy"};
  std::set<std::string> named;
  for (const auto& w : parsed->warnings) {
    const size_t open = w.find("field '") + 7;
    named.insert(w.substr(open, w.find('\'', open) - open));
  }
  CHECK(named == expected);
  // Implemented fields, the lead's decoupled and ensemble work included, are not warned.
  CHECK(all.find("model_transaction_policy") == std::string::npos);
  CHECK(all.find("'optimization.") == std::string::npos);
}

TEST_CASE("an ensemble config parses, and only the step fields Torii ignores are warned") {
  auto parsed = ParseModelConfig(kEnsemble, "m/config.pbtxt", "m");
  REQUIRE(parsed.ok());
  const auto& e = parsed->config.ensemble_scheduling();
  REQUIRE(e.step_size() == 2);
  CHECK(e.step(0).model_version() == -1);
  CHECK(e.step(1).input_map().at("INPUT__0") == "t");
  CHECK(e.max_inflight_requests() == 16);
  const std::string all = AllWarnings(*parsed);
  INFO(all);
  CHECK(parsed->warnings.size() == 2);
  CHECK(all.find("'ensemble_scheduling.max_inflight_requests'") != std::string::npos);
  CHECK(all.find("'ensemble_scheduling.step.model_namespace'") != std::string::npos);
}

TEST_CASE("sequence_batching is refused with the reason, not served as stateless") {
  auto parsed = ParseModelConfig(kSequence, "m/config.pbtxt", "m");
  REQUIRE_FALSE(parsed.ok());
  CHECK(parsed.status().code() == absl::StatusCode::kInvalidArgument);
  const std::string msg(parsed.status().message());
  INFO(msg);
  CHECK(msg.rfind("m/config.pbtxt: 'sequence_batching' is not supported", 0) == 0);
  CHECK(msg.find("stateful model") != std::string::npos);
  // Even an empty sequence_batching block is refused: its presence makes the model stateful.
  auto empty = ParseModelConfig(R"(name: "m" input [{name:"I" data_type:TYPE_FP32 dims:[1]}]
      output [{name:"O" data_type:TYPE_FP32 dims:[1]}] sequence_batching {})",
                                "m/config.pbtxt", "m");
  REQUIRE_FALSE(empty.ok());
  CHECK(std::string(empty.status().message()).find("'sequence_batching'") != std::string::npos);
}

TEST_CASE("UTF-8 strings of any length are accepted") {
  auto parsed = ParseModelConfig(
      "name: \"m\" input [{name:\"I\" data_type:TYPE_FP32 dims:[1]}] "
      "output [{name:\"O\" data_type:TYPE_FP32 dims:[1]}] "
      "parameters { key: \"caf\xc3\xa9\" value { string_value: \"\xe2\x82\xac \xf0\x9f\x98\x80\" } }",
      "m/config.pbtxt", "m");
  INFO(parsed.status().ToString());
  CHECK(parsed.ok());
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
