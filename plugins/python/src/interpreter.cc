#include "interpreter.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <dirent.h>

#include <fstream>
#include <mutex>
#include <sstream>
#include <vector>

#include "host_module.h"
#include "py_util.h"

namespace torii_python {
namespace {

constexpr char kModelDirVariable[] = "$$TRITON_MODEL_DIRECTORY";
const std::string kEmbeddedVersion =
    std::to_string(PY_MAJOR_VERSION) + "." + std::to_string(PY_MINOR_VERSION);

bool IsDirectory(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool Exists(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0;
}

std::string RealPath(const std::string& p) {
  char buf[PATH_MAX];
  return realpath(p.c_str(), buf) != nullptr ? std::string(buf) : p;
}

std::string Trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// "3.11.2" -> "3.11"; "" when it does not look like a version.
std::string MajorMinor(const std::string& version) {
  const size_t dot1 = version.find('.');
  if (dot1 == std::string::npos) return "";
  const size_t dot2 = version.find('.', dot1 + 1);
  return version.substr(0, dot2);
}

// The Python version an environment holds: pyvenv.cfg's `version` for a
// venv, else the lib/python3.X directories of an installed prefix.
std::string EnvironmentVersion(const std::string& env, bool* is_venv) {
  *is_venv = false;
  std::ifstream cfg(env + "/pyvenv.cfg");
  if (cfg) {
    *is_venv = true;
    std::string line;
    while (std::getline(cfg, line)) {
      const size_t eq = line.find('=');
      if (eq == std::string::npos) continue;
      const std::string key = Trim(line.substr(0, eq));
      if (key == "version" || key == "version_info") return MajorMinor(Trim(line.substr(eq + 1)));
    }
    return "";
  }
  std::vector<std::string> found;
  if (DIR* d = opendir((env + "/lib").c_str())) {
    while (dirent* e = readdir(d)) {
      const std::string n = e->d_name;
      if (n.rfind("python3.", 0) == 0 && IsDirectory(env + "/lib/" + n)) found.push_back(n.substr(6));
    }
    closedir(d);
  }
  for (const auto& v : found) {
    if (v == kEmbeddedVersion) return v;
  }
  return found.empty() ? "" : found.front();
}

std::string SelfLibraryPath() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&SelfLibraryPath), &info) == 0 || info.dli_fname == nullptr) {
    return "";
  }
  return RealPath(info.dli_fname);
}

// C extension modules resolve libpython's symbols globally; the runner was
// opened RTLD_LOCAL, which made libpython (its dependency) local too.
bool PromoteLibpython(std::string* error) {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&Py_InitializeFromConfig), &info) == 0 ||
      info.dli_fname == nullptr) {
    *error = "cannot locate libpython in this process (dladdr failed)";
    return false;
  }
  if (dlopen(info.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD) == nullptr) {
    *error = std::string("cannot make libpython's symbols global (") + info.dli_fname +
             "): " + dlerror();
    return false;
  }
  return true;
}

