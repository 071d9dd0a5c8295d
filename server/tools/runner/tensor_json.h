// Tensors as JSON, for `torii-runner infer`.
//
// Input (one --input NAME=<json>): a JSON array, nested or flat, or a single
// value. Nesting gives the shape ([[1,2,3],[4,5,6]] is [2,3]); an explicit
// shape (--shape NAME=2,3) reshapes a flat array instead. Elements:
//   - numbers for the numeric types (integers must be integral and in range),
//     plus the strings "nan", "inf", "-inf" for the floating types;
//   - true/false (or 0/1) for BOOL;
//   - strings for BYTES (their UTF-8 bytes), or {"b64": "<base64>"} for
//     arbitrary bytes.
// Output: the KServe v2 JSON tensor form, {"name", "datatype", "shape",
// "data"}, data flat in row-major order (or nested by shape when asked).
// BYTES elements print as strings when they are valid UTF-8, else as
// {"b64": ...}; FP16/BF16 print as numbers; NaN and infinities as the strings
// "nan", "inf", "-inf" (JSON has no such numbers).
#ifndef TORII_SERVER_TOOLS_RUNNER_TENSOR_JSON_H_
#define TORII_SERVER_TOOLS_RUNNER_TENSOR_JSON_H_

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "server/tools/runner/model_under_test.h"

namespace torii {
namespace runner_tool {

/// Builds a tensor of `datatype` from JSON text. `shape`, when set, replaces
/// the shape given by the nesting (the element counts must agree).
absl::StatusOr<HostTensor> TensorFromJson(const std::string& name, ToriiDataType datatype,
                                          const std::string& json_text,
                                          const std::optional<std::vector<int64_t>>& shape);

/// A tensor in the v2 JSON form; `nested` shapes "data" like the tensor.
nlohmann::ordered_json TensorToJson(const HostTensor& tensor, bool nested = false);

/// Parses "1,4" or "[1,4]" (an empty string is a scalar's shape).
absl::StatusOr<std::vector<int64_t>> ParseShape(const std::string& text);

}  // namespace runner_tool
}  // namespace torii

#endif  // TORII_SERVER_TOOLS_RUNNER_TENSOR_JSON_H_
