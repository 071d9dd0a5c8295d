#include "server/runner/host_api.h"

#include <time.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "server/common/logging.h"
#include "server/core/request_validator.h"
#include "torii/host_checks.h"
#include "server/core/datatype.h"

// A request a runner answers itself (ABI 1.2). It keeps itself alive (self)
// until the final send; the batch holds another reference during execute.
struct ToriiResponseSender {
  // `mu` guards the state below and is never held while a send waits for the
  // receiver, so that execute's return (which hands the request over under
  // it) and sender_is_cancelled never wait for a slow client. `send_mu`
  // makes the sends of one request one at a time, in order.
  std::mutex mu;
  std::mutex send_mu;
  const ToriiModel* model = nullptr;
  torii::InferenceRequest* request = nullptr;       // valid until finished
  std::unique_ptr<torii::InferenceRequest> owned;   // once execute returned
  bool finished = false;
  int64_t sent = 0;
  std::shared_ptr<ToriiResponseSender> self;
};

struct ToriiResponse {
  std::shared_ptr<ToriiResponseSender> sender;
  std::unique_ptr<torii::InferenceResponse> response;
};

struct ToriiInferRequest {
  const ToriiModel* caller = nullptr;
  std::unique_ptr<torii::InferenceRequest> request;
};

struct ToriiInferResult {
  std::unique_ptr<torii::InferenceResponse> response;
  std::string message;  // NUL-terminated copy of the status message
};

