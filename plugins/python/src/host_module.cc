#include "host_module.h"

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>

namespace torii_python {
namespace {

PyObject* g_host_error = nullptr;  // _torii_host.HostError
char g_empty[1] = {0};             // the address of an empty buffer

const char* HostErrorMessage(const ToriiHostApi* host, const ToriiError* e) {
  const char* m = host->error_message(e);
  return m != nullptr ? m : "";
}

// Raises HostError from a host error and releases it.
PyObject* RaiseAndDelete(const ToriiHostApi* host, ToriiError* e, const std::string& context) {
  const int code = static_cast<int>(host->error_code(e));
  std::string message = HostErrorMessage(host, e);
  host->error_delete(e);
  if (!context.empty()) message = context + ": " + message;
  return RaiseHostError(code, message);
}

// A zeroed static type object with its reference count set (what
// PyVarObject_HEAD_INIT does, without -Wmissing-field-initializers).
PyTypeObject BlankType() {
  PyTypeObject t;
  std::memset(static_cast<void*>(&t), 0, sizeof(t));
  Py_SET_REFCNT(reinterpret_cast<PyObject*>(&t), 1);
  return t;
}

// A type of this module: its name, instance size, doc, destructor and
// methods (null for none); a type with more sets the rest on the result.
PyTypeObject HostType(const char* name, Py_ssize_t basicsize, const char* doc,
                      destructor dealloc, PyMethodDef* methods) {
  PyTypeObject t = BlankType();
  t.tp_name = name;
  t.tp_basicsize = basicsize;
  t.tp_flags = Py_TPFLAGS_DEFAULT;
  t.tp_doc = doc;
  t.tp_dealloc = dealloc;
  t.tp_methods = methods;
  return t;
}

PyObject* ShapeTuple(const int64_t* shape, size_t ndim) {
  PyObject* t = PyTuple_New(static_cast<Py_ssize_t>(ndim));
  if (t == nullptr) return nullptr;
  for (size_t i = 0; i < ndim; ++i) {
    PyObject* d = PyLong_FromLongLong(shape[i]);
    if (d == nullptr) {
      Py_DECREF(t);
      return nullptr;
    }
    PyTuple_SET_ITEM(t, static_cast<Py_ssize_t>(i), d);
  }
  return t;
}

// A Python sequence of ints into `out`; false with an exception set.
bool ParseShape(PyObject* seq, std::vector<int64_t>* out) {
  Ref fast(PySequence_Fast(seq, "shape must be a sequence of ints"));
  if (!fast) return false;
  const Py_ssize_t n = PySequence_Fast_GET_SIZE(fast.get());
  out->resize(static_cast<size_t>(n));
  for (Py_ssize_t i = 0; i < n; ++i) {
    const long long v = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(fast.get(), i));
    if (v == -1 && PyErr_Occurred()) return false;
    (*out)[static_cast<size_t>(i)] = v;
  }
  return true;
}

// A ToriiParameter as a Python value.
PyObject* ParameterValue(const ToriiParameter& p) {
  switch (p.type) {
    case TORII_PARAMETER_BOOL: return PyBool_FromLong(p.bool_value ? 1 : 0);
    case TORII_PARAMETER_INT64: return PyLong_FromLongLong(p.int64_value);
    case TORII_PARAMETER_UINT64: return PyLong_FromUnsignedLongLong(p.uint64_value);
    case TORII_PARAMETER_DOUBLE: return PyFloat_FromDouble(p.double_value);
    case TORII_PARAMETER_STRING:
      return PyUnicode_DecodeUTF8(p.string_value != nullptr ? p.string_value : "",
                                  static_cast<Py_ssize_t>(p.string_size), "replace");
    default: Py_RETURN_NONE;
  }
}

// ---------------------------------------------------------------------------
// Buffer
// ---------------------------------------------------------------------------

struct BufferObject {
  PyObject_HEAD
  char* data;
  Py_ssize_t size;
  int readonly;
  Py_ssize_t exports;
  PyObject* owner;
};

int BufferGet(PyObject* self, Py_buffer* view, int flags) {
  auto* b = reinterpret_cast<BufferObject*>(self);
  if (PyBuffer_FillInfo(view, self, b->data != nullptr ? b->data : g_empty, b->size, b->readonly,
                        flags) < 0) {
    return -1;
  }
  ++b->exports;
  return 0;
}

void BufferRelease(PyObject* self, Py_buffer*) { --reinterpret_cast<BufferObject*>(self)->exports; }

void BufferDealloc(PyObject* self) {
  auto* b = reinterpret_cast<BufferObject*>(self);
  Py_CLEAR(b->owner);
  Py_TYPE(self)->tp_free(self);
}

PyObject* BufferNbytes(PyObject* self, void*) {
  return PyLong_FromSsize_t(reinterpret_cast<BufferObject*>(self)->size);
}
PyObject* BufferExports(PyObject* self, void*) {
  return PyLong_FromSsize_t(reinterpret_cast<BufferObject*>(self)->exports);
}

PyBufferProcs g_buffer_procs = {BufferGet, BufferRelease};
PyGetSetDef g_buffer_getset[] = {
    {"nbytes", BufferNbytes, nullptr, "size in bytes", nullptr},
    {"exports", BufferExports, nullptr, "live views of this buffer", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyTypeObject g_buffer_type = [] {
  PyTypeObject t = HostType("_torii_host.Buffer", sizeof(BufferObject),
                            "Host memory, exposed through the buffer protocol.", BufferDealloc,
                            nullptr);
  t.tp_as_buffer = &g_buffer_procs;
  t.tp_getset = g_buffer_getset;
  return t;
}();

// ---------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------

// Shared by a model and every sender of its requests: a sender a model
// thread still holds after the model was unloaded must not reach the host.
using AliveFlag = std::shared_ptr<std::atomic<bool>>;

struct ModelObject {
  PyObject_HEAD
  const ToriiHostApi* host;
  ToriiModel* model;
  bool valid;
  bool loading;
  AliveFlag* alive;
};

ModelObject* AsModel(PyObject* self) { return reinterpret_cast<ModelObject*>(self); }

PyObject* ModelCheck(ModelObject* m) {
  if (!m->valid) return RaiseHostError(TORII_STATUS_FAILED_PRECONDITION, "the model was unloaded");
  return Py_None;
}

PyObject* StrOrNone(const char* s) {
  if (s == nullptr) Py_RETURN_NONE;
  return PyUnicode_DecodeUTF8(s, static_cast<Py_ssize_t>(std::strlen(s)), "replace");
}

PyObject* ModelName(PyObject* self, PyObject*) {
  auto* m = AsModel(self);
  if (ModelCheck(m) == nullptr) return nullptr;
  return StrOrNone(m->host->model_name(m->model));
}
PyObject* ModelVersion(PyObject* self, PyObject*) {
  auto* m = AsModel(self);
  if (ModelCheck(m) == nullptr) return nullptr;
  return PyLong_FromLongLong(m->host->model_version(m->model));
}
PyObject* ModelDirectory(PyObject* self, PyObject*) {
  auto* m = AsModel(self);
  if (ModelCheck(m) == nullptr) return nullptr;
  return StrOrNone(m->host->model_directory(m->model));
}
PyObject* ModelVersionDirectory(PyObject* self, PyObject*) {
  auto* m = AsModel(self);
  if (ModelCheck(m) == nullptr) return nullptr;
  return StrOrNone(m->host->model_version_directory(m->model));
}
PyObject* ModelConfigJson(PyObject* self, PyObject*) {
  auto* m = AsModel(self);
  if (ModelCheck(m) == nullptr) return nullptr;
  return StrOrNone(m->host->model_config_json(m->model));
}
PyObject* ModelMaxBatchSize(PyObject* self, PyObject*) {
  auto* m = AsModel(self);
  if (ModelCheck(m) == nullptr) return nullptr;
  return PyLong_FromLong(m->host->model_max_batch_size(m->model));
}
PyObject* ModelParameter(PyObject* self, PyObject* args) {
  auto* m = AsModel(self);
  const char* key = nullptr;
  if (!PyArg_ParseTuple(args, "s", &key)) return nullptr;
  if (ModelCheck(m) == nullptr) return nullptr;
  return StrOrNone(m->host->model_parameter(m->model, key));
}

// (major, minor) of the host's ABI, as it reports it.
PyObject* ModelHostAbi(PyObject* self, PyObject*) {
  auto* m = AsModel(self);
  return Py_BuildValue("(II)", m->host->abi_version_major, m->host->abi_version_minor);
}

// Which optional host features exist: "senders", "calls", "auto_complete",
// "properties", "request_details", "cancel".
PyObject* ModelHostHas(PyObject* self, PyObject* args) {
  auto* m = AsModel(self);
  const char* what = nullptr;
  if (!PyArg_ParseTuple(args, "s", &what)) return nullptr;
  const ToriiHostApi* h = m->host;
  const std::string w = what;
  bool has = false;
  if (w == "senders") {
    has = TORII_HOST_HAS(h, sender_is_cancelled);
  } else if (w == "calls") {
    has = TORII_HOST_HAS(h, infer_result_delete);
  } else if (w == "auto_complete") {
    has = TORII_HOST_HAS(h, model_set_config_json);
  } else if (w == "properties") {
    has = TORII_HOST_HAS(h, model_report_property);
  } else if (w == "request_details") {
    has = TORII_HOST_HAS(h, batch_request_parameter_at);
  } else if (w == "cancel") {
    has = TORII_HOST_HAS(h, batch_is_cancelled);
  } else if (w == "metrics") {
    has = TORII_HOST_HAS(h, metric_value);
  } else {
    PyErr_Format(PyExc_ValueError, "unknown host feature '%s'", what);
    return nullptr;
  }
  return PyBool_FromLong(has ? 1 : 0);
}

PyObject* ModelLog(PyObject* self, PyObject* args) {
  auto* m = AsModel(self);
  int level = TORII_LOG_INFO;
  const char* message = nullptr;
  if (!PyArg_ParseTuple(args, "is", &level, &message)) return nullptr;
  if (level < TORII_LOG_ERROR || level > TORII_LOG_VERBOSE) level = TORII_LOG_INFO;
  m->host->log(m->valid ? m->model : nullptr, static_cast<ToriiLogLevel>(level), message);
  Py_RETURN_NONE;
}

PyObject* ModelReportProperty(PyObject* self, PyObject* args) {
  auto* m = AsModel(self);
  const char* key = nullptr;
  const char* value = nullptr;
  if (!PyArg_ParseTuple(args, "ss", &key, &value)) return nullptr;
  if (ModelCheck(m) == nullptr) return nullptr;
  if (!TORII_HOST_HAS(m->host, model_report_property)) Py_RETURN_FALSE;
  m->host->model_report_property(m->model, key, value);
  Py_RETURN_TRUE;
}

PyObject* ModelSetConfigJson(PyObject* self, PyObject* args) {
  auto* m = AsModel(self);
  const char* json = nullptr;
  if (!PyArg_ParseTuple(args, "s", &json)) return nullptr;
  if (ModelCheck(m) == nullptr) return nullptr;
  if (!m->loading) {
    return RaiseHostError(TORII_STATUS_FAILED_PRECONDITION,
                          "a config can only be completed while the model loads");
  }
  if (!TORII_HOST_HAS(m->host, model_set_config_json)) {
    return RaiseHostError(TORII_STATUS_UNIMPLEMENTED,
                          "this server cannot take a completed config (it implements runner ABI " +
                              std::to_string(m->host->abi_version_major) + "." +
                              std::to_string(m->host->abi_version_minor) +
                              "; auto-complete needs 1.2)");
  }
  ToriiError* e = m->host->model_set_config_json(m->model, json);
  if (e != nullptr) return RaiseAndDelete(m->host, e, "");
  Py_RETURN_NONE;
}

// ---------------------------------------------------------------------------
// Metric: a runner-defined metric family or one of its series (ABI 1.3)
// ---------------------------------------------------------------------------

// One host handle: a family (metric() makes series of it) or a series
// (update(), value()). Released by release() or when the object goes; once
// the model is unloaded the host has released it, and nothing touches it.
struct MetricObject {
  PyObject_HEAD
  const ToriiHostApi* host;
  ToriiMetricFamily* family;  // exactly one of family and metric is set
  ToriiMetric* metric;
  AliveFlag* model_alive;
};

MetricObject* AsMetric(PyObject* self) { return reinterpret_cast<MetricObject*>(self); }

bool MetricUsable(MetricObject* m) {
  if (!(*m->model_alive)->load()) {
    RaiseHostError(TORII_STATUS_FAILED_PRECONDITION,
                   "the model was unloaded; its metrics are gone");
    return false;
  }
  if (m->family == nullptr && m->metric == nullptr) {
    RaiseHostError(TORII_STATUS_FAILED_PRECONDITION, "this metric was deleted");
    return false;
  }
  return true;
}

void MetricRelease(MetricObject* m) {
  if ((*m->model_alive)->load()) {
    if (m->metric != nullptr) m->host->metric_delete(m->metric);
    if (m->family != nullptr) m->host->metric_family_delete(m->family);
  }
  m->metric = nullptr;
  m->family = nullptr;
}

void MetricDealloc(PyObject* self) {
  auto* m = AsMetric(self);
  MetricRelease(m);
  delete m->model_alive;
  PyObject_Free(self);
}

PyObject* NewMetricObject(const ToriiHostApi* host, ToriiMetricFamily* f, ToriiMetric* metric,
                          const AliveFlag& alive);

// metric(labels, buckets): labels a list of (name, value) string pairs,
// buckets a list of floats or None.
PyObject* MetricNew(PyObject* self, PyObject* args) {
  auto* m = AsMetric(self);
  PyObject* labels = nullptr;
  PyObject* buckets = Py_None;
  if (!PyArg_ParseTuple(args, "O|O", &labels, &buckets)) return nullptr;
  if (!MetricUsable(m)) return nullptr;
  if (m->family == nullptr) {
    return RaiseHostError(TORII_STATUS_INVALID_ARGUMENT, "metric() is for metric families");
  }
  Ref fast(PySequence_Fast(labels, "labels must be a sequence of (name, value) pairs"));
  if (!fast) return nullptr;
  const Py_ssize_t n = PySequence_Fast_GET_SIZE(fast.get());
  std::vector<std::string> keys, values;
  for (Py_ssize_t i = 0; i < n; ++i) {
    const char* k = nullptr;
    const char* v = nullptr;
    if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(fast.get(), i), "ss", &k, &v)) return nullptr;
    keys.emplace_back(k);
    values.emplace_back(v);
  }
  std::vector<const char*> kp, vp;
  for (size_t i = 0; i < keys.size(); ++i) {
    kp.push_back(keys[i].c_str());
    vp.push_back(values[i].c_str());
  }
  std::vector<double> bounds;
  if (buckets != Py_None) {
    Ref bf(PySequence_Fast(buckets, "buckets must be a list of numbers"));
    if (!bf) return nullptr;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(bf.get()); ++i) {
      const double d = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(bf.get(), i));
      if (PyErr_Occurred()) return nullptr;
      bounds.push_back(d);
    }
  }
  ToriiMetric* metric = nullptr;
  ToriiError* e = m->host->metric_new(m->family, kp.data(), vp.data(), kp.size(),
                                      bounds.empty() ? nullptr : bounds.data(), bounds.size(),
                                      &metric);
  if (e != nullptr) return RaiseAndDelete(m->host, e, "");
  return NewMetricObject(m->host, nullptr, metric, *m->model_alive);
}

