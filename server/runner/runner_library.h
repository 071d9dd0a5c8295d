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
#include "torii/runner_abi.h"

namespace torii {

/// Who built a runner (from torii_runner_info), as the server reports it in
/// ModelMetadata properties and logs.
struct RunnerProvenance {
  std::string runner;          // name
  std::string runner_version;
  std::string runner_build;    // "sdk 0.1.0; gcc 12.2.0; rev abc123"
  std::string runner_abi;      // "1.0"
};

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
  absl::StatusOr<std::shared_ptr<RunnerLibrary>> Get(const std::string& path);

 private:
  std::mutex mu_;
  std::map<std::string, std::weak_ptr<RunnerLibrary>> libraries_;
};

}  // namespace torii

#endif  // TORII_SERVER_RUNNER_RUNNER_LIBRARY_H_