namespace torii {
namespace {

RunnerLogForwarder& LogForwarder() {
  static RunnerLogForwarder forwarder;
  return forwarder;
}

SenderResponseFactory& SenderResponses() {
  static SenderResponseFactory factory;
  return factory;
}

ToriiError* NewError(ToriiStatusCode code, std::string message) {
  return new ToriiError{code, std::move(message)};
}

absl::Status ToStatus(ToriiStatusCode code, std::string message) {
  if (code == TORII_STATUS_OK) {
    return absl::InternalError(absl::StrCat("runner reported a failure with status OK: ", message));
  }
  if (code < 0 || code > TORII_STATUS_UNAUTHENTICATED) return absl::UnknownError(message);
  return absl::Status(static_cast<absl::StatusCode>(code), message);
}

ToriiError* FromStatus(const absl::Status& s) {
  if (s.ok()) return nullptr;
  return NewError(static_cast<ToriiStatusCode>(s.code()), std::string(s.message()));
}

ToriiError* FromMetricResult(const host_metrics::Result& r) {
  return r.ok() ? nullptr : NewError(r.code, r.message);
}

ToriiTensor BlankTensor() {
  ToriiTensor t;
  std::memset(&t, 0, sizeof(t));
  t.struct_size = sizeof(t);
  return t;
}

// Fills a runner's out-struct without writing past its struct_size.
void PutSpec(const TensorSpec& s, ToriiTensor* out) {
  ToriiTensor t = BlankTensor();
  t.name = s.name.c_str();
  t.datatype = s.datatype;
  t.shape = s.dims.data();
  t.ndim = s.dims.size();
  host_checks::FillSized(t, out);
}

void PutTensor(const std::string& name, ToriiDataType datatype, const Shape& shape,
               const char* data, size_t byte_size, ToriiTensor* out) {
  ToriiTensor t = BlankTensor();
  t.name = name.c_str();
  t.datatype = datatype;
  t.shape = shape.data();
  t.ndim = shape.size();
  t.data = data;
  t.byte_size = byte_size;
  host_checks::FillSized(t, out);
}

void PutParameter(const Parameter& p, ToriiParameter* out) {
  ToriiParameter v;
  std::memset(&v, 0, sizeof(v));
  v.struct_size = sizeof(v);
  if (p.is_bool()) {
    v.type = TORII_PARAMETER_BOOL;
    v.bool_value = p.as_bool();
  } else if (p.is_int64()) {
    v.type = TORII_PARAMETER_INT64;
    v.int64_value = p.as_int64();
  } else if (p.is_uint64()) {
    v.type = TORII_PARAMETER_UINT64;
    v.uint64_value = p.as_uint64();
  } else if (p.is_double()) {
    v.type = TORII_PARAMETER_DOUBLE;
    v.double_value = p.as_double();
  } else {
    v.type = TORII_PARAMETER_STRING;
    v.string_value = p.as_string().c_str();
    v.string_size = p.as_string().size();
  }
  host_checks::FillSized(v, out);
}

const InferenceRequest* RequestAt(const ToriiBatch* b, size_t r) {
  return r < b->requests->size() ? (*b->requests)[r].get() : nullptr;
}

bool FillInput(const ToriiBatch* b, size_t i, ToriiTensor* out) {
  if (out == nullptr || i >= b->inputs.size()) return false;
  const auto& in = b->inputs[i];
  const TensorSpec& spec = b->model->spec->inputs[i];
  PutTensor(spec.name, spec.datatype, in.shape, in.data, in.byte_size, out);
  return true;
}

// The checks every output allocation passes (host_checks.h, shared with the
// SDK's fake host). `rows` is the batch dimension the output must have, or
// -1 for a model that does not batch.
ToriiError* CheckAllocation(const ModelSpec& spec, const char* name, int64_t rows,
                            ToriiDataType dt, const int64_t* shape, size_t ndim,
                            size_t byte_size, int* index) {
  const int k = name == nullptr ? -1 : spec.OutputIndex(name);
  const std::string who = absl::StrCat("model '", spec.name, "' output '",
                                       name == nullptr ? "(null)" : name, "'");
  if (k < 0) return NewError(TORII_STATUS_INTERNAL, who + " is not declared in config.pbtxt");
  const TensorSpec& t = spec.outputs[k];
  std::string error = host_checks::CheckOutputAllocation(
      who, {t.datatype, &t.dims}, spec.batching_enabled() ? rows : -1, dt, shape, ndim,
      byte_size);
  if (!error.empty()) return NewError(TORII_STATUS_INTERNAL, std::move(error));
  *index = k;
  return nullptr;
}

ToriiError* AllocateOutput(ToriiBatch* b, const char* name, ToriiDataType dt,
                           const int64_t* shape, size_t ndim, size_t byte_size, void** buffer) {
  if (buffer == nullptr) return NewError(TORII_STATUS_INVALID_ARGUMENT, "buffer is NULL");
  *buffer = nullptr;
  int k = -1;
  if (ToriiError* e = CheckAllocation(*b->model->spec, name, b->total_rows, dt, shape, ndim,
                                      byte_size, &k)) {
    return e;
  }
  ToriiBatch::Output& out = b->outputs[k];
  if (out.allocated) {
    return NewError(TORII_STATUS_INTERNAL, absl::StrCat("model '", b->model->name, "' output '",
                                                        name, "' was allocated twice"));
  }
  out.allocated = true;
  out.datatype = dt;
  out.shape.assign(shape, shape + ndim);
  out.byte_size = byte_size;
  // One request that wants this output: write straight into its response.
  if (b->direct_response != nullptr && (*b->requests)[0]->output_requested[k]) {
    auto data = b->direct_response->AddOutput(b->model->spec->outputs[k].name, dt, out.shape,
                                              byte_size);
    if (!data.ok()) return FromStatus(data.status());
    out.data = *data;
  } else {
    out.scratch.reset(new char[byte_size == 0 ? 1 : byte_size]);
    out.data = out.scratch.get();
  }
  *buffer = out.data;
  return nullptr;
}

// --- senders ---------------------------------------------------------------

ToriiResponseSender* TakeSender(ToriiBatch* b, size_t r) {
  if (r >= b->requests->size()) return nullptr;
  if (b->senders[r] == nullptr) {
    auto s = std::make_shared<ToriiResponseSender>();
    s->model = b->model;
    s->request = (*b->requests)[r].get();
    s->self = s;
    b->senders[r] = s;
    std::lock_guard<std::mutex> lock(b->model->mu);
    auto& all = const_cast<ToriiModel*>(b->model)->senders;
    all.erase(std::remove_if(all.begin(), all.end(), [](const auto& w) { return w.expired(); }),
              all.end());
    all.push_back(s);
  }
  return b->senders[r].get();
}

ToriiResponse* NewResponseFor(ToriiResponseSender* s) {
  if (s == nullptr) return nullptr;
  std::lock_guard<std::mutex> lock(s->mu);
  if (s->finished) return nullptr;
  auto* r = new ToriiResponse;
  r->sender = s->self;
  if (const SenderResponseFactory& f = SenderResponses()) {
    r->response = f();
    r->response->model_name = s->request->model_name;
    r->response->model_version = s->request->served_version;
    r->response->id = s->request->id;
  } else {
    r->response = s->request->NewResponse();
  }
  return r;
}

ToriiError* AllocateResponseOutput(ToriiResponse* r, const char* name, ToriiDataType dt,
                                   const int64_t* shape, size_t ndim, size_t byte_size,
                                   void** buffer) {
  if (r == nullptr || buffer == nullptr) {
    return NewError(TORII_STATUS_INVALID_ARGUMENT, "response or buffer is NULL");
  }
  *buffer = nullptr;
  ToriiResponseSender& s = *r->sender;
  int64_t rows;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.finished) return NewError(TORII_STATUS_FAILED_PRECONDITION, "the request is finished");
    rows = s.request->rows;
  }
  int k = -1;
  if (ToriiError* e = CheckAllocation(*s.model->spec, name, rows, dt, shape, ndim, byte_size, &k)) {
    return e;
  }
  for (const auto& o : r->response->outputs()) {
    if (o.name == name) {
      return NewError(TORII_STATUS_INTERNAL, absl::StrCat("model '", s.model->name, "' output '",
                                                          name, "' was allocated twice"));
    }
  }
  auto data = r->response->AddOutput(name, dt, Shape(shape, shape + ndim), byte_size);
  if (!data.ok()) return FromStatus(data.status());
  *buffer = *data;
  return nullptr;
}

