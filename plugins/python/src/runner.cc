// The Python runner's C ABI entry points. They start the interpreter, then
// hand every step to the runner's Python half (torii_python_driver.py),
// which runs the model's TritonPythonModel. Everything Python does with the
// host goes through the _torii_host module (host_module.cc).
//
// GIL: every entry point takes it for its duration (GilScope) and gives it
// back before returning, so Python threads a model starts (a decoupled
// model's sender threads) keep running between calls. Instances of one
// process therefore take turns in Python; calls that block in the host
// (sends, calls to other models) release it.
#include <cstring>
#include <memory>
#include <string>

#include "host_module.h"
#include "interpreter.h"
#include "py_util.h"
#include "torii/runner.h"
#include "torii/runner_abi.h"

namespace torii_python {
namespace {

constexpr char kRunnerVersion[] = "0.1.0";

struct ModelState {
  const ToriiHostApi* host = nullptr;
  ToriiModel* model = nullptr;
  PyObject* native = nullptr;  // _torii_host.Model
  PyObject* loaded = nullptr;  // torii_python_driver.LoadedModel
  bool warned_kept_inputs = false;
};

struct InstanceState {
  ModelState* model = nullptr;
  PyObject* instance = nullptr;  // torii_python_driver.Instance
  PyObject* execute = nullptr;   // its bound execute method
};

// The pending Python exception as a host error. The driver raises
// RunnerError(code, message) for errors it already formatted (and whose
// traceback it logged); anything else is a bug in the runner's Python half.
ToriiError* TakeError(const ToriiHostApi* host, ToriiStatusCode fallback, const std::string& what) {
  PyObject* type = nullptr;
  PyObject* value = nullptr;
  PyObject* tb = nullptr;
  PyErr_Fetch(&type, &value, &tb);
  PyErr_NormalizeException(&type, &value, &tb);
  Ref t(type), v(value), b(tb);
  if (v && PyObject_HasAttrString(v.get(), "torii_code") &&
      PyObject_HasAttrString(v.get(), "torii_message")) {
    Ref code(PyObject_GetAttrString(v.get(), "torii_code"));
    Ref message(PyObject_GetAttrString(v.get(), "torii_message"));
    const long c = code ? PyLong_AsLong(code.get()) : -1;
    if (PyErr_Occurred()) PyErr_Clear();
    if (c > 0 && c <= 16) {
      return host->error_new(static_cast<ToriiStatusCode>(c), Str(message.get()).c_str());
    }
  }
  PyErr_Restore(t.release(), v.release(), b.release());
  const std::string text = TakeErrorText();
  return host->error_new(fallback, (what + text).c_str());
}

PyObject* Driver() {
  static PyObject* driver = nullptr;  // borrowed from sys.modules forever
  if (driver == nullptr) {
    Ref m(PyImport_ImportModule("torii_python_driver"));
    driver = m.release();
  }
  return driver;
}

template <typename Fn>
ToriiError* Guarded(const ToriiHostApi* host, Fn&& fn) noexcept {
  try {
    return fn();
  } catch (const std::exception& e) {
    return host->error_new(TORII_STATUS_INTERNAL, (std::string("python runner: ") + e.what()).c_str());
  } catch (...) {
    return host->error_new(TORII_STATUS_INTERNAL, "python runner: unknown C++ exception");
  }
}

std::string ModelParameter(const ToriiHostApi* host, const ToriiModel* model, const char* key) {
  const char* v = host->model_parameter(model, key);
  return v != nullptr ? v : "";
}

}  // namespace
}  // namespace torii_python

using namespace torii_python;  // NOLINT: entry points only below

