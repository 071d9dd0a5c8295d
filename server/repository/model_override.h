// Repository load overrides (Triton's model-repository extension): a load
// request may carry the model's config as JSON (parameter "config"), used
// instead of config.pbtxt, and the model's files (parameters
// "file:<path>", e.g. "file:1/model.pt"), which then replace the model's
// folder in the repository altogether.
//
// The files are written to a private directory owned by the server, never
// into the repository: <$TMPDIR or /tmp>/torii-overrides-<pid>-XXXXXX (mode
// 0700), one subdirectory per load. Every path is checked before anything is
// written (relative, no "..", no empty or "." components, no backslash, not
// the config file), files are created with O_EXCL | O_NOFOLLOW under
// directories opened with O_NOFOLLOW, so nothing is written outside that
// directory even if someone plants a symlink in it, and the bytes are
// bounded (per load by the request size the frontend accepts, and across
// all loads by OverrideStore::Options::max_bytes). A directory is removed
// when the last version loaded from it is unloaded, and the per-server
// directory when the last of them goes; directories a killed server left
// behind are removed by the next server that writes overrides.
#ifndef TORII_SERVER_REPOSITORY_MODEL_OVERRIDE_H_
#define TORII_SERVER_REPOSITORY_MODEL_OVERRIDE_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace torii {

/// What a load request carries besides the model's name. Frontends fill it
/// from their wire form; the views must stay valid until the load returns.
struct ModelOverride {
  /// The "config" parameter: a model config as JSON (protobuf JSON mapping
  /// of model_config.proto, Triton's ModelConfig), replacing config.pbtxt.
  std::optional<std::string> config_json;
  /// The "file:<path>" parameters: path relative to the model directory
  /// ("1/model.pt") and contents. Requires config_json.
  std::vector<std::pair<std::string, absl::string_view>> files;

  bool empty() const { return !config_json && files.empty(); }
};

/// The prefix of file parameters ("file:").
inline constexpr char kOverrideFilePrefix[] = "file:";

/// INVALID_ARGUMENT unless `path` is a relative path that stays inside the
/// model directory: non-empty components separated by '/', none "." or "..",
/// no backslash or NUL, at most 4096 bytes, and not "config.pbtxt" (the
/// config comes from the "config" parameter).
absl::Status CheckOverridePath(const std::string& path);

/// One model directory written from a load request. Removed (with its
/// files) when the last reference goes.
class OverrideDirectory {
 public:
  ~OverrideDirectory();
  OverrideDirectory(const OverrideDirectory&) = delete;
  OverrideDirectory& operator=(const OverrideDirectory&) = delete;

  /// The absolute path of the model directory.
  const std::string& path() const { return path_; }
  uint64_t bytes() const { return bytes_; }

 private:
  friend class OverrideStore;
  struct Area;
  OverrideDirectory() = default;

  std::string path_;
  uint64_t bytes_ = 0;
  std::shared_ptr<Area> area_;  // keeps the per-server directory alive
};

class OverrideStore {
 public:
  struct Options {
    /// Where the per-server directory is created; empty: $TMPDIR, else /tmp.
    std::string parent;
    /// Bytes all live override directories may hold together.
    uint64_t max_bytes = uint64_t{4} << 30;
    /// Files one load may carry.
    size_t max_files = 4096;
  };

  explicit OverrideStore(Options options) : options_(std::move(options)) {}

  /// Writes `files` (paths as in ModelOverride) into a new private directory
  /// for model `model`, and `config_text` as its config.pbtxt.
  /// INVALID_ARGUMENT for a path CheckOverridePath refuses, a path given
  /// twice or both as a file and a folder; RESOURCE_EXHAUSTED past
  /// max_files or max_bytes, or when the disk is full; INTERNAL for other
  /// filesystem errors (a name longer than the filesystem allows, ...), as
  /// Triton. Nothing is left behind on error.
  absl::StatusOr<std::shared_ptr<const OverrideDirectory>> Write(
      const std::string& model, const std::string& config_text,
      const std::vector<std::pair<std::string, absl::string_view>>& files);

  /// Bytes the live override directories hold now.
  uint64_t bytes() const;

 private:
  // The per-server directory, created on first use.
  absl::StatusOr<std::shared_ptr<OverrideDirectory::Area>> AreaLocked();

  const Options options_;
  mutable std::mutex mu_;
  std::weak_ptr<OverrideDirectory::Area> area_;
};

/// Removes `path` and everything under it without following symlinks.
void RemoveTree(const std::string& path);

}  // namespace torii

#endif  // TORII_SERVER_REPOSITORY_MODEL_OVERRIDE_H_
