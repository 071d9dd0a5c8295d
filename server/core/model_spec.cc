#include "server/core/model_spec.h"

namespace torii {

void ModelSpec::Finalize() {
  input_index_.clear();
  output_index_.clear();
  for (size_t i = 0; i < inputs.size(); ++i) input_index_[inputs[i].name] = static_cast<int>(i);
  for (size_t i = 0; i < outputs.size(); ++i) output_index_[outputs[i].name] = static_cast<int>(i);
}

int ModelSpec::InputIndex(absl::string_view name) const {
  auto it = input_index_.find(name);
  return it == input_index_.end() ? -1 : it->second;
}

int ModelSpec::OutputIndex(absl::string_view name) const {
  auto it = output_index_.find(name);
  return it == output_index_.end() ? -1 : it->second;
}

std::vector<int64_t> ModelSpec::WireShape(const TensorSpec& t) const {
  std::vector<int64_t> shape;
  shape.reserve(t.dims.size() + 1);
  if (batching_enabled()) shape.push_back(-1);
  shape.insert(shape.end(), t.dims.begin(), t.dims.end());
  return shape;
}

}  // namespace torii
