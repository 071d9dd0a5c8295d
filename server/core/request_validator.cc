#include "server/core/request_validator.h"

#include <limits>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/common/status_macros.h"
#include "server/core/datatype.h"
#include "torii/host_checks.h"

namespace torii {
namespace {

class Checker {
 public:
  Checker(const ModelSpec& spec, const ValidationLimits& limits, InferenceRequest* request)
      : spec_(spec), limits_(limits), r_(*request) {}

  absl::Status Run() {
    TORII_RETURN_IF_ERROR(OrderInputs());
    for (size_t i = 0; i < r_.inputs.size(); ++i) TORII_RETURN_IF_ERROR(CheckInput(i));
    r_.rows = spec_.batching_enabled() ? batch_rows_ : 1;
    TORII_RETURN_IF_ERROR(MatchOutputs());
    return ReadParameters();
  }

 private:
  absl::Status Invalid(absl::string_view msg) const {
    return absl::InvalidArgumentError(absl::StrCat("model '", spec_.name, "': ", msg));
  }

  std::string DeclaredNames(const std::vector<TensorSpec>& tensors) const {
    std::vector<std::string> names;
    for (const auto& t : tensors) names.push_back(t.name);
    return absl::StrJoin(names, ", ");
  }

  // Every declared input exactly once; the result is in declared order.
  absl::Status OrderInputs() {
    const auto& decl = spec_.inputs;
    std::vector<InferenceInput> ordered(decl.size());
    std::vector<bool> seen(decl.size(), false);
    for (InferenceInput& in : r_.inputs) {
      const int idx = spec_.InputIndex(in.name);
      if (idx < 0) {
        return Invalid(absl::StrCat("unknown input '", in.name, "'; the model's inputs are ",
                                    DeclaredNames(decl)));
      }
      if (seen[idx]) return Invalid(absl::StrCat("input '", in.name, "' appears more than once"));
      seen[idx] = true;
      ordered[idx] = std::move(in);
    }
    for (size_t k = 0; k < decl.size(); ++k) {
      if (!seen[k]) {
        return Invalid(absl::StrCat("missing input '", decl[k].name, "' (",
                                    DataTypeName(decl[k].datatype), " ",
                                    ShapeString(spec_.WireShape(decl[k])), ")"));
      }
    }
    r_.inputs = std::move(ordered);
    return absl::OkStatus();
  }

  absl::Status CheckInput(size_t idx) {
    const TensorSpec& ts = spec_.inputs[idx];
    const InferenceInput& in = r_.inputs[idx];
    if (in.datatype != ts.datatype) {
      return Invalid(absl::StrCat("input '", in.name, "': expected datatype ",
                                  DataTypeName(ts.datatype), ", got '",
                                  DataTypeName(in.datatype), "'"));
    }
    TORII_RETURN_IF_ERROR(CheckShape(ts, in));
    const size_t esize = DataTypeSize(in.datatype);
    // BYTES elements take at least their 4-byte length prefix each.
    const uint64_t max_elements = limits_.max_input_bytes / (esize == 0 ? 4 : esize);
    const int64_t elements = CheckedElementCount(in.shape, max_elements);
    if (elements < 0) {
      return Invalid(absl::StrCat("input '", in.name, "': shape ", ShapeString(in.shape),
                                  " exceeds the request size limit of ", limits_.max_input_bytes,
                                  " bytes"));
    }
    if (esize != 0) {
      const uint64_t want = static_cast<uint64_t>(elements) * esize;
      if (in.byte_size != want) {
        return Invalid(absl::StrCat("input '", in.name, "': shape ", ShapeString(in.shape), " of ",
                                    DataTypeName(in.datatype), " needs ", want, " bytes, got ",
                                    in.byte_size));
      }
      // BOOL is one byte, 0 or 1: anything else is undefined behaviour for a
      // runner reading it as bool (found by fuzzing).
      if (in.datatype == TORII_TYPE_BOOL) {
        for (size_t j = 0; j < in.byte_size; ++j) {
          const int b = static_cast<unsigned char>(in.data[j]);
          if (b > 1) {
            return Invalid(absl::StrCat("input '", in.name, "': BOOL element ", j, " is ", b,
                                        "; BOOL values are 0 or 1"));
          }
        }
      }
    } else {
      TORII_RETURN_IF_ERROR(
          ValidateBytesBuffer(in.data, in.byte_size, elements,
                              absl::StrCat("model '", spec_.name, "': input '", in.name, "'")));
    }
    total_bytes_ += in.byte_size;
    if (total_bytes_ > limits_.max_input_bytes) {
      return Invalid(absl::StrCat("the request's inputs exceed the request size limit of ",
                                  limits_.max_input_bytes, " bytes"));
    }
    return absl::OkStatus();
  }

