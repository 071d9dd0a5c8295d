// Small filesystem helpers shared by the server and its tools.
#ifndef TORII_SERVER_COMMON_FILESYSTEM_H_
#define TORII_SERVER_COMMON_FILESYSTEM_H_

#include <string>

namespace torii {

bool IsDirectory(const std::string& path);
bool IsFile(const std::string& path);
/// realpath(), or `path` unchanged when it cannot be resolved.
std::string AbsolutePath(const std::string& path);
/// <dir of this executable>/../lib/torii: where bundled runners live, at the
/// same relative place in the build tree (build/bin, build/lib/torii) and in
/// an install tree (P/bin, P/lib/torii).
std::string DefaultBackendDirectory();

}  // namespace torii

#endif  // TORII_SERVER_COMMON_FILESYSTEM_H_
