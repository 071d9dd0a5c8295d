// System shared memory (Triton's extension), end to end with the real
// binary: the client creates POSIX shared-memory objects as Triton's clients
// do (shm_open + ftruncate + mmap), registers them, and names them in
// inputs and outputs. Also the misuse a server must survive: bad windows,
// unknown regions, a region unregistered or truncated while a request uses
// it. CUDA shared memory without a GPU answers as Triton does.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <future>
#include <thread>

#include "tests/e2e/e2e_util.h"
#include "tests/util/e2e_client.h"
#include "tests/util/server_process.h"

namespace torii {
namespace testing {
namespace {

using std::chrono::milliseconds;

// A POSIX shared-memory object owned by the test, unlinked at the end.
class ClientRegion {
 public:
  explicit ClientRegion(size_t size) : size_(size) {
    static std::atomic<int> counter{0};
    key_ = "/torii-e2e-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
    fd_ = shm_open(key_.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
    REQUIRE(fd_ >= 0);
    REQUIRE(ftruncate(fd_, static_cast<off_t>(size)) == 0);
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    REQUIRE(p != MAP_FAILED);
    data_ = static_cast<char*>(p);
  }
  ~ClientRegion() {
    munmap(data_, size_);
    close(fd_);
    shm_unlink(key_.c_str());
  }
  ClientRegion(const ClientRegion&) = delete;
  ClientRegion& operator=(const ClientRegion&) = delete;

  const std::string& key() const { return key_; }
  char* data() const { return data_; }
  void Put(size_t offset, const std::vector<float>& v) const {
    std::memcpy(data_ + offset, v.data(), v.size() * 4);
  }
  std::vector<float> Get(size_t offset, size_t n) const {
    std::vector<float> v(n);
    std::memcpy(v.data(), data_ + offset, n * 4);
    return v;
  }
  /// What a client that shrinks its object does. The test must not touch
  /// data() past `bytes` afterwards.
  void Truncate(size_t bytes) const { REQUIRE(ftruncate(fd_, static_cast<off_t>(bytes)) == 0); }

 private:
  std::string key_;
  size_t size_;
  int fd_ = -1;
  char* data_ = nullptr;
};

grpc::Status Register(inference::GRPCInferenceService::Stub& stub, const std::string& name,
                      const std::string& key, uint64_t byte_size, uint64_t offset = 0) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, milliseconds(5000));
  inference::SystemSharedMemoryRegisterRequest q;
  q.set_name(name);
  q.set_key(key);
  q.set_offset(offset);
  q.set_byte_size(byte_size);
  inference::SystemSharedMemoryRegisterResponse r;
  return stub.SystemSharedMemoryRegister(&ctx, q, &r);
}

grpc::Status Unregister(inference::GRPCInferenceService::Stub& stub, const std::string& name) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, milliseconds(5000));
  inference::SystemSharedMemoryUnregisterRequest q;
  q.set_name(name);
  inference::SystemSharedMemoryUnregisterResponse r;
  return stub.SystemSharedMemoryUnregister(&ctx, q, &r);
}

grpc::Status Status(inference::GRPCInferenceService::Stub& stub, const std::string& name,
                    inference::SystemSharedMemoryStatusResponse* r) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, milliseconds(5000));
  inference::SystemSharedMemoryStatusRequest q;
  q.set_name(name);
  return stub.SystemSharedMemoryStatus(&ctx, q, r);
}

template <typename Message>
void SetShm(Message* t, const std::string& region, int64_t byte_size, int64_t offset = -1) {
  (*t->mutable_parameters())["shared_memory_region"].set_string_param(region);
  (*t->mutable_parameters())["shared_memory_byte_size"].set_int64_param(byte_size);
  if (offset >= 0) (*t->mutable_parameters())["shared_memory_offset"].set_int64_param(offset);
}

// INPUT0 FP32 [1, n] of `model` read from `region` at `offset`; OUTPUT0 to
// `out_region` at `out_offset` (no output region: OUTPUT0 comes back raw).
inference::ModelInferRequest ShmRequest(const std::string& model, size_t n,
                                        const std::string& region, int64_t offset,
                                        const std::string& out_region = "",
                                        int64_t out_offset = 0) {
  inference::ModelInferRequest r;
  r.set_model_name(model);
  auto* in = r.add_inputs();
  in->set_name("INPUT0");
  in->set_datatype("FP32");
  in->add_shape(1);
  in->add_shape(static_cast<int64_t>(n));
  SetShm(in, region, static_cast<int64_t>(n * 4), offset);
  auto* out = r.add_outputs();
  out->set_name("OUTPUT0");
  if (!out_region.empty()) SetShm(out, out_region, static_cast<int64_t>(n * 4), out_offset);
  return r;
}

