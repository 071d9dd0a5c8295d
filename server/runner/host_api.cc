#include "server/runner/host_api.h"

#include <time.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/common/logging.h"
#include "torii/runner.h"

namespace torii {
namespace {

ToriiError* NewError(ToriiStatusCode code, std::string message) {
  return new ToriiError{code, std::move(message)};
}

// Runner codes are gRPC's; anything outside the known range is UNKNOWN, and a
// failure reported with OK is a runner bug, reported as INTERNAL.
absl::Status ToStatus(ToriiStatusCode code, std::string message) {
  if (code == TORII_STATUS_OK) {
    return absl::InternalError(absl::StrCat("runner reported a failure with status OK: ", message));
  }
  if (code < 0 || code > TORII_STATUS_UNAUTHENTICATED) return absl::UnknownError(message);
  return absl::Status(static_cast<absl::StatusCode>(code), message);
}

void FillSignature(const TensorSignature& t, ToriiTensor* out) {
  out->name = t.name.c_str();
  out->datatype = t.datatype;
  out->shape = t.dims.data();
  out->ndim = t.dims.size();
  out->data = nullptr;
  out->byte_size = 0;
}

bool FillInput(const ToriiBatch* b, size_t i, ToriiTensor* out) {
  if (i >= b->inputs.size()) return false;
  const auto& in = b->inputs[i];
  out->name = b->model->signature->inputs()[i].name.c_str();
  out->datatype = b->model->signature->inputs()[i].datatype;
  out->shape = in.shape.data();
  out->ndim = in.shape.size();
  out->data = in.data;
  out->byte_size = in.byte_size;
  return true;
}

std::string Shape(const int64_t* s, size_t n) {
  return absl::StrCat("[", absl::StrJoin(s, s + n, ","), "]");
}

ToriiError* AllocateOutput(ToriiBatch* b, const char* name, ToriiDataType dt,
                           const int64_t* shape, size_t ndim, size_t byte_size,
                           void** buffer) {
  *buffer = nullptr;
  const ModelSignature& sig = *b->model->signature;
  const int k = name == nullptr ? -1 : sig.OutputIndex(name);
  const std::string who = absl::StrCat("model '", b->model->name, "' output '",
                                       name == nullptr ? "(null)" : name, "'");
  if (k < 0) return NewError(TORII_STATUS_INTERNAL, who + " is not declared in config.pbtxt");
  const TensorSignature& t = sig.outputs()[k];
  ToriiBatch::Output& out = b->outputs[k];
  if (out.allocated) return NewError(TORII_STATUS_INTERNAL, who + " was allocated twice");
  if (dt != t.datatype) {
    return NewError(TORII_STATUS_INTERNAL,
                    absl::StrCat(who, ": config declares ", DataTypeName(t.datatype),
                                 ", the runner produced ", DataTypeName(dt)));
  }
  const size_t batch_dims = sig.batching() ? 1 : 0;
  bool ok = ndim == t.dims.size() + batch_dims && (shape != nullptr || ndim == 0);
  if (ok && sig.batching()) ok = shape[0] == b->total_rows;
  for (size_t i = 0; ok && i < t.dims.size(); ++i) {
    ok = shape[i + batch_dims] >= 0 && (t.dims[i] == -1 || t.dims[i] == shape[i + batch_dims]);
  }
  if (!ok) {
    std::vector<int64_t> want = sig.WireShape(t);
    if (sig.batching()) want[0] = b->total_rows;
    return NewError(TORII_STATUS_INTERNAL,
                    absl::StrCat(who, ": expected shape ", Shape(want.data(), want.size()),
                                 ", the runner produced ", Shape(shape, ndim)));
  }
  const size_t esize = DataTypeSize(dt);
  if (esize != 0) {
    int64_t elements = 1;
    for (size_t i = 0; i < ndim; ++i) elements *= shape[i];
    if (byte_size != static_cast<size_t>(elements) * esize) {
      return NewError(TORII_STATUS_INTERNAL,
                      absl::StrCat(who, ": shape ", Shape(shape, ndim), " needs ",
                                   elements * esize, " bytes, the runner asked for ",
                                   byte_size));
    }
  }
  out.allocated = true;
  out.datatype = dt;
  out.shape.assign(shape, shape + ndim);
  out.buffer.resize(byte_size);
  *buffer = out.buffer.data();
  return nullptr;
}

ToriiHostApi MakeApi() {
  ToriiHostApi a;
  std::memset(&a, 0, sizeof(a));
  a.struct_size = sizeof(ToriiHostApi);
  a.abi_version_major = TORII_RUNNER_ABI_VERSION_MAJOR;
  a.abi_version_minor = TORII_RUNNER_ABI_VERSION_MINOR;
  a.error_new = [](ToriiStatusCode code, const char* msg) {
    return NewError(code, msg ? msg : "");
  };
  a.error_delete = [](ToriiError* e) { delete e; };
  a.error_code = [](const ToriiError* e) { return e->code; };
  a.error_message = [](const ToriiError* e) { return e->message.c_str(); };
  a.log = [](const ToriiModel* m, ToriiLogLevel level, const char* msg) {
    LogFields fields;
    if (m != nullptr) {
      fields = {{"model", m->name}, {"version", std::to_string(m->version)}};
    }
    const LogLevel l = level == TORII_LOG_ERROR     ? LogLevel::kError
                       : level == TORII_LOG_WARNING ? LogLevel::kWarning
                       : level == TORII_LOG_INFO    ? LogLevel::kInfo
                                                    : LogLevel::kVerbose;
    Log(l, msg ? msg : "", fields);
  };
  a.model_name = [](const ToriiModel* m) { return m->name.c_str(); };
  a.model_version = [](const ToriiModel* m) { return m->version; };
  a.model_directory = [](const ToriiModel* m) { return m->directory.c_str(); };
  a.model_version_directory = [](const ToriiModel* m) { return m->version_directory.c_str(); };
  a.model_max_batch_size = [](const ToriiModel* m) { return m->signature->max_batch_size(); };
  a.model_config_json = [](const ToriiModel* m) { return m->config_json.c_str(); };
  a.model_input_count = [](const ToriiModel* m) { return m->signature->inputs().size(); };
  a.model_input = [](const ToriiModel* m, size_t i, ToriiTensor* out) {
    if (i >= m->signature->inputs().size()) return false;
    FillSignature(m->signature->inputs()[i], out);
    return true;
  };
  a.model_output_count = [](const ToriiModel* m) { return m->signature->outputs().size(); };
  a.model_output = [](const ToriiModel* m, size_t i, ToriiTensor* out) {
    if (i >= m->signature->outputs().size()) return false;
    FillSignature(m->signature->outputs()[i], out);
    return true;
  };
  a.model_parameter = [](const ToriiModel* m, const char* key) -> const char* {
    auto it = m->parameters.find(key);
    return it == m->parameters.end() ? nullptr : it->second.c_str();
  };
  a.batch_request_count = [](const ToriiBatch* b) { return b->requests->size(); };
  a.batch_request_rows = [](const ToriiBatch* b, size_t r) -> int64_t {
    return r < b->requests->size() ? (*b->requests)[r]->rows : 0;
  };
  a.batch_input_count = [](const ToriiBatch* b) { return b->inputs.size(); };
  a.batch_input = FillInput;
  a.batch_input_by_name = [](const ToriiBatch* b, const char* name, ToriiTensor* out) {
    const int i = name == nullptr ? -1 : b->model->signature->InputIndex(name);
    return i >= 0 && FillInput(b, static_cast<size_t>(i), out);
  };
  a.batch_output_requested = [](const ToriiBatch* b, const char* name) {
    const int k = name == nullptr ? -1 : b->model->signature->OutputIndex(name);
    return k >= 0 && b->requested[k];
  };
  a.batch_output_allocate = AllocateOutput;
  a.batch_fail_request = [](ToriiBatch* b, size_t r, ToriiError* e) {
    if (e == nullptr) return;
    if (r < b->failed.size()) {
      b->failed[r] = ToStatus(e->code, absl::StrCat("model '", b->model->name, "': ", e->message));
    }
    delete e;
  };
  a.batch_request_parameter = [](const ToriiBatch* b, size_t r, const char* key,
                                 ToriiParameter* out) {
    if (r >= b->requests->size() || key == nullptr) return false;
    const auto& params = (*b->requests)[r]->wire->parameters();
    auto it = params.find(key);
    if (it == params.end()) return false;
    const auto& p = it->second;
    out->type = TORII_PARAMETER_NONE;
    out->string_value = nullptr;
    out->string_size = 0;
    switch (p.parameter_choice_case()) {
      case inference::InferParameter::kBoolParam:
        out->type = TORII_PARAMETER_BOOL;
        out->bool_value = p.bool_param();
        break;
      case inference::InferParameter::kInt64Param:
        out->type = TORII_PARAMETER_INT64;
        out->int64_value = p.int64_param();
        break;
      case inference::InferParameter::kStringParam:
        out->type = TORII_PARAMETER_STRING;
        out->string_value = p.string_param().c_str();
        out->string_size = p.string_param().size();
        break;
      case inference::InferParameter::kDoubleParam:
        out->type = TORII_PARAMETER_DOUBLE;
        out->double_value = p.double_param();
        break;
      case inference::InferParameter::kUint64Param:
        out->type = TORII_PARAMETER_UINT64;
        out->uint64_value = p.uint64_param();
        break;
      default:
        break;
    }
    return true;
  };
  a.batch_deadline_ns = [](const ToriiBatch* b) { return b->deadline_ns; };
  a.batch_is_cancelled = [](const ToriiBatch* b) {
    const auto now = torii::InferenceRequest::Clock::now();
    for (const auto* r : *b->requests) {
      const bool gone = r->deadline <= now || (r->is_cancelled && r->is_cancelled());
      if (!gone) return false;
    }
    return true;
  };
  return a;
}

}  // namespace

const ToriiHostApi* HostApi() {
  static const ToriiHostApi api = MakeApi();
  return &api;
}

absl::Status ConsumeRunnerError(ToriiError* error, absl::string_view context) {
  if (error == nullptr) return absl::OkStatus();
  absl::Status s = ToStatus(error->code, absl::StrCat(context, error->message));
  delete error;
  return s;
}

}  // namespace torii