extern "C" {

TORII_RUNNER_EXPORT const ToriiRunnerInfo* torii_runner_info(void) {
  static const ToriiRunnerInfo info = {sizeof(ToriiRunnerInfo),
                                       TORII_RUNNER_ABI_VERSION_MAJOR,
                                       TORII_RUNNER_ABI_VERSION_MINOR,
                                       "python",
                                       kRunnerVersion,
                                       TORII_SDK_VERSION,
                                       TORII_SDK_COMPILER " (CPython " PY_VERSION ")",
                                       TORII_RUNNER_SOURCE_REVISION};
  return &info;
}

TORII_RUNNER_EXPORT ToriiError* torii_runner_model_load(const ToriiHostApi* host, ToriiModel* model,
                                                        void** model_state) {
  return Guarded(host, [&]() -> ToriiError* {
    Environment env;
    std::string error;
    const std::string directory = host->model_directory(model);
    if (!ResolveEnvironment(ModelParameter(host, model, "EXECUTION_ENV_PATH"), directory, &env,
                            &error)) {
      return host->error_new(TORII_STATUS_INVALID_ARGUMENT, error.c_str());
    }
    if (!EnsureInterpreter(env, &error)) {
      return host->error_new(TORII_STATUS_FAILED_PRECONDITION, error.c_str());
    }
    GilScope gil;
    auto state = std::make_unique<ModelState>();
    state->host = host;
    state->model = model;
    state->native = NewModelObject(host, model);
    if (state->native == nullptr) return TakeError(host, TORII_STATUS_INTERNAL, "python runner: ");
    PyObject* driver = Driver();
    if (driver == nullptr) return TakeError(host, TORII_STATUS_INTERNAL, "python runner: ");
    state->loaded = PyObject_CallMethod(driver, "load_model", "O", state->native);
    if (state->loaded == nullptr) {
      ToriiError* e = TakeError(host, TORII_STATUS_INTERNAL, "python runner: ");
      InvalidateModelObject(state->native);
      Py_CLEAR(state->native);
      return e;
    }
    MarkModelLoaded(state->native);
    *model_state = state.release();
    return nullptr;
  });
}

TORII_RUNNER_EXPORT void torii_runner_model_unload(void* model_state) {
  auto* state = static_cast<ModelState*>(model_state);
  if (state == nullptr) return;
  try {
    GilScope gil;
    // Senders a model thread still holds must stop before the host frees them.
    InvalidateModelObject(state->native);
    Ref r(PyObject_CallMethod(state->loaded, "unload", nullptr));
    if (!r) {
      const std::string text = TakeErrorText();
      state->host->log(state->model, TORII_LOG_ERROR, ("python runner: unload: " + text).c_str());
    }
    Py_CLEAR(state->loaded);
    Py_CLEAR(state->native);
  } catch (...) {
  }
  delete state;
}

TORII_RUNNER_EXPORT ToriiError* torii_runner_instance_create(void* model_state,
                                                             uint32_t instance_index,
                                                             void** instance_state) {
  auto* model = static_cast<ModelState*>(model_state);
  return Guarded(model->host, [&]() -> ToriiError* {
    GilScope gil;
    auto inst = std::make_unique<InstanceState>();
    inst->model = model;
    inst->instance = PyObject_CallMethod(model->loaded, "create_instance", "I", instance_index);
    if (inst->instance == nullptr) return TakeError(model->host, TORII_STATUS_INTERNAL, "");
    inst->execute = PyObject_GetAttrString(inst->instance, "execute");
    if (inst->execute == nullptr) {
      ToriiError* e = TakeError(model->host, TORII_STATUS_INTERNAL, "python runner: ");
      Py_CLEAR(inst->instance);
      return e;
    }
    *instance_state = inst.release();
    return nullptr;
  });
}

TORII_RUNNER_EXPORT void torii_runner_instance_destroy(void* instance_state) {
  auto* inst = static_cast<InstanceState*>(instance_state);
  if (inst == nullptr) return;
  try {
    GilScope gil;
    Ref r(PyObject_CallMethod(inst->instance, "destroy", nullptr));
    if (!r) {
      const std::string text = TakeErrorText();
      inst->model->host->log(inst->model->model, TORII_LOG_ERROR,
                             ("python runner: finalize: " + text).c_str());
    }
    Py_CLEAR(inst->execute);
    Py_CLEAR(inst->instance);
  } catch (...) {
  }
  delete inst;
}

TORII_RUNNER_EXPORT ToriiError* torii_runner_instance_execute(void* instance_state,
                                                              ToriiBatch* batch) {
  auto* inst = static_cast<InstanceState*>(instance_state);
  ModelState* model = inst->model;
  const ToriiHostApi* host = model->host;
  return Guarded(host, [&]() -> ToriiError* {
    GilScope gil;
    Ref b(NewBatchObject(host, batch, model->native));
    if (!b) return TakeError(host, TORII_STATUS_INTERNAL, "python runner: ");
    Ref r(PyObject_CallOneArg(inst->execute, b.get()));
    ToriiError* error = r ? nullptr : TakeError(host, TORII_STATUS_INTERNAL, "python runner: ");
    const std::vector<std::string> kept = CloseBatchObject(b.get());
    if (!kept.empty() && !model->warned_kept_inputs) {
      model->warned_kept_inputs = true;
      std::string names;
      for (const auto& n : kept) names += (names.empty() ? "'" : ", '") + n + "'";
      host->log(model->model, TORII_LOG_WARNING,
                ("the model still holds input " + names +
                 " (a numpy array from as_numpy()) after execute() returned; that memory is "
                 "reused by the next request, so keep a copy instead (np.array(x, copy=True)). "
                 "Logged once per model.")
                    .c_str());
    }
    return error;
  });
}

}  // extern "C"
