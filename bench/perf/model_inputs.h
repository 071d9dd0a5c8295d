// Input specs from a model's metadata, for runs without --input.
#ifndef TORII_BENCH_PERF_MODEL_INPUTS_H_
#define TORII_BENCH_PERF_MODEL_INPUTS_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "inference.pb.h"
#include "payload.h"

namespace torii::perf {

using ShapeOverride = std::pair<std::string, std::vector<int64_t>>;

/// Concrete input specs for `metadata`'s inputs: a --shape override wins;
/// else a leading -1 (the batch dimension) becomes `batch_size` and any
/// other -1 is an error asking for --shape.
absl::StatusOr<std::vector<InputSpec>> InputsFromMetadata(
    const inference::ModelMetadataResponse& metadata,
    const std::vector<ShapeOverride>& shapes, int64_t batch_size);

/// Applies --shape overrides to --input specs; an override naming no input
/// is an error.
absl::Status ApplyShapes(std::vector<InputSpec>* specs,
                         const std::vector<ShapeOverride>& shapes);

}  // namespace torii::perf

#endif  // TORII_BENCH_PERF_MODEL_INPUTS_H_