// update(op, value): op 0 = increment, 1 = set, 2 = observe.
PyObject* MetricUpdate(PyObject* self, PyObject* args) {
  auto* m = AsMetric(self);
  int op = 0;
  double value = 0;
  if (!PyArg_ParseTuple(args, "id", &op, &value)) return nullptr;
  if (!MetricUsable(m)) return nullptr;
  if (m->metric == nullptr) {
    return RaiseHostError(TORII_STATUS_INVALID_ARGUMENT, "update() is for metrics, not families");
  }
  ToriiError* e = op == 0   ? m->host->metric_increment(m->metric, value)
                  : op == 1 ? m->host->metric_set(m->metric, value)
                            : m->host->metric_observe(m->metric, value);
  if (e != nullptr) return RaiseAndDelete(m->host, e, "");
  Py_RETURN_NONE;
}

PyObject* MetricValue(PyObject* self, PyObject*) {
  auto* m = AsMetric(self);
  if (!MetricUsable(m)) return nullptr;
  if (m->metric == nullptr) {
    return RaiseHostError(TORII_STATUS_INVALID_ARGUMENT, "value() is for metrics, not families");
  }
  double v = 0;
  ToriiError* e = m->host->metric_value(m->metric, &v);
  if (e != nullptr) return RaiseAndDelete(m->host, e, "");
  return PyFloat_FromDouble(v);
}

