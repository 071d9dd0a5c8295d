// The shared-memory region and the control protocol of process isolation
// (server/isolation/shared_memory.h, protocol.h).
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <thread>

#include "server/isolation/protocol.h"
#include "server/isolation/shared_memory.h"

namespace torii {
namespace isolation {
namespace {

BatchMessage SampleBatch() {
  BatchMessage b;
  b.batch_id = 7;
  b.region_size = 1 << 20;
  b.cancel_offset = 0;
  b.outputs_offset = 4096;
  BatchMessage::Request r1;
  r1.rows = 2;
  r1.deadline_ns = 123456789;
  r1.inputs = {TensorRef{{2, 3}, 64, 24}};
  r1.requested = {1, 0};
  r1.id = "req-1";
  r1.parameters.Set("mode", std::string("fast"));
  r1.parameters.Set("n", int64_t{-3});
  r1.parameters.Set("u", uint64_t{7});
  r1.parameters.Set("f", 0.5);
  r1.parameters.Set("b", true);
  BatchMessage::Request r2;
  r2.rows = 1;
  r2.inputs = {TensorRef{{1, 3}, 128, 12}};
  r2.requested = {1, 1};
  b.requests = {r1, r2};
  return b;
}

BatchReply SampleReply() {
  BatchReply r;
  r.batch_id = 7;
  r.region_size = 2 << 20;
  BatchReply::Result ok;
  ok.outputs = {BatchReply::Output{0, 1, TensorRef{{2, 3}, 4096, 24}}};
  BatchReply::Result failed;
  failed.code = 9;
  failed.message = "model 'm': no";
  r.results = {ok, failed};
  return r;
}

absl::string_view Body(const std::string& frame) {
  return absl::string_view(frame).substr(kFrameHeaderSize);
}

TEST_CASE("batch and reply frames round-trip") {
  std::string frame;
  Encode(SampleBatch(), &frame);
  BatchMessage b;
  REQUIRE(Decode(Body(frame), &b).ok());
  CHECK(b.batch_id == 7);
  CHECK(b.outputs_offset == 4096);
  REQUIRE(b.requests.size() == 2);
  CHECK(b.requests[0].rows == 2);
  CHECK(b.requests[0].deadline_ns == 123456789);
  CHECK(b.requests[0].inputs[0].shape == std::vector<int64_t>{2, 3});
  CHECK(b.requests[0].inputs[0].offset == 64);
  CHECK(b.requests[0].inputs[0].size == 24);
  CHECK(b.requests[0].requested == std::vector<uint8_t>{1, 0});
  CHECK(b.requests[0].id == "req-1");
  const Parameters& p = b.requests[0].parameters;
  REQUIRE(p.size() == 5);
  CHECK(p.Find("mode")->as_string() == "fast");
  CHECK(p.Find("n")->as_int64() == -3);
  CHECK(p.Find("u")->as_uint64() == 7);
  CHECK(p.Find("f")->as_double() == 0.5);
  CHECK(p.Find("b")->as_bool());
  CHECK(b.requests[1].deadline_ns == INT64_MAX);
  CHECK(b.requests[1].parameters.empty());

  Encode(SampleReply(), &frame);
  BatchReply r;
  REQUIRE(Decode(Body(frame), &r).ok());
  CHECK(r.region_size == (2u << 20));
  REQUIRE(r.results.size() == 2);
  CHECK(r.results[0].code == 0);
  CHECK(r.results[0].outputs[0].tensor.offset == 4096);
  CHECK(r.results[0].outputs[0].tensor.shape == std::vector<int64_t>{2, 3});
  CHECK(r.results[1].code == 9);
  CHECK(r.results[1].message == "model 'm': no");
}

TEST_CASE("load frames round-trip") {
  LoadMessage m;
  m.name = "m";
  m.version = 3;
  m.directory = "/repo/m";
  m.version_directory = "/repo/m/3";
  m.library_path = "/lib/libtorii_x.so";
  m.config = std::string("\0\1\2", 3);
  m.instance_count = 2;
  std::string frame;
  Encode(m, &frame);
  LoadMessage d;
  REQUIRE(Decode(Body(frame), &d).ok());
  CHECK(d.name == "m");
  CHECK(d.version == 3);
  CHECK(d.version_directory == "/repo/m/3");
  CHECK(d.library_path == "/lib/libtorii_x.so");
  CHECK(d.config == m.config);
  CHECK(d.instance_count == 2);

  LoadReply reply;
  reply.code = 3;
  reply.message = "bad";
  reply.pid = 42;
  Encode(reply, &frame);
  LoadReply dr;
  REQUIRE(Decode(Body(frame), &dr).ok());
  CHECK(dr.code == 3);
  CHECK(dr.message == "bad");
  CHECK(dr.pid == 42);
}

TEST_CASE("truncated or padded bodies are refused, never over-read") {
  std::string frame;
  Encode(SampleBatch(), &frame);
  const std::string body(Body(frame));
  for (size_t n = 0; n < body.size(); ++n) {
    BatchMessage b;
    INFO("prefix " << n);
    CHECK_FALSE(Decode(absl::string_view(body.data(), n), &b).ok());
  }
  BatchMessage b;
  CHECK_FALSE(Decode(body + "x", &b).ok());

  Encode(SampleReply(), &frame);
  const std::string rbody(Body(frame));
  for (size_t n = 0; n < rbody.size(); ++n) {
    BatchReply r;
    CHECK_FALSE(Decode(absl::string_view(rbody.data(), n), &r).ok());
  }
  // A count far beyond the body is refused before anything is allocated.
  std::string huge = rbody;
  const uint32_t count = 0xffffffffu;
  std::memcpy(&huge[16], &count, 4);
  BatchReply r;
  CHECK_FALSE(Decode(huge, &r).ok());
}

TEST_CASE("tensors must lie inside the shared region") {
  BatchReply r = SampleReply();
  CHECK(CheckBounds(r, 8192).ok());
  CHECK_FALSE(CheckBounds(r, 4100).ok());
  r.results[0].outputs[0].tensor.offset = UINT64_MAX - 8;  // offset + size overflows
  CHECK_FALSE(CheckBounds(r, 8192).ok());

  BatchMessage b = SampleBatch();
  b.region_size = 8192;
  CHECK(CheckBounds(b, 8192).ok());
  b.requests[1].inputs[0].size = 8192;
  CHECK_FALSE(CheckBounds(b, 8192).ok());
  b = SampleBatch();
  b.region_size = 8192;
  b.outputs_offset = 9000;
  CHECK_FALSE(CheckBounds(b, 8192).ok());
}

TEST_CASE("frames cross a socket whole, and a closed or garbled peer is reported") {
  int sv[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  std::string frame, buffer, error;
  MessageType type;
  absl::string_view body;

  // Bigger than one read buffer: read in several pieces.
  LoadMessage m;
  m.config.assign(300000, 'c');
  Encode(m, &frame);
  std::thread writer([&] { REQUIRE(WriteFrame(sv[0], frame).ok()); });
  REQUIRE(ReadFrame(sv[1], &buffer, &type, &body, &error) == ReadOutcome::kFrame);
  writer.join();
  CHECK(type == MessageType::kLoad);
  LoadMessage d;
  REQUIRE(Decode(body, &d).ok());
  CHECK(d.config.size() == 300000);

  // Bad magic.
  const char junk[12] = {'n', 'o', 'p', 'e', 0, 0, 0, 0, 0, 0, 0, 0};
  REQUIRE(write(sv[0], junk, sizeof(junk)) == sizeof(junk));
  CHECK(ReadFrame(sv[1], &buffer, &type, &body, &error) == ReadOutcome::kError);
  CHECK(error.find("bad frame header") != std::string::npos);

  // A receive timeout: kTimeout before the first byte; once a frame has
  // begun, the rest is waited for.
  const timeval ten_ms{0, 10000};
  REQUIRE(setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &ten_ms, sizeof(ten_ms)) == 0);
  CHECK(ReadFrame(sv[1], &buffer, &type, &body, &error) == ReadOutcome::kTimeout);
  Encode(SampleReply(), &frame);
  REQUIRE(write(sv[0], frame.data(), 10) == 10);
  std::thread late([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    REQUIRE(write(sv[0], frame.data() + 10, frame.size() - 10) == static_cast<ssize_t>(frame.size() - 10));
  });
  CHECK(ReadFrame(sv[1], &buffer, &type, &body, &error) == ReadOutcome::kFrame);
  late.join();
  CHECK(type == MessageType::kBatchReply);

  // Closed in the middle of a frame.
  Encode(SampleReply(), &frame);
  REQUIRE(write(sv[0], frame.data(), 20) == 20);
  close(sv[0]);
  CHECK(ReadFrame(sv[1], &buffer, &type, &body, &error) == ReadOutcome::kClosed);
  CHECK_FALSE(WriteFrame(sv[1], frame).ok());  // peer gone: no SIGPIPE, an error
  close(sv[1]);
}

TEST_CASE("a shared region grows on one side and is followed on the other") {
  auto a = SharedRegion::Create("torii-test", 100);
  REQUIRE(a.ok());
  CHECK(a->size() == (1u << 20));  // at least 1 MiB
  std::memcpy(a->data(), "hello", 5);
  auto b = SharedRegion::Adopt(dup(a->fd()));
  REQUIRE(b.ok());
  CHECK(b->size() == a->size());
  CHECK(std::memcmp(b->data(), "hello", 5) == 0);

  // b grows it (as the host does for big outputs) and writes past the old end.
  REQUIRE(b->Reserve((3u << 20) + 1).ok());
  CHECK(b->size() == (4u << 20));
  std::memcpy(b->data() + (3u << 20), "world", 5);
  CHECK(std::memcmp(b->data(), "hello", 5) == 0);  // kept across the remap
  REQUIRE(a->Follow(b->size()).ok());
  CHECK(a->size() == (4u << 20));
  CHECK(std::memcmp(a->data() + (3u << 20), "world", 5) == 0);
  // Asking to follow a size the file does not have is an error.
  CHECK_FALSE(a->Follow(64u << 20).ok());
  // Reserve never shrinks.
  REQUIRE(a->Reserve(10).ok());
  CHECK(a->size() == (4u << 20));
}

TEST_CASE("Align64 rounds up to cache lines") {
  CHECK(Align64(0) == 0);
  CHECK(Align64(1) == 64);
  CHECK(Align64(64) == 64);
  CHECK(Align64(65) == 128);
}

}  // namespace
}  // namespace isolation
}  // namespace torii
