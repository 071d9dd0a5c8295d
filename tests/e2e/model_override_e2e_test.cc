// Repository load overrides (Triton's model-repository extension), end to end
// with the real binary: RepositoryModelLoad with parameters { config: <JSON> }
// and file:<path> bytes, as tritonclient's load_model(config=, files=) sends
// them. The files go to a private directory under the server's $TMPDIR,
// never into the repository, and are removed on unload and at exit.
#include <signal.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/e2e/e2e_util.h"
#include "tests/util/e2e_client.h"
#include "tests/util/server_process.h"
#include "tests/util/temp_dir.h"

namespace torii {
namespace testing {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

constexpr char kIdentityIo[] =
    R"("input": [{"name": "INPUT0", "data_type": "TYPE_FP32", "dims": [-1]}],
       "output": [{"name": "OUTPUT0", "data_type": "TYPE_FP32", "dims": [-1]}])";

std::string IdentityConfig(int max_batch_size, const std::string& name = "") {
  std::string json = "{";
  if (!name.empty()) json += "\"name\": \"" + name + "\", ";
  return json + "\"backend\": \"identity\", \"max_batch_size\": \"" +
         std::to_string(max_batch_size) + "\", " + kIdentityIo + "}";
}

// A server whose $TMPDIR is a private directory the test can inspect.
struct Server {
  TempRepository repo;
  TempDir tmp{"torii-override-e2e-"};
  std::unique_ptr<ServerProcess> process;
  std::unique_ptr<inference::GRPCInferenceService::Stub> stub;

  explicit Server(std::vector<std::string> args = {}) {
    ServerProcess::Options o;
    o.repository = repo.path();
    o.extra_args = {"--model-control-mode=explicit", "--load-model=identity"};
    o.extra_args.insert(o.extra_args.end(), args.begin(), args.end());
    o.log_file = tmp.path() + "/server.log";
    const char* before = std::getenv("TMPDIR");
    const std::string saved = before != nullptr ? before : "";
    setenv("TMPDIR", tmp.path().c_str(), 1);  // inherited by the server
    process = ServerProcess::Start(o);
    if (saved.empty()) {
      unsetenv("TMPDIR");
    } else {
      setenv("TMPDIR", saved.c_str(), 1);
    }
    stub = process->Stub();
  }

  // The per-server override directories under the server's $TMPDIR.
  std::vector<fs::path> Areas() const {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(tmp.path())) {
      if (e.path().filename().string().rfind("torii-overrides-", 0) == 0) out.push_back(e.path());
    }
    return out;
  }
  // The model directories written for `model`.
  std::vector<fs::path> ModelDirs(const std::string& model) const {
    std::vector<fs::path> out;
    for (const auto& area : Areas()) {
      for (const auto& e : fs::directory_iterator(area)) {
        if (e.path().filename().string().rfind(model + "-", 0) == 0) out.push_back(e.path());
      }
    }
    return out;
  }
};

inference::ModelRepositoryParameter String(const std::string& s) {
  inference::ModelRepositoryParameter p;
  p.set_string_param(s);
  return p;
}
inference::ModelRepositoryParameter Bytes(const std::string& s) {
  inference::ModelRepositoryParameter p;
  p.set_bytes_param(s);
  return p;
}

int MaxBatchSize(inference::GRPCInferenceService::Stub& stub, const std::string& model) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, milliseconds(5000));
  inference::ModelConfigRequest q;
  q.set_name(model);
  inference::ModelConfigResponse r;
  if (!stub.ModelConfig(&ctx, q, &r).ok()) return -1;
  return r.config().max_batch_size();
}