PyObject* MetricReleaseMethod(PyObject* self, PyObject*) {
  MetricRelease(AsMetric(self));
  Py_RETURN_NONE;
}

PyMethodDef g_metric_methods[] = {
    {"metric", MetricNew, METH_VARARGS, "metric(labels, buckets) -> Metric (families)"},
    {"update", MetricUpdate, METH_VARARGS, "update(op, value): 0 increment, 1 set, 2 observe"},
    {"value", MetricValue, METH_NOARGS, nullptr},
    {"release", MetricReleaseMethod, METH_NOARGS, "releases the host handle"},
    {nullptr, nullptr, 0, nullptr}};

PyTypeObject g_metric_type = HostType("_torii_host.Metric", sizeof(MetricObject),
                                      "A runner-defined metric family or series (host handle).",
                                      MetricDealloc, g_metric_methods);

PyObject* NewMetricObject(const ToriiHostApi* host, ToriiMetricFamily* f, ToriiMetric* metric,
                          const AliveFlag& alive) {
  auto* o = PyObject_New(MetricObject, &g_metric_type);
  if (o == nullptr) {
    if (metric != nullptr) host->metric_delete(metric);
    if (f != nullptr) host->metric_family_delete(f);
    return nullptr;
  }
  o->host = host;
  o->family = f;
  o->metric = metric;
  o->model_alive = new AliveFlag(alive);
  return reinterpret_cast<PyObject*>(o);
}

// metric_family(name, description, kind): kind is ToriiMetricKind.
PyObject* ModelMetricFamily(PyObject* self, PyObject* args) {
  auto* m = AsModel(self);
  const char* name = nullptr;
  const char* description = nullptr;
  int kind = 0;
  if (!PyArg_ParseTuple(args, "ssi", &name, &description, &kind)) return nullptr;
  if (ModelCheck(m) == nullptr) return nullptr;
  if (!TORII_HOST_HAS(m->host, metric_value)) {
    return RaiseHostError(TORII_STATUS_UNIMPLEMENTED,
                          "custom metrics need a server with runner ABI 1.3; this one has " +
                              std::to_string(m->host->abi_version_major) + "." +
                              std::to_string(m->host->abi_version_minor));
  }
  ToriiMetricFamily* f = nullptr;
  ToriiError* e = m->host->metric_family_new(m->model, name, description,
                                             static_cast<ToriiMetricKind>(kind), &f);
  if (e != nullptr) return RaiseAndDelete(m->host, e, "");
  return NewMetricObject(m->host, f, nullptr, *m->alive);
}

PyObject* ModelInfer(PyObject* self, PyObject* args, PyObject* kwargs);

PyMethodDef g_model_methods[] = {
    {"name", ModelName, METH_NOARGS, nullptr},
    {"version", ModelVersion, METH_NOARGS, nullptr},
    {"directory", ModelDirectory, METH_NOARGS, nullptr},
    {"version_directory", ModelVersionDirectory, METH_NOARGS, nullptr},
    {"config_json", ModelConfigJson, METH_NOARGS, nullptr},
    {"max_batch_size", ModelMaxBatchSize, METH_NOARGS, nullptr},
    {"parameter", ModelParameter, METH_VARARGS, nullptr},
    {"host_abi", ModelHostAbi, METH_NOARGS, nullptr},
    {"host_has", ModelHostHas, METH_VARARGS, nullptr},
    {"log", ModelLog, METH_VARARGS, "log(level, message): one line in the server log"},
    {"report_property", ModelReportProperty, METH_VARARGS, nullptr},
    {"set_config_json", ModelSetConfigJson, METH_VARARGS, nullptr},
    {"metric_family", ModelMetricFamily, METH_VARARGS,
     "metric_family(name, description, kind) -> Metric (ABI 1.3)"},
    {"infer", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)(void)>(ModelInfer)),
     METH_VARARGS | METH_KEYWORDS, nullptr},
    {nullptr, nullptr, 0, nullptr}};

void ModelDealloc(PyObject* self) {
  delete AsModel(self)->alive;
  Py_TYPE(self)->tp_free(self);
}

PyTypeObject g_model_type = HostType("_torii_host.Model", sizeof(ModelObject),
                                     "One loaded model version, as the host sees it.",
                                     ModelDealloc, g_model_methods);

// ---------------------------------------------------------------------------
// Sender
// ---------------------------------------------------------------------------

struct SenderObject {
  PyObject_HEAD
  const ToriiHostApi* host;
  ToriiResponseSender* sender;
  std::mutex* mu;  // serialises sends and guards `finished`
  bool finished;
  AliveFlag* model_alive;
};

SenderObject* AsSender(PyObject* self) { return reinterpret_cast<SenderObject*>(self); }

void SenderDealloc(PyObject* self) {
  delete AsSender(self)->mu;
  delete AsSender(self)->model_alive;
  Py_TYPE(self)->tp_free(self);
}

// Locks the sender's mutex without holding the GIL (another thread may hold
// the mutex while it waits for the GIL).
std::unique_lock<std::mutex> LockSender(SenderObject* s) {
  NoGilScope nogil;
  return std::unique_lock<std::mutex>(*s->mu);
}

