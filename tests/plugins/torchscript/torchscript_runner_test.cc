// The TorchScript runner through the fake host: models built in C++ at test
// time, expected values computed with plain loops.
#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "runner_test_util.h"

namespace torii_test {
namespace {

TEST_CASE("runner identifies itself and its ABI") {
  const ToriiRunnerInfo& info = Host().info();
  CHECK(std::string(info.name) == "torchscript");
  CHECK(info.abi_version_major == TORII_RUNNER_ABI_VERSION_MAJOR);
  CHECK(info.abi_version_minor <= TORII_RUNNER_ABI_VERSION_MINOR);
}

TEST_CASE("MLP: batched requests match an independent computation") {
  TempDir dir;
  ModelSpec spec = MakeSpec(dir, "mlp", 8, {{"INPUT__0", TORII_TYPE_FP32, {8}}},
                            {{"OUTPUT__0", TORII_TYPE_FP32, {4}}});
  const MlpWeights w = SaveMlp(ModelFile(spec), 8, 16, 4, 1);
  auto model = Host().Load(spec);
  // Inputs are wrapped, not copied, when forward() writes none of them.
  CHECK_FALSE(LogContains(*model, "writes an input in place"));
  auto instance = model->CreateInstance();

  // Two requests merged into one batch of 4 rows come back split.
  const auto x1 = TestValues(1 * 8, 1), x2 = TestValues(3 * 8, 2);
  Request r1, r2;
  r1.inputs = {Tensor::Of<float>("INPUT__0", {1, 8}, x1)};
  r2.inputs = {Tensor::Of<float>("INPUT__0", {3, 8}, x2)};
  const auto responses = instance->Execute({r1, r2});
  REQUIRE(responses.size() == 2);
  REQUIRE(responses[0].ok());
  REQUIRE(responses[1].ok());
  CHECK(responses[0].output("OUTPUT__0").shape == std::vector<int64_t>{1, 4});
  CHECK(responses[1].output("OUTPUT__0").shape == std::vector<int64_t>{3, 4});
  RequireClose(responses[0].output("OUTPUT__0").values<float>(), MlpReference(w, x1, 1));
  RequireClose(responses[1].output("OUTPUT__0").values<float>(), MlpReference(w, x2, 3));

  // The largest batch.
  const auto x8 = TestValues(8 * 8, 3);
  const Response full = instance->Infer({Tensor::Of<float>("INPUT__0", {8, 8}, x8)});
  REQUIRE(full.ok());
  RequireClose(full.output("OUTPUT__0").values<float>(), MlpReference(w, x8, 8));
}

TEST_CASE("conv net with batch norm runs in eval mode") {
  TempDir dir;
  ModelSpec spec = MakeSpec(dir, "convbn", 4, {{"INPUT__0", TORII_TYPE_FP32, {2, 5, 5}}},
                            {{"OUTPUT__0", TORII_TYPE_FP32, {3}}});
  const ConvBnWeights w = SaveConvBn(ModelFile(spec), 7);
  auto model = Host().Load(spec);
  CHECK_FALSE(LogContains(*model, "writes an input in place"));
  auto instance = model->CreateInstance();

  const int64_t n = 3, h = 5, wd = 5;
  const auto x = TestValues(n * 2 * h * wd, 11);
  std::vector<float> expected;
  for (int64_t b = 0; b < n; ++b) {
    for (int co = 0; co < 3; ++co) {
      double sum = 0;
      for (int64_t i = 0; i < h; ++i) {
        for (int64_t j = 0; j < wd; ++j) {
          double acc = w.conv_bias[co];
          for (int ci = 0; ci < 2; ++ci) {
            for (int ki = 0; ki < 3; ++ki) {
              for (int kj = 0; kj < 3; ++kj) {
                const int64_t y = i + ki - 1, z = j + kj - 1;
                if (y < 0 || y >= h || z < 0 || z >= wd) continue;
                acc += w.conv_weight[((co * 2 + ci) * 3 + ki) * 3 + kj] *
                       x[((b * 2 + ci) * h + y) * wd + z];
              }
            }
          }
          // Running statistics, i.e. eval mode.
          const double bn = (acc - w.bn_mean[co]) / std::sqrt(w.bn_var[co] + w.eps) *
                                w.bn_weight[co] + w.bn_bias[co];
          sum += std::max(bn, 0.0);
        }
      }
      expected.push_back(static_cast<float>(sum / double(h * wd)));
    }
  }
  const Response r = instance->Infer({Tensor::Of<float>("INPUT__0", {n, 2, h, wd}, x)});
  REQUIRE(r.ok());
  CHECK(r.output("OUTPUT__0").shape == std::vector<int64_t>{n, 3});
  RequireClose(r.output("OUTPUT__0").values<float>(), expected);
}

// forward(x: FP32 [N,4], idx: INT64 [N,2]) -> (x*2 + sum(idx), idx*3 + 1)
const char kTwoInputs[] = R"(
def forward(self, x, idx):
    s = torch.sum(idx, 1, keepdim=True).float()
    return (x * 2.0 + s, idx * 3 + 1)
)";

void CheckTwoInputs(FakeModel& model, const std::string& x_name, const std::string& idx_name,
                    const std::string& out0, const std::string& out1) {
  auto instance = model.CreateInstance();
  const std::vector<float> x = {1, 2, 3, 4, -1, -2, -3, -4};
  // Values beyond 32 bits prove the INT64 path; the row sums stay small.
  const std::vector<int64_t> idx = {10, 20, 5000000000LL, -4999999990LL};
  Request req;
  // Request order differs from any config order on purpose.
  req.inputs = {Tensor::Of<int64_t>(idx_name, {2, 2}, idx), Tensor::Of<float>(x_name, {2, 4}, x)};
  const Response r = instance->Execute({req})[0];
  REQUIRE(r.ok());
  CHECK(r.output(out0).values<float>() == std::vector<float>{32, 34, 36, 38, 8, 6, 4, 2});
  CHECK(r.output(out1).values<int64_t>() ==
        std::vector<int64_t>{31, 61, 15000000001LL, -14999999969LL});

  // Only what a request asks for comes back.
  Request only;
  only.inputs = req.inputs;
  only.requested_outputs = {out1};
  const Response r1 = instance->Execute({only})[0];
  REQUIRE(r1.ok());
  REQUIRE(r1.outputs.size() == 1);
  CHECK(r1.outputs[0].name == out1);
}

TEST_CASE("two inputs with INT64 and tuple outputs bind by INPUT__i and OUTPUT__i") {
  TempDir dir;
  // Declared in reverse order: positions come from the names, not the order.
  ModelSpec spec = MakeSpec(dir, "two", 4,
                            {{"INPUT__1", TORII_TYPE_INT64, {2}}, {"INPUT__0", TORII_TYPE_FP32, {4}}},
                            {{"OUTPUT__1", TORII_TYPE_INT64, {2}}, {"OUTPUT__0", TORII_TYPE_FP32, {4}}});
  SaveScript(ModelFile(spec), kTwoInputs);
  auto model = Host().Load(spec);
  CheckTwoInputs(*model, "INPUT__0", "INPUT__1", "OUTPUT__0", "OUTPUT__1");
  CHECK(LogContains(*model, "by <name>__<index>"));
}

TEST_CASE("inputs named after forward() arguments bind by name") {
  TempDir dir;
  ModelSpec spec = MakeSpec(dir, "named", 4,
                            {{"idx", TORII_TYPE_INT64, {2}}, {"x", TORII_TYPE_FP32, {4}}},
                            {{"OUTPUT__0", TORII_TYPE_FP32, {4}}, {"OUTPUT__1", TORII_TYPE_INT64, {2}}});
  SaveScript(ModelFile(spec), kTwoInputs);
  auto model = Host().Load(spec);
  CheckTwoInputs(*model, "x", "idx", "OUTPUT__0", "OUTPUT__1");
  CHECK(LogContains(*model, "by forward() argument name"));
}

TEST_CASE("other names bind in config order, with a warning") {
  TempDir dir;
  ModelSpec spec = MakeSpec(dir, "ordered", 4,
                            {{"features", TORII_TYPE_FP32, {4}}, {"ids", TORII_TYPE_INT64, {2}}},
                            {{"scores", TORII_TYPE_FP32, {4}}, {"ids_out", TORII_TYPE_INT64, {2}}});
  SaveScript(ModelFile(spec), kTwoInputs);
  auto model = Host().Load(spec);
  CheckTwoInputs(*model, "features", "ids", "scores", "ids_out");
  CHECK(LogContains(*model, "in config order"));
}

TEST_CASE("Dict[str, Tensor] results are read by output name") {
  TempDir dir;
  ModelSpec spec = MakeSpec(dir, "dict_out", 4, {{"INPUT__0", TORII_TYPE_FP32, {3}}},
                            {{"scaled", TORII_TYPE_FP32, {3}}, {"total", TORII_TYPE_FP32, {1}}});
  SaveScript(ModelFile(spec), R"(
def forward(self, x):
    return {"total": torch.sum(x, 1, keepdim=True), "scaled": x * 3.0}
)");
  auto model = Host().Load(spec);
  auto instance = model->CreateInstance();
  const Response r =
      instance->Infer({Tensor::Of<float>("INPUT__0", {2, 3}, {1, 2, 3, 4, 5, 6})});
  REQUIRE(r.ok());
  CHECK(r.output("scaled").values<float>() == std::vector<float>{3, 6, 9, 12, 15, 18});
  CHECK(r.output("total").values<float>() == std::vector<float>{6, 15});
  CHECK(r.output("total").shape == std::vector<int64_t>{2, 1});
}

TEST_CASE("a Dict[str, Tensor] argument receives every input by name") {
  TempDir dir;
  ModelSpec spec = MakeSpec(dir, "dict_in", 4,
                            {{"a", TORII_TYPE_FP32, {2}}, {"b", TORII_TYPE_FP32, {2}}},
                            {{"OUTPUT__0", TORII_TYPE_FP32, {2}}});
  SaveScript(ModelFile(spec), R"(
def forward(self, inputs: Dict[str, Tensor]):
    return inputs["a"] - inputs["b"]
)");
  auto model = Host().Load(spec);
  auto instance = model->CreateInstance();
  const Response r = instance->Infer({Tensor::Of<float>("a", {1, 2}, {10, 20}),
                                      Tensor::Of<float>("b", {1, 2}, {1, 2})});
  REQUIRE(r.ok());
  CHECK(r.output("OUTPUT__0").values<float>() == std::vector<float>{9, 18});
}

TEST_CASE("List[Tensor] results map to OUTPUT__i") {
  TempDir dir;
  ModelSpec spec = MakeSpec(dir, "list_out", 4, {{"INPUT__0", TORII_TYPE_FP32, {2}}},
                            {{"OUTPUT__0", TORII_TYPE_FP32, {2}}, {"OUTPUT__1", TORII_TYPE_FP32, {2}}});
  SaveScript(ModelFile(spec), R"(
def forward(self, x):
    return [x + 1.0, x * 2.0]
)");
  auto model = Host().Load(spec);
  auto instance = model->CreateInstance();
  const Response r = instance->Infer({Tensor::Of<float>("INPUT__0", {1, 2}, {3, 4})});
  REQUIRE(r.ok());
  CHECK(r.output("OUTPUT__0").values<float>() == std::vector<float>{4, 5});
  CHECK(r.output("OUTPUT__1").values<float>() == std::vector<float>{6, 8});
}

TEST_CASE("non-contiguous results arrive in row-major order") {
  TempDir dir;
  ModelSpec spec = MakeSpec(dir, "transpose", 4, {{"INPUT__0", TORII_TYPE_FP32, {3, 2}}},
                            {{"OUTPUT__0", TORII_TYPE_FP32, {2, 3}}});
  SaveScript(ModelFile(spec), R"(
def forward(self, x):
    return x.transpose(1, 2)
)");
  auto model = Host().Load(spec);
  auto instance = model->CreateInstance();
  const int64_t n = 2;
  std::vector<float> x(n * 3 * 2);
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(i);
  std::vector<float> expected;
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t j = 0; j < 2; ++j) {
      for (int64_t i = 0; i < 3; ++i) expected.push_back(x[(b * 3 + i) * 2 + j]);
    }
  }
  const Response r = instance->Infer({Tensor::Of<float>("INPUT__0", {n, 3, 2}, x)});
  REQUIRE(r.ok());
  CHECK(r.output("OUTPUT__0").shape == std::vector<int64_t>{n, 2, 3});
  CHECK(r.output("OUTPUT__0").values<float>() == expected);
}

