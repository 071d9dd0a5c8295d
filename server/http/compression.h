// HTTP content codings with zlib: undoing a request's Content-Encoding and
// compressing a response for Accept-Encoding, as Triton's HTTP server does
// (gzip and deflate; deflate meaning the zlib format, RFC 9110 8.4.1.2).
#ifndef TORII_SERVER_HTTP_COMPRESSION_H_
#define TORII_SERVER_HTTP_COMPRESSION_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace torii {
namespace http {

enum class ContentCoding { kIdentity, kGzip, kDeflate };

/// The coding named by a Content-Encoding header (absent: identity).
/// UNIMPLEMENTED for any other coding.
absl::StatusOr<ContentCoding> RequestCoding(const std::string* content_encoding);

/// The coding to answer with for an Accept-Encoding header: the one of
/// identity, gzip and deflate with the highest q-value (ties: the first
/// listed); identity when the header is absent or names none of them.
ContentCoding ResponseCoding(const std::string* accept_encoding);

/// "gzip" / "deflate" (empty for identity).
absl::string_view CodingName(ContentCoding coding);

/// Decompresses `in`. The result keeps kBodyPadding spare bytes (it is parsed
/// in place). More than `max_bytes` of output is INVALID_ARGUMENT (a small
/// body must not expand without bound), corrupt data too.
absl::StatusOr<std::string> Decompress(ContentCoding coding, absl::string_view in,
                                       size_t max_bytes);

/// Compresses the concatenation of `pieces`, without concatenating them.
absl::StatusOr<std::string> Compress(ContentCoding coding,
                                     const std::vector<absl::string_view>& pieces);

}  // namespace http
}  // namespace torii

#endif  // TORII_SERVER_HTTP_COMPRESSION_H_
