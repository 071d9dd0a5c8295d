// Everything the TorchScript runner reads from a model's configuration that
// does not need LibTorch: parameters, model_warmup samples, Triton's tensor
// naming convention and datatype support, and how torch error text becomes a
// one-line client message.
//
// Kept free of torch headers on purpose: a torch translation unit costs
// 8–17 s and ~0.8 GB to compile, this one a second, and the unit tests can
// exercise every parsing rule without loading LibTorch.
#ifndef TORII_PLUGINS_TORCHSCRIPT_SETTINGS_H_
#define TORII_PLUGINS_TORCHSCRIPT_SETTINGS_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "torii/runner.h"

namespace torii {
namespace torchscript {

/// One input of a warm-up sample (config `model_warmup { inputs { … } }`).
struct WarmupInput {
  enum class Source { kZero, kRandom, kFile };
  std::string name;
  ToriiDataType datatype = TORII_TYPE_INVALID;
  std::vector<int64_t> dims;  // without the batch dimension
  Source source = Source::kZero;
  std::string file;  // absolute path when source == kFile
};

/// One warm-up sample: a request the runner sends itself at load.
struct WarmupSample {
  std::string name;
  int64_t batch_size = 0;  // rows; 0 for a model that does not batch
  int count = 1;           // how many times to run it
  std::vector<WarmupInput> inputs;
};

/// The runner's settings for one model version.
struct Settings {
  /// `default_model_filename`, or Triton's default "model.pt".
  std::string model_filename = "model.pt";
  /// `INTRA_OP_THREAD_COUNT` / `INTER_OP_THREAD_COUNT`; 0 leaves LibTorch's
  /// process-wide value alone.
  int intra_op_thread_count = 0;
  int inter_op_thread_count = 0;
  /// `DISABLE_OPTIMIZED_EXECUTION`: run the graph executor without its
  /// optimisation passes (Triton's switch for models that warm up badly).
  bool disable_optimized_execution = false;
  /// `model_warmup`; empty means the runner's default warm-up.
  std::vector<WarmupSample> warmup;
};

/// Looks a `parameters { key … }` entry up; nullopt when absent.
using ParameterLookup =
    std::function<std::optional<std::string>(const std::string& key)>;

/// Reads the settings. `config_json` is config.pbtxt in the protobuf JSON
/// mapping (original field names; int64 may be strings, enums names or
/// numbers); `model_directory` is <repository>/<model> (warm-up files live in
/// its `warmup/` folder); `max_batch_size` bounds warm-up batch sizes and
/// `inputs` are the declared inputs every warm-up sample must match.
/// Throws torii::Error(INVALID_ARGUMENT) naming the offending field.
Settings ParseSettings(const std::string& model_name,
                       const std::string& config_json,
                       const ParameterLookup& parameter,
                       const std::string& model_directory,
                       int32_t max_batch_size,
                       const std::vector<TensorSpec>& inputs);

/// Parses a boolean parameter value the way Triton does ("true"/"false",
/// "1"/"0", "on"/"off", "yes"/"no", any case). nullopt if it is none of them.
std::optional<bool> ParseBool(const std::string& value);

/// The config enum name ("TYPE_FP32") or its number → datatype;
/// TORII_TYPE_INVALID when unknown.
ToriiDataType DataTypeFromConfig(const std::string& name);

/// Whether LibTorch has a tensor type for `t` (it has no unsigned type wider
/// than 8 bits and no strings).
bool TorchCanHold(ToriiDataType t);

/// Triton's PyTorch naming convention `<anything>__<index>`: the index, or
/// nullopt when `name` does not follow it.
std::optional<int64_t> IndexFromName(const std::string& name);

/// Bytes of one warm-up input with concrete `shape` (batch dimension
/// included): zeros, deterministic pseudo-random values (floats in [0, 1),
/// integers 0 or 1, so an index input stays in range), or the file's bytes,
/// which must have exactly the right size. Throws INVALID_ARGUMENT.
std::string WarmupInputBytes(const WarmupInput& input,
                             const std::vector<int64_t>& shape);

/// Turns the text of an exception thrown by torch into one line a client can
/// act on. TorchScript interpreter errors carry two tracebacks before the
/// real message ("RuntimeError: mat1 and mat2 shapes cannot be multiplied");
/// c10 errors carry a C++ backtrace after it. The generic "RuntimeError: "
/// prefix is dropped; meaningful types ("AssertionError: …") are kept.
std::string SummarizeTorchError(const std::string& what);

/// "[2,-1,5]"
std::string ShapeString(const std::vector<int64_t>& shape);

}  // namespace torchscript
}  // namespace torii

#endif  // TORII_PLUGINS_TORCHSCRIPT_SETTINGS_H_
