// Request payloads for torii-perf: input specs from flags, synthetic data,
// the --input-data JSON format, and the ModelInferRequest built from them.
#ifndef TORII_BENCH_PERF_PAYLOAD_H_
#define TORII_BENCH_PERF_PAYLOAD_H_

#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "inference.pb.h"

namespace torii::perf {

/// One input tensor's name, v2 datatype and concrete shape.
struct InputSpec {
  std::string name;
  std::string datatype;  ///< v2 name: BOOL, INT8, ..., FP32, BYTES, BF16
  std::vector<int64_t> shape;
};

/// Bytes per element of a v2 datatype; -1 for BYTES; 0 for an unknown name.
int64_t DatatypeSize(absl::string_view datatype);

/// "1,256" → {1, 256}; "" → {} (a scalar). Dims must be ≥ 0, except that
/// `allow_wildcard` admits -1 (used for shapes read from model metadata).
absl::StatusOr<std::vector<int64_t>> ParseDims(absl::string_view text,
                                               bool allow_wildcard = false);

/// --input NAME:DATATYPE:SHAPE, e.g. "INPUT0:FP32:1,256".
absl::StatusOr<InputSpec> ParseInputSpec(absl::string_view text);

/// --shape NAME:SHAPE, e.g. "INPUT0:1,256".
absl::StatusOr<std::pair<std::string, std::vector<int64_t>>> ParseShapeFlag(
    absl::string_view text);

/// One tensor's data: its spec and its bytes as they travel raw
/// (little-endian; BYTES in the v2 4-byte-length-prefixed encoding).
struct TensorData {
  InputSpec spec;
  std::string raw;
};

/// The inputs of one request.
using Sample = std::vector<TensorData>;

enum class DataMode { kRandom, kZero };

/// Synthetic data for `specs`. Random floats are uniform in [-1, 1) (never
/// NaN or denormal, so compute-bound models run at their normal speed);
/// random BYTES elements are `string_length` printable characters.
absl::StatusOr<Sample> MakeSyntheticSample(const std::vector<InputSpec>& specs,
                                           DataMode mode, uint64_t seed,
                                           int string_length = 16);

/// Parses the --input-data JSON document (format in bench/README.md):
///   {"data": [ {"INPUT0": [1, 2, 3, 4]},
///              {"INPUT0": {"content": [[1, 2], [3, 4]], "shape": [2, 2]}},
///              {"INPUT0": {"b64": "AACAPw==", "shape": [1]}} ]}
/// Each entry of "data" is one request. A tensor's datatype comes from the
/// matching --input spec or from a "datatype" key; its shape from "shape",
/// else from the spec. Nested content arrays are flattened row-major.
absl::StatusOr<std::vector<Sample>> ParseInputDataJson(
    absl::string_view json, const std::vector<InputSpec>& specs);

struct RequestOptions {
  std::string model_name;
  std::string model_version;
  bool typed = false;  ///< InferTensorContents instead of raw_input_contents
  std::vector<std::string> outputs;  ///< requested outputs; empty = all
};

/// Builds the ModelInferRequest for `sample`. Typed contents exist for every
/// datatype except FP16 and BF16, which only travel raw.
absl::StatusOr<inference::ModelInferRequest> BuildRequest(
    const Sample& sample, const RequestOptions& options);

/// Sum of the raw byte sizes of a sample's tensors.
size_t PayloadBytes(const Sample& sample);

}  // namespace torii::perf

#endif  // TORII_BENCH_PERF_PAYLOAD_H_
