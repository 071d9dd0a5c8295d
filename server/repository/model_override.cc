#include "server/repository/model_override.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/common/logging.h"

namespace torii {

// The per-server directory. Holds an exclusive flock on <path>/.lock for its
// life, so another server can tell a live directory from one a killed server
// left (even across PID namespaces sharing the same /tmp).
struct OverrideDirectory::Area {
  std::string path;
  int lock_fd = -1;
  std::mutex mu;
  uint64_t bytes = 0;  // held by the live directories under it

  ~Area() {
    RemoveTree(path);
    if (lock_fd >= 0) close(lock_fd);
  }
};

namespace {

constexpr char kAreaPrefix[] = "torii-overrides-";
constexpr char kLockName[] = ".lock";
constexpr size_t kMaxPathBytes = 4096;

int RemoveEntry(const char* path, const struct stat*, int, struct FTW*) {
  // Errors are ignored: remove what can be removed.
  remove(path);
  return 0;
}

std::string Shown(const std::string& path) {
  return path.size() <= 120 ? path : absl::StrCat(path.substr(0, 117), "...");
}

// Removes the directories of servers that died without cleaning up: a
// directory whose lock nobody holds. One without a lock file is left alone
// unless it is older than a minute (a server may be creating it right now).
void SweepStale(const std::string& parent) {
  DIR* d = opendir(parent.c_str());
  if (d == nullptr) return;
  std::vector<std::string> stale;
  while (dirent* e = readdir(d)) {
    const std::string n = e->d_name;
    if (!absl::StartsWith(n, kAreaPrefix)) continue;
    const std::string dir = parent + "/" + n;
    struct stat st;
    if (lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid()) continue;
    const int fd = open((dir + "/" + kLockName).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
      if (std::time(nullptr) - st.st_mtime > 60) stale.push_back(dir);
      continue;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) stale.push_back(dir);
    close(fd);
  }
  closedir(d);
  for (const auto& dir : stale) {
    LogInfo("removing a model override directory a stopped server left behind", {{"path", dir}});
    RemoveTree(dir);
  }
}

absl::Status WriteError(int err, const std::string& model, const std::string& path) {
  const std::string msg =
      absl::StrCat("failed to poll from model repository: model '", model, "': cannot write file '",
                   Shown(path), "' of the load request: ", std::strerror(err));
  if (err == ENOSPC || err == EDQUOT) return absl::ResourceExhaustedError(msg);
  if (err == EEXIST) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model '", model, "': file '", Shown(path), "' of the load request is given twice"));
  }
  if (err == ENOTDIR || err == EISDIR) {
    return absl::InvalidArgumentError(absl::StrCat("model '", model, "': file '", Shown(path),
                                                   "' of the load request is both a file and "
                                                   "a folder"));
  }
  // As Triton: a filesystem failure while laying out the model directory.
  return absl::InternalError(msg);
}

bool WriteAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    const ssize_t n = write(fd, data.data(), std::min<size_t>(data.size(), size_t{1} << 30));
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Creates `rel` (checked) under the directory `root_fd`, folders included,
// never following a symlink. 0 or an errno.
int CreateFile(int root_fd, const std::string& rel, absl::string_view contents) {
  std::vector<std::string> parts = absl::StrSplit(rel, '/');
  int dir = dup(root_fd);
  if (dir < 0) return errno;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    if (mkdirat(dir, parts[i].c_str(), 0700) != 0 && errno != EEXIST) {
      const int err = errno;
      close(dir);
      return err;
    }
    const int next =
        openat(dir, parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    const int err = errno;
    close(dir);
    if (next < 0) return err == ELOOP ? ENOTDIR : err;
    dir = next;
  }
  const int fd = openat(dir, parts.back().c_str(),
                        O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  int err = fd < 0 ? errno : 0;
  close(dir);
  if (fd < 0) return err;
  if (!WriteAll(fd, contents)) err = errno;
  if (close(fd) != 0 && err == 0) err = errno;
  return err;
}

}  // namespace

void RemoveTree(const std::string& path) {
  if (path.empty()) return;
  nftw(path.c_str(), RemoveEntry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

absl::Status CheckOverridePath(const std::string& path) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("file parameter '", kOverrideFilePrefix,
                                                   Shown(path), "': ", why));
  };
  if (path.empty()) return bad("the path after 'file:' is empty");
  if (path.size() > kMaxPathBytes) {
    return bad(absl::StrCat("the path is longer than ", kMaxPathBytes, " bytes"));
  }
  if (path[0] == '/') return bad("the path must be relative to the model directory");
  if (path.find('\0') != std::string::npos || path.find('\\') != std::string::npos) {
    return bad("the path may not contain a NUL or a backslash");
  }
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part.empty() || part == "." || part == "..") {
      return bad("each part of the path must be a plain name (no '..', '.' or empty part); "
                 "it must stay inside the model directory");
    }
  }
  if (path == "config.pbtxt") {
    return bad("the model's config comes from the 'config' parameter, not from a file");
  }
  return absl::OkStatus();
}

