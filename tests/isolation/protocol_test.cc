// The shared-memory region and the control protocol of process isolation
// (server/isolation/shared_memory.h, protocol.h).
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <algorithm>
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

TEST_CASE("metric frames round-trip and refuse unknown operations") {
  MetricMessage m;
  m.op = MetricMessage::kMetricNew;
  m.id = 7;
  m.family_id = 3;
  m.kind = 3;
  m.value = -2.5;
  m.name = "n";
  m.help = "h";
  m.labels = {{"a", "1"}, {"b", "x\"y"}};
  m.buckets = {0.5, 1, 2};
  std::string frame;
  Encode(m, &frame);
  const absl::string_view body = absl::string_view(frame).substr(kFrameHeaderSize);
  MetricMessage d;
  REQUIRE(Decode(body, &d).ok());
  CHECK(d.op == m.op);
  CHECK(d.id == 7);
  CHECK(d.family_id == 3);
  CHECK(d.kind == 3);
  CHECK(d.value == -2.5);
  CHECK(d.name == "n");
  CHECK(d.help == "h");
  CHECK(d.labels == m.labels);
  CHECK(d.buckets == m.buckets);
  for (size_t cut = 0; cut < body.size(); ++cut) {
    MetricMessage t;
    CHECK_FALSE(Decode(body.substr(0, cut), &t).ok());
  }
  m.op = 99;
  Encode(m, &frame);
  MetricMessage bad;
  CHECK_FALSE(Decode(absl::string_view(frame).substr(kFrameHeaderSize), &bad).ok());
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

TEST_CASE("events frames round-trip and refuse truncation") {
  std::string frame;
  ResponseMessage r;
  r.handle = {2, 99, 3};
  r.final = 1;
  r.code = 0;
  r.outputs = {BatchReply::Output{1, 8, TensorRef{{1}, 128, 4}}};
  r.heap_size = 2 << 20;
  Encode(r, &frame);
  ResponseMessage rd;
  REQUIRE(Decode(Body(frame), &rd).ok());
  CHECK(rd.handle == r.handle);
  CHECK(rd.final == 1);
  CHECK(rd.has_response == 1);
  REQUIRE(rd.outputs.size() == 1);
  CHECK(rd.outputs[0].tensor.offset == 128);
  CHECK(rd.heap_size == (2u << 20));
  CHECK_FALSE(Decode(Body(frame).substr(0, Body(frame).size() - 1), &rd).ok());

  CallMessage c;
  c.call_id = 5;
  c.model = "callee";
  c.version = 3;
  c.id = "x";
  c.parameters.Set("k", std::string("v"));
  c.inputs = {NamedTensor{"IN", 8, TensorRef{{2, 2}, 0, 16}}};
  c.outputs = {"OUT"};
  c.deadline_ns = 42;
  Encode(c, &frame);
  CallMessage cd;
  REQUIRE(Decode(Body(frame), &cd).ok());
  CHECK(cd.model == "callee");
  CHECK(cd.version == 3);
  CHECK(cd.inputs[0].name == "IN");
  CHECK(cd.inputs[0].tensor.shape == std::vector<int64_t>{2, 2});
  CHECK(cd.outputs == std::vector<std::string>{"OUT"});
  CHECK(cd.deadline_ns == 42);
  CHECK(cd.parameters.Find("k") != nullptr);
  CHECK_FALSE(Decode(Body(frame).substr(0, 20), &cd).ok());

  CallResultMessage res;
  res.call_id = 5;
  res.final = 1;
  res.code = 5;
  res.message = "unknown model";
  res.outputs = {NamedTensor{"OUT", 11, TensorRef{{1}, 64, 4}}};
  Encode(res, &frame);
  CallResultMessage resd;
  REQUIRE(Decode(Body(frame), &resd).ok());
  CHECK(resd.message == "unknown model");
  CHECK(resd.outputs[0].name == "OUT");

  FreeMessage f;
  f.offsets = {0, 64, 4096};
  Encode(f, &frame);
  FreeMessage fd;
  REQUIRE(Decode(Body(frame), &fd).ok());
  CHECK(fd.offsets == f.offsets);

  AckMessage a;
  a.handle = {1, 2, 3};
  a.gone = 1;
  Encode(a, &frame);
  AckMessage ad;
  REQUIRE(Decode(Body(frame), &ad).ok());
  CHECK(ad.gone == 1);
  CHECK(ad.handle == a.handle);

  LogMessage l;
  l.level = 1;
  l.message = "careful";
  Encode(l, &frame);
  LogMessage ld;
  REQUIRE(Decode(Body(frame), &ld).ok());
  CHECK(ld.message == "careful");

  // Tensors named in events frames must lie in the heap they point into.
  CHECK(CheckBounds(cd.inputs, 16).ok());
  CHECK_FALSE(CheckBounds(cd.inputs, 15).ok());
  CHECK_FALSE(CheckBounds(rd.outputs, 100).ok());
}

TEST_CASE("FrameReader reads many outstanding frames however the bytes arrive") {
  int sv[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  std::string all, frame;
  for (int i = 0; i < 200; ++i) {
    LogMessage l;
    l.message = std::string(static_cast<size_t>(i * 37 % 5000), 'a' + i % 26);
    Encode(l, &frame);
    all += frame;
  }
  LoadMessage big;
  big.config.assign(300000, 'c');  // larger than the reader's buffer
  Encode(big, &frame);
  all += frame;
  std::thread writer([&] {
    // Odd-sized pieces, so frames and headers are split anywhere.
    for (size_t at = 0; at < all.size(); at += 977) {
      const size_t n = std::min<size_t>(977, all.size() - at);
      REQUIRE(write(sv[0], all.data() + at, n) == static_cast<ssize_t>(n));
    }
    close(sv[0]);
  });
  FrameReader reader;
  std::string error;
  int logs = 0, loads = 0;
  for (;;) {
    MessageType type;
    absl::string_view body;
    ReadOutcome out;
    while ((out = reader.Next(&type, &body, &error)) == ReadOutcome::kFrame) {
      if (type == MessageType::kLog) {
        LogMessage l;
        REQUIRE(Decode(body, &l).ok());
        CHECK(l.message.size() == static_cast<size_t>(logs * 37 % 5000));
        ++logs;
      } else {
        LoadMessage m;
        REQUIRE(Decode(body, &m).ok());
        CHECK(m.config.size() == 300000);
        ++loads;
      }
    }
    REQUIRE(out == ReadOutcome::kTimeout);
    if (reader.Fill(sv[1], /*block=*/true, &error) == ReadOutcome::kClosed) break;
  }
  writer.join();
  close(sv[1]);
  CHECK(logs == 200);
  CHECK(loads == 1);
}

TEST_CASE("RegionHeap reuses freed blocks, coalesces them and grows the region in place") {
  auto region = SharedRegion::Create("torii-heap-test", 1);
  REQUIRE(region.ok());
  char* base = region->data();
  RegionHeap heap(&*region);
  auto a = heap.Allocate(100);   // 128 bytes
  auto b = heap.Allocate(1);     // 64
  auto c = heap.Allocate(64);    // 64
  REQUIRE((a.ok() && b.ok() && c.ok()));
  CHECK(*a == 0);
  CHECK(*b == 128);
  CHECK(*c == 192);
  CHECK(heap.in_use() == 256);
  CHECK(heap.Free(*b));
  CHECK_FALSE(heap.Free(*b));  // twice: refused
  CHECK(heap.Free(*a));
  auto d = heap.Allocate(150);  // fits the coalesced 192 bytes at 0
  REQUIRE(d.ok());
  CHECK(*d == 0);
  // Beyond the region: it grows, and never moves.
  auto big = heap.Allocate(3u << 20);
  REQUIRE(big.ok());
  CHECK(heap.region_size() >= (3u << 20) + *big);
  CHECK(region->data() == base);
  std::memset(heap.data() + *big, 1, 3u << 20);
  CHECK(heap.Free(*big));
  CHECK(heap.Free(*c));
  CHECK(heap.Free(*d));
  CHECK(heap.in_use() == 0);
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