TEST_CASE("a forward() argument with a default may stay out of the config") {
  TempDir dir;
  ModelSpec spec = MakeSpec(dir, "defaults", 4, {{"INPUT__0", TORII_TYPE_FP32, {2}}},
                            {{"OUTPUT__0", TORII_TYPE_FP32, {2}}});
  SaveScript(ModelFile(spec), R"(
def forward(self, x, bias: Optional[Tensor] = None):
    if bias is None:
        return x + 100.0
    return x + bias
)");
  auto model = Host().Load(spec);
  auto instance = model->CreateInstance();
  const Response r = instance->Infer({Tensor::Of<float>("INPUT__0", {1, 2}, {1, 2})});
  REQUIRE(r.ok());
  CHECK(r.output("OUTPUT__0").values<float>() == std::vector<float>{101, 102});
}

TEST_CASE("a model without batching gets its inputs exactly as declared") {
  TempDir dir;
  ModelSpec spec = MakeSpec(dir, "nobatch", 0, {{"INPUT__0", TORII_TYPE_FP32, {2, 8}}},
                            {{"OUTPUT__0", TORII_TYPE_FP32, {2, 4}}});
  const MlpWeights w = SaveMlp(ModelFile(spec), 8, 5, 4, 9);
  auto model = Host().Load(spec);
  auto instance = model->CreateInstance();
  const auto x = TestValues(16, 5);
  const Response r = instance->Infer({Tensor::Of<float>("INPUT__0", {2, 8}, x)});
  REQUIRE(r.ok());
  CHECK(r.output("OUTPUT__0").shape == std::vector<int64_t>{2, 4});
  RequireClose(r.output("OUTPUT__0").values<float>(), MlpReference(w, x, 2));
}