grpc::Status InferRows(inference::GRPCInferenceService::Stub& stub, const std::string& model,
                       int rows, inference::ModelInferResponse* resp) {
  inference::ModelInferRequest q;
  q.set_model_name(model);
  auto* in = q.add_inputs();
  in->set_name("INPUT0");
  in->set_datatype("FP32");
  in->add_shape(rows);
  in->add_shape(2);
  std::vector<float> v(static_cast<size_t>(rows) * 2);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
  q.add_raw_input_contents(Fp32Raw(v));
  grpc::ClientContext ctx;
  SetDeadline(ctx, milliseconds(10000));
  return stub.ModelInfer(&ctx, q, resp);
}

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST_CASE("load override: a JSON config replaces config.pbtxt until the next plain load") {
  Server server;
  auto& stub = *server.stub;
  REQUIRE(MaxBatchSize(stub, "identity") == 64);
  // What tritonclient's load_model(name, config=json) sends.
  REQUIRE(LoadModel(stub, "identity", {{"config", String(IdentityConfig(8))}}).ok());
  CHECK(MaxBatchSize(stub, "identity") == 8);
  inference::ModelInferResponse r;
  CHECK(InferRows(stub, "identity", 8, &r).ok());
  CHECK(InferRows(stub, "identity", 9, &r).error_code() == grpc::INVALID_ARGUMENT);
  // No files: nothing is written anywhere.
  CHECK(server.Areas().empty());

  struct Bad {
    std::string what, json;
    grpc::StatusCode code;
    std::string fragment;
  };
  const std::vector<Bad> bad = {
      {"not JSON", R"("parameters": {"config": {{"max_batch_size": "16"}}})",
       grpc::INVALID_ARGUMENT, "not a model config in JSON"},
      {"an unknown field", R"({"max_batch": 4})", grpc::INVALID_ARGUMENT, "max_batch"},
      {"another model's name", IdentityConfig(4, "other"), grpc::INVALID_ARGUMENT, "'name'"},
      {"no inputs for a runner that cannot complete them", R"({"backend": "identity"})",
       grpc::INVALID_ARGUMENT, "no 'input'"},
      {"a field Torii refuses", R"({"backend": "identity", "sequence_batching": {}, )" +
                                    std::string(kIdentityIo) + "}",
       grpc::INVALID_ARGUMENT, "sequence_batching"},
  };
  for (const Bad& b : bad) {
    INFO(b.what);
    const grpc::Status s = LoadModel(stub, "identity", {{"config", String(b.json)}});
    CHECK(s.error_code() == b.code);
    // Triton's clients and scripts look for this.
    CHECK_THAT(s.error_message(), Catch::StartsWith("failed to load 'identity'"));
    CHECK_THAT(s.error_message(), Catch::Contains(b.fragment));
    CHECK(MaxBatchSize(stub, "identity") == 8);  // the last good load keeps serving
  }
  // The plain load goes back to the repository's config.pbtxt.
  REQUIRE(LoadModel(stub, "identity").ok());
  CHECK(MaxBatchSize(stub, "identity") == 64);
  // A config alone needs the model's folder in the repository.
  const grpc::Status missing = LoadModel(stub, "nowhere", {{"config", String(IdentityConfig(4))}});
  CHECK(missing.error_code() == grpc::NOT_FOUND);
  CHECK_THAT(missing.error_message(), Catch::StartsWith("failed to load 'nowhere'"));
}

TEST_CASE("load override: a model loaded from the files a request carries, removed on unload "
          "and at exit") {
  Server server;
  auto& stub = *server.stub;
  const std::string weights(100000, 'w');
  REQUIRE(LoadModel(stub, "remote",
                    {{"config", String(IdentityConfig(4))}, {"file:1/weights.bin", Bytes(weights)},
                     {"file:1/sub/dir/notes.txt", Bytes("hello")}})
              .ok());
  inference::ModelInferResponse r;
  REQUIRE(InferRows(stub, "remote", 2, &r).ok());
  CHECK(Fp32Values(r.raw_output_contents(0)) == std::vector<float>{0, 1, 2, 3});
  CHECK_FALSE(fs::exists(server.repo.path() + "/remote"));  // never in the repository
  REQUIRE(server.Areas().size() == 1);
  const fs::path area = server.Areas()[0];
  CHECK((fs::status(area).permissions() & fs::perms::all) == fs::perms::owner_all);
  auto dirs = server.ModelDirs("remote");
  REQUIRE(dirs.size() == 1);
  CHECK(ReadAll(dirs[0] / "1/weights.bin") == weights);
  CHECK(ReadAll(dirs[0] / "1/sub/dir/notes.txt") == "hello");
  CHECK(fs::exists(dirs[0] / "config.pbtxt"));
  {
    grpc::ClientContext ctx;
    inference::RepositoryIndexRequest q;
    q.set_ready(true);
    inference::RepositoryIndexResponse index;
    REQUIRE(stub.RepositoryIndex(&ctx, q, &index).ok());
    bool listed = false;
    for (const auto& m : index.models()) listed = listed || (m.name() == "remote" && m.state() == "READY");
    CHECK(listed);
  }

  // A reload with other files gets a new directory; the old one goes once
  // the old version is unloaded.
  REQUIRE(LoadModel(stub, "remote",
                    {{"config", String(IdentityConfig(2))}, {"file:2/weights.bin", Bytes("v2")}})
              .ok());
  CHECK(MaxBatchSize(stub, "remote") == 2);
  dirs = server.ModelDirs("remote");
  REQUIRE(dirs.size() == 1);
  CHECK(ReadAll(dirs[0] / "2/weights.bin") == "v2");
  CHECK_FALSE(fs::exists(dirs[0] / "1"));

  // A failed reload leaves the serving directory alone and writes nothing
  // that stays.
  CHECK_FALSE(LoadModel(stub, "remote", {{"config", String(R"({"backend": "identity"})")},
                                         {"file:3/w", Bytes("x")}})
                  .ok());
  CHECK(server.ModelDirs("remote") == dirs);
  REQUIRE(InferRows(stub, "remote", 2, &r).ok());

  REQUIRE(UnloadModel(stub, "remote").ok());
  CHECK(server.ModelDirs("remote").empty());
  CHECK(server.Areas().empty());  // the last override went, and its area with it

  REQUIRE(LoadModel(stub, "remote",
                    {{"config", String(IdentityConfig(4))}, {"file:1/weights.bin", Bytes("v3")}})
              .ok());
  REQUIRE(server.ModelDirs("remote").size() == 1);
  REQUIRE(server.process->Signal(SIGTERM, std::chrono::seconds(30)) == 0);
  CHECK(server.Areas().empty());
}