// The fault runner (identity that sleeps on request) in the repository,
// in process or isolated.
void AddFaultModel(const TempRepository& repo, const std::string& name, bool isolated) {
  repo.AddRunnerModel(name, TORII_FAULT_RUNNER, "fault",
                      isolated ? ConfigParameter("isolation", "process") : "");
}

inference::ModelInferRequest Sleeping(inference::ModelInferRequest r, int64_t ms) {
  (*r.mutable_parameters())["fault"].set_string_param("sleep");
  (*r.mutable_parameters())["sleep_ms"].set_int64_param(ms);
  return r;
}

TEST_CASE("system shared memory: register and status and unregister as Triton defines them") {
  TempRepository repo;
  auto server = StartServer(repo);
  auto stub = server->Stub();
  ClientRegion a(4096), b(1 << 16);
  {
    grpc::ClientContext ctx;
    inference::ServerMetadataResponse md;
    REQUIRE(stub->ServerMetadata(&ctx, {}, &md).ok());
    CHECK(std::find(md.extensions().begin(), md.extensions().end(), "system_shared_memory") !=
          md.extensions().end());
  }
  REQUIRE(Register(*stub, "a", a.key(), 4096).ok());
  REQUIRE(Register(*stub, "b", b.key(), 1000, 24).ok());
  inference::SystemSharedMemoryStatusResponse st;
  REQUIRE(Status(*stub, "", &st).ok());
  REQUIRE(st.regions_size() == 2);
  CHECK(st.regions().at("b").name() == "b");
  CHECK(st.regions().at("b").key() == b.key());
  CHECK(st.regions().at("b").offset() == 24);
  CHECK(st.regions().at("b").byte_size() == 1000);
  st.Clear();
  REQUIRE(Status(*stub, "a", &st).ok());
  REQUIRE(st.regions_size() == 1);
  CHECK(st.regions().at("a").byte_size() == 4096);
  CHECK(Status(*stub, "nope", &st).error_code() == grpc::NOT_FOUND);

  const grpc::Status twice = Register(*stub, "a", b.key(), 16);
  CHECK(twice.error_code() == grpc::ALREADY_EXISTS);
  CHECK_THAT(twice.error_message(), Catch::Contains("'a'"));
  CHECK(Register(*stub, "c", "/torii-e2e-no-such-object", 16).error_code() == grpc::NOT_FOUND);
  for (const char* key : {"no-slash", "/a/b", "/", "/..", ""}) {
    INFO(key);
    CHECK(Register(*stub, "c", key, 16).error_code() == grpc::INVALID_ARGUMENT);
  }
  const grpc::Status too_big = Register(*stub, "c", a.key(), 4000, 100);
  CHECK(too_big.error_code() == grpc::INVALID_ARGUMENT);
  CHECK_THAT(too_big.error_message(), Catch::Contains("4096"));
  CHECK(Register(*stub, "c", a.key(), 0).error_code() == grpc::INVALID_ARGUMENT);
  CHECK(Register(*stub, "c", a.key(), 16, ~uint64_t{0} - 4).error_code() ==
        grpc::INVALID_ARGUMENT);
  CHECK(Register(*stub, "", a.key(), 16).error_code() == grpc::INVALID_ARGUMENT);

  REQUIRE(Unregister(*stub, "a").ok());
  CHECK(Unregister(*stub, "a").ok());  // unknown: nothing to do, as Triton
  st.Clear();
  REQUIRE(Status(*stub, "", &st).ok());
  CHECK(st.regions_size() == 1);
  REQUIRE(Register(*stub, "a", a.key(), 4096).ok());  // the name is free again
  REQUIRE(Unregister(*stub, "").ok());                // every region
  st.Clear();
  REQUIRE(Status(*stub, "", &st).ok());
  CHECK(st.regions_size() == 0);
}

