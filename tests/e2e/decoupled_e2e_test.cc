// Decoupled models through the real server: ModelStreamInfer with Triton's
// conventions, back-pressure, a client that goes away, crashes with open
// requests, the child's output in the log, and Python models (written for
// these tests, tests/e2e/decoupled_models/) that send from a thread after
// execute returned and that call other models. In process and isolated.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <thread>

#include "tests/e2e/e2e_util.h"
#include "tests/util/e2e_client.h"
#include "tests/util/server_process.h"

namespace torii {
namespace testing {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
using Stream = grpc::ClientReaderWriter<inference::ModelInferRequest,
                                        inference::ModelStreamInferResponse>;

const char* kStreamConfig = R"(
backend: "stream"
max_batch_size: 0
input [ { name: "COUNT" data_type: TYPE_INT32 dims: [ 1 ] } ]
output [ { name: "INDEX" data_type: TYPE_INT32 dims: [ 1 ] },
         { name: "PID" data_type: TYPE_INT64 dims: [ 1 ] } ]
model_transaction_policy { decoupled: true }
instance_group [ { count: 2 } ]
)";

// The SDK's worked example (plugins/generator), served as it is documented.
const char* kGeneratorConfig = R"(
backend: "generator"
max_batch_size: 0
model_transaction_policy { decoupled: true }
input [
  { name: "PROMPT" data_type: TYPE_STRING dims: [ 1 ] },
  { name: "MAX_TOKENS" data_type: TYPE_INT32 dims: [ 1 ] }
]
output [ { name: "TOKEN" data_type: TYPE_STRING dims: [ 1 ] } ]
)";

void FillRepository(const TempRepository* r) {
  // Each model twice: `name` in process and `name`_iso isolated.
  const auto add = [r](const std::string& name, const std::string& config) {
    for (const std::string& m : {name, name + "_iso"}) {
      r->Write(m + "/config.pbtxt", "name: \"" + m + "\"" + config +
                                        (m == name ? "" : ConfigParameter("isolation", "process")));
      r->Write(m + "/1/.keep", "");
    }
  };
  add("generator", kGeneratorConfig);
  add("stream", kStreamConfig);
  for (const std::string m : {"stream", "stream_iso"}) {
    r->CopyFile(TORII_STREAM_RUNNER, m + "/libtorii_stream.so");
  }
#ifdef TORII_E2E_PYTHON
  std::filesystem::copy(TORII_DECOUPLED_MODELS, r->path(),
                        std::filesystem::copy_options::recursive);
#endif
}

const TempRepository& Repository() {
  static const TempRepository repo;
  static const bool filled = (FillRepository(&repo), true);
  (void)filled;
  return repo;
}

ServerProcess& Server() {
  // --strict-readiness=false: the example mlp needs LibTorch.
  static std::unique_ptr<ServerProcess> server =
      StartServer(Repository(), {"--strict-readiness=false"});
  return *server;
}

// How long WaitModelReady waits here (Python and isolated models start processes).
constexpr std::chrono::seconds kReadyLimit(60);

// The log line that contains `needle`, or "".
std::string LogLine(const std::string& needle) {
  const std::string log = Server().Log();
  const size_t at = log.find(needle);
  if (at == std::string::npos) return "";
  const size_t begin = log.rfind('\n', at) + 1;
  return log.substr(begin, log.find('\n', at) - begin);
}

inference::ModelInferRequest CountRequest(const std::string& model, int32_t count,
                                          const std::string& id) {
  inference::ModelInferRequest r;
  r.set_model_name(model);
  r.set_id(id);
  auto* in = r.add_inputs();
  in->set_name("COUNT");
  in->set_datatype("INT32");
  in->add_shape(1);
  r.add_raw_input_contents(std::string(reinterpret_cast<const char*>(&count), 4));
  return r;
}

int32_t Index(const inference::ModelStreamInferResponse& m) {
  int32_t v = 0;
  std::memcpy(&v, m.infer_response().raw_output_contents(0).data(), 4);
  return v;
}

