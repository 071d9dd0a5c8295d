#include "server/core/model_signature.h"

#include "server/core/datatype.h"

namespace torii {

ModelSignature::ModelSignature(const inference::ModelConfig& config)
    : max_batch_size_(config.max_batch_size()) {
  for (const auto& in : config.input()) {
    input_index_[in.name()] = static_cast<int>(inputs_.size());
    inputs_.push_back({in.name(), DataTypeFromConfig(in.data_type()),
                       {in.dims().begin(), in.dims().end()}});
  }
  for (const auto& out : config.output()) {
    output_index_[out.name()] = static_cast<int>(outputs_.size());
    outputs_.push_back({out.name(), DataTypeFromConfig(out.data_type()),
                        {out.dims().begin(), out.dims().end()}});
  }
}

int ModelSignature::InputIndex(absl::string_view name) const {
  auto it = input_index_.find(name);
  return it == input_index_.end() ? -1 : it->second;
}

int ModelSignature::OutputIndex(absl::string_view name) const {
  auto it = output_index_.find(name);
  return it == output_index_.end() ? -1 : it->second;
}

std::vector<int64_t> ModelSignature::WireShape(const TensorSignature& t) const {
  std::vector<int64_t> shape;
  if (batching()) shape.push_back(-1);
  shape.insert(shape.end(), t.dims.begin(), t.dims.end());
  return shape;
}

}  // namespace torii
