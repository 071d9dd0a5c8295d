// fuzz_config_parse: bytes as the text of <repo>/model/config.pbtxt ->
// torii::ParseModelConfig(text, "config.pbtxt", "model") -> torii::BuildModelSpec
// (with a runner manifest that allows in-process models and with one whose
// floor is process_per_instance, like the Python runner's).
//
// Must never crash. A rejection by the parser is INVALID_ARGUMENT naming the
// file; by the spec builder INVALID_ARGUMENT naming the model. An accepted
// config must be one the rest of the server can use as it is:
//   - its name is the directory's, it declares inputs and outputs, and
//     max_batch_size >= 0;
//   - its ModelSpec keeps the declared order, finds every tensor by name at
//     its own index (and nothing else), has only known datatypes (the ABI
//     enum's values) and dims >= -1, wire shapes with the batch dimension,
//     instance_count the sum of the instance groups (>= 1), isolation at
//     least the runner's floor, batching as configured; the config survives
//     its binary form (what an isolated model's runner host receives), and
//     config_json reads back (ConfigFromJson) into the very same config:
//     runners read the config as that JSON, and completed configs come back
//     in it;
//   - the smallest request that fits the spec (every variable dimension 1,
//     zero bytes, empty strings), sent as a wire request through the gRPC
//     adapter (RequestFromWire), passes torii::ValidateRequest, with one row
//     and, when batching, with max_batch_size rows: a model that loads can
//     be called.
#include <algorithm>
#include <cstdint>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "fuzz_check.h"
#include "google/protobuf/stubs/logging.h"
#include "google/protobuf/util/message_differencer.h"
#include "inference.pb.h"
#include "server/core/datatype.h"
#include "server/core/request_validator.h"
#include "server/grpc/wire_request.h"
#include "server/repository/model_config_parser.h"
#include "server/repository/model_spec_builder.h"