// The bool parameter triton_final_response of a message (-1 when absent).
int FinalFlag(const inference::ModelStreamInferResponse& m) {
  const auto& p = m.infer_response().parameters();
  auto it = p.find("triton_final_response");
  if (it == p.end()) return -1;
  return it->second.bool_param() ? 1 : 0;
}

TEST_CASE("ModelStreamInfer delivers 1000 responses of one request complete and in order") {
  auto stub = Server().Stub();
  for (const std::string model : {"stream", "stream_iso"}) {
    INFO(model);
    REQUIRE(WaitModelReady(*stub, model, kReadyLimit));
    grpc::ClientContext ctx;
    SetDeadline(ctx, milliseconds(60000));
    auto stream = stub->ModelStreamInfer(&ctx);
    auto req = CountRequest(model, 1000, "thousand");
    (*req.mutable_parameters())["triton_enable_empty_final_response"].set_bool_param(true);
    REQUIRE(stream->Write(req));
    // Without the parameter, the final flag alone writes nothing.
    REQUIRE(stream->Write(CountRequest(model, 3, "three")));
    stream->WritesDone();
    std::vector<inference::ModelStreamInferResponse> thousand, three;
    inference::ModelStreamInferResponse m;
    while (stream->Read(&m)) {
      INFO(m.error_message());
      REQUIRE(m.error_message().empty());
      (m.infer_response().id() == "thousand" ? thousand : three).push_back(m);
    }
    REQUIRE(stream->Finish().ok());
    REQUIRE(thousand.size() == 1001);
    bool ordered = true, not_final = true;
    for (int32_t i = 0; i < 1000; ++i) {
      ordered &= Index(thousand[i]) == i;
      not_final &= FinalFlag(thousand[i]) == 0;
    }
    CHECK(ordered);
    CHECK(not_final);
    // The empty final response: no outputs, the id, the model, the flag.
    const auto& last = thousand[1000].infer_response();
    CHECK(last.outputs_size() == 0);
    CHECK(last.model_name() == model);
    CHECK(FinalFlag(thousand[1000]) == 1);
    REQUIRE(three.size() == 3);
    CHECK(Index(three[2]) == 2);
    CHECK(FinalFlag(three[2]) == 0);  // its end was the final flag alone, not written
  }
}

TEST_CASE("the generator example streams its tokens in process and isolated") {
  auto stub = Server().Stub();
  for (const std::string model : {"generator", "generator_iso"}) {
    INFO(model);
    REQUIRE(WaitModelReady(*stub, model, kReadyLimit));
    inference::ModelInferRequest r;
    r.set_model_name(model);
    r.set_id("gen");
    auto* prompt = r.add_inputs();
    prompt->set_name("PROMPT");
    prompt->set_datatype("BYTES");
    prompt->add_shape(1);
    auto* max = r.add_inputs();
    max->set_name("MAX_TOKENS");
    max->set_datatype("INT32");
    max->add_shape(1);
    const std::string text = "to be or not";
    const uint32_t len = static_cast<uint32_t>(text.size());
    r.add_raw_input_contents(std::string(reinterpret_cast<const char*>(&len), 4) + text);
    const int32_t tokens = 1000;
    r.add_raw_input_contents(std::string(reinterpret_cast<const char*>(&tokens), 4));
    (*r.mutable_parameters())["triton_enable_empty_final_response"].set_bool_param(true);
    grpc::ClientContext ctx;
    SetDeadline(ctx, milliseconds(60000));
    auto stream = stub->ModelStreamInfer(&ctx);
    REQUIRE(stream->Write(r));
    stream->WritesDone();
    const std::vector<std::string> words = {"to", "be", "or", "not"};
    size_t n = 0;
    bool ordered = true, final_seen = false;
    inference::ModelStreamInferResponse m;
    while (stream->Read(&m)) {
      INFO(m.error_message());
      REQUIRE(m.error_message().empty());
      if (FinalFlag(m) == 1) {
        final_seen = true;
        continue;
      }
      ordered &= m.infer_response().raw_output_contents(0).substr(4) == words[n % 4];
      ++n;
    }
    REQUIRE(stream->Finish().ok());
    CHECK(n == 1000);
    CHECK(ordered);
    CHECK(final_seen);
  }
}

