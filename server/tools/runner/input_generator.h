// Synthetic inputs for a model's declared signature: deterministic values
// from a seed, concrete sizes for variable (-1) dims, and edge cases (empty
// tensors, NaN/Inf, integer extremes, odd BYTES) a runner must survive.
#ifndef TORII_SERVER_TOOLS_RUNNER_INPUT_GENERATOR_H_
#define TORII_SERVER_TOOLS_RUNNER_INPUT_GENERATOR_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "server/core/model_spec.h"
#include "server/tools/runner/model_under_test.h"

namespace torii {
namespace runner_tool {

/// Concrete per-row dims (without the batch dimension) for each input, by
/// name. Inputs not listed take their declared dims with every -1 replaced.
using DimsOverride = std::map<std::string, std::vector<int64_t>>;

enum class Values {
  kOrdinary,  // small values: floats k/8 in [-1, 1], integers 0..3, short strings
  kZeros,     // all zero / empty strings
  kExtreme,   // NaN, +-Inf, -0, min/max integers, binary and long strings
};

class InputGenerator {
 public:
  InputGenerator(const ModelSpec& spec, DimsOverride dims)
      : spec_(spec), dims_(std::move(dims)) {}

  /// The dims input `t` gets, with variable dims set to `variable`.
  std::vector<int64_t> Dims(const TensorSpec& t, int64_t variable) const;

  /// One request carrying every declared input. `rows` is the batch size for
  /// a batching model (ignored otherwise); `variable` the size of -1 dims.
  TestRequest Request(int64_t rows, int64_t variable, uint64_t seed,
                      Values values = Values::kOrdinary) const;

  /// A tensor of the given type and shape filled from `seed`.
  static HostTensor Tensor(const std::string& name, ToriiDataType datatype,
                           const std::vector<int64_t>& shape, uint64_t seed,
                           Values values = Values::kOrdinary);

  /// True when some input has a variable dim (and no --dims override for it).
  bool HasVariableDims() const { return MaxVariableDims() > 0; }
  /// The most variable (-1) dims any one input has (without --dims).
  size_t MaxVariableDims() const;

 private:
  const ModelSpec& spec_;
  DimsOverride dims_;
};

}  // namespace runner_tool
}  // namespace torii

#endif  // TORII_SERVER_TOOLS_RUNNER_INPUT_GENERATOR_H_
