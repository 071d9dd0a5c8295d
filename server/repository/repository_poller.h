// Poll mode: notices new, changed and removed models in the repository.
#ifndef TORII_SERVER_REPOSITORY_REPOSITORY_POLLER_H_
#define TORII_SERVER_REPOSITORY_REPOSITORY_POLLER_H_

#include <map>
#include <string>
#include <vector>

namespace torii {

/// A cheap summary of a model directory: every file's path, size and mtime.
/// Two equal fingerprints mean nothing a load reads has changed.
std::string FingerprintModelDirectory(const std::string& model_dir);

struct RepositoryChanges {
  std::vector<std::string> added;
  std::vector<std::string> changed;
  std::vector<std::string> removed;
};

/// Compares the repository now with `last` (model -> fingerprint) and updates
/// `last`.
RepositoryChanges DiffRepository(const std::string& repository,
                                 const std::vector<std::string>& model_names,
                                 std::map<std::string, std::string>& last);

}  // namespace torii

#endif  // TORII_SERVER_REPOSITORY_REPOSITORY_POLLER_H_