TEST_CASE("inputs are read from and outputs written to registered regions") {
  TempRepository repo;
  AddFaultModel(repo, "isolated", /*isolated=*/true);
  auto server = StartServer(repo);
  auto stub = server->Stub();
  // The region starts 100 bytes into its object (not page-aligned), the
  // tensors 64 bytes into the region.
  ClientRegion in(8192), out(8192);
  REQUIRE(Register(*stub, "in", in.key(), 4096, 100).ok());
  REQUIRE(Register(*stub, "out", out.key(), 4096).ok());
  const std::vector<float> values = {1.5f, -2.0f, 3.25f, 8.0f};
  in.Put(100 + 64, values);

  for (const char* model : {"identity", "isolated"}) {
    INFO(model);
    std::memset(out.data(), 0, 4096);
    inference::ModelInferResponse r;
    REQUIRE(Infer(*stub, ShmRequest(model, values.size(), "in", 64, "out", 128), &r).ok());
    REQUIRE(r.outputs_size() == 1);
    CHECK(r.outputs(0).name() == "OUTPUT0");
    CHECK(r.outputs(0).datatype() == "FP32");
    CHECK(std::vector<int64_t>(r.outputs(0).shape().begin(), r.outputs(0).shape().end()) ==
          std::vector<int64_t>{1, 4});
    // One entry per output, empty for an output in shared memory (Triton's
    // clients index raw_output_contents by output position).
    REQUIRE(r.raw_output_contents_size() == 1);
    CHECK(r.raw_output_contents(0).empty());
    CHECK(out.Get(128, values.size()) == values);
  }

  // Mixed: add_sub with INPUT0 in a region and INPUT1 raw; OUTPUT0 raw and
  // OUTPUT1 in a region.
  std::vector<float> x(16), y(16);
  for (int i = 0; i < 16; ++i) {
    x[i] = static_cast<float>(i);
    y[i] = 1.0f;
  }
  in.Put(100, x);
  inference::ModelInferRequest q;
  q.set_model_name("add_sub");
  auto* i0 = q.add_inputs();
  i0->set_name("INPUT0");
  i0->set_datatype("FP32");
  i0->add_shape(1);
  i0->add_shape(16);
  SetShm(i0, "in", 64);
  auto* i1 = q.add_inputs();
  i1->set_name("INPUT1");
  i1->set_datatype("FP32");
  i1->add_shape(1);
  i1->add_shape(16);
  q.add_raw_input_contents(Fp32Raw(y));  // one entry: the one input not in a region
  q.add_outputs()->set_name("OUTPUT0");
  SetShm(q.add_outputs(), "out", 64, 512);
  q.mutable_outputs(1)->set_name("OUTPUT1");
  inference::ModelInferResponse r;
  REQUIRE(Infer(*stub, q, &r).ok());
  REQUIRE(r.outputs_size() == 2);
  REQUIRE(r.raw_output_contents_size() == 2);
  std::vector<float> sum(16), diff(16);
  for (int i = 0; i < 16; ++i) {
    sum[i] = x[i] + y[i];
    diff[i] = x[i] - y[i];
  }
  CHECK(r.outputs(0).name() == "OUTPUT0");
  CHECK(Fp32Values(r.raw_output_contents(0)) == sum);
  CHECK(r.outputs(1).name() == "OUTPUT1");
  CHECK(r.raw_output_contents(1).empty());
  CHECK(out.Get(512, 16) == diff);
}

TEST_CASE("ModelStreamInfer reads and writes registered regions too") {
  TempRepository repo;
  AddFaultModel(repo, "isolated", /*isolated=*/true);
  auto server = StartServer(repo);
  auto stub = server->Stub();
  ClientRegion in(8192), out(8192);
  REQUIRE(Register(*stub, "in", in.key(), 4096).ok());
  REQUIRE(Register(*stub, "out", out.key(), 4096).ok());
  const std::vector<float> values = {4.0f, -1.5f, 0.25f};
  in.Put(256, values);
  for (const char* model : {"identity", "isolated"}) {
    INFO(model);
    std::memset(out.data(), 0, 4096);
    grpc::ClientContext ctx;
    SetDeadline(ctx, milliseconds(20000));
    auto stream = stub->ModelStreamInfer(&ctx);
    REQUIRE(stream->Write(ShmRequest(model, values.size(), "in", 256, "out", 1024)));
    // A reference past the region's end is an error on the stream, which
    // goes on.
    REQUIRE(stream->Write(ShmRequest(model, values.size(), "in", 4090)));
    stream->WritesDone();
    inference::ModelStreamInferResponse a, b;
    REQUIRE(stream->Read(&a));
    REQUIRE(stream->Read(&b));
    CHECK(stream->Finish().ok());
    // Responses leave in completion order: find each by its content.
    const auto& ok = a.error_message().empty() ? a : b;
    const auto& bad = a.error_message().empty() ? b : a;
    CHECK(ok.error_message().empty());
    REQUIRE(ok.infer_response().raw_output_contents_size() == 1);
    CHECK(ok.infer_response().raw_output_contents(0).empty());
    CHECK(out.Get(1024, values.size()) == values);
    CHECK_THAT(bad.error_message(), Catch::Contains("in"));
  }
}