namespace {

constexpr char kFile[] = "config.pbtxt";
constexpr char kDir[] = "model";

template <typename Tensors>
void CheckTensors(const Tensors& config_tensors, const std::vector<torii::TensorSpec>& specs,
                  int (torii::ModelSpec::*index)(absl::string_view) const,
                  const torii::ModelSpec& spec, const char* kind) {
  FUZZ_CHECK(!specs.empty(), std::string(kind) + ": none declared");
  FUZZ_CHECK(static_cast<int>(specs.size()) == config_tensors.size(), kind);
  std::set<std::string> names;
  size_t longest = 0;
  for (int i = 0; i < config_tensors.size(); ++i) {
    const auto& c = config_tensors[i];
    const torii::TensorSpec& t = specs[static_cast<size_t>(i)];
    const std::string ctx = std::string(kind) + " '" + t.name + "'";
    FUZZ_CHECK(t.name == c.name() && !t.name.empty(), ctx + ": name");
    FUZZ_CHECK(names.insert(t.name).second, ctx + ": declared twice");
    longest = std::max(longest, t.name.size());
    FUZZ_CHECK((spec.*index)(t.name) == i, ctx + ": index");
    const int dt = static_cast<int>(c.data_type());
    FUZZ_CHECK(dt >= TORII_TYPE_BOOL && dt <= TORII_TYPE_BF16,
               ctx + ": accepted data_type " + std::to_string(dt) +
                   ", which is no datatype (the ABI knows 1.." +
                   std::to_string(TORII_TYPE_BF16) + ")");
    FUZZ_CHECK(static_cast<int>(t.datatype) == dt, ctx + ": datatype");
    FUZZ_CHECK(static_cast<int>(t.dims.size()) == c.dims_size(), ctx + ": rank");
    for (int k = 0; k < c.dims_size(); ++k) {
      FUZZ_CHECK(t.dims[static_cast<size_t>(k)] == c.dims(k) &&
                     t.dims[static_cast<size_t>(k)] >= -1,
                 ctx + ": dims");
    }
    const std::vector<int64_t> wire = spec.WireShape(t);
    const size_t bd = spec.batching_enabled() ? 1 : 0;
    FUZZ_CHECK(wire.size() == t.dims.size() + bd, ctx + ": wire shape rank");
    FUZZ_CHECK(!bd || wire[0] == -1, ctx + ": wire shape batch dim");
  }
  FUZZ_CHECK((spec.*index)(std::string(longest + 1, 'z')) == -1, "index of an absent name");
  FUZZ_CHECK((spec.*index)("") == -1, "index of the empty name");
}

void CheckSpec(const inference::ModelConfig& config, const torii::RunnerManifest& runner,
               const torii::ModelSpec& spec) {
  FUZZ_CHECK(spec.name == config.name(), "spec name");
  FUZZ_CHECK(spec.runner == runner.runner, "spec runner");
  FUZZ_CHECK(spec.max_batch_size == config.max_batch_size());
  FUZZ_CHECK(spec.batching_enabled() == (config.max_batch_size() > 0));
  CheckTensors(config.input(), spec.inputs, &torii::ModelSpec::InputIndex, spec, "input");
  CheckTensors(config.output(), spec.outputs, &torii::ModelSpec::OutputIndex, spec, "output");

  uint64_t instances = 0;
  for (const auto& g : config.instance_group()) instances += g.count() > 0 ? g.count() : 1;
  FUZZ_CHECK(spec.instance_count >= 1 &&
                 spec.instance_count == std::max<uint64_t>(1, instances),
             "instance_count " + std::to_string(spec.instance_count) + " for groups summing to " +
                 std::to_string(instances));
  FUZZ_CHECK(spec.isolation.mode >= runner.isolation, "isolation below the runner's floor");
  FUZZ_CHECK(spec.isolation.mode >= torii::IsolationMode::kNone &&
                 spec.isolation.mode <= torii::IsolationMode::kProcessPerInstance,
             "isolation mode");
  FUZZ_CHECK(spec.isolation.backoff_initial.count() >= 1 &&
                 spec.isolation.backoff_max >= spec.isolation.backoff_initial,
             "restart backoff");
  FUZZ_CHECK(spec.execution_timeout.count() >= 0, "execution_timeout");
  FUZZ_CHECK(spec.batching.dynamic == (config.has_dynamic_batching() && spec.batching_enabled()),
             "dynamic batching");
  for (int64_t p : spec.batching.preferred_batch_sizes) {
    FUZZ_CHECK(p >= 1 && p <= spec.max_batch_size,
               "preferred batch size " + std::to_string(p) + " accepted");
  }
  FUZZ_CHECK(spec.decoupled == config.model_transaction_policy().decoupled(), "decoupled");
  FUZZ_CHECK(spec.default_model_filename == (config.default_model_filename().empty()
                                                 ? runner.default_model_filename
                                                 : config.default_model_filename()),
             "default_model_filename");

  // What runners read is the config itself. A map key given twice in text
  // format stays twice in the parsed message's reflection view, while every
  // reader (the map API, JSON, the binary form a runner host gets) sees the
  // last value only: compare with the config as the binary form reads back.
  inference::ModelConfig held;
  std::string binary;
  FUZZ_CHECK(config.SerializeToString(&binary) && held.ParseFromString(binary),
             "the config does not survive its binary form (what a runner host receives)");
  auto back = torii::ConfigFromJson(spec.config_json, "config_json");
  FUZZ_CHECK(back.ok(), back.status().ToString() + " for " + spec.config_json);
  std::string diff;
  google::protobuf::util::MessageDifferencer differ;
  differ.ReportDifferencesToString(&diff);
  FUZZ_CHECK(differ.Compare(held, *back),
             "config_json does not read back as the config: " + diff);
}

// The smallest request the spec admits, with `rows` batch rows; false if it
// would be too big to bother (huge fixed dims are legal in a config).
bool SmallestRequest(const torii::ModelSpec& spec, int64_t rows,
                     inference::ModelInferRequest* req) {
  int64_t total = 0;
  req->set_model_name(spec.name);
  for (const torii::TensorSpec& t : spec.inputs) {
    auto* in = req->add_inputs();
    in->set_name(t.name);
    in->set_datatype(torii::DataTypeName(t.datatype));
    int64_t elements = 1;
    if (spec.batching_enabled()) {
      in->add_shape(rows);
      elements = rows;
    }
    for (int64_t d : t.dims) {
      const int64_t v = d == -1 ? 1 : d;
      if (v > (int64_t{1} << 20)) return false;
      in->add_shape(v);
      elements *= v;
      if (elements > (int64_t{1} << 20)) return false;
    }
    const size_t esize = torii::DataTypeSize(t.datatype);
    // BYTES: `elements` empty strings, 4 zero bytes each.
    const int64_t bytes = elements * static_cast<int64_t>(esize == 0 ? 4 : esize);
    total += bytes;
    if (total > (int64_t{1} << 22)) return false;
    req->add_raw_input_contents(std::string(static_cast<size_t>(bytes), '\0'));
  }
  return true;
}

void CheckCallable(const torii::ModelSpec& spec) {
  std::vector<int64_t> row_counts = {1};
  if (spec.batching_enabled() && spec.max_batch_size > 1) row_counts.push_back(spec.max_batch_size);
  for (int64_t rows : row_counts) {
    inference::ModelInferRequest wire;
    if (!SmallestRequest(spec, rows, &wire)) continue;
    torii::InferenceRequest out;
    std::vector<std::string> converted;
    absl::Status s = torii::RequestFromWire(wire, &out, &converted);
    if (s.ok()) s = torii::ValidateRequest(spec, torii::ValidationLimits{}, &out);
    FUZZ_CHECK(s.ok(), "the smallest request with " + std::to_string(rows) +
                           " rows is rejected: " + s.ToString());
    FUZZ_CHECK(out.rows == rows, "rows");
  }
}

const std::vector<torii::RunnerManifest>& Runners() {
  static const auto* runners = [] {
    auto* v = new std::vector<torii::RunnerManifest>(2);
    (*v)[0].runner = "fuzz";
    (*v)[1].runner = "fuzz_isolated";
    (*v)[1].isolation = torii::IsolationMode::kProcessPerInstance;
    (*v)[1].default_model_filename = "model.py";
    (*v)[1].auto_complete_config = true;
    return v;
  }();
  return *runners;
}

}  // namespace

