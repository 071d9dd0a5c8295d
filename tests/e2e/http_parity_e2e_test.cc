// End-to-end: one torii-server, asked the same things over gRPC (generated
// C++ stubs) and HTTP (curl, a client we did not write). Both frontends sit on
// the same request path, so they must give the same answers, the same errors
// (gRPC's code mapped to Triton's HTTP status, the same message) and count
// into the same statistics.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "tests/e2e/e2e_util.h"
#include "tests/util/e2e_client.h"
#include "tests/util/server_process.h"

namespace torii {
namespace testing {
namespace {

using std::chrono::milliseconds;

struct CurlResult {
  int status = -1;   // HTTP status, -1 when curl failed
  std::string body;
};

// curl -s ... URL: the body and the HTTP status (written last by -w).
CurlResult Curl(const std::vector<std::string>& args) {
  std::string cmd = "curl -s --max-time 20 -w '\\n%{http_code}'";
  for (const std::string& a : args) {
    std::string quoted = "'";
    for (char c : a) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    cmd += " " + quoted + "'";
  }
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  const int rc = pclose(p);
  CurlResult r;
  const size_t nl = out.rfind('\n');
  if (WIFEXITED(rc) && WEXITSTATUS(rc) == 0 && nl != std::string::npos) {
    r.status = std::stoi(out.substr(nl + 1));
    r.body = out.substr(0, nl);
  } else {
    r.body = out;
  }
  return r;
}

int HttpStatusFor(grpc::StatusCode code) {
  switch (code) {
    case grpc::OK: return 200;
    case grpc::NOT_FOUND: return 404;
    case grpc::INTERNAL: return 500;
    case grpc::UNAVAILABLE:
    case grpc::RESOURCE_EXHAUSTED:
    case grpc::DEADLINE_EXCEEDED: return 503;
    case grpc::UNIMPLEMENTED: return 501;
    case grpc::PERMISSION_DENIED: return 403;
    default: return 400;
  }
}

// {"error":"<message>"} as the server writes it (JSON string escapes).
std::string ErrorBody(const std::string& message) {
  std::string out = R"({"error":")";
  for (char c : message) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"}";
}

TEST_CASE("HTTP and gRPC refuse the same bad requests with the same words") {
  TempRepository repo;
  auto server = StartServer(repo);
  auto stub = server->Stub();
  const std::string url = "http://" + server->http_address();

  // One bad request per row, in both wire forms.
  struct Case {
    const char* what;
    std::function<void(inference::ModelInferRequest&)> grpc_form;
    std::string model_path;  // after /v2/models/
    std::string json;
  };
  const std::string dims = R"("shape":[1,2],"data":[1,2])";
  const std::vector<Case> cases = {
      {"unknown model", [](auto& r) { r.set_model_name("nope"); }, "nope",
       R"({"inputs":[{"name":"INPUT0","datatype":"FP32",)" + dims + "}]}"},
      {"unknown version", [](auto& r) { r.set_model_version("9"); }, "identity/versions/9",
       R"({"inputs":[{"name":"INPUT0","datatype":"FP32",)" + dims + "}]}"},
      {"wrong datatype",
       [](auto& r) {
         r.mutable_inputs(0)->set_datatype("INT32");
       },
       "identity", R"({"inputs":[{"name":"INPUT0","datatype":"INT32",)" + dims + "}]}"},
      {"unknown input", [](auto& r) { r.mutable_inputs(0)->set_name("X"); }, "identity",
       R"({"inputs":[{"name":"X","datatype":"FP32",)" + dims + "}]}"},
      {"batch too big",
       [](auto& r) {
         r.mutable_inputs(0)->set_shape(0, 65);
         r.set_raw_input_contents(0, std::string(65 * 2 * 4, '\0'));
       },
       "identity",
       R"({"inputs":[{"name":"INPUT0","datatype":"FP32","shape":[65,2],"data":[)" +
           [] {
             std::string d = "0";
             for (int i = 1; i < 130; ++i) d += ",0";
             return d;
           }() +
           "]}]}"},
      {"unknown output", [](auto& r) { r.add_outputs()->set_name("Z"); }, "identity",
       R"({"inputs":[{"name":"INPUT0","datatype":"FP32",)" + dims + R"(}],"outputs":[{"name":"Z"}]})"},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    auto req = IdentityRequest({1, 2});
    c.grpc_form(req);
    inference::ModelInferResponse resp;
    const grpc::Status g = Infer(*stub, req, &resp, milliseconds(10000));
    REQUIRE_FALSE(g.ok());
    const CurlResult h = Curl({"-X", "POST", "-H", "Content-Type: application/json", "--data-binary",
                               c.json, url + "/v2/models/" + c.model_path + "/infer"});
    CHECK(h.status == HttpStatusFor(g.error_code()));
    CHECK(h.body == ErrorBody(g.error_message()));
  }
}

TEST_CASE("HTTP and gRPC describe models alike and count into the same statistics") {
  TempRepository repo;
  auto server = StartServer(repo);
  auto stub = server->Stub();
  const std::string url = "http://" + server->http_address();

  // Readiness: the same answer from both frontends (one ServerReadiness).
  {
    grpc::ClientContext ctx;
    inference::ServerReadyResponse r;
    REQUIRE(stub->ServerReady(&ctx, {}, &r).ok());
    CHECK(r.ready());
    CHECK(Curl({url + "/v2/health/ready"}).status == 200);
  }
  // Metadata: the same tensors.
  {
    grpc::ClientContext ctx;
    inference::ModelMetadataRequest q;
    q.set_name("add_sub");
    inference::ModelMetadataResponse m;
    REQUIRE(stub->ModelMetadata(&ctx, q, &m).ok());
    const CurlResult h = Curl({url + "/v2/models/add_sub"});
    REQUIRE(h.status == 200);
    std::string inputs;
    for (const auto& t : m.inputs()) {
      std::string shape;
      for (int64_t d : t.shape()) shape += (shape.empty() ? "" : ",") + std::to_string(d);
      inputs += R"({"name":")" + t.name() + R"(","datatype":")" + t.datatype() + R"(","shape":[)" +
                shape + "]}";
      if (&t != &m.inputs(m.inputs_size() - 1)) inputs += ",";
    }
    CHECK(h.body.find(R"("inputs":[)" + inputs + "]") != std::string::npos);
    CHECK(h.body.find(R"("versions":[")" + m.versions(0) + R"("])") != std::string::npos);
  }
  // Config: the config as served, in both.
  {
    grpc::ClientContext ctx;
    inference::ModelConfigRequest q;
    q.set_name("identity");
    inference::ModelConfigResponse c;
    REQUIRE(stub->ModelConfig(&ctx, q, &c).ok());
    const CurlResult h = Curl({url + "/v2/models/identity/config"});
    REQUIRE(h.status == 200);
    CHECK(h.body.find(R"("max_batch_size":)" + std::to_string(c.config().max_batch_size())) !=
          std::string::npos);
    CHECK(h.body.find(R"("name":")" + c.config().name() + "\"") != std::string::npos);
  }
  // One inference over each frontend: both counted in identity's statistics,
  // read over both frontends.
  inference::ModelInferResponse r;
  REQUIRE(Infer(*stub, IdentityRequest({1, 2, 3}), &r, milliseconds(10000)).ok());
  const CurlResult inferred =
      Curl({"-X", "POST", "--data-binary",
            R"({"inputs":[{"name":"INPUT0","datatype":"FP32","shape":[2,3],"data":[1,2,3,4,5,6]}]})",
            url + "/v2/models/identity/infer"});
  REQUIRE(inferred.status == 200);
  CHECK(inferred.body.find(R"("data":[1,2,3,4,5,6])") != std::string::npos);
  {
    grpc::ClientContext ctx;
    inference::ModelStatisticsRequest q;
    q.set_name("identity");
    inference::ModelStatisticsResponse s;
    REQUIRE(stub->ModelStatistics(&ctx, q, &s).ok());
    REQUIRE(s.model_stats_size() == 1);
    CHECK(s.model_stats(0).inference_count() == 3);  // 1 row + 2 rows
    CHECK(s.model_stats(0).inference_stats().success().count() == 2);
    const CurlResult h = Curl({url + "/v2/models/identity/stats"});
    REQUIRE(h.status == 200);
    CHECK(h.body.find(R"("inference_count":3,)") != std::string::npos);
    CHECK(h.body.find(R"("success":{"count":2,)") != std::string::npos);
  }
  // The HTTP requests show in the HTTP metrics.
  const CurlResult metrics =
      Curl({"http://127.0.0.1:" + std::to_string(server->metrics_port()) + "/metrics"});
  REQUIRE(metrics.status == 200);
  CHECK(metrics.body.find(R"(torii_http_requests_total{endpoint="infer",code="200"} 1)") !=
        std::string::npos);
}

TEST_CASE("a shared-memory region registered over HTTP serves gRPC requests") {
  TempRepository repo;
  auto server = StartServer(repo);
  auto stub = server->Stub();
  const std::string url = "http://" + server->http_address();

  const std::string key = "/torii_http_parity_" + std::to_string(getpid());
  const int fd = shm_open(key.c_str(), O_CREAT | O_RDWR, 0600);
  REQUIRE(fd >= 0);
  REQUIRE(ftruncate(fd, 64) == 0);
  void* map = mmap(nullptr, 64, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  REQUIRE(map != MAP_FAILED);
  const float in[2] = {4.0f, 5.0f};
  std::memcpy(map, in, sizeof(in));

  const CurlResult reg =
      Curl({"-X", "POST", "--data-binary", R"({"key":")" + key + R"(","byte_size":64})",
            url + "/v2/systemsharedmemory/region/shared/register"});
  CHECK(reg.status == 200);
  // gRPC sees it: its status lists it, and an inference reads it in place.
  {
    grpc::ClientContext ctx;
    inference::SystemSharedMemoryStatusRequest q;
    inference::SystemSharedMemoryStatusResponse s;
    REQUIRE(stub->SystemSharedMemoryStatus(&ctx, q, &s).ok());
    REQUIRE(s.regions().count("shared") == 1);
    CHECK(s.regions().at("shared").key() == key);
  }
  auto infer = [&] {
    inference::ModelInferRequest req;
    req.set_model_name("identity");
    auto* input = req.add_inputs();
    input->set_name("INPUT0");
    input->set_datatype("FP32");
    input->add_shape(1);
    input->add_shape(2);
    (*input->mutable_parameters())["shared_memory_region"].set_string_param("shared");
    (*input->mutable_parameters())["shared_memory_byte_size"].set_int64_param(8);
    inference::ModelInferResponse resp;
    grpc::Status s = Infer(*stub, req, &resp, milliseconds(10000));
    return std::make_pair(s, resp);
  };
  auto [ok, resp] = infer();
  REQUIRE(ok.ok());
  CHECK(Fp32Values(resp.raw_output_contents(0)) == std::vector<float>{4, 5});
  // Unregistered over HTTP: gone for gRPC too.
  CHECK(Curl({"-X", "POST", url + "/v2/systemsharedmemory/region/shared/unregister"}).status == 200);
  auto [gone, ignored] = infer();
  CHECK_FALSE(gone.ok());
  CHECK(gone.error_message().find("shared") != std::string::npos);
  munmap(map, 64);
  close(fd);
  shm_unlink(key.c_str());
}

}  // namespace
}  // namespace testing
}  // namespace torii
