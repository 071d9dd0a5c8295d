// Failure paths (each names what is wrong and never crashes), settings and
// warm-up.
#include <fstream>
#include <string>
#include <vector>

#include "runner_test_util.h"

namespace torii_test {
namespace {

bool Contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// An MLP 8→16→4 in <dir>/<name>/1/model.pt.
struct MlpModel {
  ModelSpec spec;
  MlpWeights weights;
};
MlpModel Mlp(const TempDir& dir, const std::string& name, std::vector<int64_t> in_dims = {8},
             torii::TensorSpec out = {"OUTPUT__0", TORII_TYPE_FP32, {4}}) {
  MlpModel m{MakeSpec(dir, name, 8, {{"INPUT__0", TORII_TYPE_FP32, std::move(in_dims)}},
                      {std::move(out)}),
             {}};
  m.weights = SaveMlp(ModelFile(m.spec), 8, 16, 4, 3);
  return m;
}

TEST_CASE("torch errors for valid requests are INVALID_ARGUMENT with torch's message line") {
  TempDir dir;
  // A variable inner dimension lets a request through that the weights refuse.
  MlpModel m = Mlp(dir, "mlp_var", {-1});
  auto model = Host().Load(m.spec);
  // The default warm-up guesses 1 for the variable dimension; that fails and
  // is only logged.
  CHECK(LogContains(*model, "warm-up default batch 1 (zeros) failed"));
  auto instance = model->CreateInstance();
  const Response r = instance->Infer({Tensor::Of<float>("INPUT__0", {2, 3}, TestValues(6, 1))});
  CHECK(r.code == TORII_STATUS_INVALID_ARGUMENT);
  CHECK(Contains(r.message, "model 'mlp_var'"));
  CHECK(Contains(r.message, "mat1 and mat2 shapes cannot be multiplied (2x3 and 8x16)"));
  CHECK_FALSE(Contains(r.message, "\n"));
  CHECK_FALSE(Contains(r.message, "Traceback"));

  // The instance keeps serving afterwards.
  const auto x = TestValues(8, 2);
  const Response ok = instance->Infer({Tensor::Of<float>("INPUT__0", {1, 8}, x)});
  REQUIRE(ok.ok());
  RequireClose(ok.output("OUTPUT__0").values<float>(), MlpReference(m.weights, x, 1));
}

TEST_CASE("an error raised by the model's own code reaches the client as one line") {
  TempDir dir;
  ModelSpec spec = MakeSpec(dir, "raises", 4, {{"INPUT__0", TORII_TYPE_INT64, {1}}},
                            {{"OUTPUT__0", TORII_TYPE_INT64, {1}}});
  SaveScript(ModelFile(spec), R"(
def forward(self, x):
    assert not bool(torch.any(x < 0)), "ids must not be negative"
    return x
)");
  auto model = Host().Load(spec);
  auto instance = model->CreateInstance();
  const Response r = instance->Infer({Tensor::Of<int64_t>("INPUT__0", {1, 1}, {-5})});
  CHECK(r.code == TORII_STATUS_INVALID_ARGUMENT);
  CHECK(r.message == "model 'raises': AssertionError: ids must not be negative");
}

TEST_CASE("an output shape that differs from the config names model, tensor, expected and actual") {
  TempDir dir;
  MlpModel m = Mlp(dir, "mlp_shape", {8}, {"OUTPUT__0", TORII_TYPE_FP32, {5}});
  auto model = Host().Load(m.spec);
  CHECK(LogContains(*model, "expected shape [1,5], got [1,4]"));  // from warm-up
  auto instance = model->CreateInstance();
  const Response r = instance->Infer({Tensor::Of<float>("INPUT__0", {2, 8}, TestValues(16, 1))});
  CHECK(r.code == TORII_STATUS_INTERNAL);
  CHECK(r.message == "model 'mlp_shape': output 'OUTPUT__0': expected shape [2,5], got [2,4]");
}

TEST_CASE("an output datatype that differs from the config is an error") {
  TempDir dir;
  MlpModel m = Mlp(dir, "mlp_type", {8}, {"OUTPUT__0", TORII_TYPE_FP64, {4}});
  auto model = Host().Load(m.spec);
  auto instance = model->CreateInstance();
  const Response r = instance->Infer({Tensor::Of<float>("INPUT__0", {1, 8}, TestValues(8, 1))});
  CHECK(r.code == TORII_STATUS_INTERNAL);
  CHECK(r.message == "model 'mlp_type': output 'OUTPUT__0': expected datatype FP64, got FP32");
}

TEST_CASE("a dictionary result without the configured key names the key and the keys") {
  TempDir dir;
  ModelSpec spec = MakeSpec(dir, "dict_missing", 4, {{"INPUT__0", TORII_TYPE_FP32, {1}}},
                            {{"probabilities", TORII_TYPE_FP32, {1}}});
  SaveScript(ModelFile(spec), R"(
def forward(self, x):
    return {"logits": x, "scores": x * 2.0}
)");
  auto model = Host().Load(spec);
  auto instance = model->CreateInstance();
  const Response r = instance->Infer({Tensor::Of<float>("INPUT__0", {1, 1}, {1})});
  CHECK(r.code == TORII_STATUS_INTERNAL);
  CHECK(Contains(r.message, "output 'probabilities' is not a key"));
  CHECK(Contains(r.message, "logits, scores"));
}

TEST_CASE("model files that are missing or not TorchScript are refused at load") {
  TempDir dir;
  ModelSpec spec = MakeSpec(dir, "broken", 4, {{"INPUT__0", TORII_TYPE_FP32, {1}}},
                            {{"OUTPUT__0", TORII_TYPE_FP32, {1}}});
  SECTION("missing") {
    const torii::Error e = LoadError(spec);
    CHECK(e.code() == TORII_STATUS_NOT_FOUND);
    CHECK(Contains(e.what(), ModelFile(spec)));
  }
  SECTION("not TorchScript") {
    std::ofstream(ModelFile(spec)) << "this is not a zip archive";
    const torii::Error e = LoadError(spec);
    CHECK(e.code() == TORII_STATUS_INVALID_ARGUMENT);
    CHECK(Contains(e.what(), "cannot load TorchScript '" + ModelFile(spec) + "'"));
  }
}

TEST_CASE("default_model_filename names the artifact") {
  TempDir dir;
  ModelSpec spec = MakeSpec(dir, "renamed", 4, {{"INPUT__0", TORII_TYPE_FP32, {2}}},
                            {{"OUTPUT__0", TORII_TYPE_FP32, {2}}});
  SaveScript(spec.version_directory + "/net.pt", "def forward(self, x):\n    return x + 1.0\n");
  SECTION("found") {
    spec.config_json = R"({"name": "renamed", "default_model_filename": "net.pt"})";
    auto model = Host().Load(spec);
    auto instance = model->CreateInstance();
    const Response r = instance->Infer({Tensor::Of<float>("INPUT__0", {1, 2}, {1, 2})});
    REQUIRE(r.ok());
    CHECK(r.output("OUTPUT__0").values<float>() == std::vector<float>{2, 3});
  }
  SECTION("default model.pt is absent") {
    CHECK(LoadError(spec).code() == TORII_STATUS_NOT_FOUND);
  }
}

TEST_CASE("a config that does not fit forward() is refused at load") {
  TempDir dir;
  const char* two_args = "def forward(self, x, y):\n    return x + y\n";
  SECTION("an argument without default and without input") {
    ModelSpec spec = MakeSpec(dir, "fit", 4, {{"INPUT__0", TORII_TYPE_FP32, {1}}},
                              {{"OUTPUT__0", TORII_TYPE_FP32, {1}}});
    SaveScript(ModelFile(spec), two_args);
    const torii::Error e = LoadError(spec);
    CHECK(e.code() == TORII_STATUS_INVALID_ARGUMENT);
    CHECK(Contains(e.what(), "forward() argument 'y' (#1) has no default"));
  }
  SECTION("an index past the arguments") {
    ModelSpec spec = MakeSpec(dir, "fit", 4,
                              {{"INPUT__0", TORII_TYPE_FP32, {1}}, {"INPUT__3", TORII_TYPE_FP32, {1}}},
                              {{"OUTPUT__0", TORII_TYPE_FP32, {1}}});
    SaveScript(ModelFile(spec), two_args);
    CHECK(Contains(LoadError(spec).what(), "input 'INPUT__3' maps to forward() argument #3"));
  }
  SECTION("a non-tensor argument") {
    ModelSpec spec = MakeSpec(dir, "fit", 4, {{"x", TORII_TYPE_FP32, {1}}, {"n", TORII_TYPE_INT64, {1}}},
                              {{"OUTPUT__0", TORII_TYPE_FP32, {1}}});
    SaveScript(ModelFile(spec), "def forward(self, x, n: int):\n    return x * n\n");
    CHECK(Contains(LoadError(spec).what(), "forward() argument 'n' is int"));
  }
  SECTION("an output past the tuple") {
    ModelSpec spec = MakeSpec(dir, "fit", 4, {{"INPUT__0", TORII_TYPE_FP32, {1}}},
                              {{"OUTPUT__0", TORII_TYPE_FP32, {1}}, {"OUTPUT__2", TORII_TYPE_FP32, {1}}});
    SaveScript(ModelFile(spec), "def forward(self, x):\n    return (x, x)\n");
    CHECK(Contains(LoadError(spec).what(), "output 'OUTPUT__2' refers to result #2"));
  }
  SECTION("a second output of a single tensor") {
    ModelSpec spec = MakeSpec(dir, "fit", 4, {{"INPUT__0", TORII_TYPE_FP32, {1}}},
                              {{"OUTPUT__0", TORII_TYPE_FP32, {1}}, {"OUTPUT__1", TORII_TYPE_FP32, {1}}});
    SaveScript(ModelFile(spec), "def forward(self, x):\n    return x\n");
    CHECK(Contains(LoadError(spec).what(), "forward() returns a single Tensor"));
  }
  SECTION("a result that is not a tensor") {
    ModelSpec spec = MakeSpec(dir, "fit", 4, {{"INPUT__0", TORII_TYPE_FP32, {1}}},
                              {{"OUTPUT__0", TORII_TYPE_FP32, {1}}});
    SaveScript(ModelFile(spec), "def forward(self, x):\n    return x.size(0)\n");
    const torii::Error e = LoadError(spec);
    CHECK(e.code() == TORII_STATUS_INVALID_ARGUMENT);
    CHECK(Contains(e.what(), "forward() returns int"));
  }
}

TEST_CASE("parameter values that are not understood are refused, naming the parameter") {
  TempDir dir;
  MlpModel m = Mlp(dir, "params");
  std::string key, value;
  SECTION("INTRA_OP_THREAD_COUNT") { key = "INTRA_OP_THREAD_COUNT", value = "lots"; }
  SECTION("INTER_OP_THREAD_COUNT") { key = "INTER_OP_THREAD_COUNT", value = "-2"; }
  SECTION("DISABLE_OPTIMIZED_EXECUTION") { key = "DISABLE_OPTIMIZED_EXECUTION", value = "maybe"; }
  m.spec.parameters[key] = value;
  const torii::Error e = LoadError(m.spec);
  CHECK(e.code() == TORII_STATUS_INVALID_ARGUMENT);
  CHECK(Contains(e.what(), key));
  CHECK(Contains(e.what(), "'" + value + "'"));
}

TEST_CASE("DISABLE_OPTIMIZED_EXECUTION runs the model unoptimised, with the same results") {
  TempDir dir;
  MlpModel m = Mlp(dir, "unoptimised");
  m.spec.parameters["DISABLE_OPTIMIZED_EXECUTION"] = "true";
  auto model = Host().Load(m.spec);
  CHECK(LogContains(*model, "optimized execution disabled"));
  auto instance = model->CreateInstance();
  for (int i = 0; i < 3; ++i) {
    const auto x = TestValues(2 * 8, 10 + i);
    const Response r = instance->Infer({Tensor::Of<float>("INPUT__0", {2, 8}, x)});
    REQUIRE(r.ok());
    RequireClose(r.output("OUTPUT__0").values<float>(), MlpReference(m.weights, x, 2));
  }
}

TEST_CASE("the default warm-up runs batch 1 and the largest batch at load") {
  TempDir dir;
  MlpModel m = Mlp(dir, "warm");
  auto model = Host().Load(m.spec);
  INFO(JoinedLog(*model));
  CHECK(LogContains(*model, "warm-up default batch 1 in"));
  CHECK(LogContains(*model, "warm-up default batch 8 in"));
}

// model_warmup as the host passes it: config.pbtxt in protobuf's JSON
// mapping (int64 dims as strings, enums by name).
std::string WarmupJson(const std::string& sample_name, const std::string& dims,
                       const std::string& data) {
  return R"({"name": "m", "max_batch_size": 8, "model_warmup": [{"name": ")" + sample_name +
         R"(", "batch_size": 2, "count": 1, "inputs": {"INPUT__0": {"data_type": "TYPE_FP32", "dims": )" +
         dims + ", " + data + "}}}]}";
}

TEST_CASE("model_warmup from the config replaces the default warm-up") {
  TempDir dir;
  MlpModel m = Mlp(dir, "explicit_warmup", {-1});
  SECTION("zero_data") {
    m.spec.config_json = WarmupJson("zeros", R"(["8"])", R"("zero_data": true)");
    auto model = Host().Load(m.spec);
    CHECK(LogContains(*model, "warm-up sample 'zeros' in"));
    CHECK_FALSE(LogContains(*model, "warm-up default"));
  }
  SECTION("random_data") {
    m.spec.config_json = WarmupJson("random", R"([8])", R"("random_data": true)");
    auto model = Host().Load(m.spec);
    CHECK(LogContains(*model, "warm-up sample 'random' in"));
  }
  SECTION("input_data_file from <model>/warmup/") {
    std::filesystem::create_directories(m.spec.directory + "/warmup");
    const auto values = TestValues(2 * 8, 3);
    std::ofstream(m.spec.directory + "/warmup/sample.bin", std::ios::binary)
        .write(reinterpret_cast<const char*>(values.data()), std::streamsize(values.size() * 4));
    m.spec.config_json =
        WarmupJson("from_file", R"(["8"])", R"("input_data_file": "sample.bin")");
    auto model = Host().Load(m.spec);
    CHECK(LogContains(*model, "warm-up sample 'from_file' in"));
  }
  SECTION("a file of the wrong size fails the load") {
    std::filesystem::create_directories(m.spec.directory + "/warmup");
    std::ofstream(m.spec.directory + "/warmup/short.bin", std::ios::binary) << "12 bytes....";
    m.spec.config_json = WarmupJson("short", R"(["8"])", R"("input_data_file": "short.bin")");
    const torii::Error e = LoadError(m.spec);
    CHECK(e.code() == TORII_STATUS_INVALID_ARGUMENT);
    CHECK(Contains(e.what(), "holds 12 bytes"));
  }
  SECTION("a sample torch refuses fails the load") {
    m.spec.config_json = WarmupJson("bad", R"(["3"])", R"("zero_data": true)");
    const torii::Error e = LoadError(m.spec);
    CHECK(e.code() == TORII_STATUS_INVALID_ARGUMENT);
    CHECK(Contains(e.what(), "warm-up sample 'bad' failed"));
    CHECK(Contains(e.what(), "mat1 and mat2 shapes cannot be multiplied (2x3 and 8x16)"));
  }
  SECTION("a sample naming an undeclared input fails the load") {
    m.spec.config_json =
        R"({"model_warmup": [{"name": "typo", "batch_size": 1, "inputs": {"INPUT_0": {"data_type": "TYPE_FP32", "dims": ["8"], "zero_data": true}}}]})";
    CHECK(Contains(LoadError(m.spec).what(),
                   "model_warmup 'typo' names input 'INPUT_0', which the config does not declare"));
  }
}

}  // namespace
}  // namespace torii_test
