// The TorchScript runner: serves models exported with torch.jit.script or
// torch.jit.trace, on LibTorch (CPU), laid out and configured as for Triton's
// PyTorch backend, so an existing Triton repository loads unchanged.
//
// Load (control thread): check the config's datatypes, read the settings,
// apply the process-wide thread settings, load <version>/model.pt, bind the
// config's inputs and outputs to forward()'s arguments and result, and warm
// up. Instances share the loaded module: TorchScript's forward() may run
// concurrently, and sharing keeps one copy of the weights per model.
//
// Execute: wrap each input's bytes in a tensor without copying, call
// forward() in inference mode, check every requested output against the
// config and write it once into the host's buffer.
//
// Only this file includes torch headers (each such file costs ~10 s and
// ~0.8 GB to compile); settings.cc holds everything that does not need them.
// See docs/runners/torchscript.md.
#include <dlfcn.h>
#include <link.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <ATen/Parallel.h>
#include <torch/csrc/jit/ir/alias_analysis.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/constant_propagation.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/script.h>

#include "settings.h"
#include "torii/runner.h"

namespace torii {
namespace torchscript {
namespace {

// ---------------------------------------------------------------------------
// Datatypes
// ---------------------------------------------------------------------------

c10::ScalarType ToTorch(ToriiDataType t) {
  switch (t) {
    case TORII_TYPE_BOOL: return c10::kBool;
    case TORII_TYPE_UINT8: return c10::kByte;
    case TORII_TYPE_INT8: return c10::kChar;
    case TORII_TYPE_INT16: return c10::kShort;
    case TORII_TYPE_INT32: return c10::kInt;
    case TORII_TYPE_INT64: return c10::kLong;
    case TORII_TYPE_FP16: return c10::kHalf;
    case TORII_TYPE_BF16: return c10::kBFloat16;
    case TORII_TYPE_FP32: return c10::kFloat;
    case TORII_TYPE_FP64: return c10::kDouble;
    default:
      // Refused at load (TorchCanHold), so never reached for a loaded model.
      throw Error(TORII_STATUS_INTERNAL,
                  std::string("no torch type for ") + DataTypeName(t));
  }
}

ToriiDataType FromTorch(c10::ScalarType s) {
  switch (s) {
    case c10::kBool: return TORII_TYPE_BOOL;
    case c10::kByte: return TORII_TYPE_UINT8;
    case c10::kChar: return TORII_TYPE_INT8;
    case c10::kShort: return TORII_TYPE_INT16;
    case c10::kInt: return TORII_TYPE_INT32;
    case c10::kLong: return TORII_TYPE_INT64;
    case c10::kHalf: return TORII_TYPE_FP16;
    case c10::kBFloat16: return TORII_TYPE_BF16;
    case c10::kFloat: return TORII_TYPE_FP32;
    case c10::kDouble: return TORII_TYPE_FP64;
    default: return TORII_TYPE_INVALID;
  }
}

// The v2 name when there is one ("FP32"), else torch's ("ComplexFloat").
std::string TorchTypeName(c10::ScalarType s) {
  const ToriiDataType t = FromTorch(s);
  return t == TORII_TYPE_INVALID ? std::string(c10::toString(s))
                                 : std::string(DataTypeName(t));
}

// ---------------------------------------------------------------------------
// Process-wide thread settings
// ---------------------------------------------------------------------------

// LibTorch keeps one intra-op thread count per process but OpenMP applies it
// per thread, when a thread first runs parallel work. A worker that ran
// torch before a later model changed the count would keep the old one, so
// every change bumps a generation and each worker re-applies the count at
// its next execute.
std::atomic<uint64_t> g_intra_op_generation{0};
std::atomic<int> g_intra_op_threads{0};  // 0: never set by this runner
thread_local uint64_t t_intra_op_generation = 0;

void SyncIntraOpThreads() {
  const uint64_t g = g_intra_op_generation.load(std::memory_order_acquire);
  if (t_intra_op_generation != g) {
    at::init_num_threads();
    t_intra_op_generation = g;
  }
}

void ApplyIntraOpThreads(int n, const ModelContext& ctx) {
  if (n <= 0) return;
  const int previous = g_intra_op_threads.exchange(n);
  if (previous == n) return;
  at::set_num_threads(n);
  g_intra_op_generation.fetch_add(1, std::memory_order_acq_rel);
  ctx.Log(previous == 0 ? TORII_LOG_INFO : TORII_LOG_WARNING,
          "INTRA_OP_THREAD_COUNT " + std::to_string(n) +
              (previous == 0 ? "" : " replaces " + std::to_string(previous)) +
              " for every TorchScript model in this process (LibTorch keeps "
              "one value per process)");
}

void ApplyInterOpThreads(int n, const ModelContext& ctx) {
  if (n <= 0) return;
  const int current = static_cast<int>(at::get_num_interop_threads());
  if (current == n) return;
  try {
    at::set_num_interop_threads(n);
    ctx.Log(TORII_LOG_INFO, "INTER_OP_THREAD_COUNT " + std::to_string(n) +
                                " for every TorchScript model in this process");
  } catch (const c10::Error&) {
    // LibTorch sizes its inter-op pool once per process; refusing the model
    // over it would punish the second model for the first one's setting.
    ctx.Log(TORII_LOG_WARNING,
            "INTER_OP_THREAD_COUNT " + std::to_string(n) +
                " ignored: LibTorch sizes its inter-op pool once per process "
                "and it is already " + std::to_string(current));
  }
}

using OpenBlasSetThreads = void (*)(int);

// OpenBLAS comes in through libtorch's libblas.so.3 (Debian's alternatives
// point it at openblas-pthread), so its symbols are not in the global scope
// of a plugin loaded RTLD_LOCAL. Find a loaded library that exports
// openblas_set_num_threads instead of assuming a file name.
OpenBlasSetThreads FindOpenBlasSetThreads() {
  std::vector<std::string> candidates;
  dl_iterate_phdr(
      [](struct dl_phdr_info* info, size_t, void* data) {
        const char* name = info->dlpi_name;
        if (name != nullptr && std::strstr(name, "blas") != nullptr) {
          static_cast<std::vector<std::string>*>(data)->push_back(name);
        }
        return 0;
      },
      &candidates);
  // dlopen is not called inside the callback: it would run under the loader
  // lock dl_iterate_phdr holds.
  for (const auto& path : candidates) {
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_NOLOAD);
    if (handle == nullptr) continue;
    void* sym = dlsym(handle, "openblas_set_num_threads");
    // The library stays loaded (libtorch needs it), so the pointer outlives
    // this extra reference.
    dlclose(handle);
    if (sym != nullptr) return reinterpret_cast<OpenBlasSetThreads>(sym);
  }
  return nullptr;
}

// One BLAS thread per call unless the operator said otherwise: parallelism
// comes from instances, and OpenBLAS's pool (a thread per core by default)
// would compete with the instances' threads for the same cores, while
// concurrent calls from several instances contend for that one pool.
void ApplyOpenBlasThreads(const ModelContext& ctx) {
  if (std::getenv("OPENBLAS_NUM_THREADS") != nullptr) {
    ctx.Log(TORII_LOG_VERBOSE,
            "OpenBLAS threads left to OPENBLAS_NUM_THREADS from the environment");
    return;
  }
  static const OpenBlasSetThreads set_threads = FindOpenBlasSetThreads();
  if (set_threads == nullptr) {
    ctx.Log(TORII_LOG_VERBOSE, "LibTorch does not use OpenBLAS here; BLAS threads untouched");
    return;
  }
  set_threads(1);
  ctx.Log(TORII_LOG_VERBOSE,
          "OpenBLAS set to 1 thread, process-wide (OPENBLAS_NUM_THREADS overrides)");
}

// ---------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------

struct OutputSpec {
  std::string name;
  ToriiDataType datatype = TORII_TYPE_INVALID;
  std::vector<int64_t> dims;
  int64_t index = 0;  // position in a tuple or list result
};

// One forward() argument: fed by a config input, or left at its default.
struct ArgumentBinding {
  int config_input = -1;
  c10::IValue default_value;
};

bool FileExists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

double MillisSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

std::string Fixed1(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f", v);
  return buf;
}

class TorchScriptModel : public Model {
 public:
  explicit TorchScriptModel(const ModelContext& ctx);
  std::unique_ptr<Instance> CreateInstance(uint32_t) override;