TEST_CASE("instances share the model and run in parallel") {
  TempDir dir;
  ModelSpec spec = MakeSpec(dir, "parallel", 8, {{"INPUT__0", TORII_TYPE_FP32, {16}}},
                            {{"OUTPUT__0", TORII_TYPE_FP32, {8}}});
  const MlpWeights w = SaveMlp(ModelFile(spec), 16, 32, 8, 4);
  auto model = Host().Load(spec);
  auto a = model->CreateInstance(0);
  auto b = model->CreateInstance(1);
  std::atomic<int> wrong{0};
  auto work = [&](torii::testing::FakeInstance& instance, uint32_t seed) {
    for (int i = 0; i < 50; ++i) {
      const int64_t rows = 1 + (i % 8);
      const auto x = TestValues(size_t(rows * 16), seed + uint32_t(i));
      const Response r = instance.Infer({Tensor::Of<float>("INPUT__0", {rows, 16}, x)});
      const auto expected = MlpReference(w, x, rows);
      if (!r.ok()) {
        ++wrong;
        continue;
      }
      const auto got = r.output("OUTPUT__0").values<float>();
      for (size_t k = 0; k < got.size(); ++k) {
        if (std::abs(got[k] - expected[k]) > 1e-4f * std::max(1.0f, std::abs(expected[k]))) {
          ++wrong;
          break;
        }
      }
    }
  };
  std::thread ta(work, std::ref(*a), 100), tb(work, std::ref(*b), 200);
  ta.join();
  tb.join();
  CHECK(wrong.load() == 0);
}