TEST_CASE("bad shared memory references are INVALID_ARGUMENT and the server keeps serving") {
  TempRepository repo;
  auto server = StartServer(repo);
  auto stub = server->Stub();
  ClientRegion in(4096);
  REQUIRE(Register(*stub, "in", in.key(), 256).ok());
  in.Put(0, {1, 2, 3, 4});
  auto param = [](inference::ModelInferRequest::InferInputTensor* t, const std::string& key) {
    return &(*t->mutable_parameters())[key];
  };
  struct Case {
    std::string what;
    inference::ModelInferRequest request;
    std::string fragment;  // the message must mention it
  };
  std::vector<Case> cases;
  cases.push_back({"an unknown region", ShmRequest("identity", 4, "nope", 0), "'nope'"});
  cases.push_back({"a window past the region's end", ShmRequest("identity", 4, "in", 250),
                   "Invalid offset + byte size for shared memory region: 'in'"});
  {
    auto q = ShmRequest("identity", 4, "in", 0);
    param(q.mutable_inputs(0), "shared_memory_offset")->set_int64_param(INT64_MAX);
    cases.push_back({"an offset past the region", q, "Invalid offset for shared memory region"});
  }
  {
    auto q = ShmRequest("identity", 4, "in", 0);
    param(q.mutable_inputs(0), "shared_memory_byte_size")->set_int64_param(-16);
    cases.push_back({"a negative byte size", q, ">= 0"});
  }
  {
    auto q = ShmRequest("identity", 4, "in", 0);
    param(q.mutable_inputs(0), "shared_memory_byte_size")->set_int64_param(12);
    cases.push_back({"a byte size that does not match the shape", q, "INPUT0"});
  }
  {
    auto q = ShmRequest("identity", 4, "in", 0);
    q.mutable_inputs(0)->mutable_parameters()->erase("shared_memory_byte_size");
    cases.push_back({"a region without a byte size", q, "shared_memory_byte_size"});
  }
  {
    auto q = IdentityRequest({1, 2});
    param(q.mutable_inputs(0), "shared_memory_offset")->set_int64_param(0);
    cases.push_back({"an offset without a region", q, "shared_memory_region"});
  }
  {
    auto q = ShmRequest("identity", 4, "in", 0);
    param(q.mutable_inputs(0), "shared_memory_region")->set_int64_param(1);
    cases.push_back({"a region that is not a string", q, "string"});
  }
  {
    auto q = ShmRequest("identity", 4, "in", 0);
    q.mutable_inputs(0)->mutable_contents()->add_fp32_contents(1.0f);
    cases.push_back({"contents beside a region", q, "contents"});
  }
  {
    auto q = ShmRequest("identity", 4, "in", 0);
    q.add_raw_input_contents(Fp32Raw({1, 2, 3, 4}));
    cases.push_back({"raw contents for an input in a region", q, "raw_input_contents"});
  }
  {
    auto q = ShmRequest("identity", 4, "in", 0, "in", 200);
    (*q.mutable_outputs(0)->mutable_parameters())["shared_memory_byte_size"].set_int64_param(8);
    cases.push_back({"an output window smaller than the output", q, "16 bytes"});
  }
  {
    auto q = ShmRequest("identity", 4, "in", 0, "nope", 0);
    cases.push_back({"an output in an unknown region", q, "'nope'"});
  }
  for (const Case& c : cases) {
    INFO(c.what);
    inference::ModelInferResponse r;
    const grpc::Status s = Infer(*stub, c.request, &r);
    CHECK(s.error_code() == grpc::INVALID_ARGUMENT);
    CHECK_THAT(s.error_message(), Catch::Contains(c.fragment));
  }
  CHECK(ServerLive(*stub, milliseconds(5000)));
  inference::ModelInferResponse r;
  REQUIRE(Infer(*stub, ShmRequest("identity", 4, "in", 0), &r).ok());
  REQUIRE(r.raw_output_contents_size() == 1);
  CHECK(Fp32Values(r.raw_output_contents(0)) == std::vector<float>{1, 2, 3, 4});
  // An output window that fits.
  REQUIRE(Infer(*stub, ShmRequest("identity", 4, "in", 0, "in", 200), &r).ok());
  CHECK(Fp32Values(std::string(in.data() + 200, 16)) == std::vector<float>{1, 2, 3, 4});
}

