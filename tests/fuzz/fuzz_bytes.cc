// fuzz_bytes: the two parsers of the v2 BYTES encoding (4-byte little-endian
// length, then that many bytes, repeated) must agree with each other and with
// the encoder.
//   - server: torii::ValidateBytesBuffer(data, size, expected_elements, what)
//   - SDK:    torii::DecodeBytes(data, size), throws torii::Error
//   - SDK:    torii::AppendBytesElement (the encoder)
// (the SDK through fuzz_sdk.h: its header cannot sit beside the server's)
// Input: byte 0 is the expected element count, the rest is the buffer.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "fuzz_sdk.h"
#include "server/core/request_validator.h"
#include "torii/runner_abi.h"

namespace {

constexpr char kWhat[] = "fuzz tensor 'b'";

bool ServerAccepts(const char* buf, size_t size, int64_t count) {
  const absl::Status s = torii::ValidateBytesBuffer(buf, size, count, kWhat);
  if (!s.ok()) {
    // A rejection is always INVALID_ARGUMENT and names the tensor.
    FUZZ_CHECK(s.code() == absl::StatusCode::kInvalidArgument, s.ToString());
    FUZZ_CHECK(s.message().find(kWhat) != absl::string_view::npos, s.ToString());
  }
  return s.ok();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const int64_t count = data[0];
  // libFuzzer's buffer ends exactly at data + size, so any read past the
  // buffer by either parser is an AddressSanitizer report.
  const char* buf = reinterpret_cast<const char*>(data + 1);
  const size_t n = size - 1;

  const bool server_ok = ServerAccepts(buf, n, count);

  const torii_fuzz::SdkDecoded decoded = torii_fuzz::SdkDecodeBytes(buf, n);
  const bool sdk_ok = decoded.ok;
  const std::vector<std::string_view>& elements = decoded.elements;
  if (!sdk_ok) FUZZ_CHECK(decoded.code == TORII_STATUS_INVALID_ARGUMENT, decoded.message);

  // Same verdict when the counts match.
  FUZZ_CHECK(server_ok == (sdk_ok && static_cast<int64_t>(elements.size()) == count),
             "server_ok=" + std::to_string(server_ok) + " sdk_ok=" + std::to_string(sdk_ok) +
                 " decoded=" + std::to_string(elements.size()) +
                 " expected=" + std::to_string(count));

  if (sdk_ok) {
    // The server accepts the buffer with the count the SDK decoded.
    FUZZ_CHECK(ServerAccepts(buf, n, static_cast<int64_t>(elements.size())),
               "decoded " + std::to_string(elements.size()) + " elements");
    // The elements tile the buffer: re-encoding gives it back byte for byte,
    // and every view lies inside it.
    std::string again;
    for (std::string_view e : elements) {
      FUZZ_CHECK(e.data() >= buf && e.data() + e.size() <= buf + n);
      torii_fuzz::TouchAll(e.data(), e.size());
      torii_fuzz::SdkAppendBytesElement(again, e);
    }
    FUZZ_CHECK(again == std::string_view(buf, n), "re-encoding differs");
  } else {
    // Malformed for the SDK: the server rejects it whatever count it expects.
    for (int64_t k : {int64_t{0}, int64_t{1}, count, count + 1,
                      static_cast<int64_t>(n / 4), static_cast<int64_t>(n / 4) + 1}) {
      FUZZ_CHECK(!ServerAccepts(buf, n, k), "accepted malformed buffer as " +
                                                std::to_string(k) + " elements");
    }
  }
  return 0;
}