// Protobuf logs every rejected string field (invalid UTF-8) to stderr; at
// thousands of inputs a second that drowns the fuzzer's own output.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  const auto parsed = torii::ParseModelConfig(text, kFile, kDir);
  if (!parsed.ok()) {
    FUZZ_CHECK(parsed.status().code() == absl::StatusCode::kInvalidArgument,
               parsed.status().ToString());
    FUZZ_CHECK(absl::StartsWith(parsed.status().message(), std::string(kFile) + ": "),
               parsed.status().ToString());
    return 0;
  }
  const inference::ModelConfig& config = parsed->config;
  FUZZ_CHECK(config.name() == kDir, "name '" + config.name() + "' accepted");
  FUZZ_CHECK(config.max_batch_size() >= 0);
  for (const std::string& w : parsed->warnings) {
    FUZZ_CHECK(absl::StartsWith(w, std::string(kFile) + ": field '"), w);
  }

  for (const torii::RunnerManifest& runner : Runners()) {
    const auto spec = torii::BuildModelSpec(config, runner, torii::SpecDefaults{});
    if (!spec.ok()) {
      FUZZ_CHECK(spec.status().code() == absl::StatusCode::kInvalidArgument,
                 spec.status().ToString());
      FUZZ_CHECK(absl::StartsWith(spec.status().message(), std::string("model '") + kDir + "': "),
                 spec.status().ToString());
      continue;
    }
    CheckSpec(config, runner, *spec);
    CheckCallable(*spec);
  }
  return 0;
}