  // Concrete, non-negative, matching the declared dims (plus the batch
  // dimension, the same for every input, within max_batch_size).
  absl::Status CheckShape(const TensorSpec& ts, const InferenceInput& in) {
    for (int64_t d : in.shape) {
      if (d < 0) {
        return Invalid(absl::StrCat("input '", in.name, "': shape ", ShapeString(in.shape),
                                    " has a negative dimension"));
      }
    }
    const bool batching = spec_.batching_enabled();
    const size_t batch_dims = batching ? 1 : 0;
    bool match = in.shape.size() == ts.dims.size() + batch_dims;
    for (size_t k = 0; match && k < ts.dims.size(); ++k) {
      match = ts.dims[k] == -1 || ts.dims[k] == in.shape[k + batch_dims];
    }
    if (!match) {
      return Invalid(absl::StrCat("input '", in.name, "': expected shape ",
                                  ShapeString(spec_.WireShape(ts)), ", got ",
                                  ShapeString(in.shape)));
    }
    if (!batching) return absl::OkStatus();
    const int64_t rows = in.shape[0];
    if (rows < 1 || rows > spec_.max_batch_size) {
      return Invalid(absl::StrCat("input '", in.name, "': batch size ", rows, " is outside 1..",
                                  spec_.max_batch_size, " (max_batch_size)"));
    }
    if (batch_rows_ >= 0 && rows != batch_rows_) {
      return Invalid(absl::StrCat("input '", in.name, "': batch size ", rows,
                                  " differs from the other inputs' ", batch_rows_));
    }
    batch_rows_ = rows;
    return absl::OkStatus();
  }

  absl::Status MatchOutputs() {
    r_.output_requested.assign(spec_.outputs.size(), r_.requested_outputs.empty() ? 1 : 0);
    for (const RequestedOutput& o : r_.requested_outputs) {
      const int idx = spec_.OutputIndex(o.name);
      if (idx < 0) {
        return Invalid(absl::StrCat("unknown requested output '", o.name,
                                    "'; the model's outputs are ", DeclaredNames(spec_.outputs)));
      }
      if (r_.output_requested[idx]) {
        return Invalid(absl::StrCat("output '", o.name, "' is requested more than once"));
      }
      if (o.parameters.Find("classification") != nullptr) {
        return Invalid(absl::StrCat("output '", o.name,
                                    "': the 'classification' parameter is not supported"));
      }
      r_.output_requested[idx] = 1;
    }
    return absl::OkStatus();
  }

  // Request parameters the server itself acts on (the rest go to the runner).
  absl::Status ReadParameters() {
    if (const Parameter* p = r_.parameters.Find("timeout")) {
      int64_t us = 0;
      if (!p->AsInteger(&us) || us < 0) {
        return Invalid("the 'timeout' parameter must be a whole number of microseconds >= 0");
      }
      r_.queue_timeout = std::chrono::microseconds(us);
    }
    return absl::OkStatus();
  }

  const ModelSpec& spec_;
  const ValidationLimits& limits_;
  InferenceRequest& r_;
  int64_t batch_rows_ = -1;
  size_t total_bytes_ = 0;
};

}  // namespace

int64_t CheckedElementCount(const Shape& shape, uint64_t max_elements) {
  uint64_t elements = 1;
  for (int64_t d : shape) {
    if (d < 0) return -1;
    if (d != 0 && elements > max_elements / static_cast<uint64_t>(d)) return -1;
    elements *= static_cast<uint64_t>(d);
  }
  return elements > max_elements ? -1 : static_cast<int64_t>(elements);
}

absl::Status ValidateBytesBuffer(const char* data, size_t size, int64_t expected_elements,
                                 absl::string_view what) {
  std::string error =
      host_checks::CheckBytesBuffer(data, size, expected_elements, std::string(what));
  if (error.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(error);
}

absl::Status ValidateRequest(const ModelSpec& spec, const ValidationLimits& limits,
                             InferenceRequest* request) {
  return Checker(spec, limits, request).Run();
}

}  // namespace torii
