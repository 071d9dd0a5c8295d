#include "server/tools/runner/infer.h"

#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/common/status_macros.h"
#include "server/tools/runner/model_under_test.h"
#include "server/tools/runner/tensor_json.h"

namespace torii {
namespace runner_tool {
namespace {

absl::StatusOr<std::string> ReadValue(const std::string& name, const std::string& value) {
  if (value.empty() || value[0] != '@') return value;
  const std::string path = value.substr(1);
  if (path == "-") {
    return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  std::ifstream f(path);
  if (!f) {
    return absl::NotFoundError(absl::StrCat("input '", name, "': cannot read ", path));
  }
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

absl::Status RunInfer(const ModelLocation& loc, const InferOptions& options, std::ostream& out) {
  TORII_ASSIGN_OR_RETURN(auto model, ModelUnderTest::Load(loc, ModelUnderTest::Options{}));
  const ModelSpec& sig = model->spec();
  for (const auto& [name, dims] : options.shapes) {
    bool given = false;
    for (const auto& in : options.inputs) given = given || in.first == name;
    if (!given) {
      return absl::InvalidArgumentError(
          absl::StrCat("--shape ", name, "=...: there is no --input ", name, "=..."));
    }
  }
  TestRequest req;
  for (const auto& [name, value] : options.inputs) {
    const int idx = sig.InputIndex(name);
    if (idx < 0) {
      std::vector<std::string> names;
      for (const auto& t : sig.inputs) names.push_back(t.name);
      return absl::InvalidArgumentError(absl::StrCat("model '", loc.model_name,
                                                     "' has no input '", name,
                                                     "'; its inputs are ",
                                                     absl::StrJoin(names, ", ")));
    }
    const TensorSpec& ts = sig.inputs[static_cast<size_t>(idx)];
    TORII_ASSIGN_OR_RETURN(const std::string text, ReadValue(name, value));
    std::optional<std::vector<int64_t>> shape;
    auto s = options.shapes.find(name);
    if (s != options.shapes.end()) shape = s->second;
    TORII_ASSIGN_OR_RETURN(HostTensor t, TensorFromJson(name, ts.datatype, text, shape));
    if (!shape.has_value() && sig.batching_enabled() && t.shape.size() == ts.dims.size()) {
      t.shape.insert(t.shape.begin(), 1);  // one request of one row
    }
    req.inputs.push_back(std::move(t));
  }
  req.outputs = options.outputs;
  const TestResponse r = model->Infer(req);
  TORII_RETURN_IF_ERROR(r.status);

  nlohmann::ordered_json j;
  j["model_name"] = loc.model_name;
  j["model_version"] = std::to_string(loc.version);
  j["outputs"] = nlohmann::ordered_json::array();
  for (const auto& t : r.outputs) j["outputs"].push_back(TensorToJson(t, options.nested));
  if (options.compact) {
    out << j.dump() << "\n";
    return absl::OkStatus();
  }
  // Readable and still valid JSON: one line per output tensor, since a tensor
  // printed one number per line is unreadable.
  out << "{\n  \"model_name\": " << j["model_name"].dump() << ",\n  \"model_version\": "
      << j["model_version"].dump() << ",\n  \"outputs\": [";
  for (size_t i = 0; i < j["outputs"].size(); ++i) {
    out << (i == 0 ? "\n    " : ",\n    ") << j["outputs"][i].dump();
  }
  out << (j["outputs"].empty() ? "]\n}\n" : "\n  ]\n}\n");
  return absl::OkStatus();
}

}  // namespace runner_tool
}  // namespace torii
