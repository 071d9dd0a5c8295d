// Starting the embedded CPython interpreter, once per process.
//
// The runner library is dlopen()ed with RTLD_LOCAL by a host that knows
// nothing of Python. Three things follow:
//   - libpython's symbols are re-exported globally (dlopen RTLD_NOLOAD |
//     RTLD_GLOBAL), because C extension modules (numpy's) are not linked
//     against libpython and expect its symbols to be global;
//   - the runner library pins itself (RTLD_NODELETE): Python keeps pointers
//     into it (the _torii_host module's functions and types) for the life of
//     the interpreter, which cannot be shut down and restarted safely with
//     numpy loaded;
//   - the interpreter is configured for the model's environment
//     (EXECUTION_ENV_PATH) before it starts; every later model of the process
//     must ask for the same environment.
#ifndef TORII_PLUGINS_PYTHON_INTERPRETER_H_
#define TORII_PLUGINS_PYTHON_INTERPRETER_H_

#include <string>

namespace torii_python {

/// What the interpreter was (or is to be) started with.
struct Environment {
  /// A directory holding bin/python3 (a venv or an unpacked environment);
  /// empty for the Python this runner was built against.
  std::string path;
};

/// Resolves the EXECUTION_ENV_PATH parameter: expands $$TRITON_MODEL_DIRECTORY
/// to `model_directory`, checks that the directory holds bin/python3 and a
/// Python of the version this runner embeds. On failure returns false and an
/// error message naming the path and what was wrong.
bool ResolveEnvironment(const std::string& parameter, const std::string& model_directory,
                        Environment* out, std::string* error);

/// Starts the interpreter for `env` if it is not running, imports numpy and
/// the runner's Python driver, and leaves the GIL released. When it already
/// runs with another environment, fails naming both. Not thread-safe with
/// itself (model loads happen on one control thread per model; a mutex
/// guards it anyway). Returns false with a message on failure.
bool EnsureInterpreter(const Environment& env, std::string* error);

/// The directory that holds the runner's Python files (<lib dir>/python).
const std::string& PythonFilesDirectory();

}  // namespace torii_python

#endif  // TORII_PLUGINS_PYTHON_INTERPRETER_H_