TEST_CASE("64 concurrent streams lose no response") {
  auto stub = Server().Stub();
  REQUIRE(WaitModelReady(*stub, "stream", kReadyLimit));
  REQUIRE(WaitModelReady(*stub, "stream_iso", kReadyLimit));
  std::atomic<int> complete{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 64; ++c) {
    clients.emplace_back([&, c] {
      auto own = Server().Stub();  // a connection per client
      const std::string model = c % 2 == 0 ? "stream" : "stream_iso";
      grpc::ClientContext ctx;
      SetDeadline(ctx, milliseconds(120000));
      auto stream = own->ModelStreamInfer(&ctx);
      const int per_request = 100;
      for (int q = 0; q < 2; ++q) {
        if (!stream->Write(CountRequest(model, per_request, std::to_string(q)))) return;
      }
      stream->WritesDone();
      std::vector<int32_t> next(2, 0);
      bool ok = true;
      inference::ModelStreamInferResponse m;
      while (stream->Read(&m)) {
        if (!m.error_message().empty()) ok = false;
        const int q = std::stoi(m.infer_response().id());
        ok &= Index(m) == next[q]++;
      }
      ok &= stream->Finish().ok() && next[0] == per_request && next[1] == per_request;
      if (ok) ++complete;
    });
  }
  for (auto& t : clients) t.join();
  CHECK(complete == 64);
}

TEST_CASE("a client that disconnects mid-stream stops the runner's work") {
  auto stub = Server().Stub();
  for (const std::string model : {"stream", "stream_iso"}) {
    INFO(model);
    REQUIRE(WaitModelReady(*stub, model, kReadyLimit));
    const std::string id = "gone-" + model;
    grpc::ClientContext ctx;
    auto stream = stub->ModelStreamInfer(&ctx);
    auto req = CountRequest(model, 1000000, id);
    (*req.mutable_parameters())["delay_us"].set_int64_param(500);
    REQUIRE(stream->Write(req));
    inference::ModelStreamInferResponse m;
    for (int i = 0; i < 20; ++i) REQUIRE(stream->Read(&m));
    ctx.TryCancel();
    const std::string needle = "stream: request '" + id + "' ended after ";
    REQUIRE(WaitLog(Server(), needle));
    const std::string line = LogLine(needle);
    INFO(line);
    CHECK((line.find("(cancelled)") != std::string::npos ||
           line.find("(send failed)") != std::string::npos));
    CHECK(line.find("of 1000000 responses") != std::string::npos);
    CHECK(line.find("model=" + model) != std::string::npos);
  }
}

TEST_CASE("ModelInfer refuses a decoupled model") {
  auto stub = Server().Stub();
  REQUIRE(WaitModelReady(*stub, "stream", kReadyLimit));
  grpc::ClientContext ctx;
  SetDeadline(ctx, milliseconds(10000));
  inference::ModelInferResponse r;
  const grpc::Status s = stub->ModelInfer(&ctx, CountRequest("stream", 2, "u"), &r);
  CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(s.error_message().find("ModelStreamInfer") != std::string::npos);
}