  /// Runs one batch. Thread-safe: instances share the model.
  void Execute(Batch& batch) const;

 private:
  void CheckDatatypes() const;
  void Load();
  void BindInputs();
  void BindOutputs();
  bool ForwardWritesInputs() const;
  void WarmUp();
  void RunWarmupSample(const WarmupSample& sample, int runs) const;

  at::Tensor Wrap(const std::string& name, ToriiDataType datatype, const void* data,
                  size_t byte_size, at::IntArrayRef shape) const;
  c10::IValue Forward(std::vector<at::Tensor> inputs) const;
  at::Tensor SelectOutput(const c10::IValue& result, const OutputSpec& out) const;
  void CheckOutput(const at::Tensor& t, const OutputSpec& out, int64_t rows) const;
  [[noreturn]] void Fail(ToriiStatusCode code, const std::string& what) const {
    throw Error(code, "model '" + name_ + "': " + what);
  }

  ModelContext ctx_;
  std::string name_;
  int32_t max_batch_size_;
  std::vector<TensorSpec> inputs_;
  std::vector<OutputSpec> outputs_;
  Settings settings_;
  std::string path_;

  torch::jit::Module module_;
  std::unique_ptr<torch::jit::Method> forward_;
  std::vector<ArgumentBinding> arguments_;
  bool dict_input_ = false;   // forward(self, inputs: Dict[str, Tensor])
  bool dict_output_ = false;  // forward() -> Dict[str, Tensor]: outputs by key
  bool copy_inputs_ = false;  // forward() writes an input in place
  std::string input_convention_;
};

class TorchScriptInstance : public Instance {
 public:
  explicit TorchScriptInstance(const TorchScriptModel& model) : model_(model) {}
  void Execute(Batch& batch) override { model_.Execute(batch); }

