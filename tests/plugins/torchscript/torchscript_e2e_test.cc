// The TorchScript runner behind the real torii-server, over gRPC: a
// Triton-layout repository (platform "pytorch_libtorch" / backend "pytorch",
// INPUT__0 naming) built at test time, plus the example MLP, compared with
// torch::jit::load of the same files.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "runner_test_util.h"
#include "tests/util/server_process.h"

namespace torii_test {
namespace {

using torii::testing::ServerProcess;

std::string Raw(const void* data, size_t bytes) {
  return std::string(static_cast<const char*>(data), bytes);
}

template <typename T>
std::vector<T> Values(const std::string& raw) {
  std::vector<T> v(raw.size() / sizeof(T));
  if (!v.empty()) std::memcpy(v.data(), raw.data(), raw.size());
  return v;
}

void AddInput(inference::ModelInferRequest& r, const std::string& name,
              const std::string& datatype, std::vector<int64_t> shape, std::string raw) {
  auto* in = r.add_inputs();
  in->set_name(name);
  in->set_datatype(datatype);
  for (int64_t d : shape) in->add_shape(d);
  r.add_raw_input_contents(std::move(raw));
}

// A Triton repository in a temp dir: the example MLP, a conv net with batch
// norm, and a two-input INT64 model with tuple outputs.
class Repository {
 public:
  Repository() {
    const std::string root = dir_.path();
    std::filesystem::copy(TORII_EXAMPLE_MLP_DIR, root + "/mlp",
                          std::filesystem::copy_options::recursive);

    std::filesystem::create_directories(root + "/convbn/1");
    SaveConvBn(root + "/convbn/1/model.pt", 7);
    std::ofstream(root + "/convbn/config.pbtxt") << R"(
name: "convbn"
platform: "pytorch_libtorch"
max_batch_size: 4
input [ { name: "INPUT__0" data_type: TYPE_FP32 dims: [ 2, 5, 5 ] } ]
output [ { name: "OUTPUT__0" data_type: TYPE_FP32 dims: [ 3 ] } ]
model_warmup [
  {
    name: "two_zero_images"
    batch_size: 2
    inputs { key: "INPUT__0" value: { data_type: TYPE_FP32 dims: [ 2, 5, 5 ] zero_data: true } }
  }
]
)";

    std::filesystem::create_directories(root + "/pair/1");
    SaveScript(root + "/pair/1/model.pt", R"(
def forward(self, x, idx):
    s = torch.sum(idx, 1, keepdim=True).float()
    return (x * 2.0 + s, idx * 3 + 1)
)");
    std::ofstream(root + "/pair/config.pbtxt") << R"(
name: "pair"
backend: "pytorch"
max_batch_size: 8
input [
  { name: "INPUT__0" data_type: TYPE_FP32 dims: [ 4 ] },
  { name: "INPUT__1" data_type: TYPE_INT64 dims: [ 2 ] }
]
output [
  { name: "OUTPUT__0" data_type: TYPE_FP32 dims: [ 4 ] },
  { name: "OUTPUT__1" data_type: TYPE_INT64 dims: [ 2 ] }
]
dynamic_batching { max_queue_delay_microseconds: 2000 }
instance_group [ { count: 2 kind: KIND_CPU } ]
parameters { key: "INTRA_OP_THREAD_COUNT" value: { string_value: "1" } }
)";

    // The MLP again, with a variable inner dimension, so a request passes
    // the server's checks and torch refuses it.
    std::filesystem::create_directories(root + "/mlp_var/1");
    std::filesystem::copy(root + "/mlp/1/model.pt", root + "/mlp_var/1/model.pt");
    std::ofstream(root + "/mlp_var/config.pbtxt") << R"(
name: "mlp_var"
platform: "pytorch_libtorch"
max_batch_size: 8
input [ { name: "INPUT__0" data_type: TYPE_FP32 dims: [ -1 ] } ]
output [ { name: "OUTPUT__0" data_type: TYPE_FP32 dims: [ 10 ] } ]
)";
  }
  const std::string& path() const { return dir_.path(); }

 private:
  TempDir dir_;
};

// One server for every section (Catch re-enters the test case per section;
// starting a server with four TorchScript models each time would cost
// seconds). Stopped and removed at exit.
struct Served {
  Repository repo;
  std::unique_ptr<ServerProcess> server;
};
Served& Shared() {
  static const std::unique_ptr<Served> served = [] {
    auto s = std::make_unique<Served>();
    ServerProcess::Options options;
    options.repository = s->repo.path();
    s->server = ServerProcess::Start(options);
    return s;
  }();
  return *served;
}