// Checks a response's outputs once they are written: BYTES must be well
// formed before a client sees them.
absl::Status CheckWrittenOutputs(const ToriiModel& m, const InferenceResponse& r) {
  for (const auto& o : r.outputs()) {
    if (o.datatype != TORII_TYPE_BYTES) continue;
    int64_t elements = 1;
    for (int64_t d : o.shape) elements *= d;
    std::string error = host_checks::CheckBytesBuffer(
        o.data, o.byte_size, elements,
        absl::StrCat("model '", m.name, "': runner output '", o.name, "'"));
    if (!error.empty()) return absl::InternalError(error);
  }
  return absl::OkStatus();
}

// The one response of a model that is not decoupled must carry every output
// its request asked for, as a batch's answer must.
absl::Status CheckRequestedOutputs(const ModelSpec& spec, const InferenceRequest& req,
                                   const InferenceResponse& r) {
  for (size_t k = 0; k < spec.outputs.size(); ++k) {
    if (!req.output_requested[k]) continue;
    bool found = false;
    for (const auto& o : r.outputs()) found = found || o.name == spec.outputs[k].name;
    if (!found) {
      return absl::InternalError(absl::StrCat("model '", spec.name,
                                              "': the runner produced no output '",
                                              spec.outputs[k].name, "'"));
    }
  }
  return absl::OkStatus();
}