 private:
  const TorchScriptModel& model_;
};

TorchScriptModel::TorchScriptModel(const ModelContext& ctx)
    : ctx_(ctx),
      name_(ctx.name()),
      max_batch_size_(ctx.max_batch_size()),
      inputs_(ctx.inputs()) {
  for (const auto& o : ctx.outputs()) outputs_.push_back({o.name, o.datatype, o.dims, 0});
  CheckDatatypes();
  settings_ = ParseSettings(
      name_, ctx.config_json(), [&](const std::string& key) { return ctx.parameter(key); },
      ctx.directory(), max_batch_size_, inputs_);
  ApplyOpenBlasThreads(ctx_);
  ApplyIntraOpThreads(settings_.intra_op_thread_count, ctx_);
  ApplyInterOpThreads(settings_.inter_op_thread_count, ctx_);
  if (settings_.disable_optimized_execution) {
    ctx_.Log(TORII_LOG_INFO, "optimized execution disabled (DISABLE_OPTIMIZED_EXECUTION)");
  }

  const auto start = std::chrono::steady_clock::now();
  Load();
  BindInputs();
  BindOutputs();
  copy_inputs_ = ForwardWritesInputs();
  if (copy_inputs_) {
    ctx_.Log(TORII_LOG_WARNING,
             "forward() writes an input in place; inputs are copied before each "
             "call so request buffers stay untouched");
  }
  ctx_.Log(TORII_LOG_INFO, "loaded '" + path_ + "' in " + Fixed1(MillisSince(start)) +
                               " ms; inputs " + input_convention_);
  WarmUp();
}

std::unique_ptr<Instance> TorchScriptModel::CreateInstance(uint32_t) {
  return std::make_unique<TorchScriptInstance>(*this);
}

void TorchScriptModel::CheckDatatypes() const {
  auto check = [&](const char* kind, const std::string& name, ToriiDataType t) {
    if (!TorchCanHold(t)) {
      Fail(TORII_STATUS_INVALID_ARGUMENT,
           std::string(kind) + " '" + name + "' is declared " + DataTypeName(t) +
               ", which LibTorch has no tensor type for (supported: BOOL, UINT8, "
               "INT8, INT16, INT32, INT64, FP16, BF16, FP32, FP64)");
    }
  };
  for (const auto& in : inputs_) check("input", in.name, in.datatype);
  for (const auto& out : outputs_) check("output", out.name, out.datatype);
  if (outputs_.empty()) Fail(TORII_STATUS_INVALID_ARGUMENT, "the config declares no output");
}

void TorchScriptModel::Load() {
  path_ = ctx_.version_directory() + "/" + settings_.model_filename;
  if (!FileExists(path_)) {
    Fail(TORII_STATUS_NOT_FOUND, "no TorchScript file '" + path_ +
                                     "' (default_model_filename names another file)");
  }
  try {
    // Parameters load as inference tensors: no version counters, no autograd
    // metadata, and they are only ever used under InferenceMode.
    c10::InferenceMode guard;
    module_ = torch::jit::load(path_, c10::Device(c10::kCPU));
    // A module saved in training mode would make batch norm and dropout
    // depend on the batch; a server always evaluates.
    module_.eval();
    forward_ = std::make_unique<torch::jit::Method>(module_.get_method("forward"));
  } catch (const c10::Error& e) {
    Fail(TORII_STATUS_INVALID_ARGUMENT, "cannot load TorchScript '" + path_ + "': " +
                                            SummarizeTorchError(e.what_without_backtrace()));
  } catch (const std::exception& e) {
    Fail(TORII_STATUS_INVALID_ARGUMENT,
         "cannot load TorchScript '" + path_ + "': " + SummarizeTorchError(e.what()));
  }
}

// Triton's rules, in its order: config inputs named after forward()'s
// arguments bind by name; else names of the form <x>__<i> bind to argument
// i; else the config order is the argument order. A single
// Dict[str, Tensor] argument receives every input keyed by its name.
void TorchScriptModel::BindInputs() {
  const auto& schema = forward_->function().getSchema();
  std::vector<c10::Argument> args = schema.arguments();
  if (!args.empty() && args[0].type()->kind() == c10::TypeKind::ClassType) {
    args.erase(args.begin());  // self
  }
  const auto tensor = c10::TensorType::get();

  if (args.size() == 1 && args[0].type()->kind() == c10::TypeKind::DictType) {
    const auto dict = args[0].type()->expect<c10::DictType>();
    if (dict->getKeyType()->kind() != c10::TypeKind::StringType ||
        !dict->getValueType()->isSubtypeOf(*tensor)) {
      Fail(TORII_STATUS_INVALID_ARGUMENT, "forward() takes " + args[0].type()->str() +
                                              "; a dictionary input must be Dict[str, Tensor]");
    }
    dict_input_ = true;
    input_convention_ = "as Dict[str, Tensor] keyed by input name";
    return;
  }

  std::vector<int> position(inputs_.size(), -1);
  bool by_name = !inputs_.empty();
  for (size_t i = 0; i < inputs_.size() && by_name; ++i) {
    auto it = std::find_if(args.begin(), args.end(),
                           [&](const c10::Argument& a) { return a.name() == inputs_[i].name; });
    if (it == args.end()) {
      by_name = false;
    } else {
      position[i] = static_cast<int>(it - args.begin());
    }
  }
  if (by_name) {
    input_convention_ = "by forward() argument name";
  } else {
    bool by_index = true;
    for (size_t i = 0; i < inputs_.size() && by_index; ++i) {
      const auto index = IndexFromName(inputs_[i].name);
      by_index = index.has_value();
      if (by_index) position[i] = static_cast<int>(*index);
    }
    if (by_index) {
      input_convention_ = "by <name>__<index>";
    } else {
      for (size_t i = 0; i < inputs_.size(); ++i) position[i] = static_cast<int>(i);
      input_convention_ = "in config order";
      ctx_.Log(TORII_LOG_WARNING,
               "inputs are neither forward() argument names nor <name>__<index>; "
               "binding them to forward() in config order");
    }
  }

  arguments_.assign(args.size(), ArgumentBinding{});
  for (size_t i = 0; i < inputs_.size(); ++i) {
    const int p = position[i];
    if (p < 0 || static_cast<size_t>(p) >= args.size()) {
      Fail(TORII_STATUS_INVALID_ARGUMENT,
           "input '" + inputs_[i].name + "' maps to forward() argument #" + std::to_string(p) +
               ", but forward() takes " + std::to_string(args.size()) + " argument(s)");
    }
    if (arguments_[p].config_input >= 0) {
      Fail(TORII_STATUS_INVALID_ARGUMENT,
           "inputs '" + inputs_[arguments_[p].config_input].name + "' and '" +
               inputs_[i].name + "' both map to forward() argument '" + args[p].name() + "'");
    }
    if (!tensor->isSubtypeOf(*args[p].type())) {
      Fail(TORII_STATUS_INVALID_ARGUMENT,
           "forward() argument '" + args[p].name() + "' is " + args[p].type()->str() +
               "; config inputs are passed as Tensor");
    }
    arguments_[p].config_input = static_cast<int>(i);
  }
  for (size_t p = 0; p < args.size(); ++p) {
    if (arguments_[p].config_input >= 0) continue;
    if (!args[p].default_value()) {
      Fail(TORII_STATUS_INVALID_ARGUMENT,
           "forward() argument '" + args[p].name() + "' (#" + std::to_string(p) +
               ") has no default and no config input maps to it");
    }
    arguments_[p].default_value = *args[p].default_value();
  }
}

// Outputs named <x>__<i> are element i of a tuple or list result (or the
// result itself for i = 0); other names take the config order. A
// Dict[str, Tensor] result is read by output name.
void TorchScriptModel::BindOutputs() {
  const auto& returns = forward_->function().getSchema().returns();
  const c10::TypePtr type = returns.size() == 1 ? returns[0].type() : c10::AnyType::get();
  const auto tensor = c10::TensorType::get();

  bool by_index = true;
  for (const auto& o : outputs_) by_index = by_index && IndexFromName(o.name).has_value();
  for (size_t i = 0; i < outputs_.size(); ++i) {
    outputs_[i].index = by_index ? *IndexFromName(outputs_[i].name) : static_cast<int64_t>(i);
  }
  auto unsupported = [&]() {
    Fail(TORII_STATUS_INVALID_ARGUMENT,
         "forward() returns " + type->str() +
             "; Torii serves Tensor, Tuple[Tensor, ...], List[Tensor] or Dict[str, Tensor]");
  };

  switch (type->kind()) {
    case c10::TypeKind::TensorType:
      for (const auto& o : outputs_) {
        if (o.index != 0) {
          Fail(TORII_STATUS_INVALID_ARGUMENT,
               "output '" + o.name + "' refers to result #" + std::to_string(o.index) +
                   ", but forward() returns a single Tensor");
        }
      }
      break;
    case c10::TypeKind::TupleType: {
      const auto& elements = type->expect<c10::TupleType>()->elements();
      for (const auto& o : outputs_) {
        if (o.index >= static_cast<int64_t>(elements.size())) {
          Fail(TORII_STATUS_INVALID_ARGUMENT,
               "output '" + o.name + "' refers to result #" + std::to_string(o.index) +
                   ", but forward() returns " + type->str());
        }
        if (!elements[o.index]->isSubtypeOf(*tensor)) {
          Fail(TORII_STATUS_INVALID_ARGUMENT, "output '" + o.name + "' refers to result #" +
                                                  std::to_string(o.index) + ", which is " +
                                                  elements[o.index]->str() + ", not a Tensor");
        }
      }
      break;
    }
    case c10::TypeKind::ListType:
      if (!type->expect<c10::ListType>()->getElementType()->isSubtypeOf(*tensor)) unsupported();
      break;
    case c10::TypeKind::DictType: {
      const auto dict = type->expect<c10::DictType>();
      if (dict->getKeyType()->kind() != c10::TypeKind::StringType ||
          !dict->getValueType()->isSubtypeOf(*tensor)) {
        unsupported();
      }
      dict_output_ = true;
      break;
    }
    case c10::TypeKind::AnyType:
      break;  // checked per call in SelectOutput
    default:
      unsupported();
  }
}

// TorchScript may update an argument in place (x.add_(1)). The request's
// bytes belong to the host and are read-only, so such a model gets copies.
// Alias analysis over the inlined graph answers it once, at load: an input
// is written if it, or any value that may alias it or be held in it (a
// tensor taken out of a Dict[str, Tensor] argument), has a writer. When the
// analysis cannot answer, copying is the safe answer.
//
// Module attributes may alias anything to the analysis, so a write to one
// would flag every input. nn.BatchNorm writes its running statistics and
// counter only when `self.training`; the module is in eval mode, so reads
// of `training` become the constant False and constant propagation drops
// those writes before the analysis (on a copy of the graph, not the one
// that runs).
bool TorchScriptModel::ForwardWritesInputs() const {
  try {
    std::shared_ptr<torch::jit::Graph> graph = forward_->graph()->copy();
    torch::jit::Inline(*graph);
    std::function<void(torch::jit::Block*)> fold_training = [&](torch::jit::Block* block) {
      for (torch::jit::Node* node : block->nodes()) {
        if (node->kind() == c10::prim::GetAttr && node->s(c10::attr::name) == "training" &&
            node->output()->type()->kind() == c10::TypeKind::BoolType) {
          torch::jit::WithInsertPoint at(node);
          node->output()->replaceAllUsesWith(graph->insertConstant(false));
        }
        for (torch::jit::Block* inner : node->blocks()) fold_training(inner);
      }
    };
    fold_training(graph->block());
    torch::jit::ConstantPropagation(graph);
    torch::jit::EliminateDeadCode(graph);
    torch::jit::AliasDb alias(graph);
    std::vector<torch::jit::Value*> values;
    std::function<void(torch::jit::Block*)> collect = [&](torch::jit::Block* block) {
      for (torch::jit::Value* v : block->inputs()) values.push_back(v);
      for (torch::jit::Node* node : block->nodes()) {
        for (torch::jit::Value* v : node->outputs()) values.push_back(v);
        for (torch::jit::Block* inner : node->blocks()) collect(inner);
      }
    };
    collect(graph->block());
    const auto graph_inputs = graph->inputs();
    for (size_t i = 1; i < graph_inputs.size(); ++i) {  // 0 is self
      torch::jit::Value* input = graph_inputs[i];
      if (alias.hasWriters(input)) return true;
      for (torch::jit::Value* v : values) {
        if (alias.hasWriters(v) && alias.mayContainAlias(input, v)) return true;
      }
    }
    return false;
  } catch (const std::exception&) {
    return true;
  }
}

at::Tensor TorchScriptModel::Wrap(const std::string& name, ToriiDataType datatype,
                                  const void* data, size_t byte_size,
                                  at::IntArrayRef shape) const {
  const auto options = at::TensorOptions().dtype(ToTorch(datatype)).device(c10::kCPU);
  int64_t elements = 1;
  for (int64_t d : shape) elements *= d;
  if (elements < 0 || static_cast<size_t>(elements) * DataTypeSize(datatype) != byte_size) {
    Fail(TORII_STATUS_INVALID_ARGUMENT,
         "input '" + name + "' has " + std::to_string(byte_size) + " bytes, shape " +
             ShapeString(shape.vec()) + " of " + DataTypeName(datatype) + " needs " +
             std::to_string(elements * static_cast<int64_t>(DataTypeSize(datatype))));
  }
  if (elements == 0) return at::empty(shape, options);
  // No copy: the tensor views the host's buffer for the duration of the call.
  // const_cast because from_blob has no read-only variant; nothing writes
  // through it (copy_inputs_ covers models that would).
  at::Tensor t = at::from_blob(const_cast<void*>(data), shape, options);
  return copy_inputs_ ? t.clone() : t;
}

c10::IValue TorchScriptModel::Forward(std::vector<at::Tensor> inputs) const {
  std::vector<c10::IValue> stack;
  if (dict_input_) {
    c10::Dict<std::string, at::Tensor> dict;
    for (size_t i = 0; i < inputs.size(); ++i) dict.insert(inputs_[i].name, std::move(inputs[i]));
    stack.emplace_back(std::move(dict));
  } else {
    stack.reserve(arguments_.size());
    for (const auto& a : arguments_) {
      if (a.config_input >= 0) {
        stack.emplace_back(std::move(inputs[a.config_input]));
      } else {
        stack.push_back(a.default_value);
      }
    }
  }
  try {
    return (*forward_)(std::move(stack));
  } catch (const c10::Error& e) {
    // The inputs passed the host's validation against the config, so what
    // torch refuses is how the client filled them (shapes, index ranges).
    Fail(TORII_STATUS_INVALID_ARGUMENT, SummarizeTorchError(e.what_without_backtrace()));
  } catch (const std::exception& e) {
    Fail(TORII_STATUS_INVALID_ARGUMENT, SummarizeTorchError(e.what()));
  }
}

at::Tensor TorchScriptModel::SelectOutput(const c10::IValue& result,
                                          const OutputSpec& out) const {
  c10::IValue value;
  if (result.isTensor()) {
    if (out.index != 0) {
      Fail(TORII_STATUS_INTERNAL, "output '" + out.name + "' refers to result #" +
                                      std::to_string(out.index) +
                                      ", but forward() returned a single Tensor");
    }
    value = result;
  } else if (result.isTuple() || result.isList()) {
    const bool tuple = result.isTuple();
    const size_t size = tuple ? result.toTupleRef().elements().size() : result.toListRef().size();
    if (out.index >= static_cast<int64_t>(size)) {
      Fail(TORII_STATUS_INTERNAL, "output '" + out.name + "' refers to result #" +
                                      std::to_string(out.index) + ", but forward() returned a " +
                                      (tuple ? "tuple" : "list") + " of " +
                                      std::to_string(size));
    }
    value = tuple ? result.toTupleRef().elements()[out.index] : result.toListRef()[out.index];
  } else if (result.isGenericDict()) {
    const auto dict = result.toGenericDict();
    const auto it = dict.find(c10::IValue(out.name));
    if (it == dict.end()) {
      std::string keys;
      for (const auto& kv : dict) {
        keys += (keys.empty() ? "" : ", ") + (kv.key().isString() ? kv.key().toStringRef()
                                                                  : kv.key().tagKind());
      }
      Fail(TORII_STATUS_INTERNAL, "output '" + out.name +
                                      "' is not a key of the dictionary forward() returned (keys: " +
                                      keys + ")");
    }
    value = it->value();
  } else {
    Fail(TORII_STATUS_INTERNAL, "forward() returned " + result.tagKind() +
                                    "; Torii serves Tensor, tuple, list or dict results");
  }
  if (!value.isTensor()) {
    Fail(TORII_STATUS_INTERNAL,
         "output '" + out.name + "' is " + value.tagKind() + ", not a Tensor");
  }
  return value.toTensor();
}

void TorchScriptModel::CheckOutput(const at::Tensor& t, const OutputSpec& out,
                                   int64_t rows) const {
  if (!t.defined() || t.layout() != c10::kStrided || !t.device().is_cpu()) {
    Fail(TORII_STATUS_INTERNAL, "output '" + out.name + "' is not a dense CPU tensor");
  }
  if (FromTorch(t.scalar_type()) != out.datatype) {
    Fail(TORII_STATUS_INTERNAL, "output '" + out.name + "': expected datatype " +
                                    DataTypeName(out.datatype) + ", got " +
                                    TorchTypeName(t.scalar_type()));
  }
  std::vector<int64_t> expected;
  if (max_batch_size_ > 0) expected.push_back(rows);
  expected.insert(expected.end(), out.dims.begin(), out.dims.end());
  const auto actual = t.sizes();
  bool match = actual.size() == expected.size();
  for (size_t i = 0; match && i < expected.size(); ++i) {
    match = expected[i] == -1 || expected[i] == actual[i];
  }
  if (!match) {
    Fail(TORII_STATUS_INTERNAL, "output '" + out.name + "': expected shape " +
                                    ShapeString(expected) + ", got " +
                                    ShapeString(actual.vec()));
  }
}

void TorchScriptModel::Execute(Batch& batch) const {
  SyncIntraOpThreads();
  c10::InferenceMode inference;
  torch::jit::GraphOptimizerEnabledGuard optimize(!settings_.disable_optimized_execution);

  std::vector<at::Tensor> tensors;
  tensors.reserve(inputs_.size());
  for (const auto& spec : inputs_) {
    const Input in = batch.input(spec.name);
    if (in.datatype() != spec.datatype) {
      Fail(TORII_STATUS_INVALID_ARGUMENT, "input '" + spec.name + "' is " +
                                              DataTypeName(in.datatype()) + ", declared " +
                                              DataTypeName(spec.datatype));
    }
    const auto shape = in.shape();
    tensors.push_back(Wrap(spec.name, spec.datatype, in.data(), in.byte_size(),
                           at::IntArrayRef(shape.data(), shape.size())));
  }
  int64_t rows = 0;
  if (max_batch_size_ > 0) {
    for (size_t r = 0; r < batch.request_count(); ++r) rows += batch.request_rows(r);
  }

  const c10::IValue result = Forward(std::move(tensors));

  for (const auto& out : outputs_) {
    if (!batch.output_requested(out.name)) continue;
    at::Tensor t = SelectOutput(result, out);
    CheckOutput(t, out, rows);
    const size_t bytes = static_cast<size_t>(t.numel()) * t.element_size();
    void* buffer =
        batch.AllocateOutput(out.name, out.datatype, t.sizes().vec(), bytes);
    if (bytes == 0) continue;
    if (t.is_contiguous()) {
      std::memcpy(buffer, t.data_ptr(), bytes);
    } else {
      // One strided copy straight into the host's buffer, not contiguous()
      // followed by a memcpy.
      at::from_blob(buffer, t.sizes(), t.options()).copy_(t);
    }
  }
}

// ---------------------------------------------------------------------------
// Warm-up
// ---------------------------------------------------------------------------

// The profiling graph executor records shapes on the first call and
// optimises on the next: measured 34 ms, 0.5 ms, then 17 µs for a small MLP.
// Two runs per sample leave the optimised plan in place for the first client.
int WarmupRuns(int requested) {
  const int needed = static_cast<int>(torch::jit::getNumProfiledRuns().load()) + 1;
  return std::max(requested, needed);
}

void TorchScriptModel::RunWarmupSample(const WarmupSample& sample, int runs) const {
  std::vector<std::string> buffers;
  std::vector<std::vector<int64_t>> shapes;
  for (const auto& spec : inputs_) {
    const auto it = std::find_if(sample.inputs.begin(), sample.inputs.end(),
                                 [&](const WarmupInput& w) { return w.name == spec.name; });
    if (it == sample.inputs.end()) Fail(TORII_STATUS_INVALID_ARGUMENT, "no data for input '" + spec.name + "'");
    std::vector<int64_t> shape;
    if (max_batch_size_ > 0) shape.push_back(sample.batch_size);
    shape.insert(shape.end(), it->dims.begin(), it->dims.end());
    buffers.push_back(WarmupInputBytes(*it, shape));
    shapes.push_back(std::move(shape));
  }
  c10::InferenceMode inference;
  torch::jit::GraphOptimizerEnabledGuard optimize(!settings_.disable_optimized_execution);
  for (int run = 0; run < runs; ++run) {
    std::vector<at::Tensor> tensors;
    for (size_t i = 0; i < inputs_.size(); ++i) {
      tensors.push_back(Wrap(inputs_[i].name, inputs_[i].datatype, buffers[i].data(),
                             buffers[i].size(), shapes[i]));
    }
    const c10::IValue result = Forward(std::move(tensors));
    for (const auto& out : outputs_) CheckOutput(SelectOutput(result, out), out, sample.batch_size);
  }
}

void TorchScriptModel::WarmUp() {
  if (!settings_.warmup.empty()) {
    for (const auto& sample : settings_.warmup) {
      const auto start = std::chrono::steady_clock::now();
      try {
        RunWarmupSample(sample, WarmupRuns(sample.count));
      } catch (const Error& e) {
        Fail(TORII_STATUS_INVALID_ARGUMENT,
             "warm-up sample '" + sample.name + "' failed: " + e.what());
      }
      ctx_.Log(TORII_LOG_INFO, "warm-up sample '" + sample.name + "' in " +
                                   Fixed1(MillisSince(start)) + " ms");
    }
    return;
  }
  // Default: zeros (valid for index inputs too) at batch 1 and at the
  // largest batch, variable dimensions set to 1. A failure here is only
  // logged: the guess may not suit the model, and every request still gets
  // the same checks and a clear error.
  std::vector<int64_t> batches = {max_batch_size_ > 0 ? 1 : 0};
  if (max_batch_size_ > 1) batches.push_back(max_batch_size_);
  for (int64_t b : batches) {
    WarmupSample sample;
    sample.name = "default batch " + std::to_string(std::max<int64_t>(b, 1));
    sample.batch_size = b;
    for (const auto& spec : inputs_) {
      WarmupInput in;
      in.name = spec.name;
      in.datatype = spec.datatype;
      for (int64_t d : spec.dims) in.dims.push_back(d < 0 ? 1 : d);
      sample.inputs.push_back(std::move(in));
    }
    const auto start = std::chrono::steady_clock::now();
    try {
      RunWarmupSample(sample, WarmupRuns(1));
      ctx_.Log(TORII_LOG_INFO,
               "warm-up " + sample.name + " in " + Fixed1(MillisSince(start)) + " ms");
    } catch (const std::exception& e) {
      ctx_.Log(TORII_LOG_WARNING,
               "warm-up " + sample.name + " (zeros) failed, the first request will pay "
               "for optimisation: " + e.what());
      return;
    }
  }
}

}  // namespace
}  // namespace torchscript
}  // namespace torii

TORII_RUNNER(torii::torchscript::TorchScriptModel, "torchscript", "1.0.0");
