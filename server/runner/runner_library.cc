#include "server/runner/runner_library.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>

#include <cstddef>

#include "absl/strings/str_cat.h"

namespace torii {
namespace {

// Every field a 1.0 runner fills; a smaller struct is not a Torii runner.
constexpr size_t kMinInfoSize = offsetof(ToriiRunnerInfo, source_revision) + sizeof(const char*);

std::string OrUnknown(const char* s) { return s != nullptr && *s != '\0' ? s : "unknown"; }

}  // namespace

absl::StatusOr<std::shared_ptr<RunnerLibrary>> RunnerLibrary::Open(const std::string& path) {
  dlerror();
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* err = dlerror();
    return absl::FailedPreconditionError(
        absl::StrCat("cannot load runner library ", path, ": ", err ? err : "unknown error"));
  }
  std::shared_ptr<RunnerLibrary> lib(new RunnerLibrary(path, handle));
  auto resolve = [&](const char* name, auto& slot) -> absl::Status {
    void* sym = dlsym(handle, name);
    if (sym == nullptr) {
      return absl::FailedPreconditionError(absl::StrCat(
          "runner library ", path, " does not export the entry point '", name,
          "'; build it with torii_add_runner() and TORII_RUNNER(...)"));
    }
    slot = reinterpret_cast<std::remove_reference_t<decltype(slot)>>(sym);
    return absl::OkStatus();
  };
  Symbols& s = lib->symbols_;
  for (absl::Status st : {resolve(TORII_RUNNER_SYMBOL_INFO, s.info),
                          resolve(TORII_RUNNER_SYMBOL_MODEL_LOAD, s.model_load),
                          resolve(TORII_RUNNER_SYMBOL_MODEL_UNLOAD, s.model_unload),
                          resolve(TORII_RUNNER_SYMBOL_INSTANCE_CREATE, s.instance_create),
                          resolve(TORII_RUNNER_SYMBOL_INSTANCE_DESTROY, s.instance_destroy),
                          resolve(TORII_RUNNER_SYMBOL_INSTANCE_EXECUTE, s.instance_execute)}) {
    if (!st.ok()) return st;
  }
  const ToriiRunnerInfo* info = s.info();
  if (info == nullptr || info->struct_size < kMinInfoSize) {
    return absl::FailedPreconditionError(absl::StrCat(
        "runner library ", path, ": torii_runner_info() returned ",
        info == nullptr ? "NULL" : "a truncated ToriiRunnerInfo"));
  }
  const std::string runner_abi =
      absl::StrCat(info->abi_version_major, ".", info->abi_version_minor);
  const std::string server_abi =
      absl::StrCat(TORII_RUNNER_ABI_VERSION_MAJOR, ".", TORII_RUNNER_ABI_VERSION_MINOR);
  if (info->abi_version_major != TORII_RUNNER_ABI_VERSION_MAJOR) {
    return absl::FailedPreconditionError(absl::StrCat(
        "runner library ", path, " was built for runner ABI ", runner_abi,
        " but this server implements ABI ", server_abi,
        "; the major versions must be equal: rebuild the runner against this server's SDK "
        "(runner ABI ", server_abi, ")"));
  }
  if (info->abi_version_minor > TORII_RUNNER_ABI_VERSION_MINOR) {
    return absl::FailedPreconditionError(absl::StrCat(
        "runner library ", path, " needs runner ABI ", runner_abi,
        " but this server implements only ABI ", server_abi,
        "; upgrade the server or rebuild the runner against this server's SDK (runner ABI ",
        server_abi, ")"));
  }
  lib->provenance_.runner = OrUnknown(info->name);
  lib->provenance_.runner_version = OrUnknown(info->version);
  lib->provenance_.runner_build =
      absl::StrCat("sdk ", OrUnknown(info->sdk_version), "; ", OrUnknown(info->compiler),
                   "; rev ", OrUnknown(info->source_revision));
  lib->provenance_.runner_abi = runner_abi;
  return lib;
}

RunnerLibrary::~RunnerLibrary() {
  if (handle_ != nullptr) dlclose(handle_);
}

absl::StatusOr<std::shared_ptr<RunnerLibrary>> RunnerLibraryCache::Get(const std::string& path) {
  char resolved[PATH_MAX];
  const std::string key = realpath(path.c_str(), resolved) != nullptr ? resolved : path;
  std::lock_guard<std::mutex> lock(mu_);
  if (auto lib = libraries_[key].lock()) return lib;
  auto lib = RunnerLibrary::Open(key);
  if (lib.ok()) libraries_[key] = *lib;
  return lib;
}

}  // namespace torii