ToriiError* SenderSend(ToriiResponseSender* s, ToriiResponse* response, ToriiError* error,
                       uint32_t flags) {
  std::unique_ptr<ToriiResponse> resp(response);
  std::unique_ptr<ToriiError> err(error);
  if (s == nullptr) return NewError(TORII_STATUS_INVALID_ARGUMENT, "sender is NULL");
  if (resp != nullptr && err != nullptr) {
    return NewError(TORII_STATUS_INVALID_ARGUMENT, "send a response or an error, not both");
  }
  const bool final = (flags & TORII_RESPONSE_FINAL) != 0;
  if (resp == nullptr && err == nullptr && !final) {
    return NewError(TORII_STATUS_INVALID_ARGUMENT,
                    "nothing to send: no response, no error and no final flag");
  }
  if (resp != nullptr && resp->sender.get() != s) {
    return NewError(TORII_STATUS_INVALID_ARGUMENT,
                    "the response was made for another request's sender");
  }
  std::unique_ptr<InferenceRequest> done;  // destroyed after the locks are released
  std::shared_ptr<ToriiResponseSender> keep = s->self;
  std::lock_guard<std::mutex> one_at_a_time(s->send_mu);
  InferenceRequest* req;
  const ModelSpec* spec;
  {
    std::lock_guard<std::mutex> lock(s->mu);
    if (s->finished) {
      return NewError(TORII_STATUS_FAILED_PRECONDITION,
                      "the request was already answered with the final flag");
    }
    spec = s->model->spec.get();
    if (!spec->decoupled && !final) {
      return NewError(TORII_STATUS_FAILED_PRECONDITION,
                      absl::StrCat("model '", spec->name, "' is not decoupled "
                                   "(model_transaction_policy { decoupled: true }): its one "
                                   "response must carry the final flag"));
    }
    // Alive until this request's final send, which cannot happen meanwhile
    // (send_mu): the batch owns it, or `owned` once execute returned.
    req = s->request;
  }
  if (!final && req->deadline <= InferenceRequest::Clock::now()) {
    // Nobody waits for more: the runner should stop and send the final flag.
    return NewError(TORII_STATUS_DEADLINE_EXCEEDED, "the request's deadline has passed");
  }
  if (!final && !req->sink->AwaitCapacity(*req)) {
    // The client went away: nothing more will be read.
    return NewError(TORII_STATUS_CANCELLED, "the client is gone");
  }
  std::unique_ptr<InferenceResponse> out;
  if (err != nullptr) {
    out = req->NewResponse();
    out->status = ToStatus(err->code, absl::StrCat("model '", spec->name, "': ", err->message));
  } else if (resp != nullptr) {
    out = std::move(resp->response);
    absl::Status checked = CheckWrittenOutputs(*s->model, *out);
    if (checked.ok() && !spec->decoupled) checked = CheckRequestedOutputs(*spec, *req, *out);
    if (!checked.ok()) {
      out = req->NewResponse();
      out->status = checked;
    }
  } else if (!spec->decoupled) {
    // The one answer of a model that is not decoupled cannot be empty.
    out = req->NewResponse();
    out->status = absl::InternalError(absl::StrCat(
        "model '", spec->name, "': the runner finished the request without a response"));
  }
  // Delivered under `mu`: once the final is out, execute's return may
  // destroy a request it still owns, and waits for this lock to look.
  std::lock_guard<std::mutex> lock(s->mu);
  ++s->sent;
  if (final) {
    s->finished = true;
    done = std::move(s->owned);
    s->self.reset();
  }
  req->Respond(std::move(out), final);
  return nullptr;
}

bool SenderCancelled(const ToriiResponseSender* s) {
  if (s == nullptr) return true;
  auto* m = const_cast<ToriiResponseSender*>(s);
  std::lock_guard<std::mutex> lock(m->mu);
  if (m->finished) return true;
  const InferenceRequest& r = *m->request;
  return r.Cancelled() || r.deadline <= InferenceRequest::Clock::now();
}

// --- model calls -----------------------------------------------------------

