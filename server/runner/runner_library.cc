#include "server/runner/runner_library.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include <cstddef>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

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

namespace {

std::string Identity(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return path;
  return absl::StrCat(path, "|", st.st_dev, ":", st.st_ino, ":", st.st_size, ":",
                      st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec);
}

// Copies `path` to a new file with a name no other load used.
absl::StatusOr<std::string> PrivateCopy(const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  const char* tmp = std::getenv("TMPDIR");
  const std::string dir = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
  const std::string base = path.substr(path.rfind('/') + 1);
  const std::string copy =
      absl::StrCat(dir, "/torii-", getpid(), "-", counter.fetch_add(1), "-", base);
  const int in = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot read runner library ", path, ": ", std::strerror(errno)));
  }
  const int out = open(copy.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0700);
  if (out < 0) {
    close(in);
    return absl::FailedPreconditionError(
        absl::StrCat("cannot copy runner library to ", copy, ": ", std::strerror(errno)));
  }
  char buf[1 << 16];
  bool ok = true;
  for (;;) {
    const ssize_t n = read(in, buf, sizeof(buf));
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      ok = false;
      break;
    }
    for (ssize_t done = 0; ok && done < n;) {
      const ssize_t w = write(out, buf + done, static_cast<size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      ok = w > 0;
      done += w;
    }
    if (!ok) break;
  }
  close(in);
  if (close(out) != 0) ok = false;
  if (!ok) {
    unlink(copy.c_str());
    return absl::FailedPreconditionError(absl::StrCat("cannot copy runner library ", path));
  }
  return copy;
}

}  // namespace

absl::StatusOr<std::shared_ptr<RunnerLibrary>> RunnerLibraryCache::Get(const std::string& path,
                                                                       bool private_copy) {
  char resolved[PATH_MAX];
  const std::string real = realpath(path.c_str(), resolved) != nullptr ? resolved : path;
  const std::string key = private_copy ? Identity(real) : real;
  std::lock_guard<std::mutex> lock(mu_);
  if (auto lib = libraries_[key].lock()) return lib;
  if (!private_copy) {
    auto lib = RunnerLibrary::Open(real);
    if (lib.ok()) libraries_[key] = *lib;
    return lib;
  }
  auto copy = PrivateCopy(real);
  if (!copy.ok()) return copy.status();
  auto lib = RunnerLibrary::Open(*copy);
  // The mapping keeps the code; the name is no longer needed.
  unlink(copy->c_str());
  if (!lib.ok()) {
    return absl::Status(lib.status().code(),
                        absl::StrReplaceAll(lib.status().message(), {{*copy, real}}));
  }
  libraries_[key] = *lib;
  return lib;
}

}  // namespace torii
