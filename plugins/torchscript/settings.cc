#include "settings.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

namespace torii {
namespace torchscript {
namespace {

using nlohmann::json;

[[noreturn]] void Invalid(const std::string& model, const std::string& what) {
  throw Error(TORII_STATUS_INVALID_ARGUMENT, "model '" + model + "': " + what);
}

std::optional<int64_t> ParseInt(const std::string& s) {
  int64_t v = 0;
  const char* end = s.data() + s.size();
  auto [p, ec] = std::from_chars(s.data(), end, v);
  if (ec != std::errc() || p != end || s.empty()) return std::nullopt;
  return v;
}

// Protobuf's JSON mapping prints 64-bit integers as strings and 32-bit ones
// as numbers; a hand-written config may do either, so accept both.
int64_t JsonInt(const json& v, const std::string& model,
                const std::string& what) {
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_string()) {
    if (auto i = ParseInt(v.get<std::string>())) return *i;
  }
  Invalid(model, what + " must be an integer, got " + v.dump());
}

// 0 leaves LibTorch's value; the upper bound only catches typos like "800".
int ThreadCount(const ParameterLookup& parameter, const std::string& key,
                const std::string& model) {
  const auto value = parameter(key);
  if (!value) return 0;
  const auto n = ParseInt(*value);
  if (!n || *n < 0 || *n > 1024) {
    Invalid(model, "parameter " + key + " must be an integer in [0, 1024], got '" +
                       *value + "'");
  }
  return static_cast<int>(*n);
}

const TensorSpec* FindSpec(const std::vector<TensorSpec>& specs,
                           const std::string& name) {
  for (const auto& s : specs) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

WarmupSample ParseWarmupSample(const json& w, size_t index,
                               const std::string& model,
                               const std::string& model_directory,
                               int32_t max_batch_size,
                               const std::vector<TensorSpec>& inputs) {
  if (!w.is_object()) Invalid(model, "model_warmup entries must be messages");
  WarmupSample sample;
  sample.name = w.value("name", std::string());
  const std::string label =
      "model_warmup '" + (sample.name.empty() ? "#" + std::to_string(index)
                                              : sample.name) + "'";

  const int64_t batch =
      w.contains("batch_size") ? JsonInt(w["batch_size"], model, label + " batch_size") : 0;
  if (max_batch_size > 0) {
    // Proto3 omits a zero batch_size, so 0 reads as "one row".
    sample.batch_size = batch == 0 ? 1 : batch;
    if (sample.batch_size < 0 || sample.batch_size > max_batch_size) {
      Invalid(model, label + " batch_size " + std::to_string(batch) +
                         " is outside [1, max_batch_size " +
                         std::to_string(max_batch_size) + "]");
    }
  } else if (batch > 1 || batch < 0) {
    Invalid(model, label + " batch_size must be 0 or 1 for a model with "
                           "max_batch_size 0, got " + std::to_string(batch));
  }
  const int64_t count = w.contains("count") ? JsonInt(w["count"], model, label + " count") : 0;
  if (count < 0 || count > 1000) {
    Invalid(model, label + " count must be in [0, 1000], got " + std::to_string(count));
  }
  sample.count = count == 0 ? 1 : static_cast<int>(count);

  const json empty = json::object();
  const json& ins = w.contains("inputs") ? w["inputs"] : empty;
  if (!ins.is_object()) Invalid(model, label + " inputs must be a map");
  for (auto it = ins.begin(); it != ins.end(); ++it) {
    const std::string& name = it.key();
    const json& in = it.value();
    const TensorSpec* spec = FindSpec(inputs, name);
    if (spec == nullptr) {
      Invalid(model, label + " names input '" + name +
                         "', which the config does not declare");
    }
    if (!in.is_object()) Invalid(model, label + " input '" + name + "' must be a message");
    WarmupInput wi;
    wi.name = name;
    const json dt = in.value("data_type", json("TYPE_INVALID"));
    wi.datatype = DataTypeFromConfig(dt.is_string() ? dt.get<std::string>() : dt.dump());
    if (wi.datatype != spec->datatype) {
      Invalid(model, label + " input '" + name + "' has data_type " +
                         DataTypeName(wi.datatype) + ", the input is declared " +
                         DataTypeName(spec->datatype));
    }
    if (in.contains("dims")) {
      if (!in["dims"].is_array()) Invalid(model, label + " input '" + name + "' dims must be a list");
      for (const auto& d : in["dims"]) {
        wi.dims.push_back(JsonInt(d, model, label + " input '" + name + "' dims"));
      }
    }
    bool fits = wi.dims.size() == spec->dims.size();
    for (size_t i = 0; fits && i < wi.dims.size(); ++i) {
      fits = wi.dims[i] >= 0 && (spec->dims[i] == -1 || spec->dims[i] == wi.dims[i]);
    }
    if (!fits) {
      Invalid(model, label + " input '" + name + "' dims " + ShapeString(wi.dims) +
                         " do not fit the declared dims " + ShapeString(spec->dims));
    }
    const bool zero = in.value("zero_data", false);
    const bool random = in.value("random_data", false);
    const std::string file = in.value("input_data_file", std::string());
    if (zero) {
      wi.source = WarmupInput::Source::kZero;
    } else if (random) {
      wi.source = WarmupInput::Source::kRandom;
    } else if (!file.empty()) {
      wi.source = WarmupInput::Source::kFile;
      wi.file = model_directory + "/warmup/" + file;
    } else {
      Invalid(model, label + " input '" + name +
                         "' sets none of zero_data, random_data, input_data_file");
    }
    sample.inputs.push_back(std::move(wi));
  }
  for (const auto& spec : inputs) {
    bool given = false;
    for (const auto& wi : sample.inputs) given = given || wi.name == spec.name;
    if (!given) Invalid(model, label + " does not set input '" + spec.name + "'");
  }
  return sample;
}

// splitmix64: a fixed, dependency-free generator so warm-up data is the
// same on every run and every machine.
uint64_t NextRandom(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

template <typename T>
void Put(std::string& out, size_t i, T v) {
  std::memcpy(&out[i * sizeof(T)], &v, sizeof(T));
}

}  // namespace

std::optional<bool> ParseBool(const std::string& value) {
  std::string v;
  for (char c : value) v.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  if (v == "true" || v == "1" || v == "on" || v == "yes") return true;
  if (v == "false" || v == "0" || v == "off" || v == "no") return false;
  return std::nullopt;
}

ToriiDataType DataTypeFromConfig(const std::string& name) {
  static const std::map<std::string, ToriiDataType> kNames = {
      {"TYPE_BOOL", TORII_TYPE_BOOL},     {"TYPE_UINT8", TORII_TYPE_UINT8},
      {"TYPE_UINT16", TORII_TYPE_UINT16}, {"TYPE_UINT32", TORII_TYPE_UINT32},
      {"TYPE_UINT64", TORII_TYPE_UINT64}, {"TYPE_INT8", TORII_TYPE_INT8},
      {"TYPE_INT16", TORII_TYPE_INT16},   {"TYPE_INT32", TORII_TYPE_INT32},
      {"TYPE_INT64", TORII_TYPE_INT64},   {"TYPE_FP16", TORII_TYPE_FP16},
      {"TYPE_FP32", TORII_TYPE_FP32},     {"TYPE_FP64", TORII_TYPE_FP64},
      {"TYPE_STRING", TORII_TYPE_BYTES},  {"TYPE_BF16", TORII_TYPE_BF16}};
  auto it = kNames.find(name);
  if (it != kNames.end()) return it->second;
  // The config enum and ToriiDataType share their numbers.
  if (auto n = ParseInt(name); n && *n >= TORII_TYPE_BOOL && *n <= TORII_TYPE_BF16) {
    return static_cast<ToriiDataType>(*n);
  }
  return TORII_TYPE_INVALID;
}

bool TorchCanHold(ToriiDataType t) {
  switch (t) {
    case TORII_TYPE_BOOL:
    case TORII_TYPE_UINT8:
    case TORII_TYPE_INT8:
    case TORII_TYPE_INT16:
    case TORII_TYPE_INT32:
    case TORII_TYPE_INT64:
    case TORII_TYPE_FP16:
    case TORII_TYPE_BF16:
    case TORII_TYPE_FP32:
    case TORII_TYPE_FP64:
      return true;
    default:
      return false;
  }
}

std::optional<int64_t> IndexFromName(const std::string& name) {
  const size_t pos = name.rfind("__");
  if (pos == std::string::npos) return std::nullopt;
  const std::string digits = name.substr(pos + 2);
  if (digits.empty() || digits.size() > 9 ||
      !std::all_of(digits.begin(), digits.end(),
                   [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  return ParseInt(digits);
}

Settings ParseSettings(const std::string& model_name,
                       const std::string& config_json,
                       const ParameterLookup& parameter,
                       const std::string& model_directory,
                       int32_t max_batch_size,
                       const std::vector<TensorSpec>& inputs) {
  Settings s;
  const json config = json::parse(config_json.empty() ? "{}" : config_json,
                                  nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded() || !config.is_object()) {
    Invalid(model_name, "the host passed a configuration that is not a JSON object");
  }

  if (config.contains("default_model_filename")) {
    const json& f = config["default_model_filename"];
    if (!f.is_string()) Invalid(model_name, "default_model_filename must be a string");
    if (!f.get<std::string>().empty()) s.model_filename = f.get<std::string>();
  }
  if (s.model_filename.find('/') != std::string::npos) {
    Invalid(model_name, "default_model_filename '" + s.model_filename +
                            "' must be a file name inside the version directory");
  }

  s.intra_op_thread_count = ThreadCount(parameter, "INTRA_OP_THREAD_COUNT", model_name);
  s.inter_op_thread_count = ThreadCount(parameter, "INTER_OP_THREAD_COUNT", model_name);
  if (const auto v = parameter("DISABLE_OPTIMIZED_EXECUTION")) {
    const auto b = ParseBool(*v);
    if (!b) {
      Invalid(model_name, "parameter DISABLE_OPTIMIZED_EXECUTION must be true or false, got '" +
                              *v + "'");
    }
    s.disable_optimized_execution = *b;
  }

  if (config.contains("model_warmup")) {
    const json& warmups = config["model_warmup"];
    if (!warmups.is_array()) Invalid(model_name, "model_warmup must be a list");
    for (size_t i = 0; i < warmups.size(); ++i) {
      s.warmup.push_back(ParseWarmupSample(warmups[i], i, model_name, model_directory,
                                           max_batch_size, inputs));
    }
  }
  return s;
}

std::string WarmupInputBytes(const WarmupInput& input,
                             const std::vector<int64_t>& shape) {
  int64_t elements = 1;
  for (int64_t d : shape) elements *= d;
  const size_t esize = DataTypeSize(input.datatype);
  const size_t bytes = static_cast<size_t>(elements) * esize;
  switch (input.source) {
    case WarmupInput::Source::kZero:
      return std::string(bytes, '\0');
    case WarmupInput::Source::kFile: {
      std::ifstream f(input.file, std::ios::binary);
      if (!f) {
        throw Error(TORII_STATUS_INVALID_ARGUMENT,
                    "warm-up input '" + input.name + "': cannot read '" + input.file + "'");
      }
      std::string data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      if (data.size() != bytes) {
        throw Error(TORII_STATUS_INVALID_ARGUMENT,
                    "warm-up input '" + input.name + "': '" + input.file + "' holds " +
                        std::to_string(data.size()) + " bytes, shape " + ShapeString(shape) +
                        " of " + DataTypeName(input.datatype) + " needs " +
                        std::to_string(bytes));
      }
      return data;
    }
    case WarmupInput::Source::kRandom:
      break;
  }
  std::string out(bytes, '\0');
  uint64_t state = 0x746f726969ULL;  // "torii"
  for (size_t i = 0; i < static_cast<size_t>(elements); ++i) {
    const uint64_t r = NextRandom(state);
    const bool bit = (r >> 63) != 0;
    switch (input.datatype) {
      case TORII_TYPE_BOOL:
      case TORII_TYPE_UINT8:
      case TORII_TYPE_INT8: Put<uint8_t>(out, i, bit); break;
      case TORII_TYPE_INT16: Put<int16_t>(out, i, bit); break;
      case TORII_TYPE_INT32: Put<int32_t>(out, i, bit); break;
      case TORII_TYPE_INT64: Put<int64_t>(out, i, bit); break;
      case TORII_TYPE_FP32: Put<float>(out, i, static_cast<float>(r >> 40) / 16777216.0f); break;
      case TORII_TYPE_FP64: Put<double>(out, i, static_cast<double>(r >> 11) / 9007199254740992.0); break;
      case TORII_TYPE_FP16: {
        // k/1024 for k in [0, 1024) is exact in half precision; build its
        // bits directly rather than pull in a float→half converter.
        const uint32_t k = static_cast<uint32_t>(r >> 54);
        uint16_t h = 0;
        if (k != 0) {
          int e = 31;
          while (((k >> e) & 1u) == 0) --e;
          h = static_cast<uint16_t>(((e + 5) << 10) | ((k - (1u << e)) << (10 - e)));
        }
        Put<uint16_t>(out, i, h);
        break;
      }
      case TORII_TYPE_BF16: {
        const float f = static_cast<float>(r >> 56) / 256.0f;  // exact in bf16
        uint32_t bits;
        std::memcpy(&bits, &f, 4);
        Put<uint16_t>(out, i, static_cast<uint16_t>(bits >> 16));
        break;
      }
      default:
        break;
    }
  }
  return out;
}

std::string SummarizeTorchError(const std::string& what) {
  std::vector<std::string> lines;
  std::istringstream in(what);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  // RuntimeError is torch's catch-all and tells the client nothing; other
  // types (AssertionError from a model's assert, ValueError…) do.
  auto strip = [](const std::string& l) {
    static const char kRuntime[] = "RuntimeError: ";
    return l.rfind(kRuntime, 0) == 0 ? l.substr(sizeof(kRuntime) - 1) : l;
  };
  auto first_non_empty = [&]() -> std::string {
    for (const auto& l : lines) {
      if (l.find_first_not_of(" \t") != std::string::npos) return strip(l);
    }
    return "unknown torch error";
  };
  static const char kInterpreter[] = "The following operation failed in the TorchScript interpreter";
  if (what.rfind(kInterpreter, 0) != 0) return first_non_empty();
  // The message proper is the last "<QualifiedName>Error: text" (or
  // Exception) line, after both tracebacks.
  for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
    const std::string& l = *it;
    const size_t colon = l.find(": ");
    if (colon == std::string::npos || colon == 0) continue;
    const std::string type = l.substr(0, colon);
    const bool identifier = std::all_of(type.begin(), type.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.';
    });
    const bool error_type =
        type.size() >= 5 && (type.compare(type.size() - 5, 5, "Error") == 0 ||
                             (type.size() >= 9 &&
                              type.compare(type.size() - 9, 9, "Exception") == 0));
    if (identifier && error_type) return strip(l);
  }
  return first_non_empty();
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ",";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

}  // namespace torchscript
}  // namespace torii
