// `torii-runner infer`: one request through the runner, outputs as JSON.
// Input format: see tensor_json.h.
#ifndef TORII_SERVER_TOOLS_RUNNER_INFER_H_
#define TORII_SERVER_TOOLS_RUNNER_INFER_H_

#include <map>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "server/tools/runner/model_location.h"

namespace torii {
namespace runner_tool {

struct InferOptions {
  /// --input NAME=<json> or NAME=@file ("@-" reads standard input).
  std::vector<std::pair<std::string, std::string>> inputs;
  /// --shape NAME=1,4: the full shape of an input (with the batch dimension).
  std::map<std::string, std::vector<int64_t>> shapes;
  /// --output NAME: request only these outputs (default: all).
  std::vector<std::string> outputs;
  bool nested = false;   // --nested: data nested by shape instead of flat
  bool compact = false;  // --compact: one line of JSON
};

/// Runs one request. For a batching model, an input given with one
/// dimension fewer than the model's inputs gets a batch dimension of 1.
absl::Status RunInfer(const ModelLocation& location, const InferOptions& options,
                      std::ostream& out);

}  // namespace runner_tool
}  // namespace torii

#endif  // TORII_SERVER_TOOLS_RUNNER_INFER_H_