// Delivers each response of a model call to the runner's callback.
class CallSink : public ResponseSink {
 public:
  CallSink(ToriiInferCallback callback, void* user_data)
      : callback_(callback), user_data_(user_data) {}
  void Deliver(std::unique_ptr<InferenceResponse> response, bool final) override {
    ToriiInferResult* result = nullptr;
    if (response != nullptr) {
      result = new ToriiInferResult;
      result->message = std::string(response->status.message());
      result->response = std::move(response);
    }
    callback_(user_data_, result, final);
  }

 private:
  ToriiInferCallback callback_;
  void* user_data_;
};

ToriiInferRequest* InferRequestNew(const ToriiModel* caller, const char* model_name,
                                   int64_t version) {
  auto* r = new ToriiInferRequest;
  r->caller = caller;
  r->request = std::make_unique<InferenceRequest>();
  r->request->model_name = model_name == nullptr ? "" : model_name;
  if (version > 0) r->request->model_version = std::to_string(version);
  return r;
}

ToriiError* InferRequestAddInput(ToriiInferRequest* r, const char* name, ToriiDataType dt,
                                 const int64_t* shape, size_t ndim, const void* data,
                                 size_t byte_size) {
  if (r == nullptr || name == nullptr || (shape == nullptr && ndim > 0) ||
      (data == nullptr && byte_size > 0)) {
    return NewError(TORII_STATUS_INVALID_ARGUMENT, "infer_request_add_input: NULL argument");
  }
  InferenceInput in;
  in.name = name;
  in.datatype = dt;
  in.shape.assign(shape, shape + ndim);
  in.data = static_cast<const char*>(data);
  in.byte_size = byte_size;
  r->request->inputs.push_back(std::move(in));
  return nullptr;
}

ToriiError* InferRequestSend(ToriiInferRequest* raw, ToriiInferCallback callback,
                             void* user_data) {
  std::unique_ptr<ToriiInferRequest> r(raw);
  if (r == nullptr || callback == nullptr) {
    return NewError(TORII_STATUS_INVALID_ARGUMENT, "infer_request_send: NULL argument");
  }
  if (r->caller == nullptr || r->caller->dispatcher == nullptr) {
    return NewError(TORII_STATUS_UNAVAILABLE,
                    "calls to other models are not available in this host");
  }
  r->request->sink = std::make_shared<CallSink>(callback, user_data);
  r->request->arrival = InferenceRequest::Clock::now();
  r->caller->dispatcher->Infer(std::move(r->request));
  return nullptr;
}