TEST_CASE("a crash with open decoupled requests ends each stream's request with the signal") {
  auto stub = Server().Stub();
  REQUIRE(WaitModelReady(*stub, "stream_iso", kReadyLimit));
  grpc::ClientContext ctx;
  SetDeadline(ctx, milliseconds(60000));
  auto stream = stub->ModelStreamInfer(&ctx);
  auto slow = CountRequest("stream_iso", 1000000, "slow");
  (*slow.mutable_parameters())["delay_us"].set_int64_param(2000);
  auto crash = CountRequest("stream_iso", 1000000, "crash");
  (*crash.mutable_parameters())["delay_us"].set_int64_param(2000);
  (*crash.mutable_parameters())["crash_after"].set_int64_param(30);
  REQUIRE(stream->Write(slow));
  REQUIRE(stream->Write(crash));
  stream->WritesDone();
  std::map<std::string, std::string> error;
  inference::ModelStreamInferResponse m;
  while (stream->Read(&m)) {
    if (!m.error_message().empty()) error[m.infer_response().id()] = m.error_message();
  }
  CHECK(stream->Finish().ok());
  REQUIRE(error.size() == 2);
  for (const auto& [id, message] : error) {
    INFO(id << ": " << message);
    CHECK(message.find("runner process died (SIGABRT") != std::string::npos);
  }
  REQUIRE(WaitModelReady(*stub, "stream_iso", kReadyLimit));
}

TEST_CASE("what an isolated runner writes to file descriptors 1 and 2 reaches the log") {
  auto stub = Server().Stub();
  REQUIRE(WaitModelReady(*stub, "stream_iso", kReadyLimit));
  grpc::ClientContext ctx;
  SetDeadline(ctx, milliseconds(20000));
  auto stream = stub->ModelStreamInfer(&ctx);
  auto req = CountRequest("stream_iso", 1, "say");
  (*req.mutable_parameters())["say"].set_string_param("hello from fd one");
  REQUIRE(stream->Write(req));
  stream->WritesDone();
  inference::ModelStreamInferResponse m;
  while (stream->Read(&m)) {
  }
  REQUIRE(stream->Finish().ok());
  REQUIRE(WaitLog(Server(), "hello from fd one model=stream_iso"));
  const std::string out = LogLine(" info hello from fd one model=stream_iso");
  CHECK(out.find("stream=stdout") != std::string::npos);
  CHECK(out.find("instance=0") != std::string::npos);
  REQUIRE(WaitLog(Server(), "stderr: hello from fd one"));
  CHECK(LogLine("stderr: hello from fd one").find(" warning ") != std::string::npos);
  CHECK(LogLine("stderr: hello from fd one").find("stream=stderr") != std::string::npos);
}

#ifdef TORII_E2E_PYTHON
inference::ModelInferRequest IntRequest(const std::string& model, const std::vector<int32_t>& v,
                                        const std::string& id) {
  inference::ModelInferRequest r;
  r.set_model_name(model);
  r.set_id(id);
  auto* in = r.add_inputs();
  in->set_name("IN");
  in->set_datatype("INT32");
  in->add_shape(static_cast<int64_t>(v.size()));
  r.add_raw_input_contents(std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4));
  return r;
}

TEST_CASE("a decoupled Python model sends from a thread after execute returned") {
  auto stub = Server().Stub();
  REQUIRE(WaitModelReady(*stub, "py_repeat", kReadyLimit));
  std::vector<int32_t> values;
  for (int32_t i = 0; i < 300; ++i) values.push_back(1000 + i);
  grpc::ClientContext ctx;
  SetDeadline(ctx, milliseconds(60000));
  auto stream = stub->ModelStreamInfer(&ctx);
  REQUIRE(stream->Write(IntRequest("py_repeat", values, "py300")));
  stream->WritesDone();
  std::vector<int32_t> got;
  inference::ModelStreamInferResponse m;
  while (stream->Read(&m)) {
    INFO(m.error_message());
    REQUIRE(m.error_message().empty());
    CHECK(m.infer_response().id() == "py300");
    int32_t v;
    std::memcpy(&v, m.infer_response().raw_output_contents(0).data(), 4);
    got.push_back(v);
  }
  REQUIRE(stream->Finish().ok());
  CHECK(got == values);
  // os.write(1, ...) inside model.py: the child's fd 1, tagged with the model.
  REQUIRE(WaitLog(Server(), "py_repeat: 300 responses for 'py300' model=py_repeat"));
  REQUIRE(WaitLog(Server(), "py_repeat: request 'py300' ended after 300 of 300 responses"));
}

