#include "server/grpc/wire_request.h"

#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "server/common/status_macros.h"
#include "server/core/datatype.h"

namespace torii {
namespace {

using inference::InferTensorContents;
using inference::ModelInferRequest;

absl::Status Invalid(const ModelInferRequest& wire, absl::string_view msg) {
  return absl::InvalidArgumentError(absl::StrCat("model '", wire.model_name(), "': ", msg));
}

// Number of typed values present, whatever field they are in; used to detect
// contents set alongside raw_input_contents.
int TypedValueCount(const InferTensorContents& c) {
  return c.bool_contents_size() + c.int_contents_size() + c.int64_contents_size() +
         c.uint_contents_size() + c.uint64_contents_size() + c.fp32_contents_size() +
         c.fp64_contents_size() + c.bytes_contents_size();
}

template <typename Dst, typename Src>
void Narrow(const google::protobuf::RepeatedField<Src>& src, std::string& out) {
  out.resize(src.size() * sizeof(Dst));
  char* p = out.data();
  for (Src v : src) {
    const Dst d = static_cast<Dst>(v);
    std::memcpy(p, &d, sizeof(Dst));
    p += sizeof(Dst);
  }
}

// The element count of a shape when it is concrete and fits in an int;
// -1 otherwise (ValidateRequest reports bad shapes).
int64_t ElementsOrMinusOne(const google::protobuf::RepeatedField<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0 || (d != 0 && n > std::numeric_limits<int32_t>::max() / d)) return -1;
    n *= d;
  }
  return n;
}

// Converts typed contents of `datatype` to raw bytes. Checks the field used is
// the one the datatype travels in, the element count (when the shape is
// concrete), and the value range of narrowed integer types.
absl::Status TypedToRaw(const ModelInferRequest& wire, const std::string& name,
                        ToriiDataType datatype, const InferTensorContents& c, int64_t elements,
                        std::string& out) {
  absl::string_view field;
  int count = 0;
  switch (datatype) {
    case TORII_TYPE_BOOL: field = "bool_contents"; count = c.bool_contents_size(); break;
    case TORII_TYPE_INT8:
    case TORII_TYPE_INT16:
    case TORII_TYPE_INT32: field = "int_contents"; count = c.int_contents_size(); break;
    case TORII_TYPE_INT64: field = "int64_contents"; count = c.int64_contents_size(); break;
    case TORII_TYPE_UINT8:
    case TORII_TYPE_UINT16:
    case TORII_TYPE_UINT32: field = "uint_contents"; count = c.uint_contents_size(); break;
    case TORII_TYPE_UINT64: field = "uint64_contents"; count = c.uint64_contents_size(); break;
    case TORII_TYPE_FP32: field = "fp32_contents"; count = c.fp32_contents_size(); break;
    case TORII_TYPE_FP64: field = "fp64_contents"; count = c.fp64_contents_size(); break;
    case TORII_TYPE_BYTES: field = "bytes_contents"; count = c.bytes_contents_size(); break;
    default:
      return Invalid(wire, absl::StrCat("input '", name, "': ", DataTypeName(datatype),
                                        " data can only be sent in raw_input_contents"));
  }
  if (TypedValueCount(c) != count) {
    return Invalid(wire, absl::StrCat("input '", name, "' is ", DataTypeName(datatype),
                                      "; its values must be in contents.", field,
                                      " and no other contents field"));
  }
  if (elements >= 0 && count != elements) {
    return Invalid(wire, absl::StrCat("input '", name, "': shape needs ", elements,
                                      " elements, contents.", field, " has ", count));
  }
  auto range_error = [&](int64_t v) {
    return Invalid(wire, absl::StrCat("input '", name, "': value ", v, " does not fit in ",
                                      DataTypeName(datatype)));
  };
  switch (datatype) {
    case TORII_TYPE_BOOL:
      out.resize(count);
      for (int i = 0; i < count; ++i) out[i] = c.bool_contents(i) ? 1 : 0;
      break;
    case TORII_TYPE_INT8:
      for (int32_t v : c.int_contents()) {
        if (v < INT8_MIN || v > INT8_MAX) return range_error(v);
      }
      Narrow<int8_t>(c.int_contents(), out);
      break;
    case TORII_TYPE_INT16:
      for (int32_t v : c.int_contents()) {
        if (v < INT16_MIN || v > INT16_MAX) return range_error(v);
      }
      Narrow<int16_t>(c.int_contents(), out);
      break;
    case TORII_TYPE_INT32: Narrow<int32_t>(c.int_contents(), out); break;
    case TORII_TYPE_INT64: Narrow<int64_t>(c.int64_contents(), out); break;
    case TORII_TYPE_UINT8:
      for (uint32_t v : c.uint_contents()) {
        if (v > UINT8_MAX) return range_error(v);
      }
      Narrow<uint8_t>(c.uint_contents(), out);
      break;
    case TORII_TYPE_UINT16:
      for (uint32_t v : c.uint_contents()) {
        if (v > UINT16_MAX) return range_error(v);
      }
      Narrow<uint16_t>(c.uint_contents(), out);
      break;
    case TORII_TYPE_UINT32: Narrow<uint32_t>(c.uint_contents(), out); break;
    case TORII_TYPE_UINT64: Narrow<uint64_t>(c.uint64_contents(), out); break;
    case TORII_TYPE_FP32: Narrow<float>(c.fp32_contents(), out); break;
    case TORII_TYPE_FP64: Narrow<double>(c.fp64_contents(), out); break;
    case TORII_TYPE_BYTES:
      for (const std::string& s : c.bytes_contents()) {
        if (s.size() > std::numeric_limits<uint32_t>::max()) {
          return Invalid(wire, absl::StrCat("input '", name, "': element too large"));
        }
        AppendBytesElement(out, s);
      }
      break;
    default:
      break;
  }
  return absl::OkStatus();
}

