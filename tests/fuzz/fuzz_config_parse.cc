// fuzz_config_parse: bytes as the text of <repo>/model/config.pbtxt ->
// torii::ParseModelConfig(text, "config.pbtxt", "model").
//
// Must never crash. A rejection is INVALID_ARGUMENT naming the file. An
// accepted config must be one the rest of the server can use as it is:
//   - its name is the directory's, it declares inputs and outputs, and
//     max_batch_size >= 0;
//   - torii::ModelSignature(config) constructs, keeps the declared order,
//     finds every tensor by name at its own index (and nothing else), and
//     has only known datatypes (the ABI enum's values) and dims >= -1;
//   - the smallest request that fits the signature (every variable dimension
//     1, zero bytes, empty strings) passes torii::ValidateRequest, with one
//     row and, when batching, with max_batch_size rows: a model that loads
//     can be called.
#include <cstdint>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "fuzz_check.h"
#include "google/protobuf/stubs/logging.h"
#include "inference.pb.h"
#include "server/core/model_signature.h"
#include "server/core/request_validator.h"
#include "server/repository/model_config_parser.h"
#include "torii/runner.h"

namespace {

constexpr char kFile[] = "config.pbtxt";
constexpr char kDir[] = "model";

template <typename Tensors>
void CheckTensors(const Tensors& config_tensors, const std::vector<torii::TensorSignature>& sig,
                  int (torii::ModelSignature::*index)(absl::string_view) const,
                  const torii::ModelSignature& signature, const char* kind) {
  FUZZ_CHECK(!sig.empty(), std::string(kind) + ": none declared");
  FUZZ_CHECK(static_cast<int>(sig.size()) == config_tensors.size(), kind);
  std::set<std::string> names;
  size_t longest = 0;
  for (int i = 0; i < config_tensors.size(); ++i) {
    const auto& c = config_tensors[i];
    const torii::TensorSignature& t = sig[i];
    const std::string ctx = std::string(kind) + " '" + t.name + "'";
    FUZZ_CHECK(t.name == c.name() && !t.name.empty(), ctx + ": name");
    FUZZ_CHECK(names.insert(t.name).second, ctx + ": declared twice");
    longest = std::max(longest, t.name.size());
    FUZZ_CHECK((signature.*index)(t.name) == i, ctx + ": index");
    const int dt = static_cast<int>(c.data_type());
    FUZZ_CHECK(dt >= TORII_TYPE_BOOL && dt <= TORII_TYPE_BF16,
               ctx + ": accepted data_type " + std::to_string(dt) +
                   ", which is no datatype (the ABI knows 1.." +
                   std::to_string(TORII_TYPE_BF16) + ")");
    FUZZ_CHECK(static_cast<int>(t.datatype) == dt, ctx + ": datatype");
    FUZZ_CHECK(static_cast<int>(t.dims.size()) == c.dims_size(), ctx + ": rank");
    for (int k = 0; k < c.dims_size(); ++k) {
      FUZZ_CHECK(t.dims[k] == c.dims(k) && t.dims[k] >= -1, ctx + ": dims");
    }
    const std::vector<int64_t> wire = signature.WireShape(t);
    const size_t bd = signature.batching() ? 1 : 0;
    FUZZ_CHECK(wire.size() == t.dims.size() + bd, ctx + ": wire shape rank");
    FUZZ_CHECK(!bd || wire[0] == -1, ctx + ": wire shape batch dim");
  }
  FUZZ_CHECK((signature.*index)(std::string(longest + 1, 'z')) == -1, "index of an absent name");
  FUZZ_CHECK((signature.*index)("") == -1, "index of the empty name");
}

// The smallest request the signature admits, with `rows` batch rows; false if
// it would be too big to bother (huge fixed dims are legal in a config).
bool SmallestRequest(const torii::ModelSignature& sig, int64_t rows,
                     inference::ModelInferRequest* req) {
  int64_t total = 0;
  for (const torii::TensorSignature& t : sig.inputs()) {
    auto* in = req->add_inputs();
    in->set_name(t.name);
    in->set_datatype(torii::DataTypeName(t.datatype));
    int64_t elements = 1;
    if (sig.batching()) {
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

void CheckCallable(const torii::ModelSignature& sig) {
  std::vector<int64_t> row_counts = {1};
  if (sig.batching() && sig.max_batch_size() > 1) row_counts.push_back(sig.max_batch_size());
  for (int64_t rows : row_counts) {
    inference::ModelInferRequest req;
    if (!SmallestRequest(sig, rows, &req)) continue;
    torii::InferenceRequest out;
    const absl::Status s = torii::ValidateRequest(kDir, sig, req, torii::ValidationLimits{}, &out);
    FUZZ_CHECK(s.ok(), "the smallest request with " + std::to_string(rows) +
                           " rows is rejected: " + s.ToString());
    FUZZ_CHECK(out.rows == rows, "rows");
  }
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

  const torii::ModelSignature sig(config);
  FUZZ_CHECK(sig.max_batch_size() == config.max_batch_size());
  FUZZ_CHECK(sig.batching() == (config.max_batch_size() > 0));
  CheckTensors(config.input(), sig.inputs(), &torii::ModelSignature::InputIndex, sig, "input");
  CheckTensors(config.output(), sig.outputs(), &torii::ModelSignature::OutputIndex, sig,
               "output");
  CheckCallable(sig);
  return 0;
}
