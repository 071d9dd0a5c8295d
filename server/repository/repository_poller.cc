#include "server/repository/repository_poller.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"

namespace torii {
namespace {

void Walk(const std::string& dir, const std::string& rel, int depth, std::vector<std::string>& out) {
  if (depth > 8) return;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return;
  while (dirent* e = readdir(d)) {
    const std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    const std::string path = dir + "/" + n;
    struct stat st;
    if (stat(path.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      out.push_back(absl::StrCat(rel, n, "/"));
      Walk(path, rel + n + "/", depth + 1, out);
    } else {
      out.push_back(absl::StrCat(rel, n, ":", st.st_size, ":", st.st_mtim.tv_sec, ".",
                                 st.st_mtim.tv_nsec));
    }
  }
  closedir(d);
}

}  // namespace

std::string FingerprintModelDirectory(const std::string& model_dir) {
  std::vector<std::string> entries;
  Walk(model_dir, "", 0, entries);
  std::sort(entries.begin(), entries.end());
  std::string fp;
  for (const auto& e : entries) absl::StrAppend(&fp, e, "\n");
  return fp;
}

RepositoryChanges DiffRepository(const std::string& repository,
                                 const std::vector<std::string>& model_names,
                                 std::map<std::string, std::string>& last) {
  RepositoryChanges changes;
  std::set<std::string> present(model_names.begin(), model_names.end());
  for (const auto& name : model_names) {
    std::string fp = FingerprintModelDirectory(repository + "/" + name);
    auto it = last.find(name);
    if (it == last.end()) {
      changes.added.push_back(name);
      last[name] = std::move(fp);
    } else if (it->second != fp) {
      changes.changed.push_back(name);
      it->second = std::move(fp);
    }
  }
  for (auto it = last.begin(); it != last.end();) {
    if (present.count(it->first) == 0) {
      changes.removed.push_back(it->first);
      it = last.erase(it);
    } else {
      ++it;
    }
  }
  return changes;
}

}  // namespace torii