TEST_CASE("a region unregistered during a request stays mapped until the request ends") {
  TempRepository repo;
  AddFaultModel(repo, "slow", /*isolated=*/false);
  auto server = StartServer(repo);
  auto stub = server->Stub();
  ClientRegion in(4096), out(4096);
  REQUIRE(Register(*stub, "in", in.key(), 4096).ok());
  REQUIRE(Register(*stub, "out", out.key(), 4096).ok());
  in.Put(0, {7, 8, 9});
  auto pending = std::async(std::launch::async, [&] {
    auto s2 = server->Stub();
    inference::ModelInferResponse r;
    const grpc::Status s = Infer(*s2, Sleeping(ShmRequest("slow", 3, "in", 0, "out", 0), 800), &r);
    return std::make_pair(s, r);
  });
  std::this_thread::sleep_for(milliseconds(300));  // the runner is sleeping
  REQUIRE(Unregister(*stub, "").ok());
  inference::SystemSharedMemoryStatusResponse st;
  REQUIRE(Status(*stub, "", &st).ok());
  CHECK(st.regions_size() == 0);
  auto [status, response] = pending.get();
  INFO(status.error_message());
  REQUIRE(status.ok());
  CHECK(out.Get(0, 3) == std::vector<float>{7, 8, 9});
  // Gone for new requests.
  inference::ModelInferResponse r;
  CHECK(Infer(*stub, ShmRequest("identity", 3, "in", 0), &r).error_code() ==
        grpc::INVALID_ARGUMENT);
  CHECK(ServerLive(*stub, milliseconds(5000)));
}

TEST_CASE("a region its owner truncates never crashes the server") {
  TempRepository repo;
  AddFaultModel(repo, "slow", /*isolated=*/false);
  AddFaultModel(repo, "slow_isolated", /*isolated=*/true);
  auto server = StartServer(repo);
  auto stub = server->Stub();
  {
    INFO("truncated before the request: refused with a reason");
    ClientRegion in(8192);
    REQUIRE(Register(*stub, "in", in.key(), 8192).ok());
    in.Truncate(100);
    inference::ModelInferResponse r;
    const grpc::Status s = Infer(*stub, ShmRequest("identity", 4, "in", 4096), &r);
    CHECK(s.error_code() == grpc::FAILED_PRECONDITION);
    CHECK_THAT(s.error_message(), Catch::Contains("truncated"));
    // A window still inside the object serves.
    in.Put(0, {5, 6});
    REQUIRE(Infer(*stub, ShmRequest("identity", 2, "in", 0), &r).ok());
    CHECK(Fp32Values(r.raw_output_contents(0)) == std::vector<float>{5, 6});
    REQUIRE(Unregister(*stub, "").ok());
  }
  // While the runner works: in process the runner itself reads the input;
  // isolated, the server copies it to the runner process. Either way the
  // output is written by the server into the region afterwards.
  for (const char* model : {"slow", "slow_isolated"}) {
    for (const bool truncate_output : {false, true}) {
      INFO(model << (truncate_output ? ": output" : ": input")
                 << " region truncated while the request runs");
      ClientRegion in(8192), out(8192);
      REQUIRE(Register(*stub, "in", in.key(), 8192).ok());
      REQUIRE(Register(*stub, "out", out.key(), 8192).ok());
      in.Put(0, {1, 2, 3});
      // The fault runner reads its input after the sleep (isolated: the
      // server copies it to the runner process before).
      auto pending = std::async(std::launch::async, [&] {
        auto s2 = server->Stub();
        inference::ModelInferResponse r;
        return Infer(*s2, Sleeping(ShmRequest(model, 3, "in", 0, "out", 0), 800), &r);
      });
      std::this_thread::sleep_for(milliseconds(300));
      (truncate_output ? out : in).Truncate(0);
      const grpc::Status s = pending.get();
      INFO(s.error_message());
      if (std::string(model) == "slow_isolated" && !truncate_output) {
        // The server copied the input to the runner process before the
        // runner slept: nothing was lost.
        CHECK(s.ok());
      } else {
        CHECK(s.error_code() == grpc::FAILED_PRECONDITION);
        CHECK_THAT(s.error_message(), Catch::Contains("truncated"));
      }
      CHECK(ServerLive(*stub, milliseconds(5000)));
      inference::ModelInferResponse r;
      REQUIRE(Infer(*stub, IdentityRequest({4, 5}), &r).ok());
      // The damaged region is refused until registered again.
      const std::string damaged = truncate_output ? "out" : "in";
      const grpc::Status again =
          Infer(*stub,
                truncate_output ? ShmRequest("identity", 1, "in", 0, "out", 0)
                                : ShmRequest("identity", 1, "in", 0),
                &r);
      CHECK(again.error_code() == grpc::FAILED_PRECONDITION);
      CHECK_THAT(again.error_message(), Catch::Contains("'" + damaged + "'"));
      REQUIRE(Unregister(*stub, "").ok());
      ClientRegion fresh(4096);
      fresh.Put(0, {6});
      REQUIRE(Register(*stub, "in", fresh.key(), 4096).ok());
      REQUIRE(Infer(*stub, ShmRequest("identity", 1, "in", 0), &r).ok());
      CHECK(Fp32Values(r.raw_output_contents(0)) == std::vector<float>{6});
      REQUIRE(Unregister(*stub, "").ok());
    }
  }
  CHECK(ServerLive(*stub, milliseconds(5000)));
  CHECK(kill(server->pid(), 0) == 0);
}

