// The endpoints, driven in process with fakes behind ModelService and
// InferenceDispatcher (no sockets: http_server_test.cc covers the wire).
#include "server/http/http_api.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cstring>
#include <thread>

#include <catch2/catch.hpp>

#include "server/http/compression.h"
#include "tests/server/http/fakes.h"

namespace torii {
namespace http {
namespace {

using testing::CapturingResponder;
using testing::FakeDispatcher;
using testing::FakeModelService;

struct Api {
  FakeModelService models;
  FakeDispatcher dispatcher;
  std::unique_ptr<HttpApi> api;

  explicit Api(std::map<std::string, HttpApi::Options::Restriction> restricted = {}) {
    HttpApi::Options o;
    o.models = &models;
    o.dispatcher = &dispatcher;
    o.max_request_bytes = 1 << 20;
    o.restricted = std::move(restricted);
    api = std::make_unique<HttpApi>(o);
  }

  HttpResponse Call(const std::string& method, const std::string& path, std::string body = "",
                    std::vector<std::pair<std::string, std::string>> headers = {}) {
    auto req = std::make_unique<HttpRequest>();
    req->method = method;
    req->path = path;
    req->headers = std::move(headers);
    req->body = std::move(body);
    EnsureBodyPadding(req->body);
    auto responder = std::make_shared<CapturingResponder>();
    api->Handle(std::move(req), responder);
    return responder->Wait();
  }
};

const std::string* Header(const HttpResponse& r, const std::string& name) {
  for (const auto& h : r.headers) {
    if (h.first == name) return &h.second;
  }
  return nullptr;
}

const char kInfer[] =
    R"({"id":"r1","inputs":[{"name":"INPUT0","datatype":"FP32","shape":[1,2],"data":[1.5,2]}]})";

TEST_CASE("server metadata and health", "[http][api]") {
  Api a;
  HttpResponse meta = a.Call("GET", "/v2");
  CHECK(meta.status == 200);
  CHECK(meta.body ==
        R"({"name":"torii","version":"0.1.0","extensions":["model_configuration","statistics",)"
        R"("model_repository","schedule_policy","system_shared_memory","binary_tensor_data"]})");
  CHECK(a.Call("GET", "/v2/health/live").status == 200);
  CHECK(a.Call("GET", "/v2/health/ready").status == 200);
  a.models.ready = false;
  HttpResponse not_ready = a.Call("GET", "/v2/health/ready");
  CHECK(not_ready.status == 400);  // Triton's answer for "not ready"
  CHECK(not_ready.body.empty());
  CHECK(a.Call("GET", "/v2/health/live").status == 200);  // still live
}

TEST_CASE("model endpoints: ready, metadata, config, stats", "[http][api]") {
  Api a;
  CHECK(a.Call("GET", "/v2/models/identity/ready").status == 200);
  CHECK(a.Call("GET", "/v2/models/identity/versions/1/ready").status == 200);
  HttpResponse v2 = a.Call("GET", "/v2/models/identity/versions/2/ready");
  CHECK(v2.status == 400);
  CHECK(v2.body == R"({"error":"model 'identity' version 2 is not ready"})");
  HttpResponse unknown = a.Call("GET", "/v2/models/nope/ready");
  CHECK(unknown.status == 404);
  CHECK(unknown.body == R"({"error":"unknown model 'nope'"})");

  HttpResponse meta = a.Call("GET", "/v2/models/identity");
  CHECK(meta.status == 200);
  CHECK(meta.body ==
        R"({"name":"identity","versions":["1"],"platform":"identity",)"
        R"("inputs":[{"name":"INPUT0","datatype":"FP32","shape":[-1,4]}],)"
        R"("outputs":[{"name":"OUTPUT0","datatype":"FP32","shape":[-1,4]}],)"
        R"("properties":{"runner":"identity"}})");
  CHECK(a.Call("GET", "/v2/models/identity/versions/1").status == 200);
  CHECK(a.Call("GET", "/v2/models/identity/versions/9").status == 404);

  HttpResponse config = a.Call("GET", "/v2/models/identity/config");
  CHECK(config.status == 200);
  CHECK(config.body == R"({"name":"identity","max_batch_size":8})");
  CHECK(*Header(config, "Content-Type") == "application/json");

  const std::string stats =
      R"({"model_stats":[{"name":"identity","version":"1","last_inference":0,"inference_count":3,)"
      R"("execution_count":0,"inference_stats":{"success":{"count":3,"ns":3000},)"
      R"("fail":{"count":0,"ns":0},"queue":{"count":0,"ns":0},"compute_input":{"count":0,"ns":0},)"
      R"("compute_infer":{"count":0,"ns":0},"compute_output":{"count":0,"ns":0},)"
      R"("cache_hit":{"count":0,"ns":0},"cache_miss":{"count":0,"ns":0}},)"
      R"("batch_stats":[{"batch_size":1,"compute_input":{"count":3,"ns":10},)"
      R"("compute_infer":{"count":3,"ns":20},"compute_output":{"count":3,"ns":30}}]}]})";
  CHECK(a.Call("GET", "/v2/models/stats").body == stats);
  CHECK(a.Call("GET", "/v2/models/identity/stats").body == stats);
  CHECK(a.Call("GET", "/v2/models/identity/versions/1/stats").body == stats);
  CHECK(a.Call("GET", "/v2/models/nope/stats").status == 404);
}

TEST_CASE("routing: unknown paths, bad versions, wrong methods, quoted names", "[http][api]") {
  Api a;
  for (const char* path : {"/", "/v1/models", "/v2/foo", "/v2/health", "/v2/health/dead",
                           "/v2/models/identity/versions/x/ready", "/v2/models/identity/versions",
                           "/v2/models/identity/explain", "/v2/models/identity/ready/more",
                           "/v2/repository/models/identity", "/v2/repository/index/x"}) {
    INFO(path);
    HttpResponse r = a.Call("GET", path);
    CHECK(r.status == 404);
    CHECK_THAT(r.body, Catch::Contains("no endpoint at"));
  }
  HttpResponse post_ready = a.Call("POST", "/v2/health/ready");
  CHECK(post_ready.status == 405);
  CHECK(*Header(post_ready, "Allow") == "GET");
  CHECK(post_ready.body == R"({"error":"method POST is not allowed on /v2/health/ready; use GET"})");
  HttpResponse get_infer = a.Call("GET", "/v2/models/identity/infer");
  CHECK(get_infer.status == 405);
  CHECK(*Header(get_infer, "Allow") == "POST");
  CHECK(a.Call("GET", "/v2/repository/index").status == 405);
  CHECK(a.Call("DELETE", "/v2/models/identity").status == 405);
  CHECK(a.Call("GET", "/v2/models/bad%zz").status == 400);

  // Clients quote model names (tritonclient does).
  CHECK(a.Call("POST", "/v2/models/my%20model/versions/3/infer", kInfer).status == 200);
  CHECK(a.dispatcher.last_model == "my model");
  CHECK(a.dispatcher.last_version == "3");
}

TEST_CASE("restricted APIs need their header, other groups do not", "[http][api]") {
  Api a({{"model-repository", {"admin-key", "s3cret"}}, {"inference", {"infer-key", "k"}}});
  HttpResponse denied = a.Call("POST", "/v2/repository/index");
  CHECK(denied.status == 403);
  CHECK_THAT(denied.body, Catch::Contains("this API (model-repository) is restricted: the request "
                                          "needs the header 'admin-key'"));
  CHECK(a.Call("POST", "/v2/repository/index", "", {{"admin-key", "wrong"}}).status == 403);
  CHECK(a.Call("POST", "/v2/repository/index", "", {{"admin-key", "s3cret"}}).status == 200);
  // Checked before the method, as Triton does.
  CHECK(a.Call("GET", "/v2/repository/index").status == 403);
  CHECK(a.Call("POST", "/v2/models/identity/infer", kInfer).status == 403);
  CHECK(a.Call("POST", "/v2/models/identity/infer", kInfer, {{"infer-key", "k"}}).status == 200);
  CHECK(a.Call("GET", "/v2/health/ready").status == 200);
  CHECK(a.Call("GET", "/v2/models/identity/config").status == 200);
}

TEST_CASE("repository index, load and unload", "[http][api]") {
  Api a;
  HttpResponse all = a.Call("POST", "/v2/repository/index");
  CHECK(all.status == 200);
  CHECK(all.body == R"([{"name":"identity","version":"1","state":"READY","reason":""},)"
                    R"({"name":"other","state":"UNAVAILABLE","reason":"not loaded"}])");
  CHECK(a.Call("POST", "/v2/repository/index", R"({"ready":true})").body ==
        R"([{"name":"identity","version":"1","state":"READY","reason":""}])");
  CHECK(a.Call("POST", "/v2/repository/index", R"({"ready":1})").status == 400);
  CHECK(a.Call("POST", "/v2/repository/index", "{").status == 400);
  CHECK(a.Call("POST", "/v2/repository/index", "", {{"content-encoding", "br"}}).status == 415);
  auto gz = Compress(ContentCoding::kGzip, {R"({"ready":true})"});
  REQUIRE(gz.ok());
  CHECK(a.Call("POST", "/v2/repository/index", *gz, {{"content-encoding", "gzip"}}).body ==
        R"([{"name":"identity","version":"1","state":"READY","reason":""}])");

  CHECK(a.Call("POST", "/v2/repository/models/identity/load", "{}").status == 200);
  // tritonclient always sends unload_dependents.
  CHECK(a.Call("POST", "/v2/repository/models/identity/unload",
               R"({"parameters":{"unload_dependents":true}})")
            .status == 200);
  CHECK(a.Call("POST", "/v2/repository/models/identity/unload", "").status == 200);
  // A load override as tritonclient sends it: the config as JSON text, files
  // in base64 ("aGk=" is "hi").
  CHECK(a.Call("POST", "/v2/repository/models/identity/load",
               R"({"parameters":{"config":"{\"max_batch_size\":2}","file:1/m.bin":"aGk="}})")
            .status == 200);
  for (const char* bad : {R"({"parameters":{"config":{"max_batch_size":2}}})",
                          R"({"parameters":{"file:1/m.bin":"%%%"}})",
                          R"({"parameters":{"shape":"x"}})"}) {
    INFO(bad);
    HttpResponse r = a.Call("POST", "/v2/repository/models/identity/load", bad);
    CHECK(r.status == 400);
    CHECK_THAT(r.body, Catch::StartsWith(R"({"error":"failed to load 'identity': )"));
  }
  HttpResponse broken = a.Call("POST", "/v2/repository/models/broken/load");
  CHECK(broken.status == 400);
  CHECK(broken.body == R"({"error":"failed to load 'broken': config.pbtxt: bad field"})");
  HttpResponse escape = a.Call("POST", "/v2/repository/models/..%2Fetc/load");
  CHECK(escape.status == 400);
  CHECK_THAT(escape.body, Catch::Contains("must be a plain directory name"));
  std::lock_guard<std::mutex> lock(a.models.mu);
  CHECK(a.models.calls ==
        std::vector<std::string>{"load identity", "unload identity +dependents", "unload identity",
                                 R"(load identity config={"max_batch_size":2} 1/m.bin=hi)",
                                 "load broken"});
}

TEST_CASE("infer: JSON in, JSON out, request fields reach the dispatcher", "[http][api]") {
  Api a;
  HttpResponse r = a.Call("POST", "/v2/models/identity/infer", kInfer);
  CHECK(r.status == 200);
  CHECK(r.body == R"({"id":"r1","model_name":"identity","model_version":"1","outputs":[)"
                  R"({"name":"OUTPUT0","datatype":"FP32","shape":[1,2],"data":[1.5,2]}]})");
  CHECK(a.dispatcher.last_id == "r1");
  CHECK(a.api->InFlight() == 0);
}

TEST_CASE("infer: binary inputs and outputs", "[http][api]") {
  Api a;
  const std::string json =
      R"({"inputs":[{"name":"INPUT0","datatype":"INT32","shape":[2],"parameters":{"binary_data_size":8}}],)"
      R"("parameters":{"binary_data_output":true}})";
  const std::string data("\x07\0\0\0\x09\0\0\0", 8);
  HttpResponse r = a.Call("POST", "/v2/models/identity/infer", json + data,
                          {{"inference-header-content-length", std::to_string(json.size())}});
  REQUIRE(r.status == 200);
  const std::string head =
      R"({"model_name":"identity","model_version":"1","outputs":[)"
      R"({"name":"OUTPUT0","datatype":"INT32","shape":[2],"parameters":{"binary_data_size":8}}]})";
  CHECK(r.body == head);
  REQUIRE(r.tail.size() == 1);
  CHECK(std::string(r.tail[0]) == data);
  CHECK(*Header(r, "Inference-Header-Content-Length") == std::to_string(head.size()));
  CHECK(*Header(r, "Content-Type") == "application/octet-stream");

  HttpResponse bad = a.Call("POST", "/v2/models/identity/infer", json + data,
                            {{"inference-header-content-length", "999"}});
  CHECK(bad.status == 400);
  CHECK_THAT(bad.body, Catch::Contains("Inference-Header-Content-Length must be"));
}

TEST_CASE("infer: Triton's raw binary request takes the model's one input", "[http][api]") {
  Api a;
  const std::string data("\x00\x00\x80\x3f\x00\x00\x00\x40\x00\x00\x40\x40\x00\x00\x80\x40", 16);
  HttpResponse r = a.Call("POST", "/v2/models/identity/infer", data,
                          {{"inference-header-content-length", "0"}});
  REQUIRE(r.status == 200);
  // The fake model: INPUT0 FP32 [-1, 4], batching; a raw request is one row.
  CHECK(a.dispatcher.last_inputs.at(0).name == "INPUT0");
  CHECK(a.dispatcher.last_inputs.at(0).shape == Shape{1, 4});
  CHECK(a.dispatcher.last_input_bytes.at(0) == data);
  // Answered binary, as Triton answers a raw request.
  CHECK_THAT(r.body, Catch::Contains(R"("parameters":{"binary_data_size":16})"));
  REQUIRE(r.tail.size() == 1);
  CHECK(std::string(r.tail[0]) == data);

  HttpResponse unknown = a.Call("POST", "/v2/models/nope/infer", data,
                                {{"inference-header-content-length", "0"}});
  CHECK(unknown.status == 404);
  CHECK(a.api->InFlight() == 0);
}

TEST_CASE("trace and log settings answer 501, as over gRPC", "[http][api]") {
  Api a;
  for (const char* path : {"/v2/trace/setting", "/v2/models/identity/trace/setting", "/v2/logging"}) {
    INFO(path);
    for (const char* method : {"GET", "POST"}) {
      HttpResponse r = a.Call(method, path, "{}");
      CHECK(r.status == 501);
      CHECK_THAT(r.body, Catch::Contains("not implemented by Torii"));
    }
    HttpResponse wrong = a.Call("PUT", path);
    CHECK(wrong.status == 405);
    CHECK(*Header(wrong, "Allow") == "GET, POST");
  }
  CHECK(a.Call("GET", "/v2/models/identity/trace").status == 404);
}

TEST_CASE("answers are counted by endpoint and status", "[http][api]") {
  Api a;
  a.Call("GET", "/v2/health/ready");
  a.Call("GET", "/v2/health/ready");
  a.Call("GET", "/v2/models/nope/ready");
  a.Call("GET", "/v3");
  a.Call("PUT", "/v2/health/live");
  a.Call("POST", "/v2/models/identity/infer", kInfer);
  std::map<std::pair<std::string, int>, uint64_t> counts;
  for (const auto& c : a.api->RequestCounts()) counts[{c.endpoint, c.status}] = c.count;
  CHECK(counts == std::map<std::pair<std::string, int>, uint64_t>{{{"health_ready", 200}, 2},
                                                                  {{"model_ready", 404}, 1},
                                                                  {{"none", 404}, 1},
                                                                  {{"health_live", 405}, 1},
                                                                  {{"infer", 200}, 1}});
}

TEST_CASE("system shared memory: register, status, infer in place, unregister", "[http][api]") {
  Api a;
  // A POSIX shared-memory object of 64 bytes: 2 FP32 inputs, then room for outputs.
  const std::string key = "/torii_http_api_test_" + std::to_string(getpid());
  int fd = shm_open(key.c_str(), O_CREAT | O_RDWR, 0600);
  REQUIRE(fd >= 0);
  REQUIRE(ftruncate(fd, 64) == 0);
  void* map = mmap(nullptr, 64, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  REQUIRE(map != MAP_FAILED);
  const float in[2] = {1.5f, -2.0f};
  std::memcpy(map, in, sizeof(in));

  HttpResponse reg = a.Call("POST", "/v2/systemsharedmemory/region/r1/register",
                            R"({"key":")" + key + R"(","offset":0,"byte_size":64})");
  CHECK(reg.status == 200);
  CHECK(a.Call("POST", "/v2/systemsharedmemory/region/r1/register",
               R"({"key":")" + key + R"(","byte_size":64})")
            .status == 400);  // the name is taken
  CHECK(a.Call("POST", "/v2/systemsharedmemory/region/r2/register", R"({"key":"/x"})").status ==
        400);  // no byte_size
  HttpResponse status = a.Call("GET", "/v2/systemsharedmemory/status");
  CHECK(status.body == R"([{"name":"r1","key":")" + key + R"(","offset":0,"byte_size":64}])");
  CHECK(a.Call("GET", "/v2/systemsharedmemory/region/r1/status").status == 200);
  CHECK(a.Call("GET", "/v2/systemsharedmemory/region/nope/status").status == 404);

  // The input read from the region, the output written to it at offset 32.
  HttpResponse r = a.Call("POST", "/v2/models/identity/infer",
                          R"({"inputs":[{"name":"INPUT0","datatype":"FP32","shape":[1,2],)"
                          R"("parameters":{"shared_memory_region":"r1","shared_memory_byte_size":8}}],)"
                          R"("outputs":[{"name":"OUTPUT0","parameters":{"shared_memory_region":"r1",)"
                          R"("shared_memory_offset":32,"shared_memory_byte_size":32}}]})");
  REQUIRE(r.status == 200);
  CHECK(r.body ==
        R"({"model_name":"identity","model_version":"1","outputs":[{"name":"OUTPUT0","datatype":)"
        R"("FP32","shape":[1,2],"parameters":{"shared_memory_region":"r1","shared_memory_byte_size":8}}]})");
  CHECK(r.tail.empty());
  float out[2];
  std::memcpy(out, static_cast<char*>(map) + 32, sizeof(out));
  CHECK(out[0] == 1.5f);
  CHECK(out[1] == -2.0f);
  // Exactly one source per input; no binary output in shared memory.
  HttpResponse both = a.Call(
      "POST", "/v2/models/identity/infer",
      R"({"inputs":[{"name":"INPUT0","datatype":"FP32","shape":[1,1],"data":[1],)"
      R"("parameters":{"shared_memory_region":"r1","shared_memory_byte_size":4}}]})");
  CHECK(both.status == 400);
  CHECK_THAT(both.body, Catch::Contains("exactly one of"));
  HttpResponse unknown = a.Call(
      "POST", "/v2/models/identity/infer",
      R"({"inputs":[{"name":"INPUT0","datatype":"FP32","shape":[1,1],)"
      R"("parameters":{"shared_memory_region":"nope","shared_memory_byte_size":4}}]})");
  CHECK(unknown.status == 400);
  CHECK_THAT(unknown.body, Catch::Contains("nope"));

  CHECK(a.Call("POST", "/v2/systemsharedmemory/region/r1/unregister").status == 200);
  CHECK(a.Call("GET", "/v2/systemsharedmemory/status").body == "[]");
  CHECK(a.Call("POST", "/v2/systemsharedmemory/unregister").status == 200);
  // CUDA: refused, as Triton without GPUs.
  CHECK(a.Call("GET", "/v2/cudasharedmemory/status").body == "[]");
  HttpResponse cuda = a.Call("POST", "/v2/cudasharedmemory/region/c/register",
                             R"({"raw_handle":{"b64":""},"device_id":0,"byte_size":4})");
  CHECK(cuda.status == 400);
  CHECK_THAT(cuda.body, Catch::Contains("GPUs not supported"));
  CHECK(a.Call("POST", "/v2/cudasharedmemory/unregister").status == 200);
  CHECK(a.Call("GET", "/v2/cudasharedmemory/region/c/status").status == 404);
  CHECK(a.Call("POST", "/v2/systemsharedmemory/status").status == 405);
  CHECK(a.api->InFlight() == 0);
  munmap(map, 64);
  close(fd);
  shm_unlink(key.c_str());
}

TEST_CASE("infer: compressed requests and responses", "[http][api]") {
  Api a;
  auto gz = Compress(ContentCoding::kGzip, {kInfer});
  REQUIRE(gz.ok());
  HttpResponse r = a.Call("POST", "/v2/models/identity/infer", *gz,
                          {{"content-encoding", "gzip"}, {"accept-encoding", "deflate"}});
  REQUIRE(r.status == 200);
  CHECK(*Header(r, "Content-Encoding") == "deflate");
  auto plain = Decompress(ContentCoding::kDeflate, r.body, 1 << 20);
  REQUIRE(plain.ok());
  CHECK_THAT(*plain, Catch::Contains(R"("data":[1.5,2])"));

  HttpResponse br = a.Call("POST", "/v2/models/identity/infer", kInfer, {{"content-encoding", "br"}});
  CHECK(br.status == 415);
  CHECK(*Header(br, "Accept-Encoding") == "gzip, deflate");
  HttpResponse corrupt = a.Call("POST", "/v2/models/identity/infer", "xx", {{"content-encoding", "gzip"}});
  CHECK(corrupt.status == 400);
  CHECK_THAT(corrupt.body, Catch::Contains("not valid gzip data"));
  CHECK(a.api->InFlight() == 0);
}

TEST_CASE("infer: errors from the request path keep their status", "[http][api]") {
  Api a;
  struct Case {
    const char* model;
    int status;
    const char* body;
  };
  for (const Case& c : std::vector<Case>{
           {"missing", 404, R"({"error":"unknown model 'missing'"})"},
           {"full", 503, R"({"error":"queue is full"})"},
           {"fail", 500, R"({"error":"runner failed: boom"})"},
           {"nothing", 500, R"({"error":"the model finished the request without a response"})"},
       }) {
    INFO(c.model);
    HttpResponse r = a.Call("POST", std::string("/v2/models/") + c.model + "/infer", kInfer);
    CHECK(r.status == c.status);
    CHECK(r.body == c.body);
  }
  HttpResponse slow = a.Call("POST", "/v2/models/slow/infer", kInfer);
  CHECK(slow.status == 200);
  HttpResponse malformed = a.Call("POST", "/v2/models/identity/infer", R"({"inputs":[{"name":"A"}]})");
  CHECK(malformed.status == 400);
  CHECK(malformed.body == R"({"error":"input 'A' has no 'datatype'"})");
  // "slow" answers from the model's thread, which counts its call done just
  // after handing the answer over: wait (bounded) for that, not for luck.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (a.api->InFlight() != 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  CHECK(a.api->InFlight() == 0);
}

}  // namespace
}  // namespace http
}  // namespace torii