// send(outputs, error, flags): outputs is None or a list of
// (name, datatype, shape, contiguous buffer); error is None or (code, text).
PyObject* SenderSend(PyObject* self, PyObject* args) {
  auto* s = AsSender(self);
  PyObject* outputs = nullptr;
  PyObject* error = nullptr;
  unsigned int flags = 0;
  if (!PyArg_ParseTuple(args, "OOI", &outputs, &error, &flags)) return nullptr;
  const ToriiHostApi* h = s->host;
  auto lock = LockSender(s);
  if (!(*s->model_alive)->load()) s->finished = true;
  if (s->finished) {
    return RaiseHostError(TORII_STATUS_FAILED_PRECONDITION,
                          (*s->model_alive)->load()
                              ? "this request was already answered with its final response "
                                "(TRITONSERVER_RESPONSE_COMPLETE_FINAL)"
                              : "the model was unloaded; the server ended this request");
  }
  ToriiError* err = nullptr;
  ToriiResponse* response = nullptr;
  if (error != Py_None) {
    int code = TORII_STATUS_INTERNAL;
    const char* text = nullptr;
    if (!PyArg_ParseTuple(error, "is", &code, &text)) return nullptr;
    err = h->error_new(static_cast<ToriiStatusCode>(code), text);
  } else if (outputs != Py_None) {
    response = h->response_new(s->sender);
    if (response == nullptr) {
      s->finished = true;
      return RaiseHostError(TORII_STATUS_FAILED_PRECONDITION, "the request is already finished");
    }
    Ref fast(PySequence_Fast(outputs, "outputs must be a list"));
    if (!fast) {
      h->response_delete(response);
      return nullptr;
    }
    std::string failure;
    int failure_code = TORII_STATUS_INTERNAL;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(fast.get()) && failure.empty(); ++i) {
      const char* name = nullptr;
      int datatype = 0;
      PyObject* shape_obj = nullptr;
      PyObject* data = nullptr;
      if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(fast.get(), i), "siOO", &name, &datatype,
                            &shape_obj, &data)) {
        h->response_delete(response);
        return nullptr;
      }
      std::vector<int64_t> shape;
      Py_buffer view;
      if (!ParseShape(shape_obj, &shape) || PyObject_GetBuffer(data, &view, PyBUF_C_CONTIGUOUS) < 0) {
        h->response_delete(response);
        return nullptr;
      }
      void* dst = nullptr;
      ToriiError* ae = h->response_output_allocate(response, name,
                                                   static_cast<ToriiDataType>(datatype),
                                                   shape.data(), shape.size(),
                                                   static_cast<size_t>(view.len), &dst);
      if (ae != nullptr) {
        failure_code = static_cast<int>(h->error_code(ae));
        failure = std::string("output '") + name + "': " + HostErrorMessage(h, ae);
        h->error_delete(ae);
      } else if (view.len > 0) {
        std::memcpy(dst, view.buf, static_cast<size_t>(view.len));
      }
      PyBuffer_Release(&view);
    }
    if (!failure.empty()) {
      // The response cannot be built: end the request with the reason, so a
      // client is never left waiting, and tell the model.
      h->response_delete(response);
      ToriiError* fe = h->error_new(static_cast<ToriiStatusCode>(failure_code), failure.c_str());
      {
        NoGilScope nogil;
        ToriiError* se = h->sender_send(s->sender, nullptr, fe, TORII_RESPONSE_FINAL);
        if (se != nullptr) h->error_delete(se);
      }
      s->finished = true;
      return RaiseHostError(failure_code,
                            failure + " (the request was ended with this error)");
    }
  }
  ToriiError* se = nullptr;
  {
    NoGilScope nogil;
    se = h->sender_send(s->sender, response, err, flags);
  }
  if ((flags & TORII_RESPONSE_FINAL) != 0) s->finished = true;
  if (se != nullptr) {
    // The host refuses further sends (finished, or the client went away).
    s->finished = true;
    return RaiseAndDelete(h, se, "");
  }
  Py_RETURN_NONE;
}

PyObject* SenderIsCancelled(PyObject* self, PyObject*) {
  auto* s = AsSender(self);
  auto lock = LockSender(s);
  if (!(*s->model_alive)->load()) Py_RETURN_TRUE;
  if (s->finished) Py_RETURN_FALSE;
  return PyBool_FromLong(s->host->sender_is_cancelled(s->sender) ? 1 : 0);
}

PyObject* SenderFinished(PyObject* self, void*) {
  auto* s = AsSender(self);
  auto lock = LockSender(s);
  return PyBool_FromLong(s->finished ? 1 : 0);
}

PyMethodDef g_sender_methods[] = {
    {"send", SenderSend, METH_VARARGS, "send(outputs, error, flags)"},
    {"is_cancelled", SenderIsCancelled, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr}};
