#include "server/http/compression.h"

#include <zlib.h>

#include <algorithm>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "server/http/http_message.h"

namespace torii {
namespace http {
namespace {

// zlib counts in uInt: feed it at most this much at a time.
constexpr size_t kZlibStep = size_t{1} << 30;

}  // namespace

absl::StatusOr<ContentCoding> RequestCoding(const std::string* content_encoding) {
  if (content_encoding == nullptr) return ContentCoding::kIdentity;
  const std::string c = absl::AsciiStrToLower(absl::StripAsciiWhitespace(*content_encoding));
  if (c.empty() || c == "identity") return ContentCoding::kIdentity;
  if (c == "gzip" || c == "x-gzip") return ContentCoding::kGzip;
  if (c == "deflate") return ContentCoding::kDeflate;
  return absl::UnimplementedError(absl::StrCat("unsupported Content-Encoding '", *content_encoding,
                                               "': expected gzip, deflate or identity"));
}

ContentCoding ResponseCoding(const std::string* accept_encoding) {
  if (accept_encoding == nullptr) return ContentCoding::kIdentity;
  ContentCoding best = ContentCoding::kIdentity;
  double best_q = 0;
  for (absl::string_view item : absl::StrSplit(*accept_encoding, ',')) {
    std::vector<absl::string_view> parts = absl::StrSplit(item, ';');
    const std::string name = absl::AsciiStrToLower(absl::StripAsciiWhitespace(parts[0]));
    double q = 1;
    for (size_t i = 1; i < parts.size(); ++i) {
      absl::string_view p = absl::StripAsciiWhitespace(parts[i]);
      if (absl::ConsumePrefix(&p, "q=") && !absl::SimpleAtod(p, &q)) q = 0;
    }
    ContentCoding c;
    if (name == "gzip" || name == "x-gzip") {
      c = ContentCoding::kGzip;
    } else if (name == "deflate") {
      c = ContentCoding::kDeflate;
    } else if (name == "identity") {
      c = ContentCoding::kIdentity;
    } else {
      continue;
    }
    if (q > best_q) {
      best = c;
      best_q = q;
    }
  }
  return best;
}

absl::string_view CodingName(ContentCoding coding) {
  switch (coding) {
    case ContentCoding::kGzip: return "gzip";
    case ContentCoding::kDeflate: return "deflate";
    case ContentCoding::kIdentity: break;
  }
  return "";
}

absl::StatusOr<std::string> Decompress(ContentCoding coding, absl::string_view in,
                                       size_t max_bytes) {
  std::string out;
  if (coding == ContentCoding::kIdentity) {
    out.reserve(in.size() + kBodyPadding);
    out.assign(in.data(), in.size());
    return out;
  }
  const char* name = coding == ContentCoding::kGzip ? "gzip" : "deflate";
  // 15 + 32: zlib or gzip header, detected. Some clients send raw deflate
  // under "deflate"; that is retried below with a negative window.
  for (int window : {15 + 32, -15}) {
    z_stream zs{};
    if (inflateInit2(&zs, window) != Z_OK) return absl::InternalError("zlib inflateInit2 failed");
    out.clear();
    out.reserve(std::min(max_bytes, std::max<size_t>(in.size() * 4, 4096)) + kBodyPadding);
    size_t consumed = 0;
    int rc = Z_OK;
    bool too_large = false;
    while (rc != Z_STREAM_END) {
      if (zs.avail_in == 0 && consumed < in.size()) {
        const size_t n = std::min(in.size() - consumed, kZlibStep);
        zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data() + consumed));
        zs.avail_in = static_cast<uInt>(n);
        consumed += n;
      }
      if (out.capacity() - out.size() < 1024 + kBodyPadding) {
        out.reserve(std::max(out.capacity() * 2, out.size() + 4096 + kBodyPadding));
      }
      const size_t room = std::min(out.capacity() - out.size() - kBodyPadding, kZlibStep);
      const size_t before = out.size();
      out.resize(before + room);
      zs.next_out = reinterpret_cast<Bytef*>(&out[before]);
      zs.avail_out = static_cast<uInt>(room);
      rc = inflate(&zs, Z_NO_FLUSH);
      out.resize(before + (room - zs.avail_out));
      if (out.size() > max_bytes) {
        too_large = true;
        break;
      }
      if (rc == Z_BUF_ERROR && zs.avail_in == 0 && consumed == in.size()) break;  // truncated
      if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) break;
    }
    inflateEnd(&zs);
    if (too_large) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the ", name, " request body expands to more than the limit of ", max_bytes,
          " bytes (--max-request-bytes)"));
    }
    if (rc == Z_STREAM_END) {
      EnsureBodyPadding(out);
      return out;
    }
    if (coding == ContentCoding::kGzip) break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("the request body is not valid ", name, " data (Content-Encoding: ", name, ")"));
}

absl::StatusOr<std::string> Compress(ContentCoding coding,
                                     const std::vector<absl::string_view>& pieces) {
  std::string out;
  if (coding == ContentCoding::kIdentity) {
    for (absl::string_view p : pieces) out.append(p.data(), p.size());
    return out;
  }
  z_stream zs{};
  const int window = coding == ContentCoding::kGzip ? 15 + 16 : 15;
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, window, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return absl::InternalError("zlib deflateInit2 failed");
  }
  size_t total = 0;
  for (absl::string_view p : pieces) total += p.size();
  out.resize(deflateBound(&zs, static_cast<uLong>(std::min(total, kZlibStep))) + 64);
  size_t written = 0;
  auto pump = [&](int flush) {
    int rc;
    do {
      if (out.size() - written < 1024) out.resize(out.size() * 2 + 1024);
      const size_t room = std::min(out.size() - written, kZlibStep);
      zs.next_out = reinterpret_cast<Bytef*>(&out[written]);
      zs.avail_out = static_cast<uInt>(room);
      rc = deflate(&zs, flush);
      written += room - zs.avail_out;
    } while (zs.avail_out == 0 || (flush == Z_FINISH && rc != Z_STREAM_END));
    return rc;
  };
  for (absl::string_view p : pieces) {
    size_t off = 0;
    while (off < p.size()) {
      const size_t n = std::min(p.size() - off, kZlibStep);
      zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(p.data() + off));
      zs.avail_in = static_cast<uInt>(n);
      off += n;
      if (pump(Z_NO_FLUSH) == Z_STREAM_ERROR) {
        deflateEnd(&zs);
        return absl::InternalError("zlib deflate failed");
      }
    }
  }
  zs.avail_in = 0;
  const int rc = pump(Z_FINISH);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) return absl::InternalError("zlib deflate did not finish");
  out.resize(written);
  return out;
}

}  // namespace http
}  // namespace torii