TEST_CASE("a Python model's thread stops when its client goes away") {
  auto stub = Server().Stub();
  REQUIRE(WaitModelReady(*stub, "py_repeat", kReadyLimit));
  std::vector<int32_t> values(100000, 7);
  grpc::ClientContext ctx;
  auto stream = stub->ModelStreamInfer(&ctx);
  auto req = IntRequest("py_repeat", values, "py-gone");
  (*req.mutable_parameters())["delay_ms"].set_int64_param(2);
  REQUIRE(stream->Write(req));
  inference::ModelStreamInferResponse m;
  for (int i = 0; i < 10; ++i) REQUIRE(stream->Read(&m));
  ctx.TryCancel();
  REQUIRE(WaitLog(Server(), "py_repeat: request 'py-gone' ended after "));
  CHECK(LogLine("request 'py-gone' ended after ").find("of 100000 responses") != std::string::npos);
  CHECK(LogLine("request 'py-gone' ended after ").find("after 100000 of") == std::string::npos);
}

std::vector<float> Floats(const std::string& raw) {
  std::vector<float> v(raw.size() / 4);
  std::memcpy(v.data(), raw.data(), raw.size());
  return v;
}

TEST_CASE("Python models call other models: exec, async_exec and a decoupled call") {
  auto stub = Server().Stub();
  std::vector<float> a(16), b(16);
  for (int i = 0; i < 16; ++i) {
    a[i] = static_cast<float>(i);
    b[i] = static_cast<float>(100 - i);
  }
  for (const std::string model : {"py_bls_sync", "py_bls_async"}) {
    INFO(model);
    REQUIRE(WaitModelReady(*stub, model, kReadyLimit));
    inference::ModelInferRequest r;
    r.set_model_name(model);
    r.set_id("bls");
    for (const char* name : {"INPUT0", "INPUT1"}) {
      auto* in = r.add_inputs();
      in->set_name(name);
      in->set_datatype("FP32");
      in->add_shape(1);
      in->add_shape(16);
    }
    r.add_raw_input_contents(Fp32Raw(a));
    r.add_raw_input_contents(Fp32Raw(b));
    grpc::ClientContext ctx;
    SetDeadline(ctx, milliseconds(30000));
    inference::ModelInferResponse resp;
    const grpc::Status s = stub->ModelInfer(&ctx, r, &resp);
    INFO(s.error_message());
    REQUIRE(s.ok());
    REQUIRE(resp.raw_output_contents_size() == 2);
    const auto sum = Floats(resp.raw_output_contents(0));
    const auto diff = Floats(resp.raw_output_contents(1));
    REQUIRE(sum.size() == 16);
    for (int i = 0; i < 16; ++i) {
      CHECK(sum[i] == a[i] + b[i]);
      CHECK(diff[i] == (model == "py_bls_sync" ? a[i] - b[i] : b[i] - a[i]));
    }
  }
  REQUIRE(WaitModelReady(*stub, "py_bls_decoupled", kReadyLimit));
  std::vector<int32_t> values;
  int64_t total = 0;
  for (int32_t i = 1; i <= 50; ++i) {
    values.push_back(i);
    total += i;
  }
  auto r = IntRequest("py_bls_decoupled", values, "bls-d");
  grpc::ClientContext ctx;
  SetDeadline(ctx, milliseconds(30000));
  inference::ModelInferResponse resp;
  const grpc::Status s = stub->ModelInfer(&ctx, r, &resp);
  INFO(s.error_message());
  REQUIRE(s.ok());
  int64_t sum = 0, count = 0;
  std::memcpy(&sum, resp.raw_output_contents(0).data(), 8);
  std::memcpy(&count, resp.raw_output_contents(1).data(), 8);
  CHECK(sum == total);
  CHECK(count == 50);
}

#endif  // TORII_E2E_PYTHON

}  // namespace
}  // namespace testing
}  // namespace torii
