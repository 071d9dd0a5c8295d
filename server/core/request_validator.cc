#include "server/core/request_validator.h"

#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/common/status_macros.h"
#include "server/core/datatype.h"

namespace torii {
namespace {

using inference::InferTensorContents;
using inference::ModelInferRequest;

std::string ShapeString(const google::protobuf::RepeatedField<int64_t>& s) {
  return absl::StrCat("[", absl::StrJoin(s, ","), "]");
}
std::string ShapeString(const std::vector<int64_t>& s) {
  return absl::StrCat("[", absl::StrJoin(s, ","), "]");
}

absl::Status Invalid(absl::string_view model, absl::string_view msg) {
  return absl::InvalidArgumentError(absl::StrCat("model '", model, "': ", msg));
}

// Number of typed values present, whatever field they are in; used to detect
// contents set alongside raw_input_contents.
int TypedValueCount(const InferTensorContents& c) {
  return c.bool_contents_size() + c.int_contents_size() +
         c.int64_contents_size() + c.uint_contents_size() +
         c.uint64_contents_size() + c.fp32_contents_size() +
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

// Converts typed contents of `datatype` to raw bytes. Checks the field used is
// the one the datatype travels in, the element count, and the value range of
// narrowed integer types.
absl::Status TypedToRaw(absl::string_view model, const std::string& name,
                        ToriiDataType datatype, const InferTensorContents& c,
                        int64_t elements, std::string& out) {
  auto count_error = [&](int got, absl::string_view field) {
    return Invalid(model, absl::StrCat("input '", name, "': shape needs ", elements,
                                       " elements, ", field, " has ", got));
  };
  // Everything must sit in exactly one field: the one for this datatype.
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
      return Invalid(model, absl::StrCat("input '", name, "': ", DataTypeName(datatype),
                                         " data can only be sent in raw_input_contents"));
  }
  if (TypedValueCount(c) != count) {
    return Invalid(model, absl::StrCat("input '", name, "' is ", DataTypeName(datatype),
                                       "; its values must be in contents.", field,
                                       " and no other contents field"));
  }
  if (count != elements) return count_error(count, absl::StrCat("contents.", field));

  auto range_error = [&](int64_t v) {
    return Invalid(model, absl::StrCat("input '", name, "': value ", v,
                                       " does not fit in ", DataTypeName(datatype)));
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
          return Invalid(model, absl::StrCat("input '", name, "': element too large"));
        }
        AppendBytesElement(out, s);
      }
      break;
    default:
      break;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateBytesBuffer(const char* data, size_t size,
                                 int64_t expected_elements, absl::string_view what) {
  const auto* p = reinterpret_cast<const unsigned char*>(data);
  size_t pos = 0;
  int64_t count = 0;
  while (pos < size) {
    if (size - pos < 4) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": BYTES element ", count, " has a truncated 4-byte length prefix at byte ",
          pos, " of ", size));
    }
    const uint32_t len = uint32_t(p[pos]) | (uint32_t(p[pos + 1]) << 8) |
                         (uint32_t(p[pos + 2]) << 16) | (uint32_t(p[pos + 3]) << 24);
    pos += 4;
    if (len > size - pos) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": BYTES element ", count, " declares ", len, " bytes but only ",
          size - pos, " remain"));
    }
    pos += len;
    ++count;
  }
  if (count != expected_elements) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": shape needs ",
                                                   expected_elements,
                                                   " BYTES elements, the data holds ",
                                                   count));
  }
  return absl::OkStatus();
}

