// Small helpers over the CPython C API for the Python runner: an owning
// reference, GIL guards, and turning the pending Python exception into text.
#ifndef TORII_PLUGINS_PYTHON_PY_UTIL_H_
#define TORII_PLUGINS_PYTHON_PY_UTIL_H_

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string>
#include <utility>

namespace torii_python {

/// An owning reference to a Python object (nullptr allowed). Needs the GIL to
/// be destroyed or reassigned while non-null.
class Ref {
 public:
  Ref() = default;
  /// Takes over a new reference (as C API functions return them).
  explicit Ref(PyObject* owned) : p_(owned) {}
  static Ref Borrow(PyObject* borrowed) {
    Py_XINCREF(borrowed);
    return Ref(borrowed);
  }
  Ref(const Ref&) = delete;
  Ref& operator=(const Ref&) = delete;
  Ref(Ref&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  Ref& operator=(Ref&& o) noexcept {
    if (this != &o) {
      Py_XDECREF(p_);
      p_ = std::exchange(o.p_, nullptr);
    }
    return *this;
  }
  ~Ref() { Py_XDECREF(p_); }

  PyObject* get() const { return p_; }
  PyObject* release() { return std::exchange(p_, nullptr); }
  explicit operator bool() const { return p_ != nullptr; }

 private:
  PyObject* p_ = nullptr;
};

/// Holds the GIL for a scope, from any thread. A thread that enters Python
/// for the first time keeps its thread state for the rest of its life, so
/// Python-side thread-locals (threading.local, asyncio's running loop)
/// survive from one call to the next instead of being rebuilt per call.
class GilScope {
 public:
  GilScope() {
    thread_local bool kept = false;
    if (!kept) {
      kept = true;
      // This first Ensure is never released: it pins the thread state.
      PyGILState_Ensure();
      PyEval_SaveThread();
    }
    state_ = PyGILState_Ensure();
  }
  ~GilScope() { PyGILState_Release(state_); }
  GilScope(const GilScope&) = delete;
  GilScope& operator=(const GilScope&) = delete;

 private:
  PyGILState_STATE state_;
};

/// Releases the GIL for a scope (around calls that may block).
class NoGilScope {
 public:
  NoGilScope() : save_(PyEval_SaveThread()) {}
  ~NoGilScope() { PyEval_RestoreThread(save_); }
  NoGilScope(const NoGilScope&) = delete;
  NoGilScope& operator=(const NoGilScope&) = delete;

 private:
  PyThreadState* save_;
};

/// str(obj) as UTF-8 ("" when it cannot be converted). Needs the GIL.
inline std::string Str(PyObject* obj) {
  if (obj == nullptr) return "";
  Ref s(PyObject_Str(obj));
  if (!s) {
    PyErr_Clear();
    return "";
  }
  Py_ssize_t n = 0;
  const char* c = PyUnicode_AsUTF8AndSize(s.get(), &n);
  if (c == nullptr) {
    PyErr_Clear();
    return "";
  }
  return std::string(c, static_cast<size_t>(n));
}

/// The pending Python exception as "<Type>: <message>" (or "<Type>" when
/// the message is empty), and clears it. Needs the GIL.
inline std::string TakeErrorText() {
  PyObject* type = nullptr;
  PyObject* value = nullptr;
  PyObject* tb = nullptr;
  PyErr_Fetch(&type, &value, &tb);
  if (type == nullptr) return "unknown Python error";
  PyErr_NormalizeException(&type, &value, &tb);
  Ref t(type), v(value), b(tb);
  std::string name = "Exception";
  if (PyType_Check(type)) name = reinterpret_cast<PyTypeObject*>(type)->tp_name;
  // tp_name of a class defined in Python is already unqualified; builtins
  // carry no module prefix either.
  const std::string message = Str(value);
  return message.empty() ? name : name + ": " + message;
}

}  // namespace torii_python

#endif  // TORII_PLUGINS_PYTHON_PY_UTIL_H_
