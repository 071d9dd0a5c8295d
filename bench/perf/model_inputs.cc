#include "model_inputs.h"

#include "absl/strings/str_cat.h"

namespace torii::perf {

absl::StatusOr<std::vector<InputSpec>> InputsFromMetadata(
    const inference::ModelMetadataResponse& metadata,
    const std::vector<ShapeOverride>& shapes, int64_t batch_size) {
  if (metadata.inputs_size() == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model '", metadata.name(),
        "' reports no inputs in its metadata; give --input NAME:DATATYPE:SHAPE"));
  }
  std::vector<InputSpec> specs;
  for (const auto& input : metadata.inputs()) {
    InputSpec spec{input.name(), input.datatype(), {}};
    spec.shape.assign(input.shape().begin(), input.shape().end());
    for (size_t i = 0; i < spec.shape.size(); ++i) {
      if (spec.shape[i] == -1 && i == 0) spec.shape[i] = batch_size;
    }
    specs.push_back(std::move(spec));
  }
  absl::Status status = ApplyShapes(&specs, shapes);
  if (!status.ok()) return status;
  for (const InputSpec& spec : specs) {
    for (int64_t d : spec.shape) {
      if (d < 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "input ", spec.name,
            " has a variable dimension; give its shape with --shape ",
            spec.name, ":D0,D1,..."));
      }
    }
  }
  return specs;
}

absl::Status ApplyShapes(std::vector<InputSpec>* specs,
                         const std::vector<ShapeOverride>& shapes) {
  for (const auto& [name, shape] : shapes) {
    bool found = false;
    for (InputSpec& spec : *specs) {
      if (spec.name == name) {
        spec.shape = shape;
        found = true;
      }
    }
    if (!found) {
      return absl::InvalidArgumentError(
          absl::StrCat("--shape names no input '", name, "'"));
    }
  }
  return absl::OkStatus();
}

}  // namespace torii::perf
