// The SDK's BYTES codec (torii/runner.h) behind plain types. The SDK header
// and the server's core headers both declare torii::TensorSpec and
// torii::Parameter, so no file includes both: the targets reach the SDK
// through this one (fuzz_sdk.cc includes only the SDK).
#ifndef TORII_TESTS_FUZZ_FUZZ_SDK_H_
#define TORII_TESTS_FUZZ_FUZZ_SDK_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace torii_fuzz {

struct SdkDecoded {
  bool ok = false;
  int code = 0;             // the torii::Error's ToriiStatusCode when !ok
  std::string message;      // its what()
  std::vector<std::string_view> elements;  // views into the buffer when ok
};

/// torii::DecodeBytes(data, size), its exception turned into a result.
SdkDecoded SdkDecodeBytes(const char* data, size_t size);

/// torii::AppendBytesElement(out, element).
void SdkAppendBytesElement(std::string& out, std::string_view element);

}  // namespace torii_fuzz

#endif  // TORII_TESTS_FUZZ_FUZZ_SDK_H_
