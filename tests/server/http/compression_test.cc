#include "server/http/compression.h"

#include <zlib.h>

#include <catch2/catch.hpp>

#include "server/http/http_message.h"

namespace torii {
namespace http {
namespace {

// Compressed by zlib directly, not by the code under test.
std::string ZlibCompress(const std::string& in, int window) {
  z_stream zs{};
  REQUIRE(deflateInit2(&zs, 6, Z_DEFLATED, window, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string out(deflateBound(&zs, in.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(&out[0]);
  zs.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&zs, Z_FINISH) == Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

std::string Sample() {
  std::string s;
  for (int i = 0; i < 20000; ++i) s += std::to_string(i * 7919 % 1000) + ",";
  return s;
}

TEST_CASE("request codings: gzip, zlib deflate and raw deflate decompress", "[http][compression]") {
  const std::string text = Sample();
  auto gz = Decompress(ContentCoding::kGzip, ZlibCompress(text, 15 + 16), 1 << 20);
  auto zl = Decompress(ContentCoding::kDeflate, ZlibCompress(text, 15), 1 << 20);
  auto raw = Decompress(ContentCoding::kDeflate, ZlibCompress(text, -15), 1 << 20);
  REQUIRE(gz.ok());
  REQUIRE(zl.ok());
  REQUIRE(raw.ok());
  CHECK(*gz == text);
  CHECK(*zl == text);
  CHECK(*raw == text);
  CHECK(gz->capacity() >= gz->size() + kBodyPadding);
}

TEST_CASE("decompression is bounded and rejects corrupt data", "[http][compression]") {
  const std::string zeros(1 << 20, '\0');
  auto bomb = Decompress(ContentCoding::kGzip, ZlibCompress(zeros, 15 + 16), 1000);
  CHECK(bomb.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(bomb.status().message()), Catch::Contains("more than the limit of 1000 bytes"));
  auto corrupt = Decompress(ContentCoding::kGzip, "not gzip at all", 1000);
  CHECK_THAT(std::string(corrupt.status().message()), Catch::Contains("not valid gzip data"));
  std::string truncated = ZlibCompress(Sample(), 15 + 16);
  truncated.resize(truncated.size() / 2);
  CHECK_FALSE(Decompress(ContentCoding::kGzip, truncated, 1 << 20).ok());
}

TEST_CASE("response compression round-trips across pieces", "[http][compression]") {
  const std::string a = Sample(), b(100000, 'x');
  for (ContentCoding c : {ContentCoding::kGzip, ContentCoding::kDeflate}) {
    auto z = Compress(c, {a, "", b});
    REQUIRE(z.ok());
    CHECK(z->size() < (a.size() + b.size()) / 4);
    auto back = Decompress(c, *z, 1 << 22);
    REQUIRE(back.ok());
    CHECK(*back == a + b);
  }
}

TEST_CASE("Content-Encoding and Accept-Encoding negotiation", "[http][compression]") {
  const std::string gzip = "gzip", deflate = " Deflate ", identity = "identity", br = "br";
  CHECK(*RequestCoding(nullptr) == ContentCoding::kIdentity);
  CHECK(*RequestCoding(&gzip) == ContentCoding::kGzip);
  CHECK(*RequestCoding(&deflate) == ContentCoding::kDeflate);
  CHECK(*RequestCoding(&identity) == ContentCoding::kIdentity);
  CHECK(RequestCoding(&br).status().code() == absl::StatusCode::kUnimplemented);

  auto pick = [](const std::string& h) { return ResponseCoding(&h); };
  CHECK(ResponseCoding(nullptr) == ContentCoding::kIdentity);
  CHECK(pick("gzip") == ContentCoding::kGzip);
  CHECK(pick("br, deflate") == ContentCoding::kDeflate);
  CHECK(pick("gzip;q=0.5, deflate;q=0.8") == ContentCoding::kDeflate);
  CHECK(pick("gzip;q=0, identity") == ContentCoding::kIdentity);
  CHECK(pick("br") == ContentCoding::kIdentity);
}

}  // namespace
}  // namespace http
}  // namespace torii