PyGetSetDef g_sender_getset[] = {
    {"finished", SenderFinished, nullptr, "the final response was sent", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyTypeObject g_sender_type = [] {
  PyTypeObject t = HostType("_torii_host.Sender", sizeof(SenderObject),
                            "Answers one request; valid until its final send.", SenderDealloc,
                            g_sender_methods);
  t.tp_getset = g_sender_getset;
  return t;
}();

// ---------------------------------------------------------------------------
// Batch
// ---------------------------------------------------------------------------

struct BatchObject {
  PyObject_HEAD
  const ToriiHostApi* host;
  ToriiBatch* batch;
  AliveFlag* model_alive;
  bool valid;
  // Input buffers handed out, to see after execute whether a model kept one.
  std::vector<std::pair<std::string, PyObject*>>* inputs;
};

BatchObject* AsBatch(PyObject* self) { return reinterpret_cast<BatchObject*>(self); }

bool BatchCheck(BatchObject* b) {
  if (!b->valid) {
    RaiseHostError(TORII_STATUS_FAILED_PRECONDITION,
                   "the request was used after execute() returned; its data belongs to the "
                   "server only during execute (copy what you need, and take the response "
                   "sender during execute)");
    return false;
  }
  return true;
}

bool RequestIndex(BatchObject* b, Py_ssize_t r) {
  if (r < 0 || static_cast<size_t>(r) >= b->host->batch_request_count(b->batch)) {
    PyErr_Format(PyExc_IndexError, "request index %zd out of range", r);
    return false;
  }
  return true;
}

void BatchDealloc(PyObject* self) {
  auto* b = AsBatch(self);
  if (b->inputs != nullptr) {
    for (auto& kv : *b->inputs) Py_DECREF(kv.second);
    delete b->inputs;
  }
  delete b->model_alive;
  Py_TYPE(self)->tp_free(self);
}

PyObject* BatchRequestCount(PyObject* self, PyObject*) {
  auto* b = AsBatch(self);
  if (!BatchCheck(b)) return nullptr;
  return PyLong_FromSize_t(b->host->batch_request_count(b->batch));
}

PyObject* BatchRows(PyObject* self, PyObject*) {
  auto* b = AsBatch(self);
  if (!BatchCheck(b)) return nullptr;
  const size_t n = b->host->batch_request_count(b->batch);
  PyObject* list = PyList_New(static_cast<Py_ssize_t>(n));
  if (list == nullptr) return nullptr;
  for (size_t r = 0; r < n; ++r) {
    PyList_SET_ITEM(list, static_cast<Py_ssize_t>(r),
                    PyLong_FromLongLong(b->host->batch_request_rows(b->batch, r)));
  }
  return list;
}

// [(name, datatype, shape, Buffer)] in the config's order.
PyObject* BatchInputs(PyObject* self, PyObject*) {
  auto* b = AsBatch(self);
  if (!BatchCheck(b)) return nullptr;
  const size_t n = b->host->batch_input_count(b->batch);
  Ref list(PyList_New(0));
  if (!list) return nullptr;
  for (size_t i = 0; i < n; ++i) {
    ToriiTensor t;
    std::memset(&t, 0, sizeof(t));
    t.struct_size = sizeof(t);
    if (!b->host->batch_input(b->batch, i, &t)) break;
    Ref buffer(NewBufferObject(const_cast<void*>(t.data), t.byte_size, /*readonly=*/true, nullptr));
    Ref shape(ShapeTuple(t.shape, t.ndim));
    if (!buffer || !shape) return nullptr;
    Ref item(Py_BuildValue("(siOO)", t.name != nullptr ? t.name : "", static_cast<int>(t.datatype),
                           shape.get(), buffer.get()));
    if (!item || PyList_Append(list.get(), item.get()) < 0) return nullptr;
    b->inputs->emplace_back(t.name != nullptr ? t.name : "", buffer.release());
  }
  return list.release();
}

PyObject* BatchRequestId(PyObject* self, PyObject* args) {
  auto* b = AsBatch(self);
  Py_ssize_t r = 0;
  if (!PyArg_ParseTuple(args, "n", &r)) return nullptr;
  if (!BatchCheck(b) || !RequestIndex(b, r)) return nullptr;
  if (!TORII_HOST_HAS(b->host, batch_request_id)) return PyUnicode_FromString("");
  const char* id = b->host->batch_request_id(b->batch, static_cast<size_t>(r));
  return PyUnicode_DecodeUTF8(id != nullptr ? id : "", id != nullptr ? std::strlen(id) : 0,
                              "replace");
}

// {key: value} of request r's parameters ({} on hosts before ABI 1.2).
PyObject* BatchParameters(PyObject* self, PyObject* args) {
  auto* b = AsBatch(self);
  Py_ssize_t r = 0;
  if (!PyArg_ParseTuple(args, "n", &r)) return nullptr;
  if (!BatchCheck(b) || !RequestIndex(b, r)) return nullptr;
  Ref dict(PyDict_New());
  if (!dict) return nullptr;
  if (!TORII_HOST_HAS(b->host, batch_request_parameter_at)) return dict.release();
  const size_t n = b->host->batch_request_parameter_count(b->batch, static_cast<size_t>(r));
  for (size_t i = 0; i < n; ++i) {
    const char* key = nullptr;
    ToriiParameter p;
    std::memset(&p, 0, sizeof(p));
    p.struct_size = sizeof(p);
    if (!b->host->batch_request_parameter_at(b->batch, static_cast<size_t>(r), i, &key, &p)) break;
    Ref value(ParameterValue(p));
    if (!value || PyDict_SetItemString(dict.get(), key != nullptr ? key : "", value.get()) < 0) {
      return nullptr;
    }
  }
  return dict.release();
}

// Whether request r asked for output `name` (before ABI 1.2: whether any
// request of the batch did).
PyObject* BatchOutputRequested(PyObject* self, PyObject* args) {
  auto* b = AsBatch(self);
  Py_ssize_t r = 0;
  const char* name = nullptr;
  if (!PyArg_ParseTuple(args, "ns", &r, &name)) return nullptr;
  if (!BatchCheck(b) || !RequestIndex(b, r)) return nullptr;
  bool wanted = TORII_HOST_HAS(b->host, batch_request_output_requested)
                    ? b->host->batch_request_output_requested(b->batch, static_cast<size_t>(r), name)
                    : b->host->batch_output_requested(b->batch, name);
  return PyBool_FromLong(wanted ? 1 : 0);
}

PyObject* BatchAnyOutputRequested(PyObject* self, PyObject* args) {
  auto* b = AsBatch(self);
  const char* name = nullptr;
  if (!PyArg_ParseTuple(args, "s", &name)) return nullptr;
  if (!BatchCheck(b)) return nullptr;
  return PyBool_FromLong(b->host->batch_output_requested(b->batch, name) ? 1 : 0);
}

// allocate(name, datatype, shape, byte_size) -> writable Buffer
PyObject* BatchAllocate(PyObject* self, PyObject* args) {
  auto* b = AsBatch(self);
  const char* name = nullptr;
  int datatype = 0;
  PyObject* shape_obj = nullptr;
  Py_ssize_t byte_size = 0;
  if (!PyArg_ParseTuple(args, "siOn", &name, &datatype, &shape_obj, &byte_size)) return nullptr;
  if (!BatchCheck(b)) return nullptr;
  std::vector<int64_t> shape;
  if (!ParseShape(shape_obj, &shape)) return nullptr;
  void* buffer = nullptr;
  ToriiError* e = b->host->batch_output_allocate(b->batch, name, static_cast<ToriiDataType>(datatype),
                                                 shape.data(), shape.size(),
                                                 static_cast<size_t>(byte_size), &buffer);
  if (e != nullptr) return RaiseAndDelete(b->host, e, "");
  return NewBufferObject(buffer, static_cast<size_t>(byte_size), /*readonly=*/false, nullptr);
}

// allocate_copy(name, datatype, shape, byte_size, source) -> bool: when
// `source` exports a C-contiguous buffer of exactly byte_size bytes, allocates
// the output and copies those bytes into it (True); otherwise allocates
// nothing (False) and the caller copies through allocate(). The caller checks
// that source's element type is the datatype's.
PyObject* BatchAllocateCopy(PyObject* self, PyObject* args) {
  auto* b = AsBatch(self);
  const char* name = nullptr;
  int datatype = 0;
  PyObject* shape_obj = nullptr;
  Py_ssize_t byte_size = 0;
  PyObject* source = nullptr;
  if (!PyArg_ParseTuple(args, "siOnO", &name, &datatype, &shape_obj, &byte_size, &source)) {
    return nullptr;
  }
  if (!BatchCheck(b)) return nullptr;
  Py_buffer view;
  if (PyObject_GetBuffer(source, &view, PyBUF_C_CONTIGUOUS) < 0) {
    PyErr_Clear();
    Py_RETURN_FALSE;
  }
  if (view.len != byte_size) {
    PyBuffer_Release(&view);
    Py_RETURN_FALSE;
  }
  std::vector<int64_t> shape;
  if (!ParseShape(shape_obj, &shape)) {
    PyBuffer_Release(&view);
    return nullptr;
  }
  void* buffer = nullptr;
  ToriiError* e = b->host->batch_output_allocate(b->batch, name, static_cast<ToriiDataType>(datatype),
                                                 shape.data(), shape.size(),
                                                 static_cast<size_t>(byte_size), &buffer);
  if (e != nullptr) {
    PyBuffer_Release(&view);
    return RaiseAndDelete(b->host, e, "");
  }
  if (byte_size > 0) std::memcpy(buffer, view.buf, static_cast<size_t>(byte_size));
  PyBuffer_Release(&view);
  Py_RETURN_TRUE;
}

PyObject* BatchFail(PyObject* self, PyObject* args) {
  auto* b = AsBatch(self);
  Py_ssize_t r = 0;
  int code = TORII_STATUS_INTERNAL;
  const char* message = nullptr;
  if (!PyArg_ParseTuple(args, "nis", &r, &code, &message)) return nullptr;
  if (!BatchCheck(b) || !RequestIndex(b, r)) return nullptr;
  b->host->batch_fail_request(b->batch, static_cast<size_t>(r),
                              b->host->error_new(static_cast<ToriiStatusCode>(code), message));
  Py_RETURN_NONE;
}

PyObject* BatchIsCancelled(PyObject* self, PyObject*) {
  auto* b = AsBatch(self);
  if (!BatchCheck(b)) return nullptr;
  const bool c = TORII_HOST_HAS(b->host, batch_is_cancelled) && b->host->batch_is_cancelled(b->batch);
  return PyBool_FromLong(c ? 1 : 0);
}

PyObject* BatchSender(PyObject* self, PyObject* args) {
  auto* b = AsBatch(self);
  Py_ssize_t r = 0;
  if (!PyArg_ParseTuple(args, "n", &r)) return nullptr;
  if (!BatchCheck(b) || !RequestIndex(b, r)) return nullptr;
  if (!TORII_HOST_HAS(b->host, sender_is_cancelled)) {
    return RaiseHostError(TORII_STATUS_UNIMPLEMENTED,
                          "response senders need a server with runner ABI 1.2; this one has " +
                              std::to_string(b->host->abi_version_major) + "." +
                              std::to_string(b->host->abi_version_minor));
  }
  ToriiResponseSender* sender = b->host->batch_response_sender(b->batch, static_cast<size_t>(r));
  if (sender == nullptr) {
    return RaiseHostError(TORII_STATUS_INTERNAL, "the server gave no response sender");
  }
  auto* s = PyObject_New(SenderObject, &g_sender_type);
  if (s == nullptr) return nullptr;
  s->host = b->host;
  s->sender = sender;
  s->mu = new std::mutex();
  s->finished = false;
  s->model_alive = new AliveFlag(*b->model_alive);
  return reinterpret_cast<PyObject*>(s);
}

PyMethodDef g_batch_methods[] = {
    {"request_count", BatchRequestCount, METH_NOARGS, nullptr},
    {"rows", BatchRows, METH_NOARGS, nullptr},
    {"inputs", BatchInputs, METH_NOARGS, nullptr},
    {"request_id", BatchRequestId, METH_VARARGS, nullptr},
    {"parameters", BatchParameters, METH_VARARGS, nullptr},
    {"output_requested", BatchOutputRequested, METH_VARARGS, nullptr},
    {"any_output_requested", BatchAnyOutputRequested, METH_VARARGS, nullptr},
    {"allocate", BatchAllocate, METH_VARARGS, nullptr},
    {"allocate_copy", BatchAllocateCopy, METH_VARARGS, nullptr},
    {"fail", BatchFail, METH_VARARGS, nullptr},
    {"is_cancelled", BatchIsCancelled, METH_NOARGS, nullptr},
    {"sender", BatchSender, METH_VARARGS, nullptr},
    {nullptr, nullptr, 0, nullptr}};

PyTypeObject g_batch_type = HostType("_torii_host.Batch", sizeof(BatchObject),
                                     "The requests of one execute call.",
                                     BatchDealloc, g_batch_methods);

// ---------------------------------------------------------------------------
// Call (a request to another model)
// ---------------------------------------------------------------------------

// Shared by the Call object and the host's callback. The callback never
// takes the GIL while holding `mu` (the Python side takes `mu` with the GIL
// held), so the two cannot deadlock.
struct CallState {
  const ToriiHostApi* host = nullptr;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<ToriiInferResult*> results;
  bool final = false;
  bool abandoned = false;     // nobody will read further results
  PyObject* keep = nullptr;   // the inputs' owners, alive until the final callback
};

struct CallObject {
  PyObject_HEAD
  std::shared_ptr<CallState>* state;
};

void CallCallback(void* user_data, ToriiInferResult* result, bool final) {
  auto* holder = static_cast<std::shared_ptr<CallState>*>(user_data);
  std::shared_ptr<CallState> st = *holder;
  PyObject* release = nullptr;
  {
    std::lock_guard<std::mutex> lock(st->mu);
    if (st->abandoned) {
      if (result != nullptr) st->host->infer_result_delete(result);
      if (final) release = std::exchange(st->keep, nullptr);
    } else if (result != nullptr) {
      st->results.push_back(result);
    }
    if (final) st->final = true;
  }
  st->cv.notify_all();
  if (release != nullptr) {
    // The Call object is gone; drop the inputs' owners here.
    PyGILState_STATE g = PyGILState_Ensure();
    Py_DECREF(release);
    PyGILState_Release(g);
  }
  if (final) delete holder;
}

void CallDealloc(PyObject* self) {
  auto* c = reinterpret_cast<CallObject*>(self);
  if (c->state != nullptr) {
    CallState& st = **c->state;
    PyObject* release = nullptr;
    {
      std::lock_guard<std::mutex> lock(st.mu);
      st.abandoned = true;
      for (ToriiInferResult* r : st.results) st.host->infer_result_delete(r);
      st.results.clear();
      // Before the final callback the host may still read the inputs.
      if (st.final) release = std::exchange(st.keep, nullptr);
    }
    Py_XDECREF(release);
    delete c->state;
  }
  Py_TYPE(self)->tp_free(self);
}

void DeleteResultCapsule(PyObject* capsule) {
  auto* result = static_cast<ToriiInferResult*>(PyCapsule_GetPointer(capsule, "torii.infer_result"));
  auto* host = static_cast<const ToriiHostApi*>(PyCapsule_GetContext(capsule));
  if (result != nullptr && host != nullptr) host->infer_result_delete(result);
}

// A result as (code, message, [(name, datatype, shape, Buffer)]); the
// buffers keep the result alive.
PyObject* ResultTuple(const ToriiHostApi* h, ToriiInferResult* result) {
  Ref owner(PyCapsule_New(result, "torii.infer_result", DeleteResultCapsule));
  if (!owner) {
    h->infer_result_delete(result);
    return nullptr;
  }
  PyCapsule_SetContext(owner.get(), const_cast<ToriiHostApi*>(h));
  const int code = static_cast<int>(h->infer_result_code(result));
  const char* message = h->infer_result_message(result);
  Ref outputs(PyList_New(0));
  if (!outputs) return nullptr;
  const size_t n = h->infer_result_output_count(result);
  for (size_t i = 0; i < n; ++i) {
    ToriiTensor t;
    std::memset(&t, 0, sizeof(t));
    t.struct_size = sizeof(t);
    if (!h->infer_result_output(result, i, &t)) break;
    Ref buffer(NewBufferObject(const_cast<void*>(t.data), t.byte_size, /*readonly=*/true, owner.get()));
    Ref shape(ShapeTuple(t.shape, t.ndim));
    if (!buffer || !shape) return nullptr;
    Ref item(Py_BuildValue("(siOO)", t.name != nullptr ? t.name : "", static_cast<int>(t.datatype),
                           shape.get(), buffer.get()));
    if (!item || PyList_Append(outputs.get(), item.get()) < 0) return nullptr;
  }
  return Py_BuildValue("(isO)", code, message != nullptr ? message : "", outputs.get());
}

// next(timeout_s=-1): the next response as ResultTuple, None after the last,
// or False when `timeout_s` (>= 0) passed first.
PyObject* CallNext(PyObject* self, PyObject* args) {
  auto* c = reinterpret_cast<CallObject*>(self);
  double timeout_s = -1;
  if (!PyArg_ParseTuple(args, "|d", &timeout_s)) return nullptr;
  CallState& st = **c->state;
  ToriiInferResult* result = nullptr;
  bool final = false;
  bool timed_out = false;
  {
    NoGilScope nogil;
    std::unique_lock<std::mutex> lock(st.mu);
    auto ready = [&] { return !st.results.empty() || st.final || st.abandoned; };
    if (timeout_s < 0) {
      st.cv.wait(lock, ready);
    } else {
      timed_out = !st.cv.wait_for(lock, std::chrono::duration<double>(timeout_s), ready);
    }
    if (!st.results.empty()) {
      result = st.results.front();
      st.results.pop_front();
    }
    final = st.final || st.abandoned;
  }
  if (final) {
    PyObject* release = nullptr;
    {
      std::lock_guard<std::mutex> lock(st.mu);
      if (st.final) release = std::exchange(st.keep, nullptr);
    }
    Py_XDECREF(release);
  }
  if (result != nullptr) return ResultTuple(st.host, result);
  if (timed_out) Py_RETURN_FALSE;
  Py_RETURN_NONE;
}

PyObject* CallCancel(PyObject* self, PyObject*) {
  auto* c = reinterpret_cast<CallObject*>(self);
  CallState& st = **c->state;
  {
    std::lock_guard<std::mutex> lock(st.mu);
    st.abandoned = true;
    for (ToriiInferResult* r : st.results) st.host->infer_result_delete(r);
    st.results.clear();
  }
  st.cv.notify_all();
  Py_RETURN_NONE;
}

PyMethodDef g_call_methods[] = {
    {"next", CallNext, METH_VARARGS, "next([timeout_s]) -> response tuple, None (done) or False"},
    {"cancel", CallCancel, METH_NOARGS, "stop receiving responses"},
    {nullptr, nullptr, 0, nullptr}};

PyTypeObject g_call_type = HostType("_torii_host.Call", sizeof(CallObject),
                                    "The responses of one call to another model.",
                                    CallDealloc, g_call_methods);

// A Python value as a request parameter; false with an exception set.
bool SetParameter(const ToriiHostApi* h, ToriiInferRequest* req, const char* key, PyObject* v,
                  std::string* keep_string) {
  ToriiParameter p;
  std::memset(&p, 0, sizeof(p));
  p.struct_size = sizeof(p);
  if (PyBool_Check(v)) {
    p.type = TORII_PARAMETER_BOOL;
    p.bool_value = v == Py_True;
  } else if (PyLong_Check(v)) {
    int overflow = 0;
    const long long i = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow > 0) {
      p.type = TORII_PARAMETER_UINT64;
      p.uint64_value = PyLong_AsUnsignedLongLong(v);
      if (PyErr_Occurred()) return false;
    } else if (overflow < 0) {
      PyErr_Format(PyExc_ValueError, "parameter '%s' does not fit in int64", key);
      return false;
    } else {
      p.type = TORII_PARAMETER_INT64;
      p.int64_value = i;
    }
  } else if (PyFloat_Check(v)) {
    p.type = TORII_PARAMETER_DOUBLE;
    p.double_value = PyFloat_AsDouble(v);
  } else if (PyUnicode_Check(v)) {
    Py_ssize_t n = 0;
    const char* s = PyUnicode_AsUTF8AndSize(v, &n);
    if (s == nullptr) return false;
    keep_string->assign(s, static_cast<size_t>(n));
    p.type = TORII_PARAMETER_STRING;
    p.string_value = keep_string->c_str();
    p.string_size = keep_string->size();
  } else {
    PyErr_Format(PyExc_TypeError, "parameter '%s' must be bool, int, float or str, not %s", key,
                 Py_TYPE(v)->tp_name);
    return false;
  }
  ToriiError* e = h->infer_request_set_parameter(req, key, &p);
  if (e != nullptr) {
    RaiseAndDelete(h, e, std::string("parameter '") + key + "'");
    return false;
  }
  return true;
}

// infer(model_name, model_version, inputs, outputs, request_id, parameters,
//       timeout_us) -> Call. inputs: [(name, datatype, shape, buffer)], whose
// buffers must stay unchanged until the call ends (the Call keeps them).
PyObject* ModelInfer(PyObject* self, PyObject* args, PyObject* kwargs) {
  auto* m = AsModel(self);
  static const char* kw[] = {"model_name", "model_version", "inputs", "outputs", "request_id",
                             "parameters", "timeout_us", nullptr};
  const char* model_name = nullptr;
  long long version = -1;
  PyObject* inputs = nullptr;
  PyObject* outputs = nullptr;
  const char* request_id = "";
  PyObject* parameters = nullptr;
  unsigned long long timeout_us = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sLOO|sOK", const_cast<char**>(kw), &model_name,
                                   &version, &inputs, &outputs, &request_id, &parameters,
                                   &timeout_us)) {
    return nullptr;
  }
  if (ModelCheck(m) == nullptr) return nullptr;
  const ToriiHostApi* h = m->host;
  if (!TORII_HOST_HAS(h, infer_result_delete)) {
    return RaiseHostError(TORII_STATUS_UNIMPLEMENTED,
                          "calls to other models need a server with runner ABI 1.2; this one has " +
                              std::to_string(h->abi_version_major) + "." +
                              std::to_string(h->abi_version_minor));
  }
  ToriiInferRequest* req = h->infer_request_new(m->model, model_name, version);
  if (req == nullptr) return RaiseHostError(TORII_STATUS_INTERNAL, "the server refused a new request");
  auto fail = [&]() -> PyObject* {
    h->infer_request_delete(req);
    return nullptr;
  };
  Ref keep(PyList_New(0));
  Ref in_fast(PySequence_Fast(inputs, "inputs must be a list"));
  Ref out_fast(PySequence_Fast(outputs, "outputs must be a list"));
  if (!keep || !in_fast || !out_fast) return fail();
  for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(in_fast.get()); ++i) {
    const char* name = nullptr;
    int datatype = 0;
    PyObject* shape_obj = nullptr;
    PyObject* data = nullptr;
    if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(in_fast.get(), i), "siOO", &name, &datatype,
                          &shape_obj, &data)) {
      return fail();
    }
    std::vector<int64_t> shape;
    if (!ParseShape(shape_obj, &shape)) return fail();
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_C_CONTIGUOUS) < 0) return fail();
    // The owner keeps the bytes where they are; the view itself is not
    // needed (it would need the GIL to release at the end of the call).
    void* ptr = view.buf;
    const size_t len = static_cast<size_t>(view.len);
    PyBuffer_Release(&view);
    if (PyList_Append(keep.get(), data) < 0) return fail();
    ToriiError* e = h->infer_request_add_input(req, name, static_cast<ToriiDataType>(datatype),
                                               shape.data(), shape.size(), ptr, len);
    if (e != nullptr) {
      RaiseAndDelete(h, e, std::string("input '") + name + "'");
      return fail();
    }
  }
  for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(out_fast.get()); ++i) {
    const char* name = PyUnicode_AsUTF8(PySequence_Fast_GET_ITEM(out_fast.get(), i));
    if (name == nullptr) return fail();
    ToriiError* e = h->infer_request_add_output(req, name);
    if (e != nullptr) {
      RaiseAndDelete(h, e, std::string("output '") + name + "'");
      return fail();
    }
  }
  if (request_id != nullptr && request_id[0] != '\0') h->infer_request_set_id(req, request_id);
  if (timeout_us > 0) h->infer_request_set_timeout_us(req, timeout_us);
  if (parameters != nullptr && parameters != Py_None) {
    if (!PyDict_Check(parameters)) {
      PyErr_SetString(PyExc_TypeError, "parameters must be a dict");
      return fail();
    }
    PyObject* key = nullptr;
    PyObject* value = nullptr;
    Py_ssize_t pos = 0;
    while (PyDict_Next(parameters, &pos, &key, &value)) {
      const char* k = PyUnicode_AsUTF8(key);
      std::string s;
      if (k == nullptr || !SetParameter(h, req, k, value, &s)) return fail();
    }
  }
  auto* c = PyObject_New(CallObject, &g_call_type);
  if (c == nullptr) return fail();
  auto state = std::make_shared<CallState>();
  state->host = h;
  state->keep = keep.release();
  c->state = new std::shared_ptr<CallState>(state);
  Ref call(reinterpret_cast<PyObject*>(c));
  auto* holder = new std::shared_ptr<CallState>(state);
  ToriiError* e = nullptr;
  {
    NoGilScope nogil;
    e = h->infer_request_send(req, CallCallback, holder);
  }
  if (e != nullptr) {
    // The callback will never run.
    delete holder;
    {
      std::lock_guard<std::mutex> lock(state->mu);
      state->final = true;
    }
    return RaiseAndDelete(h, e, "");
  }
  return call.release();
}

