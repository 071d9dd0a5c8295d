// The fixed models fuzz_validate_request validates every input against, and
// helpers shared by the targets and the seed generator. The configs go
// through the real parser and BuildModelSpec, so they are specs the server
// would serve.
#ifndef TORII_TESTS_FUZZ_FUZZ_MODELS_H_
#define TORII_TESTS_FUZZ_FUZZ_MODELS_H_

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "model_config.pb.h"
#include "server/core/model_spec.h"
#include "server/repository/model_config_parser.h"
#include "server/repository/model_spec_builder.h"

namespace torii_fuzz {

struct FuzzModel {
  std::string name;
  inference::ModelConfig config;
  torii::ModelSpec spec;
};

// batched: FP32, wire shape [-1,4], max_batch_size 8.
// strings: BYTES [2], no batching; two outputs.
// mixed:   two inputs (INT8 [-1], FP16 [2,2]) with batching, max 4.
// every:   one input per datatype that can travel in typed contents (all but
//          FP16 and BF16), each [-1], no batching: every conversion path.
// bf16:    BF16 [-1,-1,2] on the wire (variable dims after the batch dim).
// Every model reads the request parameter "timeout" (queue_timeout).
inline const char* const kModelConfigs[][2] = {
    {"batched", R"pb(
      max_batch_size: 8
      input [ { name: "x" data_type: TYPE_FP32 dims: [ 4 ] } ]
      output [ { name: "y" data_type: TYPE_FP32 dims: [ 4 ] } ]
    )pb"},
    {"strings", R"pb(
      max_batch_size: 0
      input [ { name: "s" data_type: TYPE_STRING dims: [ 2 ] } ]
      output [
        { name: "out" data_type: TYPE_STRING dims: [ 2 ] },
        { name: "len" data_type: TYPE_INT32 dims: [ 2 ] }
      ]
    )pb"},
    {"mixed", R"pb(
      max_batch_size: 4
      input [
        { name: "a" data_type: TYPE_INT8 dims: [ -1 ] },
        { name: "h" data_type: TYPE_FP16 dims: [ 2, 2 ] }
      ]
      output [
        { name: "o" data_type: TYPE_UINT16 dims: [ -1 ] },
        { name: "p" data_type: TYPE_BOOL dims: [ 1 ] }
      ]
    )pb"},
    {"every", R"pb(
      input [
        { name: "bool" data_type: TYPE_BOOL dims: [ -1 ] },
        { name: "u8" data_type: TYPE_UINT8 dims: [ -1 ] },
        { name: "u16" data_type: TYPE_UINT16 dims: [ -1 ] },
        { name: "u32" data_type: TYPE_UINT32 dims: [ -1 ] },
        { name: "u64" data_type: TYPE_UINT64 dims: [ -1 ] },
        { name: "i8" data_type: TYPE_INT8 dims: [ -1 ] },
        { name: "i16" data_type: TYPE_INT16 dims: [ -1 ] },
        { name: "i32" data_type: TYPE_INT32 dims: [ -1 ] },
        { name: "i64" data_type: TYPE_INT64 dims: [ -1 ] },
        { name: "f32" data_type: TYPE_FP32 dims: [ -1 ] },
        { name: "f64" data_type: TYPE_FP64 dims: [ -1 ] },
        { name: "str" data_type: TYPE_STRING dims: [ -1 ] }
      ]
      output [ { name: "o" data_type: TYPE_FP32 dims: [ 1 ] } ]
    )pb"},
    {"bf16", R"pb(
      max_batch_size: 2
      input [ { name: "bf" data_type: TYPE_BF16 dims: [ -1, 2 ] } ]
      output [ { name: "bf" data_type: TYPE_BF16 dims: [ -1, 2 ] } ]
    )pb"},
};

inline const std::vector<FuzzModel>& Models() {
  static const auto* models = [] {
    auto* v = new std::vector<FuzzModel>;
    for (const auto& mc : kModelConfigs) {
      auto parsed = torii::ParseModelConfig(mc[1], "config.pbtxt", mc[0]);
      if (!parsed.ok()) {
        std::fprintf(stderr, "fuzz model '%s' does not parse: %s\n", mc[0],
                     parsed.status().ToString().c_str());
        std::abort();
      }
      torii::RunnerManifest runner;
      runner.runner = "fuzz";
      auto spec = torii::BuildModelSpec(parsed->config, runner, torii::SpecDefaults{});
      if (!spec.ok()) {
        std::fprintf(stderr, "fuzz model '%s' has no spec: %s\n", mc[0],
                     spec.status().ToString().c_str());
        std::abort();
      }
      FuzzModel m;
      m.name = mc[0];
      m.config = parsed->config;
      m.spec = std::move(*spec);
      v->push_back(std::move(m));
    }
    return v;
  }();
  return *models;
}

}  // namespace torii_fuzz

#endif  // TORII_TESTS_FUZZ_FUZZ_MODELS_H_