TEST_CASE("load override: file paths that would leave the private directory are refused") {
  Server server;
  auto& stub = *server.stub;
  const auto config = String(IdentityConfig(4));
  for (const char* path : {"../escape", "/etc/escape", "1/../../escape", "1/../..", "", "1//x",
                           "1/./x", ".", "1/x/", "config.pbtxt", "1\\x"}) {
    INFO(path);
    const grpc::Status s =
        LoadModel(stub, "remote", {{"config", config}, {std::string("file:") + path, Bytes("x")}});
    CHECK(s.error_code() == grpc::INVALID_ARGUMENT);
    CHECK_THAT(s.error_message(), Catch::StartsWith("failed to load 'remote'"));
    CHECK_THAT(s.error_message(), Catch::Contains("file:"));
  }
  CHECK(server.Areas().empty());  // nothing was written
  CHECK_FALSE(fs::exists(server.tmp.path() + "/escape"));
  CHECK_FALSE(fs::exists(server.repo.path() + "/escape"));

  // One path both a file and a folder.
  const grpc::Status clash = LoadModel(
      stub, "remote", {{"config", config}, {"file:1/a", Bytes("x")}, {"file:1/a/b", Bytes("y")}});
  CHECK(clash.error_code() == grpc::INVALID_ARGUMENT);
  CHECK(server.ModelDirs("remote").empty());

  // A name longer than the filesystem allows: a filesystem error, INTERNAL
  // with Triton's words (its model-control example checks both).
  const grpc::Status long_name =
      LoadModel(stub, "remote",
                {{"config", String("{}")}, {"file:" + std::string(256, 'A'), Bytes("a")}});
  CHECK(long_name.error_code() == grpc::INTERNAL);
  CHECK_THAT(long_name.error_message(), Catch::Contains("failed to poll from model repository"));
  CHECK(server.ModelDirs("remote").empty());

  struct Bad {
    std::string what;
    std::map<std::string, inference::ModelRepositoryParameter> params;
    std::string fragment;
  };
  const std::vector<Bad> bad = {
      {"files without a config", {{"file:1/w", Bytes("x")}}, "'config'"},
      {"a config sent as bytes", {{"config", Bytes(IdentityConfig(4))}}, "string"},
      {"a file sent as a string", {{"config", config}, {"file:1/w", String("x")}}, "bytes"},
      {"an unknown parameter", {{"colour", String("red")}}, "'colour'"},
  };
  for (const Bad& b : bad) {
    INFO(b.what);
    const grpc::Status s = LoadModel(stub, "remote", b.params);
    CHECK(s.error_code() == grpc::INVALID_ARGUMENT);
    CHECK_THAT(s.error_message(), Catch::Contains(b.fragment));
  }
  // What Triton's clients send with every unload.
  inference::ModelRepositoryParameter yes;
  yes.set_bool_param(true);
  CHECK(UnloadModel(stub, "identity", {{"unload_dependents", yes}}).ok());
  CHECK(UnloadModel(stub, "identity", {{"unload_dependents", String("yes")}}).error_code() ==
        grpc::INVALID_ARGUMENT);
  const grpc::Status unknown = LoadModel(stub, "wrong_model_name");
  CHECK(unknown.error_code() == grpc::NOT_FOUND);
  CHECK_THAT(unknown.error_message(), Catch::StartsWith("failed to load 'wrong_model_name'"));
}

TEST_CASE("load override: the request size bounds what a load may carry") {
  Server server({"--max-request-bytes=1048576"});
  auto& stub = *server.stub;
  const auto config = String(IdentityConfig(4));
  const grpc::Status big =
      LoadModel(stub, "remote",
                {{"config", config}, {"file:1/w", Bytes(std::string(2 << 20, 'x'))}});
  CHECK(big.error_code() == grpc::RESOURCE_EXHAUSTED);
  CHECK(server.Areas().empty());
  REQUIRE(LoadModel(stub, "remote",
                    {{"config", config}, {"file:1/w", Bytes(std::string(512 << 10, 'x'))}})
              .ok());
  inference::ModelInferResponse r;
  CHECK(InferRows(stub, "remote", 1, &r).ok());
}

}  // namespace
}  // namespace testing
}  // namespace torii