// --- the table -------------------------------------------------------------

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
    if (const RunnerLogForwarder& f = LogForwarder()) return f(m, level, msg ? msg : "");
    LogFields fields;
    if (m != nullptr) fields = {{"model", m->name}, {"version", std::to_string(m->version)}};
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
  a.model_max_batch_size = [](const ToriiModel* m) { return m->spec->max_batch_size; };
  a.model_config_json = [](const ToriiModel* m) { return m->spec->config_json.c_str(); };
  a.model_input_count = [](const ToriiModel* m) { return m->spec->inputs.size(); };
  a.model_input = [](const ToriiModel* m, size_t i, ToriiTensor* out) {
    if (out == nullptr || i >= m->spec->inputs.size()) return false;
    PutSpec(m->spec->inputs[i], out);
    return true;
  };
  a.model_output_count = [](const ToriiModel* m) { return m->spec->outputs.size(); };
  a.model_output = [](const ToriiModel* m, size_t i, ToriiTensor* out) {
    if (out == nullptr || i >= m->spec->outputs.size()) return false;
    PutSpec(m->spec->outputs[i], out);
    return true;
  };
  a.model_parameter = [](const ToriiModel* m, const char* key) -> const char* {
    if (key == nullptr) return nullptr;
    auto it = m->spec->parameters.find(key);
    return it == m->spec->parameters.end() ? nullptr : it->second.c_str();
  };
  a.batch_request_count = [](const ToriiBatch* b) { return b->requests->size(); };
  a.batch_request_rows = [](const ToriiBatch* b, size_t r) -> int64_t {
    const InferenceRequest* q = RequestAt(b, r);
    return q == nullptr ? 0 : q->rows;
  };
  a.batch_input_count = [](const ToriiBatch* b) { return b->inputs.size(); };
  a.batch_input = FillInput;
  a.batch_input_by_name = [](const ToriiBatch* b, const char* name, ToriiTensor* out) {
    const int i = name == nullptr ? -1 : b->model->spec->InputIndex(name);
    return i >= 0 && FillInput(b, static_cast<size_t>(i), out);
  };
  a.batch_output_requested = [](const ToriiBatch* b, const char* name) {
    const int k = name == nullptr ? -1 : b->model->spec->OutputIndex(name);
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
    const InferenceRequest* q = RequestAt(b, r);
    if (q == nullptr || key == nullptr || out == nullptr) return false;
    const Parameter* p = q->parameters.Find(key);
    if (p == nullptr) return false;
    PutParameter(*p, out);
    return true;
  };
  a.batch_deadline_ns = [](const ToriiBatch* b) { return b->deadline_ns; };
  a.batch_is_cancelled = [](const ToriiBatch* b) {
    const auto now = InferenceRequest::Clock::now();
    for (const auto& r : *b->requests) {
      if (r->deadline > now && !r->Cancelled()) return false;
    }
    return true;
  };
  // ABI 1.2
  a.batch_request_id = [](const ToriiBatch* b, size_t r) -> const char* {
    const InferenceRequest* q = RequestAt(b, r);
    return q == nullptr ? "" : q->id.c_str();
  };
  a.batch_request_output_requested = [](const ToriiBatch* b, size_t r, const char* name) {
    const InferenceRequest* q = RequestAt(b, r);
    const int k = name == nullptr ? -1 : b->model->spec->OutputIndex(name);
    return q != nullptr && k >= 0 && q->output_requested[k] != 0;
  };
  a.batch_request_parameter_count = [](const ToriiBatch* b, size_t r) -> size_t {
    const InferenceRequest* q = RequestAt(b, r);
    return q == nullptr ? 0 : q->parameters.size();
  };
  a.batch_request_parameter_at = [](const ToriiBatch* b, size_t r, size_t i, const char** key,
                                    ToriiParameter* out) {
    const InferenceRequest* q = RequestAt(b, r);
    if (q == nullptr || i >= q->parameters.size() || key == nullptr || out == nullptr) {
      return false;
    }
    const auto& entry = *(q->parameters.begin() + static_cast<std::ptrdiff_t>(i));
    *key = entry.first.c_str();
    PutParameter(entry.second, out);
    return true;
  };
  a.batch_response_sender = TakeSender;
  a.response_new = NewResponseFor;
  a.response_output_allocate = AllocateResponseOutput;
  a.response_delete = [](ToriiResponse* r) { delete r; };
  a.sender_send = SenderSend;
  a.sender_is_cancelled = SenderCancelled;
  a.infer_request_new = InferRequestNew;
  a.infer_request_add_input = InferRequestAddInput;
  a.infer_request_add_output = [](ToriiInferRequest* r, const char* name) -> ToriiError* {
    if (r == nullptr || name == nullptr) {
      return NewError(TORII_STATUS_INVALID_ARGUMENT, "infer_request_add_output: NULL argument");
    }
    r->request->requested_outputs.push_back({name, {}});
    return nullptr;
  };
  a.infer_request_set_id = [](ToriiInferRequest* r, const char* id) {
    if (r != nullptr) r->request->id = id == nullptr ? "" : id;
  };
  a.infer_request_set_parameter = [](ToriiInferRequest* r, const char* key,
                                     const ToriiParameter* v) -> ToriiError* {
    if (r == nullptr || key == nullptr || v == nullptr) {
      return NewError(TORII_STATUS_INVALID_ARGUMENT, "infer_request_set_parameter: NULL argument");
    }
    Parameter::Value value;
    switch (v->type) {
      case TORII_PARAMETER_BOOL: value = v->bool_value; break;
      case TORII_PARAMETER_INT64: value = v->int64_value; break;
      case TORII_PARAMETER_UINT64: value = v->uint64_value; break;
      case TORII_PARAMETER_DOUBLE: value = v->double_value; break;
      case TORII_PARAMETER_STRING:
        value = std::string(v->string_value == nullptr ? "" : v->string_value, v->string_size);
        break;
      default:
        return NewError(TORII_STATUS_INVALID_ARGUMENT,
                        absl::StrCat("parameter '", key, "' has no value type"));
    }
    r->request->parameters.Set(key, std::move(value));
    return nullptr;
  };
  a.infer_request_set_timeout_us = [](ToriiInferRequest* r, uint64_t us) {
    if (r == nullptr) return;
    r->request->deadline = us == 0 ? InferenceRequest::Clock::time_point::max()
                                   : InferenceRequest::Clock::now() + std::chrono::microseconds(us);
  };
  a.infer_request_delete = [](ToriiInferRequest* r) { delete r; };
  a.infer_request_send = InferRequestSend;
  a.infer_result_code = [](const ToriiInferResult* r) {
    return r == nullptr ? TORII_STATUS_INVALID_ARGUMENT
                        : static_cast<ToriiStatusCode>(r->response->status.code());
  };
  a.infer_result_message = [](const ToriiInferResult* r) -> const char* {
    return r == nullptr ? "" : r->message.c_str();
  };
  a.infer_result_output_count = [](const ToriiInferResult* r) -> size_t {
    return r == nullptr ? 0 : r->response->outputs().size();
  };
  a.infer_result_output = [](const ToriiInferResult* r, size_t i, ToriiTensor* out) {
    if (r == nullptr || out == nullptr || i >= r->response->outputs().size()) return false;
    const OutputTensor& o = r->response->outputs()[i];
    PutTensor(o.name, o.datatype, o.shape, o.data, o.byte_size, out);
    return true;
  };
  a.infer_result_delete = [](ToriiInferResult* r) { delete r; };
  a.model_set_config_json = [](ToriiModel* m, const char* json) -> ToriiError* {
    if (m == nullptr || json == nullptr) {
      return NewError(TORII_STATUS_INVALID_ARGUMENT, "model_set_config_json: NULL argument");
    }
    if (!m->loading) {
      return NewError(TORII_STATUS_FAILED_PRECONDITION,
                      "model_set_config_json may only be called during model_load");
    }
    if (!m->complete_config) {
      return NewError(TORII_STATUS_UNIMPLEMENTED, "this host does not let runners complete configs");
    }
    auto spec = m->complete_config(json);
    if (!spec.ok()) return FromStatus(spec.status());
    m->spec = std::move(*spec);
    return nullptr;
  };
  a.model_report_property = [](const ToriiModel* m, const char* key, const char* value) {
    if (m == nullptr || key == nullptr) return;
    std::lock_guard<std::mutex> lock(m->mu);
    auto& props = const_cast<ToriiModel*>(m)->properties;
    for (auto& [k, v] : props) {
      if (k == key) {
        v = value == nullptr ? "" : value;
        return;
      }
    }
    props.emplace_back(key, value == nullptr ? "" : value);
  };
  // ABI 1.3: runner-defined metrics (torii/metric_registry.h holds the rules).
  a.metric_family_new = [](const ToriiModel* m, const char* name, const char* description,
                           ToriiMetricKind kind, ToriiMetricFamily** out) -> ToriiError* {
    if (m == nullptr) return NewError(TORII_STATUS_INVALID_ARGUMENT, "metric_family_new: NULL model");
    if (m->metrics == nullptr) {
      return NewError(TORII_STATUS_UNAVAILABLE, "this host exports no runner-defined metrics");
    }
    return FromMetricResult(m->metrics->NewFamily(name, description, kind, out));
  };
  a.metric_family_delete = [](ToriiMetricFamily* f) {
    if (f != nullptr) f->owner->DeleteFamily(f);
  };
  a.metric_new = [](ToriiMetricFamily* f, const char* const* names, const char* const* values,
                    size_t n, const double* buckets, size_t bucket_count,
                    ToriiMetric** out) -> ToriiError* {
    if (f == nullptr) return NewError(TORII_STATUS_INVALID_ARGUMENT, "metric_new: NULL family");
    return FromMetricResult(f->owner->NewMetric(f, names, values, n, buckets, bucket_count, out));
  };
  a.metric_delete = [](ToriiMetric* m) {
    if (m != nullptr) m->owner->DeleteMetric(m);
  };
  a.metric_increment = [](ToriiMetric* m, double v) -> ToriiError* {
    if (m == nullptr) return NewError(TORII_STATUS_INVALID_ARGUMENT, "metric_increment: NULL metric");
    return FromMetricResult(m->owner->Update(m, host_metrics::Op::kIncrement, v));
  };
  a.metric_set = [](ToriiMetric* m, double v) -> ToriiError* {
    if (m == nullptr) return NewError(TORII_STATUS_INVALID_ARGUMENT, "metric_set: NULL metric");
    return FromMetricResult(m->owner->Update(m, host_metrics::Op::kSet, v));
  };
  a.metric_observe = [](ToriiMetric* m, double v) -> ToriiError* {
    if (m == nullptr) return NewError(TORII_STATUS_INVALID_ARGUMENT, "metric_observe: NULL metric");
    return FromMetricResult(m->owner->Update(m, host_metrics::Op::kObserve, v));
  };
  a.metric_value = [](const ToriiMetric* m, double* v) -> ToriiError* {
    if (m == nullptr) return NewError(TORII_STATUS_INVALID_ARGUMENT, "metric_value: NULL metric");
    return FromMetricResult(m->owner->Value(m, v));
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

void AbandonSenders(const ToriiModel* model) {
  std::vector<std::shared_ptr<ToriiResponseSender>> open;
  {
    std::lock_guard<std::mutex> lock(model->mu);
    for (const auto& w : model->senders) {
      if (auto s = w.lock()) open.push_back(std::move(s));
    }
    const_cast<ToriiModel*>(model)->senders.clear();
  }
  for (auto& s : open) {
    ToriiError* e = NewError(TORII_STATUS_INTERNAL,
                             "the model was unloaded before its runner finished this request");
    if (ToriiError* left = SenderSend(s.get(), nullptr, e, TORII_RESPONSE_FINAL)) delete left;
  }
}

void HandOverTakenRequests(ToriiBatch* b) {
  for (size_t r = 0; r < b->senders.size(); ++r) {
    ToriiResponseSender* s = b->senders[r].get();
    if (s == nullptr) continue;
    std::lock_guard<std::mutex> lock(s->mu);
    if (!s->finished) s->owned = std::move((*b->requests)[r]);
  }
}

void SetRunnerLogForwarder(RunnerLogForwarder forwarder) { LogForwarder() = std::move(forwarder); }

void SetSenderResponseFactory(SenderResponseFactory factory) {
  SenderResponses() = std::move(factory);
}

size_t OpenSenders(const ToriiModel* model) {
  std::lock_guard<std::mutex> lock(model->mu);
  size_t n = 0;
  for (const auto& w : model->senders) {
    if (auto s = w.lock()) {
      std::lock_guard<std::mutex> slock(s->mu);
      if (!s->finished) ++n;
    }
  }
  return n;
}

}  // namespace torii
