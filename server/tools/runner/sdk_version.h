// The SDK version this tool was built with. torii/runner.h (which defines it)
// cannot be included next to the server's headers: both declare
// torii::TensorSpec and torii::Parameter, so one file asks it here.
#ifndef TORII_SERVER_TOOLS_RUNNER_SDK_VERSION_H_
#define TORII_SERVER_TOOLS_RUNNER_SDK_VERSION_H_

namespace torii {
namespace runner_tool {

/// TORII_SDK_VERSION, e.g. "0.1.0".
const char* SdkVersion();

}  // namespace runner_tool
}  // namespace torii

#endif  // TORII_SERVER_TOOLS_RUNNER_SDK_VERSION_H_