TEST_CASE("a Triton-layout TorchScript repository is served over gRPC") {
  const Repository& repo = Shared().repo;
  ServerProcess* server = Shared().server.get();
  auto stub = server->Stub();

  SECTION("the example MLP matches torch.jit.load of the same file") {
    const auto x = TestValues(3 * 64, 21);
    inference::ModelInferRequest req;
    req.set_model_name("mlp");
    AddInput(req, "INPUT__0", "FP32", {3, 64}, Raw(x.data(), x.size() * 4));
    inference::ModelInferResponse resp;
    grpc::ClientContext ctx;
    const grpc::Status status = stub->ModelInfer(&ctx, req, &resp);
    REQUIRE(status.ok());
    REQUIRE(resp.outputs_size() == 1);
    CHECK(resp.outputs(0).name() == "OUTPUT__0");
    CHECK(resp.outputs(0).datatype() == "FP32");
    CHECK(std::vector<int64_t>(resp.outputs(0).shape().begin(), resp.outputs(0).shape().end()) ==
          std::vector<int64_t>{3, 10});
    RequireClose(Values<float>(resp.raw_output_contents(0)),
                 RunTorchScript(std::string(TORII_EXAMPLE_MLP_DIR) + "/1/model.pt", x, {3, 64}),
                 1e-5);
  }

  SECTION("concurrent clients through the dynamic batcher each get their own rows") {
    std::atomic<int> wrong{0};
    std::vector<std::thread> clients;
    for (int c = 0; c < 8; ++c) {
      clients.emplace_back([&, c] {
        auto own = server->Stub();
        for (int i = 0; i < 10; ++i) {
          const int64_t rows = 1 + (c + i) % 3;
          const auto x = TestValues(size_t(rows * 4), uint32_t(c * 100 + i));
          const std::vector<int64_t> idx(size_t(rows * 2), c + i);
          inference::ModelInferRequest req;
          req.set_model_name("pair");
          AddInput(req, "INPUT__0", "FP32", {rows, 4}, Raw(x.data(), x.size() * 4));
          AddInput(req, "INPUT__1", "INT64", {rows, 2}, Raw(idx.data(), idx.size() * 8));
          inference::ModelInferResponse resp;
          grpc::ClientContext ctx;
          if (!own->ModelInfer(&ctx, req, &resp).ok() || resp.outputs_size() != 2) {
            ++wrong;
            continue;
          }
          for (int o = 0; o < 2; ++o) {
            const std::string& raw = resp.raw_output_contents(o);
            if (resp.outputs(o).name() == "OUTPUT__0") {
              const auto got = Values<float>(raw);
              for (size_t k = 0; k < x.size(); ++k) {
                if (got.size() != x.size() || got[k] != x[k] * 2 + 2 * float(c + i)) ++wrong;
              }
            } else {
              const auto got = Values<int64_t>(raw);
              const int64_t want = (c + i) * 3 + 1;
              if (got.size() != idx.size() ||
                  std::any_of(got.begin(), got.end(), [&](int64_t v) { return v != want; })) {
                ++wrong;
              }
            }
          }
        }
      });
    }
    for (auto& t : clients) t.join();
    CHECK(wrong.load() == 0);
  }

  SECTION("a conv net with batch norm matches torch.jit.load") {
    const auto x = TestValues(2 * 2 * 5 * 5, 5);
    inference::ModelInferRequest req;
    req.set_model_name("convbn");
    AddInput(req, "INPUT__0", "FP32", {2, 2, 5, 5}, Raw(x.data(), x.size() * 4));
    inference::ModelInferResponse resp;
    grpc::ClientContext ctx;
    REQUIRE(stub->ModelInfer(&ctx, req, &resp).ok());
    RequireClose(Values<float>(resp.raw_output_contents(0)),
                 RunTorchScript(repo.path() + "/convbn/1/model.pt", x, {2, 2, 5, 5}), 1e-4);
  }

  SECTION("wrong inner dimensions and batches above max_batch_size are INVALID_ARGUMENT") {
    for (const auto& shape : {std::vector<int64_t>{1, 63}, std::vector<int64_t>{129, 64}}) {
      const std::vector<float> x(size_t(shape[0] * shape[1]), 0.5f);
      inference::ModelInferRequest req;
      req.set_model_name("mlp");
      AddInput(req, "INPUT__0", "FP32", shape, Raw(x.data(), x.size() * 4));
      inference::ModelInferResponse resp;
      grpc::ClientContext ctx;
      const grpc::Status status = stub->ModelInfer(&ctx, req, &resp);
      INFO("shape [" << shape[0] << "," << shape[1] << "]: " << status.error_message());
      CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    }
  }

  SECTION("torch's own refusal comes back as INVALID_ARGUMENT with its message") {
    const std::vector<float> x(3, 0.5f);
    inference::ModelInferRequest req;
    req.set_model_name("mlp_var");
    AddInput(req, "INPUT__0", "FP32", {1, 3}, Raw(x.data(), x.size() * 4));
    inference::ModelInferResponse resp;
    grpc::ClientContext ctx;
    const grpc::Status status = stub->ModelInfer(&ctx, req, &resp);
    CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK_THAT(status.error_message(),
               Catch::Contains("mat1 and mat2 shapes cannot be multiplied (1x3 and 64x256)"));
  }

  SECTION("config.pbtxt's model_warmup reaches the runner through the server") {
    CHECK_THAT(server->Log(), Catch::Contains("warm-up sample 'two_zero_images' in"));
  }

  SECTION("metadata reports the Triton platform") {
    inference::ModelMetadataRequest req;
    req.set_name("mlp");
    inference::ModelMetadataResponse resp;
    grpc::ClientContext ctx;
    REQUIRE(stub->ModelMetadata(&ctx, req, &resp).ok());
    CHECK(resp.platform() == "pytorch_libtorch");
    REQUIRE(resp.inputs_size() == 1);
    CHECK(std::vector<int64_t>(resp.inputs(0).shape().begin(), resp.inputs(0).shape().end()) ==
          std::vector<int64_t>{-1, 64});
  }
}

}  // namespace
}  // namespace torii_test