// Resizes `s` to `n` bytes without writing the new ones: the caller writes
// every byte. std::string::resize would zero them first, one pass over the
// buffer the runner overwrites anyway (64 KiB of memset per 64 KiB output).
// C++23's resize_and_overwrite does this; in C++17 libstdc++ has only its
// private _M_set_length, reached here the standard way to name a private
// member (an explicit instantiation, where access is not checked). Other
// standard libraries zero the bytes as before.
#if defined(__GLIBCXX__) && _GLIBCXX_USE_CXX11_ABI
struct StringSetLength {
  using type = void (std::string::*)(std::string::size_type);
};
StringSetLength::type MemberOf(StringSetLength);
template <typename Tag, typename Tag::type Member>
struct Expose {
  friend typename Tag::type MemberOf(Tag) { return Member; }
};
template struct Expose<StringSetLength, &std::string::_M_set_length>;

void ResizeUninitialized(std::string* s, size_t n) {
  if (n <= s->size()) {
    s->resize(n);
    return;
  }
  s->reserve(n);
  (s->*MemberOf(StringSetLength()))(n);
}
#else
void ResizeUninitialized(std::string* s, size_t n) { s->resize(n); }
#endif

}  // namespace

void ParametersFromWire(const google::protobuf::Map<std::string, inference::InferParameter>& wire,
                        Parameters* out) {
  for (const auto& [key, p] : wire) {
    switch (p.parameter_choice_case()) {
      case inference::InferParameter::kBoolParam: out->Set(key, p.bool_param()); break;
      case inference::InferParameter::kInt64Param: out->Set(key, p.int64_param()); break;
      case inference::InferParameter::kUint64Param: out->Set(key, p.uint64_param()); break;
      case inference::InferParameter::kDoubleParam: out->Set(key, p.double_param()); break;
      case inference::InferParameter::kStringParam: out->Set(key, p.string_param()); break;
      default: break;  // a parameter with no value carries nothing
    }
  }
}

