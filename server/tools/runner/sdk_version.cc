#include "server/tools/runner/sdk_version.h"

#include "torii/runner.h"

namespace torii {
namespace runner_tool {

const char* SdkVersion() { return TORII_SDK_VERSION; }

}  // namespace runner_tool
}  // namespace torii