// ---------------------------------------------------------------------------
// Module functions
// ---------------------------------------------------------------------------

// decode_bytes(buffer) -> [bytes]: a BYTES tensor's elements.
PyObject* DecodeBytes(PyObject*, PyObject* args) {
  PyObject* obj = nullptr;
  if (!PyArg_ParseTuple(args, "O", &obj)) return nullptr;
  Py_buffer view;
  if (PyObject_GetBuffer(obj, &view, PyBUF_C_CONTIGUOUS) < 0) return nullptr;
  const auto* p = static_cast<const unsigned char*>(view.buf);
  const size_t size = static_cast<size_t>(view.len);
  Ref list(PyList_New(0));
  size_t pos = 0;
  while (list && pos < size) {
    if (size - pos < 4) {
      PyErr_Format(PyExc_ValueError, "BYTES tensor: truncated length prefix at byte %zu", pos);
      list = Ref();
      break;
    }
    const uint32_t len = uint32_t(p[pos]) | (uint32_t(p[pos + 1]) << 8) |
                         (uint32_t(p[pos + 2]) << 16) | (uint32_t(p[pos + 3]) << 24);
    pos += 4;
    if (len > size - pos) {
      PyErr_Format(PyExc_ValueError, "BYTES tensor: element of %u bytes runs past the buffer", len);
      list = Ref();
      break;
    }
    Ref item(PyBytes_FromStringAndSize(reinterpret_cast<const char*>(p + pos), len));
    if (!item || PyList_Append(list.get(), item.get()) < 0) {
      list = Ref();
      break;
    }
    pos += len;
  }
  PyBuffer_Release(&view);
  return list.release();
}