// Python holds pointers into this library until the process ends.
void PinSelf() {
  const std::string self = SelfLibraryPath();
  if (!self.empty()) dlopen(self.c_str(), RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

bool CheckStatus(const PyStatus& status, const std::string& what, std::string* error) {
  if (!PyStatus_Exception(status)) return true;
  *error = what + ": " + (status.err_msg != nullptr ? status.err_msg : "unknown error");
  if (status.func != nullptr) *error += std::string(" (in ") + status.func + ")";
  return false;
}

bool StartPython(const Environment& env, std::string* error) {
  PyConfig config;
  PyConfig_InitPythonConfig(&config);
  // The host owns the process's signals and argv.
  config.install_signal_handlers = 0;
  config.parse_argv = 0;
  // No __pycache__ in model repositories (often read-only, sometimes polled
  // for changes); compiled files that exist are still used.
  config.write_bytecode = 0;
  std::string program = TORII_PYTHON_EXECUTABLE;
  bool ok = true;
  if (!env.path.empty()) {
    bool is_venv = false;
    EnvironmentVersion(env.path, &is_venv);
    program = env.path + "/bin/python3";
    if (!is_venv) {
      // An installed prefix (e.g. an unpacked conda environment): its own
      // standard library and site-packages.
      ok = CheckStatus(PyConfig_SetBytesString(&config, &config.home, env.path.c_str()),
                       "setting the Python home to " + env.path, error);
    }
    // For a venv, getpath finds pyvenv.cfg beside the program and sets
    // sys.prefix to the venv (and base_prefix to its home).
  }
  ok = ok && CheckStatus(PyConfig_SetBytesString(&config, &config.program_name, program.c_str()),
                         "setting the Python program name", error);
  ok = ok && CheckStatus(Py_InitializeFromConfig(&config), "starting Python", error);
  PyConfig_Clear(&config);
  return ok;
}

// With the GIL held: sys.path, the _torii_host module, numpy, the driver.
bool PrepareModules(std::string* error) {
  Ref sys_path(PySys_GetObject("path") != nullptr ? Ref::Borrow(PySys_GetObject("path")) : Ref());
  if (!sys_path || !PyList_Check(sys_path.get())) {
    *error = "sys.path is missing";
    return false;
  }
  Ref dir(PyUnicode_FromString(PythonFilesDirectory().c_str()));
  if (!dir) {
    *error = TakeErrorText();
    return false;
  }
  const int present = PySequence_Contains(sys_path.get(), dir.get());
  if (present == 0) PyList_Insert(sys_path.get(), 0, dir.get());
  if (!RegisterHostModule()) {
    *error = "cannot create the _torii_host module: " + TakeErrorText();
    return false;
  }
  Ref numpy(PyImport_ImportModule("numpy"));
  if (!numpy) {
    *error = "the Python runner needs numpy, which does not import: " + TakeErrorText() +
             " (Debian: apt-get install python3-numpy; in an EXECUTION_ENV_PATH environment, "
             "install numpy there or create it with --system-site-packages)";
    return false;
  }
  Ref driver(PyImport_ImportModule("torii_python_driver"));
  if (!driver) {
    *error = "cannot import the runner's driver from " + PythonFilesDirectory() + ": " +
             TakeErrorText();
    return false;
  }
  return true;
}

std::mutex g_mu;
bool g_started = false;
bool g_ready = false;
bool g_foreign = false;  // the interpreter was started by someone else
Environment g_env;

}  // namespace

const std::string& PythonFilesDirectory() {
  static const std::string dir = [] {
    std::string self = SelfLibraryPath();
    const size_t slash = self.rfind('/');
    return (slash == std::string::npos ? std::string(".") : self.substr(0, slash)) + "/python";
  }();
  return dir;
}

bool ResolveEnvironment(const std::string& parameter, const std::string& model_directory,
                        Environment* out, std::string* error) {
  out->path.clear();
  std::string p = Trim(parameter);
  if (p.empty()) return true;
  const size_t var = p.find(kModelDirVariable);
  if (var != std::string::npos) {
    p.replace(var, sizeof(kModelDirVariable) - 1, model_directory);
  }
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  const std::string named = "EXECUTION_ENV_PATH '" + parameter + "'" +
                            (p != parameter ? " (" + p + ")" : "");
  if (p.empty() || p[0] != '/') {
    *error = named + " must be an absolute path or start with $$TRITON_MODEL_DIRECTORY";
    return false;
  }
  if (!Exists(p)) {
    *error = named + " does not exist";
    return false;
  }
  if (!IsDirectory(p)) {
    *error = named + " is a file; Torii needs an environment directory (unpack an archive "
             "with tar -xzf <file> -C <dir> and name the directory)";
    return false;
  }
  if (!Exists(p + "/bin/python3")) {
    *error = named + " has no bin/python3: expected a virtual environment (python3 -m venv "
             "--system-site-packages <dir>) or an unpacked Python installation";
    return false;
  }
  bool is_venv = false;
  const std::string version = EnvironmentVersion(p, &is_venv);
  if (version != kEmbeddedVersion) {
    *error = named + " holds Python " + (version.empty() ? std::string("of unknown version") : version) +
             (is_venv ? " (pyvenv.cfg)" : " (lib/python*)") +
             ", but this runner embeds Python " + kEmbeddedVersion +
             "; create the environment with python" + kEmbeddedVersion;
    return false;
  }
  out->path = RealPath(p);
  return true;
}

bool EnsureInterpreter(const Environment& env, std::string* error) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_started) {
    if (env.path != g_env.path) {
      auto name = [](const Environment& e) {
        return e.path.empty() ? std::string("the default Python (") + TORII_PYTHON_EXECUTABLE + ")"
                              : "EXECUTION_ENV_PATH " + e.path;
      };
      *error = "this process already runs Python for " + name(g_env) + "; it cannot also run " +
               name(env) + " (one interpreter per process: give models with different "
               "environments their own process)";
      return false;
    }
    if (g_ready) return true;
  } else {
    if (!PromoteLibpython(error)) return false;
    PinSelf();
    if (Py_IsInitialized()) {
      // Embedded into a process that already runs Python: use it as it is.
      g_foreign = true;
      if (!env.path.empty()) {
        *error = "EXECUTION_ENV_PATH cannot apply: this process already runs a Python interpreter";
        return false;
      }
    } else {
      if (!StartPython(env, error)) return false;
      PyEval_SaveThread();
    }
    g_started = true;
    g_env = env;
  }
  GilScope gil;
  g_ready = PrepareModules(error);
  return g_ready;
}

}  // namespace torii_python
