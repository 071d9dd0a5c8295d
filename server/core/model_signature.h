// A model's declared inputs and outputs, resolved once from its config so the
// request path never re-reads the config proto.
#ifndef TORII_SERVER_CORE_MODEL_SIGNATURE_H_
#define TORII_SERVER_CORE_MODEL_SIGNATURE_H_

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "model_config.pb.h"
#include "torii/runner_abi.h"

namespace torii {

struct TensorSignature {
  std::string name;
  ToriiDataType datatype = TORII_TYPE_INVALID;
  std::vector<int64_t> dims;  // without the batch dimension; -1 = variable
};

class ModelSignature {
 public:
  explicit ModelSignature(const inference::ModelConfig& config);

  const std::vector<TensorSignature>& inputs() const { return inputs_; }
  const std::vector<TensorSignature>& outputs() const { return outputs_; }
  int32_t max_batch_size() const { return max_batch_size_; }
  bool batching() const { return max_batch_size_ > 0; }

  /// Index into inputs()/outputs(), or -1.
  int InputIndex(absl::string_view name) const;
  int OutputIndex(absl::string_view name) const;

  /// The shape clients see in metadata: dims with a leading -1 when batching.
  std::vector<int64_t> WireShape(const TensorSignature& t) const;

 private:
  std::vector<TensorSignature> inputs_;
  std::vector<TensorSignature> outputs_;
  absl::flat_hash_map<std::string, int> input_index_;
  absl::flat_hash_map<std::string, int> output_index_;
  int32_t max_batch_size_ = 0;
};

}  // namespace torii

#endif  // TORII_SERVER_CORE_MODEL_SIGNATURE_H_
