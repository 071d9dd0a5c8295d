#include "fuzz_sdk.h"

#include "torii/runner.h"

namespace torii_fuzz {

SdkDecoded SdkDecodeBytes(const char* data, size_t size) {
  SdkDecoded out;
  try {
    out.elements = torii::DecodeBytes(data, size);
    out.ok = true;
  } catch (const torii::Error& e) {
    out.code = static_cast<int>(e.code());
    out.message = e.what();
  }
  return out;
}

void SdkAppendBytesElement(std::string& out, std::string_view element) {
  torii::AppendBytesElement(out, element);
}

}  // namespace torii_fuzz