absl::Status ValidateRequest(absl::string_view model, const ModelSignature& sig,
                             const ModelInferRequest& wire,
                             const ValidationLimits& limits, InferenceRequest* out) {
  out->wire = &wire;
  const bool raw = wire.raw_input_contents_size() > 0;
  if (raw && wire.raw_input_contents_size() != wire.inputs_size()) {
    return Invalid(model, absl::StrCat("raw_input_contents has ",
                                       wire.raw_input_contents_size(),
                                       " entries but the request has ", wire.inputs_size(),
                                       " inputs; it needs one entry per input"));
  }
  const auto& decl = sig.inputs();
  out->inputs.assign(decl.size(), InputData{});
  std::vector<bool> seen(decl.size(), false);
  // Reserved up front so pointers into converted strings stay valid.
  out->converted.reserve(raw ? 0 : wire.inputs_size());
  int64_t batch_rows = -1;
  size_t total_bytes = 0;

  for (int i = 0; i < wire.inputs_size(); ++i) {
    const auto& in = wire.inputs(i);
    const int idx = sig.InputIndex(in.name());
    if (idx < 0) {
      std::vector<std::string> names;
      for (const auto& d : decl) names.push_back(d.name);
      return Invalid(model, absl::StrCat("unknown input '", in.name(), "'; the model's inputs are ",
                                         absl::StrJoin(names, ", ")));
    }
    if (seen[idx]) {
      return Invalid(model, absl::StrCat("input '", in.name(), "' appears more than once"));
    }
    seen[idx] = true;
    const TensorSignature& ts = decl[idx];

    const ToriiDataType dt = DataTypeFromName(in.datatype());
    if (dt != ts.datatype) {
      return Invalid(model, absl::StrCat("input '", in.name(), "': expected datatype ",
                                         DataTypeName(ts.datatype), ", got '",
                                         in.datatype(), "'"));
    }

    // Shape: concrete, non-negative, matching dims (plus the batch dimension).
    const auto& shape = in.shape();
    for (int64_t d : shape) {
      if (d < 0) {
        return Invalid(model, absl::StrCat("input '", in.name(), "': shape ",
                                           ShapeString(shape),
                                           " has a negative dimension"));
      }
    }
    const size_t batch_dims = sig.batching() ? 1 : 0;
    std::vector<int64_t> expected = sig.batching() ? sig.WireShape(ts) : ts.dims;
    bool match = static_cast<size_t>(shape.size()) == ts.dims.size() + batch_dims;
    for (size_t k = 0; match && k < ts.dims.size(); ++k) {
      const int64_t want = ts.dims[k];
      match = want == -1 || want == shape[k + batch_dims];
    }
    if (!match) {
      return Invalid(model, absl::StrCat("input '", in.name(), "': expected shape ",
                                         ShapeString(expected), ", got ",
                                         ShapeString(shape)));
    }
    if (sig.batching()) {
      const int64_t rows = shape[0];
      if (rows < 1 || rows > sig.max_batch_size()) {
        return Invalid(model, absl::StrCat("input '", in.name(), "': batch size ", rows,
                                           " is outside 1..", sig.max_batch_size(),
                                           " (max_batch_size)"));
      }
      if (batch_rows >= 0 && rows != batch_rows) {
        return Invalid(model, absl::StrCat("input '", in.name(), "': batch size ", rows,
                                           " differs from the other inputs' ", batch_rows));
      }
      batch_rows = rows;
    }

    // Element count, guarding against overflow and the request size limit.
    int64_t elements = 1;
    const size_t esize = DataTypeSize(dt);
    const uint64_t max_elements =
        limits.max_input_bytes / (esize == 0 ? 4 : esize);  // BYTES: >= 4 B each
    for (int64_t d : shape) {
      if (d != 0 && static_cast<uint64_t>(elements) > max_elements / static_cast<uint64_t>(d)) {
        return Invalid(model, absl::StrCat("input '", in.name(), "': shape ",
                                           ShapeString(shape),
                                           " exceeds the request size limit of ",
                                           limits.max_input_bytes, " bytes"));
      }
      elements *= d;
    }

    InputData& data = out->inputs[idx];
    data.shape.assign(shape.begin(), shape.end());
    if (raw) {
      if (TypedValueCount(in.contents()) > 0) {
        return Invalid(model, absl::StrCat("input '", in.name(),
                                           "' sets contents while the request uses "
                                           "raw_input_contents; use one or the other"));
      }
      const std::string& bytes = wire.raw_input_contents(i);
      data.data = bytes.data();
      data.byte_size = bytes.size();
    } else {
      out->converted.emplace_back();
      TORII_RETURN_IF_ERROR(
          TypedToRaw(model, in.name(), dt, in.contents(), elements, out->converted.back()));
      data.data = out->converted.back().data();
      data.byte_size = out->converted.back().size();
    }
    if (esize != 0) {
      const uint64_t want = static_cast<uint64_t>(elements) * esize;
      if (data.byte_size != want) {
        return Invalid(model, absl::StrCat("input '", in.name(), "': shape ",
                                           ShapeString(shape), " of ",
                                           DataTypeName(dt), " needs ", want,
                                           " bytes, got ", data.byte_size));
      }
      // BOOL is one byte, 0 or 1: anything else is undefined behaviour for a
      // runner reading it as bool (found by fuzzing).
      if (dt == TORII_TYPE_BOOL) {
        for (size_t j = 0; j < data.byte_size; ++j) {
          const int b = static_cast<unsigned char>(data.data[j]);
          if (b > 1) {
            return Invalid(model, absl::StrCat("input '", in.name(), "': BOOL element ", j,
                                               " is ", b, "; BOOL values are 0 or 1"));
          }
        }
      }
    } else {
      TORII_RETURN_IF_ERROR(ValidateBytesBuffer(
          data.data, data.byte_size, elements,
          absl::StrCat("model '", model, "': input '", in.name(), "'")));
    }
    total_bytes += data.byte_size;
    if (total_bytes > limits.max_input_bytes) {
      return Invalid(model, absl::StrCat("the request's inputs exceed the request size limit of ",
                                         limits.max_input_bytes, " bytes"));
    }
  }
  for (size_t k = 0; k < decl.size(); ++k) {
    if (!seen[k]) {
      return Invalid(model, absl::StrCat("missing input '", decl[k].name, "' (",
                                         DataTypeName(decl[k].datatype), " ",
                                         ShapeString(sig.WireShape(decl[k])), ")"));
    }
  }
  out->rows = sig.batching() ? batch_rows : 1;

  out->output_requested.assign(sig.outputs().size(), wire.outputs_size() == 0);
  for (const auto& o : wire.outputs()) {
    const int idx = sig.OutputIndex(o.name());
    if (idx < 0) {
      std::vector<std::string> names;
      for (const auto& d : sig.outputs()) names.push_back(d.name);
      return Invalid(model, absl::StrCat("unknown requested output '", o.name(),
                                         "'; the model's outputs are ",
                                         absl::StrJoin(names, ", ")));
    }
    if (out->output_requested[idx]) {
      return Invalid(model, absl::StrCat("output '", o.name(), "' is requested more than once"));
    }
    if (o.parameters().count("classification") != 0) {
      return Invalid(model, absl::StrCat("output '", o.name(),
                                         "': the 'classification' parameter is not supported"));
    }
    out->output_requested[idx] = true;
  }
  return absl::OkStatus();
}

}  // namespace torii