PyMethodDef g_module_methods[] = {
    {"decode_bytes", DecodeBytes, METH_VARARGS, "decode_bytes(buffer) -> list of bytes"},
    {"to_dlpack", ToDlpack, METH_VARARGS, "to_dlpack(owner, dl_code, bits, shape) -> capsule"},
    {"from_dlpack", FromDlpack, METH_VARARGS,
     "from_dlpack(capsule) -> (Buffer, dl_code, bits, lanes, shape)"},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef g_module_def = {PyModuleDef_HEAD_INIT, "_torii_host",
                            "The Torii host API for the Python runner (internal).", -1,
                            g_module_methods, nullptr, nullptr, nullptr, nullptr};

}  // namespace

PyObject* RaiseHostError(int code, const std::string& message) {
  Ref args(Py_BuildValue("(is)", code, message.c_str()));
  if (args) PyErr_SetObject(g_host_error, args.get());
  return nullptr;
}

PyObject* NewBufferObject(void* data, size_t size, bool readonly, PyObject* owner) {
  auto* b = PyObject_New(BufferObject, &g_buffer_type);
  if (b == nullptr) return nullptr;
  b->data = static_cast<char*>(data);
  b->size = static_cast<Py_ssize_t>(size);
  b->readonly = readonly ? 1 : 0;
  b->exports = 0;
  b->owner = owner;
  Py_XINCREF(owner);
  return reinterpret_cast<PyObject*>(b);
}