TEST_CASE("CUDA shared memory without a GPU answers as Triton does on a machine without one") {
  TempRepository repo;
  auto server = StartServer(repo);
  auto stub = server->Stub();
  {
    grpc::ClientContext ctx;
    inference::CudaSharedMemoryRegisterRequest q;
    q.set_name("gpu");
    q.set_raw_handle(std::string(64, '\0'));
    q.set_byte_size(1024);
    inference::CudaSharedMemoryRegisterResponse r;
    const grpc::Status s = stub->CudaSharedMemoryRegister(&ctx, q, &r);
    CHECK(s.error_code() == grpc::INVALID_ARGUMENT);
    CHECK_THAT(s.error_message(), Catch::Contains("GPUs not supported"));
  }
  {
    grpc::ClientContext ctx;
    inference::CudaSharedMemoryStatusResponse r;
    REQUIRE(stub->CudaSharedMemoryStatus(&ctx, {}, &r).ok());
    CHECK(r.regions_size() == 0);
  }
  {
    grpc::ClientContext ctx;
    inference::CudaSharedMemoryUnregisterResponse r;
    CHECK(stub->CudaSharedMemoryUnregister(&ctx, {}, &r).ok());
  }
  {
    grpc::ClientContext ctx;
    inference::CudaSharedMemoryUnregisterRequest q;
    q.set_name("gpu");
    inference::CudaSharedMemoryUnregisterResponse r;
    CHECK(stub->CudaSharedMemoryUnregister(&ctx, q, &r).ok());
  }
}

TEST_CASE("RPCs Torii does not implement say so in words") {
  TempRepository repo;
  auto server = StartServer(repo);
  auto stub = server->Stub();
  {
    grpc::ClientContext ctx;
    inference::TraceSettingResponse r;
    const grpc::Status s = stub->TraceSetting(&ctx, {}, &r);
    CHECK(s.error_code() == grpc::UNIMPLEMENTED);
    CHECK_THAT(s.error_message(), Catch::Contains("TraceSetting") && Catch::Contains("Torii"));
  }
  {
    grpc::ClientContext ctx;
    inference::LogSettingsResponse r;
    const grpc::Status s = stub->LogSettings(&ctx, {}, &r);
    CHECK(s.error_code() == grpc::UNIMPLEMENTED);
    CHECK_THAT(s.error_message(), Catch::Contains("LogSettings") && Catch::Contains("Torii"));
  }
}

}  // namespace
}  // namespace testing
}  // namespace torii