OverrideDirectory::~OverrideDirectory() {
  RemoveTree(path_);
  if (area_ != nullptr) {
    std::lock_guard<std::mutex> lock(area_->mu);
    area_->bytes -= bytes_;
  }
}

absl::StatusOr<std::shared_ptr<OverrideDirectory::Area>> OverrideStore::AreaLocked() {
  if (auto area = area_.lock()) return area;
  std::string parent = options_.parent;
  if (parent.empty()) {
    const char* t = std::getenv("TMPDIR");
    parent = t != nullptr && *t != '\0' ? t : "/tmp";
  }
  SweepStale(parent);
  std::string tmpl = absl::StrCat(parent, "/", kAreaPrefix, "XXXXXX");
  if (mkdtemp(tmpl.data()) == nullptr) {
    return absl::InternalError(absl::StrCat(
        "failed to poll from model repository: cannot create a private directory for the "
        "files of load requests in ", parent, ": ", std::strerror(errno)));
  }
  auto area = std::make_shared<OverrideDirectory::Area>();
  area->path = tmpl;
  area->lock_fd = open((tmpl + "/" + kLockName).c_str(),
                       O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (area->lock_fd < 0 || flock(area->lock_fd, LOCK_EX | LOCK_NB) != 0) {
    return absl::InternalError(absl::StrCat("failed to poll from model repository: cannot lock ",
                                            tmpl, ": ", std::strerror(errno)));
  }
  area_ = area;
  return area;
}

uint64_t OverrideStore::bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  auto area = area_.lock();
  if (area == nullptr) return 0;
  std::lock_guard<std::mutex> area_lock(area->mu);
  return area->bytes;
}

absl::StatusOr<std::shared_ptr<const OverrideDirectory>> OverrideStore::Write(
    const std::string& model, const std::string& config_text,
    const std::vector<std::pair<std::string, absl::string_view>>& files) {
  if (files.size() > options_.max_files) {
    return absl::ResourceExhaustedError(absl::StrCat("model '", model, "': the load request has ",
                                                     files.size(), " files; at most ",
                                                     options_.max_files, " are accepted"));
  }
  uint64_t total = config_text.size();
  for (const auto& [path, contents] : files) {
    absl::Status s = CheckOverridePath(path);
    if (!s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("model '", model, "': ", s.message()));
    }
    total += contents.size();
  }
  std::shared_ptr<OverrideDirectory::Area> area;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto a = AreaLocked();
    if (!a.ok()) return a.status();
    area = std::move(*a);
  }
  auto dir = std::shared_ptr<OverrideDirectory>(new OverrideDirectory());
  {
    // Reserve the bytes first, so concurrent loads cannot together pass the
    // bound.
    std::lock_guard<std::mutex> lock(area->mu);
    if (area->bytes + total > options_.max_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "model '", model, "': the load request carries ", total, " bytes of files; with the ",
          area->bytes, " bytes other loaded models hold, that passes the server's bound of ",
          options_.max_bytes, " bytes for models loaded from requests"));
    }
    area->bytes += total;
    dir->bytes_ = total;
    dir->area_ = area;
  }
  // A name the client does not choose: the model name may be long.
  std::string tmpl = absl::StrCat(area->path, "/", model.substr(0, 64), "-XXXXXX");
  if (mkdtemp(tmpl.data()) == nullptr) return WriteError(errno, model, model);
  dir->path_ = tmpl;  // from here on, the directory is removed on every return
  const int root = open(tmpl.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (root < 0) return WriteError(errno, model, ".");
  int err = CreateFile(root, "config.pbtxt", config_text);
  if (err != 0) {
    close(root);
    return WriteError(err, model, "config.pbtxt");
  }
  for (const auto& [path, contents] : files) {
    err = CreateFile(root, path, contents);
    if (err != 0) {
      close(root);
      return WriteError(err, model, path);
    }
  }
  close(root);
  return std::shared_ptr<const OverrideDirectory>(std::move(dir));
}

}  // namespace torii