TEST_CASE("the example repository's MLP matches torch.jit.load of the same file") {
  const std::string dir = TORII_EXAMPLE_MLP_DIR;
  std::ifstream config_file(dir + "/config.pbtxt");
  REQUIRE(config_file);
  const std::string config((std::istreambuf_iterator<char>(config_file)),
                           std::istreambuf_iterator<char>());
  // The spec below mirrors config.pbtxt; fail loudly if the file drifts.
  CHECK(config.find("platform: \"pytorch_libtorch\"") != std::string::npos);
  CHECK(config.find("max_batch_size: 128") != std::string::npos);
  CHECK(config.find("\"INPUT__0\"") != std::string::npos);
  CHECK(config.find("\"OUTPUT__0\"") != std::string::npos);

  ModelSpec spec;
  spec.name = "mlp";
  spec.directory = dir;
  spec.version_directory = dir + "/1";
  spec.max_batch_size = 128;
  spec.inputs = {{"INPUT__0", TORII_TYPE_FP32, {64}}};
  spec.outputs = {{"OUTPUT__0", TORII_TYPE_FP32, {10}}};
  auto model = Host().Load(spec);
  auto instance = model->CreateInstance();
  const auto x = TestValues(5 * 64, 42);
  const Response r = instance->Infer({Tensor::Of<float>("INPUT__0", {5, 64}, x)});
  REQUIRE(r.ok());
  CHECK(r.output("OUTPUT__0").shape == std::vector<int64_t>{5, 10});
  RequireClose(r.output("OUTPUT__0").values<float>(),
               RunTorchScript(spec.version_directory + "/model.pt", x, {5, 64}), 1e-6);
}

}  // namespace
}  // namespace torii_test
