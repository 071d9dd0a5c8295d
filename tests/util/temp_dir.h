// Temporary directories for tests: under $TMPDIR (else /tmp), removed by the
// owner. Tests must leave nothing behind (checked by the e2e.temp_cleanup
// test, which runs test cases with a private TMPDIR and expects it empty).
#ifndef TORII_TESTS_UTIL_TEMP_DIR_H_
#define TORII_TESTS_UTIL_TEMP_DIR_H_

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace torii {
namespace testing {

/// $TMPDIR, or /tmp.
inline std::string TempRoot() {
  const char* t = std::getenv("TMPDIR");
  return t != nullptr && *t != '\0' ? t : "/tmp";
}

/// A new directory <TempRoot()>/<prefix>XXXXXX.
inline std::string MakeTempDir(const std::string& prefix) {
  std::string tmpl = TempRoot() + "/" + prefix + "XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed in " + TempRoot());
  return tmpl;
}

/// A temporary directory removed with everything in it when destroyed.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix) : path_(MakeTempDir(prefix)) {}
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace testing
}  // namespace torii

#endif  // TORII_TESTS_UTIL_TEMP_DIR_H_
