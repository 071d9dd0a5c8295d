// A runner plugin library: dlopen'ed once per process, ABI-checked, with its
// entry points resolved. Shared by every model version that uses it; the
// library is closed when the last of them lets go.
#ifndef TORII_SERVER_RUNNER_RUNNER_LIBRARY_H_
#define TORII_SERVER_RUNNER_RUNNER_LIBRARY_H_

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "server/core/execution_backend.h"
#include "torii/runner_abi.h"

namespace torii {

class RunnerLibrary {
 public:
  struct Symbols {
    decltype(&torii_runner_info) info = nullptr;
    decltype(&torii_runner_model_load) model_load = nullptr;
    decltype(&torii_runner_model_unload) model_unload = nullptr;
    decltype(&torii_runner_instance_create) instance_create = nullptr;
    decltype(&torii_runner_instance_destroy) instance_destroy = nullptr;
    decltype(&torii_runner_instance_execute) instance_execute = nullptr;
  };

  /// Opens `path` with RTLD_NOW | RTLD_LOCAL, resolves every entry point and
  /// checks the ABI version (majors equal, runner minor <= server minor).
  /// Errors name the library and the missing symbol or both versions.
  static absl::StatusOr<std::shared_ptr<RunnerLibrary>> Open(const std::string& path);

  ~RunnerLibrary();
  RunnerLibrary(const RunnerLibrary&) = delete;
  RunnerLibrary& operator=(const RunnerLibrary&) = delete;

  const std::string& path() const { return path_; }
  const Symbols& symbols() const { return symbols_; }
  const RunnerProvenance& provenance() const { return provenance_; }

 private:
  RunnerLibrary(std::string path, void* handle) : path_(std::move(path)), handle_(handle) {}
  std::string path_;
  void* handle_;
  Symbols symbols_;
  RunnerProvenance provenance_;
};

/// Opens each library once: models naming the same file share one handle.
/// Thread-safe.
class RunnerLibraryCache {
 public:
  /// The library at `path`. With `private_copy` (libraries shipped in a
  /// model folder), the file is copied to a private temporary name before
  /// dlopen and the copy unlinked at once: a library replaced in place loads
  /// as new code (dlopen would return the old handle for the same path), and
  /// rewriting the file under a running model cannot crash it.
  absl::StatusOr<std::shared_ptr<RunnerLibrary>> Get(const std::string& path,
                                                     bool private_copy = false);

 private:
  std::mutex mu_;
  // realpath + file identity -> library
  std::map<std::string, std::weak_ptr<RunnerLibrary>> libraries_;
};

}  // namespace torii

#endif  // TORII_SERVER_RUNNER_RUNNER_LIBRARY_H_