void ParametersToWire(const Parameters& params,
                      google::protobuf::Map<std::string, inference::InferParameter>* out) {
  for (const auto& [key, p] : params) {
    inference::InferParameter& w = (*out)[key];
    if (p.is_bool()) w.set_bool_param(p.as_bool());
    if (p.is_int64()) w.set_int64_param(p.as_int64());
    if (p.is_uint64()) w.set_uint64_param(p.as_uint64());
    if (p.is_double()) w.set_double_param(p.as_double());
    if (p.is_string()) w.set_string_param(p.as_string());
  }
}

absl::Status RequestFromWire(const ModelInferRequest& wire, InferenceRequest* out,
                             std::vector<std::string>* converted) {
  out->model_name = wire.model_name();
  out->model_version = wire.model_version();
  out->id = wire.id();
  ParametersFromWire(wire.parameters(), &out->parameters);
  const bool raw = wire.raw_input_contents_size() > 0;
  if (raw && wire.raw_input_contents_size() != wire.inputs_size()) {
    return Invalid(wire, absl::StrCat("raw_input_contents has ", wire.raw_input_contents_size(),
                                      " entries but the request has ", wire.inputs_size(),
                                      " inputs; it needs one entry per input"));
  }
  // Reserved up front so pointers into converted strings stay valid.
  converted->clear();
  converted->reserve(raw ? 0 : wire.inputs_size());
  out->inputs.resize(wire.inputs_size());
  for (int i = 0; i < wire.inputs_size(); ++i) {
    const auto& in = wire.inputs(i);
    InferenceInput& dst = out->inputs[i];
    dst.name = in.name();
    dst.datatype = DataTypeFromName(in.datatype());
    if (dst.datatype == TORII_TYPE_INVALID) {
      return Invalid(wire, absl::StrCat("input '", in.name(), "': '", in.datatype(),
                                        "' is not a datatype (BOOL, UINT8..UINT64, INT8..INT64, "
                                        "FP16, FP32, FP64, BF16, BYTES)"));
    }
    dst.shape.assign(in.shape().begin(), in.shape().end());
    if (raw) {
      if (TypedValueCount(in.contents()) > 0) {
        return Invalid(wire, absl::StrCat("input '", in.name(),
                                          "' sets contents while the request uses "
                                          "raw_input_contents; use one or the other"));
      }
      const std::string& bytes = wire.raw_input_contents(i);
      dst.data = bytes.data();
      dst.byte_size = bytes.size();
    } else {
      converted->emplace_back();
      TORII_RETURN_IF_ERROR(TypedToRaw(wire, in.name(), dst.datatype, in.contents(),
                                       ElementsOrMinusOne(in.shape()), converted->back()));
      dst.data = converted->back().data();
      dst.byte_size = converted->back().size();
    }
  }
  out->requested_outputs.resize(wire.outputs_size());
  for (int i = 0; i < wire.outputs_size(); ++i) {
    out->requested_outputs[i].name = wire.outputs(i).name();
    ParametersFromWire(wire.outputs(i).parameters(), &out->requested_outputs[i].parameters);
  }
  return absl::OkStatus();
}

absl::StatusOr<char*> WireResponse::AllocateBuffer(size_t index) {
  // Output k's bytes are raw_output_contents(k): one entry per output, in
  // the order outputs are added.
  // Uninitialised, like the default InferenceResponse buffer: the writer
  // fills every byte.
  std::string* raw = message_.add_raw_output_contents();
  ResizeUninitialized(raw, outputs()[index].byte_size);
  return raw->data();
}

inference::ModelInferResponse& WireResponse::Finish() {
  message_.set_model_name(model_name);
  message_.set_model_version(model_version);
  message_.set_id(id);
  ParametersToWire(parameters, message_.mutable_parameters());
  message_.clear_outputs();
  for (const OutputTensor& o : outputs()) {
    auto* t = message_.add_outputs();
    t->set_name(o.name);
    t->set_datatype(DataTypeName(o.datatype));
    for (int64_t d : o.shape) t->add_shape(d);
  }
  return message_;
}

}  // namespace torii