bool RegisterHostModule() {
  PyObject* modules = PyImport_GetModuleDict();
  if (PyDict_GetItemString(modules, "_torii_host") != nullptr) return true;
  for (PyTypeObject* t : {&g_buffer_type, &g_model_type, &g_sender_type, &g_batch_type, &g_call_type,
                           &g_metric_type}) {
    if (PyType_Ready(t) < 0) return false;
  }
  Ref module(PyModule_Create(&g_module_def));
  if (!module) return false;
  g_host_error = PyErr_NewExceptionWithDoc(
      "_torii_host.HostError", "An error the Torii host returned: args are (code, message).",
      nullptr, nullptr);
  if (g_host_error == nullptr) return false;
  Py_INCREF(g_host_error);
  if (PyModule_AddObject(module.get(), "HostError", g_host_error) < 0) return false;
  for (PyTypeObject* t : {&g_buffer_type, &g_model_type, &g_sender_type, &g_batch_type, &g_call_type,
                           &g_metric_type}) {
    Py_INCREF(t);
    const char* dot = std::strrchr(t->tp_name, '.');
    if (PyModule_AddObject(module.get(), dot + 1, reinterpret_cast<PyObject*>(t)) < 0) return false;
  }
  PyModule_AddIntConstant(module.get(), "RESPONSE_FINAL", TORII_RESPONSE_FINAL);
  PyModule_AddIntConstant(module.get(), "ABI_MAJOR", TORII_RUNNER_ABI_VERSION_MAJOR);
  PyModule_AddIntConstant(module.get(), "ABI_MINOR", TORII_RUNNER_ABI_VERSION_MINOR);
  return PyDict_SetItemString(modules, "_torii_host", module.get()) == 0;
}

PyObject* NewModelObject(const ToriiHostApi* host, ToriiModel* model) {
  auto* m = PyObject_New(ModelObject, &g_model_type);
  if (m == nullptr) return nullptr;
  m->host = host;
  m->model = model;
  m->valid = true;
  m->loading = true;
  m->alive = new AliveFlag(std::make_shared<std::atomic<bool>>(true));
  return reinterpret_cast<PyObject*>(m);
}

void MarkModelLoaded(PyObject* model) { AsModel(model)->loading = false; }

void InvalidateModelObject(PyObject* model) {
  AsModel(model)->valid = false;
  AsModel(model)->loading = false;
  (*AsModel(model)->alive)->store(false);
}

PyObject* NewBatchObject(const ToriiHostApi* host, ToriiBatch* batch, PyObject* model) {
  auto* b = PyObject_New(BatchObject, &g_batch_type);
  if (b == nullptr) return nullptr;
  b->host = host;
  b->batch = batch;
  b->model_alive = new AliveFlag(*AsModel(model)->alive);
  b->valid = true;
  b->inputs = new std::vector<std::pair<std::string, PyObject*>>();
  return reinterpret_cast<PyObject*>(b);
}

std::vector<std::string> CloseBatchObject(PyObject* batch) {
  auto* b = AsBatch(batch);
  b->valid = false;
  std::vector<std::string> kept;
  for (auto& kv : *b->inputs) {
    if (reinterpret_cast<BufferObject*>(kv.second)->exports > 0) kept.push_back(kv.first);
    // A buffer that outlives the batch must not reach freed memory through
    // new views: empty it.
    auto* buf = reinterpret_cast<BufferObject*>(kv.second);
    buf->data = nullptr;
    buf->size = 0;
    Py_DECREF(kv.second);
  }
  b->inputs->clear();
  return kept;
}

}  // namespace torii_python
