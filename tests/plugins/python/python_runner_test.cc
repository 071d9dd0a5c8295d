// The Python runner (libtorii_python.so) through the SDK's fake host: model
// files of tests/plugins/python/models, loaded from temporary model folders.
// Expected values are computed here in C++, never by the code under test.
#include <cmath>
#include <cstdlib>
#include <thread>

#include <nlohmann/json.hpp>

#include "python_test_util.h"

namespace torii_python_test {
namespace {

using json = nlohmann::json;

const std::vector<TensorSpec> kAddSubInputs = {{"INPUT0", TORII_TYPE_FP32, {4}},
                                               {"INPUT1", TORII_TYPE_FP32, {4}}};
const std::vector<TensorSpec> kAddSubOutputs = {{"OUTPUT0", TORII_TYPE_FP32, {4}},
                                                {"OUTPUT1", TORII_TYPE_FP32, {4}},
                                                {"ARGS", TORII_TYPE_BYTES, {1}}};

Request AddSubRequest(std::vector<float> a, std::vector<float> b,
                      std::vector<std::string> outputs = {}) {
  Request r;
  r.inputs = {Tensor::Of<float>("INPUT0", {4}, a), Tensor::Of<float>("INPUT1", {4}, b)};
  r.requested_outputs = std::move(outputs);
  return r;
}

TEST_CASE("python runner: library identity", "[python]") {
  const ToriiRunnerInfo& info = Host().info();
  CHECK(std::string(info.name) == "python");
  CHECK(info.abi_version_major == TORII_RUNNER_ABI_VERSION_MAJOR);
  CHECK(info.abi_version_minor == TORII_RUNNER_ABI_VERSION_MINOR);
  CHECK(std::string(info.compiler).find("CPython 3.11") != std::string::npos);
}

TEST_CASE("python runner: add/sub model computes, gets Triton's initialize args", "[python]") {
  TempDir dir;
  const ModelSpec spec = MakeModel(dir, "add_sub", "add_sub", 0, kAddSubInputs, kAddSubOutputs);
  auto model = Host().Load(spec);
  auto instance = model->CreateInstance(0);
  const std::vector<float> a = {1.5f, -2, 3, 1e6f}, b = {0.25f, 4, -3, 1};

  const Response r = instance->Execute({AddSubRequest(a, b)})[0];
  REQUIRE(r.ok());
  const auto sum = r.output("OUTPUT0").values<float>();
  const auto diff = r.output("OUTPUT1").values<float>();
  REQUIRE(sum.size() == 4);
  for (size_t i = 0; i < 4; ++i) {
    CHECK(sum[i] == a[i] + b[i]);
    CHECK(diff[i] == a[i] - b[i]);
  }
  CHECK(r.output("OUTPUT0").shape == std::vector<int64_t>{4});

  const json got = json::parse(r.output("ARGS").strings().at(0));
  const json& args = got["args"];
  CHECK(args["model_name"] == "add_sub");
  CHECK(args["model_version"] == "1");
  CHECK(args["model_instance_name"] == "add_sub_0");
  CHECK(args["model_instance_kind"] == "CPU");
  CHECK(args["model_instance_device_id"] == "0");
  CHECK(args["model_repository"] == spec.directory);
  // model_config as Triton hands it over: a JSON string, dims as numbers,
  // fields protobuf leaves out when zero present.
  const json config = json::parse(args["model_config"].get<std::string>());
  CHECK(config["name"] == "add_sub");
  CHECK(config["max_batch_size"] == 0);
  CHECK(config["input"][1]["dims"] == json::array({4}));
  CHECK(config["input"][0]["data_type"] == "TYPE_FP32");
  CHECK(config["input"][0]["optional"] == false);
  CHECK(config["output"][2]["data_type"] == "TYPE_STRING");
  CHECK(got["requested"] == json::array({"OUTPUT0", "OUTPUT1", "ARGS"}));

  // Importing model.py left nothing in the model folder.
  CHECK_FALSE(std::filesystem::exists(spec.version_directory + "/__pycache__"));

  SECTION("a request that names outputs gets only those") {
    const Response only = instance->Execute({AddSubRequest(a, b, {"OUTPUT1"})})[0];
    REQUIRE(only.ok());
    REQUIRE(only.outputs.size() == 1);
    CHECK(only.outputs[0].name == "OUTPUT1");
    CHECK(only.outputs[0].values<float>()[1] == a[1] - b[1]);
  }
}

TEST_CASE("python runner: BYTES tensors are object arrays of bytes", "[python]") {
  TempDir dir;
  const ModelSpec spec = MakeModel(dir, "bytes", "bytes", 0, {{"IN", TORII_TYPE_BYTES, {-1, 2}}},
                                   {{"OUT", TORII_TYPE_BYTES, {-1, 2}},
                                    {"LEN", TORII_TYPE_INT32, {-1, 2}}});
  auto instance = Host().Load(spec)->CreateInstance();
  const std::vector<std::string> in = {"abc", "", std::string("z\0\xff", 3), "h\xc3\xa9llo"};
  const Response r = instance->Infer({Tensor::Strings("IN", {2, 2}, in)});
  REQUIRE(r.ok());
  const auto out = r.output("OUT").strings();
  const auto len = r.output("LEN").values<int32_t>();
  REQUIRE(out.size() == 4);
  CHECK(r.output("OUT").shape == std::vector<int64_t>{2, 2});
  for (size_t i = 0; i < in.size(); ++i) {
    std::string upper = in[i];
    for (char& c : upper) {
      if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    }
    CHECK(out[i] == upper);
    CHECK(len[i] == static_cast<int32_t>(in[i].size()));
  }
  SECTION("an empty BYTES tensor") {
    const Response e = instance->Infer({Tensor::Strings("IN", {0, 2}, {})});
    REQUIRE(e.ok());
    CHECK(e.output("OUT").shape == std::vector<int64_t>{0, 2});
    CHECK(e.output("OUT").strings().empty());
  }
}

TEST_CASE("python runner: batched requests arrive as a list, answers return in row order",
          "[python]") {
  TempDir dir;
  const ModelSpec spec = BatchingModel(dir);
  auto instance = Host().Load(spec)->CreateInstance();
  const std::vector<int64_t> rows = {1, 2, 1};
  std::vector<Request> requests;
  float next = 1;
  for (int64_t n : rows) {
    std::vector<float> v;
    for (int64_t i = 0; i < n * 3; ++i) v.push_back(next++);
    Request r;
    r.inputs = {Tensor::Of<float>("IN", {n, 3}, v)};
    requests.push_back(r);
  }
  const auto responses = instance->Execute(requests);
  REQUIRE(responses.size() == 3);
  for (size_t r = 0; r < 3; ++r) {
    INFO("request " << r);
    REQUIRE(responses[r].ok());
    const auto in = requests[r].inputs[0].values<float>();
    const auto out = responses[r].output("OUT").values<float>();
    CHECK(responses[r].output("OUT").shape == std::vector<int64_t>{rows[r], 3});
    REQUIRE(out.size() == in.size());
    for (size_t i = 0; i < in.size(); ++i) CHECK(out[i] == in[i] * 2);
    const auto count = responses[r].output("COUNT").values<int64_t>();
    REQUIRE(count.size() == static_cast<size_t>(rows[r] * 2));
    for (int64_t row = 0; row < rows[r]; ++row) {
      CHECK(count[size_t(row * 2)] == 3);                       // requests in the execute call
      CHECK(count[size_t(row * 2 + 1)] == static_cast<int64_t>(r));  // this one's position
    }
    CHECK(responses[r].output("PARAMS").strings().at(0).front() == '{');
  }
}

TEST_CASE("python runner: FP16 maps to numpy float16 without a copy", "[python]") {
  TempDir dir;
  const ModelSpec spec = MakeModel(dir, "fp16", "fp16", 0, {{"IN", TORII_TYPE_FP16, {4}}},
                                   {{"OUT", TORII_TYPE_FP16, {4}}});
  auto instance = Host().Load(spec)->CreateInstance();
  // IEEE half: 1.0, 2.0, -3.0, 0.5 -> halved: 0.5, 1.0, -1.5, 0.25.
  const std::vector<uint16_t> in = {0x3C00, 0x4000, 0xC200, 0x3800};
  const std::vector<uint16_t> want = {0x3800, 0x3C00, 0xBE00, 0x3400};
  Tensor t{"IN", TORII_TYPE_FP16, {4}, std::string(reinterpret_cast<const char*>(in.data()), 8)};
  const Response r = instance->Infer({t});
  REQUIRE(r.ok());
  const Tensor& out = r.output("OUT");
  CHECK(out.datatype == TORII_TYPE_FP16);
  REQUIRE(out.data.size() == 8);
  std::vector<uint16_t> got(4);
  std::memcpy(got.data(), out.data.data(), 8);
  CHECK(got == want);
}

TEST_CASE("python runner: outputs that are strided numpy views arrive in C order", "[python]") {
  TempDir dir;
  const ModelSpec spec =
      MakeModel(dir, "strided", "strided", 0,
                {{"IN", TORII_TYPE_INT32, {5}}, {"MATRIX", TORII_TYPE_FP32, {2, 3}}},
                {{"REVERSED", TORII_TYPE_INT32, {5}}, {"COLUMNS", TORII_TYPE_FP32, {3, 2}}});
  auto instance = Host().Load(spec)->CreateInstance();
  const std::vector<int32_t> in = {7, -1, 40000, 3, 0};
  const std::vector<float> matrix = {1, 2, 3, 4, 5, 6};  // rows {1,2,3} and {4,5,6}
  const Response r = instance->Infer({Tensor::Of<int32_t>("IN", {5}, in),
                                      Tensor::Of<float>("MATRIX", {2, 3}, matrix)});
  REQUIRE(r.ok());
  CHECK(r.output("REVERSED").values<int32_t>() == std::vector<int32_t>{0, 3, 40000, -1, 7});
  CHECK(r.output("COLUMNS").shape == std::vector<int64_t>{3, 2});
  // Transposed, in C order: column 0 {1,4}, column 1 {2,5}, column 2 {3,6}.
  CHECK(r.output("COLUMNS").values<float>() == std::vector<float>{1, 4, 2, 5, 3, 6});
}

TEST_CASE("python runner: every datatype reaches numpy as its dtype, read-only", "[python]") {
  struct Type {
    const char* name;
    ToriiDataType type;
    const char* numpy;
    size_t size;
  };
  const std::vector<Type> types = {
      {"BOOL", TORII_TYPE_BOOL, "bool", 1},       {"UINT8", TORII_TYPE_UINT8, "uint8", 1},
      {"UINT16", TORII_TYPE_UINT16, "uint16", 2}, {"UINT32", TORII_TYPE_UINT32, "uint32", 4},
      {"UINT64", TORII_TYPE_UINT64, "uint64", 8}, {"INT8", TORII_TYPE_INT8, "int8", 1},
      {"INT16", TORII_TYPE_INT16, "int16", 2},    {"INT32", TORII_TYPE_INT32, "int32", 4},
      {"INT64", TORII_TYPE_INT64, "int64", 8},    {"FP16", TORII_TYPE_FP16, "float16", 2},
      {"FP32", TORII_TYPE_FP32, "float32", 4},    {"FP64", TORII_TYPE_FP64, "float64", 8},
      {"BYTES", TORII_TYPE_BYTES, "object", 0}};
  std::vector<TensorSpec> inputs, outputs;
  Request request;
  std::string expected;
  for (const auto& t : types) {
    inputs.push_back({std::string("IN_") + t.name, t.type, {3}});
    outputs.push_back({std::string("OUT_") + t.name, t.type, {3}});
    Tensor in{std::string("IN_") + t.name, t.type, {3}, {}};
    if (t.type == TORII_TYPE_BYTES) {
      in = Tensor::Strings(in.name, {3}, {"a", "bc", ""});
    } else {
      for (size_t i = 0; i < 3 * t.size; ++i) {
        in.data.push_back(t.type == TORII_TYPE_BOOL ? char(i % 2) : char(i * 37 + 1));
      }
    }
    request.inputs.push_back(in);
    expected += std::string(expected.empty() ? "" : " ") + "IN_" + t.name + ":" + t.numpy + ":" +
                std::to_string(static_cast<int>(t.type)) +
                (t.type == TORII_TYPE_BYTES ? ":rw" : ":ro");
  }
  outputs.push_back({"DTYPES", TORII_TYPE_BYTES, {1}});
  TempDir dir;
  const ModelSpec spec = MakeModel(dir, "dtypes", "dtypes", 0, inputs, outputs);
  auto instance = Host().Load(spec)->CreateInstance();
  const Response r = instance->Execute({request})[0];
  REQUIRE(r.ok());
  CHECK(r.output("DTYPES").strings().at(0) == expected);
  for (const auto& in : request.inputs) {
    const Tensor& out = r.output("OUT_" + in.name.substr(3));
    CHECK(out.datatype == in.datatype);
    CHECK(out.data == in.data);
  }
}

TEST_CASE("python runner: an exception in execute fails only that call's requests", "[python]") {
  TempDir dir;
  const ModelSpec spec =
      MakeModel(dir, "errors", "errors", 4,
                {{"MODE", TORII_TYPE_INT32, {1}}, {"IN", TORII_TYPE_FP32, {2}}},
                {{"OUT", TORII_TYPE_FP32, {2}}}, "\"dynamic_batching\":{}");
  auto model = Host().Load(spec);
  auto instance = model->CreateInstance();
  auto req = [](int32_t mode) {
    Request r;
    r.inputs = {Tensor::Of<int32_t>("MODE", {1, 1}, {mode}),
                Tensor::Of<float>("IN", {1, 2}, {float(mode), 0.5f})};
    return r;
  };

  SECTION("raise: every request of the call fails with type and message; traceback logged") {
    const auto out = instance->Execute({req(1), req(0)});
    for (const auto& r : out) {
      CHECK(r.code == TORII_STATUS_INTERNAL);
      CHECK(r.message == "ValueError: mode 1 asked me to fail");
    }
    CHECK(LogContains(*model, "Traceback (most recent call last)"));
    CHECK(LogContains(*model, "in execute"));
    // The instance keeps serving.
    const auto again = instance->Execute({req(0)});
    REQUIRE(again[0].ok());
    CHECK(again[0].output("OUT").values<float>()[1] == 0.5f);
  }
  SECTION("TritonError in a response fails that request alone, with its code") {
    const auto out = instance->Execute({req(2), req(0)});
    CHECK(out[0].code == TORII_STATUS_INVALID_ARGUMENT);
    CHECK(out[0].message == "bad input, says the model");
    REQUIRE(out[1].ok());
    CHECK(out[1].output("OUT").values<float>()[0] == 0.0f);
  }
  SECTION("a response list of the wrong length fails every request, saying so") {
    const auto out = instance->Execute({req(3), req(0)});
    for (const auto& r : out) {
      CHECK(r.code == TORII_STATUS_INTERNAL);
      CHECK(r.message.find("expected 2, got 1") != std::string::npos);
    }
  }
  SECTION("a response without a requested output fails that request") {
    const auto out = instance->Execute({req(4), req(0)});
    CHECK(out[0].code == TORII_STATUS_INTERNAL);
    CHECK(out[0].message.find("no output 'OUT'") != std::string::npos);
    CHECK(out[1].ok());
  }
  SECTION("a datatype that cannot become the config's is refused with the fix") {
    const auto out = instance->Execute({req(5)});
    CHECK(out[0].code == TORII_STATUS_INTERNAL);
    CHECK(out[0].message ==
          "output 'OUT': the config declares TYPE_FP32, the model returned BYTES data (object); "
          "convert it with .astype(np.float32)");
    const auto big = instance->Execute({req(10)});
    CHECK(big[0].message.find("returned FP64 data whose values do not fit (float64)") !=
          std::string::npos);
  }
  SECTION("another numeric dtype is converted to the config's, with a warning, as Triton "
          "sends it") {
    const auto out = instance->Execute({req(9), req(9)});
    REQUIRE(out[0].ok());
    CHECK(out[0].output("OUT").datatype == TORII_TYPE_FP32);
    CHECK(out[0].output("OUT").values<float>() == std::vector<float>{3.0f, float(0.5 / 3)});
    CHECK(LogContains(*model, "output 'OUT': the config declares TYPE_FP32, the model returned "
                         "float64; converted it"));
  }
  SECTION("execute returning something else than a list") {
    const auto out = instance->Execute({req(6)});
    CHECK(out[0].message.find("must return a list") != std::string::npos);
    CHECK(out[0].message.find("dict") != std::string::npos);
  }
  SECTION("None in the list fails that request") {
    const auto out = instance->Execute({req(7), req(0)});
    CHECK(out[0].message.find("returned None for request 0") != std::string::npos);
    CHECK(out[1].ok());
  }
  SECTION("rows that do not match the request's") {
    const auto out = instance->Execute({req(8)});
    CHECK(out[0].message.find("has shape [2, 2], but the request has 1 row") !=
          std::string::npos);
  }
}

TEST_CASE("python runner: load errors carry the Python error", "[python]") {
  TempDir dir;
  SECTION("model.py that does not import") {
    const ModelSpec spec = MakeModel(dir, "bad_import", "bad", 0, {{"IN", TORII_TYPE_FP32, {1}}},
                                     {{"OUT", TORII_TYPE_FP32, {1}}});
    const std::string e = LoadError(spec);
    CHECK(e.find("does not import") != std::string::npos);
    CHECK(e.find("ModuleNotFoundError: No module named 'torii_package_that_does_not_exist'") !=
          std::string::npos);
  }
  SECTION("no TritonPythonModel class") {
    const ModelSpec spec = MakeModel(dir, "no_class", "nc", 0, {{"IN", TORII_TYPE_FP32, {1}}},
                                     {{"OUT", TORII_TYPE_FP32, {1}}});
    CHECK(LoadError(spec).find("defines no class TritonPythonModel") != std::string::npos);
  }
  SECTION("no model file") {
    ModelSpec spec = MakeModel(dir, "add_sub", "nf", 0, kAddSubInputs, kAddSubOutputs);
    std::filesystem::remove(spec.version_directory + "/model.py");
    const std::string e = LoadError(spec);
    CHECK(e.find(spec.version_directory + "/model.py does not exist") != std::string::npos);
  }
  SECTION("default_model_filename names the file") {
    ModelSpec spec = MakeModel(dir, "add_sub", "custom", 0, kAddSubInputs, kAddSubOutputs,
                               "\"default_model_filename\":\"custom.py\"");
    std::filesystem::rename(spec.version_directory + "/model.py",
                            spec.version_directory + "/custom.py");
    auto instance = Host().Load(spec)->CreateInstance();
    CHECK(instance->Execute({AddSubRequest({1, 2, 3, 4}, {1, 1, 1, 1})})[0].ok());
  }
  SECTION("initialize raising") {
    ModelSpec spec = MakeModel(dir, "add_sub", "init", 0, kAddSubInputs, kAddSubOutputs);
    // Without OUTPUT1 in the config, initialize's config lookup fails.
    spec.outputs.erase(spec.outputs.begin() + 1);
    spec.config_json = ConfigJson(spec);
    auto model = Host().Load(spec);
    try {
      model->CreateInstance();
      FAIL("initialize should have failed");
    } catch (const torii::Error& e) {
      CHECK(std::string(e.what()).find("initialize failed: TypeError") != std::string::npos);
    }
  }
}

TEST_CASE("python runner: print, stderr and Logger reach the log, tagged with the model",
          "[python]") {
  TempDir dir;
  const ModelSpec spec = MakeModel(dir, "printing", "printing", 0,
                                   {{"IN", TORII_TYPE_INT32, {1}}}, {{"OUT", TORII_TYPE_INT32, {1}}});
  auto model = Host().Load(spec);
  {
    auto instance = model->CreateInstance(3);
    REQUIRE(instance->Infer({Tensor::Of<int32_t>("IN", {1}, {7})}).ok());
  }
  // FakeModel::log() holds the lines logged with this model's tag.
  for (const char* line : {"printed while importing", "printed in initialize of printing_3",
                           "written to stderr", "logger info", "logger warning", "logger error",
                           "logger verbose", "logger explicit", "executing 1 request(s) ... done",
                           "printed from a thread", "finalized"}) {
    INFO(line << "\nlog:\n" << JoinedLog(*model));
    CHECK(LogContains(*model, line));
  }
}

TEST_CASE("python runner: async def execute", "[python]") {
  TempDir dir;
  const ModelSpec spec = MakeModel(dir, "async_add", "async_add", 0,
                                   {{"IN", TORII_TYPE_INT64, {2}}}, {{"OUT", TORII_TYPE_INT64, {2}}});
  auto instance = Host().Load(spec)->CreateInstance();
  for (int64_t i = 0; i < 3; ++i) {
    const Response r = instance->Infer({Tensor::Of<int64_t>("IN", {2}, {i, -i})});
    REQUIRE(r.ok());
    CHECK(r.output("OUT").values<int64_t>() == std::vector<int64_t>{i + 1, 1 - i});
  }
}

TEST_CASE("python runner: inputs are read-only views of the host's bytes", "[python]") {
  TempDir dir;
  const ModelSpec spec = MakeModel(dir, "keeps_input", "keeps", 0,
                                   {{"IN", TORII_TYPE_FP32, {2}}}, {{"OUT", TORII_TYPE_BOOL, {2}}});
  auto model = Host().Load(spec);
  auto instance = model->CreateInstance();
  const Response r = instance->Infer({Tensor::Of<float>("IN", {2}, {1, 2})});
  REQUIRE(r.ok());
  // [writeable, owndata]: a read-only view, not a copy.
  CHECK(r.output("OUT").data == std::string("\0\0", 2));
  // The model kept the view past execute: the runner noticed and said so.
  CHECK(LogContains(*model, "still holds input 'IN'"));
  // Writing into an input fails, and the message says what to do.
  const Response w = instance->Infer({Tensor::Of<float>("IN", {2}, {-1, 2})});
  CHECK(w.message ==
        "ValueError: assignment destination is read-only (request inputs are read-only views "
        "of the server's memory: copy one with np.array(x) before changing it)");
}

TEST_CASE("python runner: instances of one process take turns on the GIL", "[python]") {
  TempDir dir;
  const ModelSpec spec = MakeModel(dir, "add_sub", "add_sub", 0, kAddSubInputs, kAddSubOutputs);
  auto model = Host().Load(spec);
  auto i0 = model->CreateInstance(0);
  auto i1 = model->CreateInstance(1);
  auto run = [](torii::testing::FakeInstance* inst, float base, int* bad) {
    for (int k = 0; k < 200; ++k) {
      const float x = base + float(k);
      const Response r = inst->Execute({AddSubRequest({x, x, x, x}, {1, 2, 3, 4}, {"OUTPUT0"})})[0];
      if (!r.ok() || r.output("OUTPUT0").values<float>()[3] != x + 4) ++*bad;
    }
  };
  int bad0 = 0, bad1 = 0;
  std::thread t0(run, i0.get(), 0.0f, &bad0);
  std::thread t1(run, i1.get(), 1000.0f, &bad1);
  t0.join();
  t1.join();
  CHECK(bad0 == 0);
  CHECK(bad1 == 0);
}

TEST_CASE("python runner: an already complete config passes auto_complete_config unchanged",
          "[python]") {
  TempDir dir;
  const ModelSpec spec = MakeModel(
      dir, "autocomplete", "ac", 4, kAddSubInputs,
      {{"OUTPUT0", TORII_TYPE_FP32, {4}}, {"OUTPUT1", TORII_TYPE_FP32, {4}}},
      "\"dynamic_batching\":{}");
  auto instance = Host().Load(spec)->CreateInstance();
  Request r;
  r.inputs = {Tensor::Of<float>("INPUT0", {1, 4}, {1, 2, 3, 4}),
              Tensor::Of<float>("INPUT1", {1, 4}, {4, 3, 2, 1})};
  const Response out = instance->Execute({r})[0];
  REQUIRE(out.ok());
  CHECK(out.output("OUTPUT0").values<float>() == std::vector<float>{5, 5, 5, 5});
}

TEST_CASE("python runner: the model template serves", "[python]") {
  TempDir dir;
  const ModelSpec spec = MakeModelFrom(
      dir, std::string(TORII_PYTHON_TEMPLATE_DIR) + "/my_model/1/model.py", "my_model", 8,
      {{"FEATURES", TORII_TYPE_FP32, {-1}}},
      {{"SCORES", TORII_TYPE_FP32, {-1}}, {"LABEL", TORII_TYPE_BYTES, {1}}},
      "\"dynamic_batching\":{\"max_queue_delay_microseconds\":\"500\"}",
      {{"mean", "0.5"}, {"std", "2.0"}});
  auto model = Host().Load(spec);
  auto instance = model->CreateInstance();
  std::vector<Request> requests(2);
  requests[0].inputs = {Tensor::Of<float>("FEATURES", {2, 2}, {0.5f, 2.5f, -1.5f, 0.5f})};
  requests[1].inputs = {Tensor::Of<float>("FEATURES", {1, 2}, {NAN, 1})};
  const auto out = instance->Execute(requests);
  REQUIRE(out[0].ok());
  CHECK(out[0].output("SCORES").values<float>() == std::vector<float>{0, 1, -1, 0});
  CHECK(out[0].output("LABEL").strings() == std::vector<std::string>{"high", "low"});
  CHECK(out[1].code == TORII_STATUS_INVALID_ARGUMENT);
  CHECK(out[1].message == "FEATURES contains NaN");
  CHECK(LogContains(*model, "my_model: mean 0.5, std 2"));
}

TEST_CASE("python runner: BF16 reaches PyTorch through DLPack", "[python][torch]") {
  if (std::system((std::string(TORII_PYTHON_EXECUTABLE) +
                   " -c 'import torch' >/dev/null 2>&1").c_str()) != 0) {
    WARN("python3-torch is not installed: BF16 through DLPack not tested");
    return;
  }
  TempDir dir;
  const ModelSpec spec = MakeModel(dir, "bf16", "bf16", 0, {{"IN", TORII_TYPE_BF16, {4}}},
                                   {{"OUT", TORII_TYPE_BF16, {4}}, {"NOTE", TORII_TYPE_BYTES, {1}}});
  auto instance = Host().Load(spec)->CreateInstance();
  // bfloat16: 1.0, 2.0, -1.5, 0.5 -> doubled: 2.0, 4.0, -3.0, 1.0.
  const std::vector<uint16_t> in = {0x3F80, 0x4000, 0xBFC0, 0x3F00};
  const std::vector<uint16_t> want = {0x4000, 0x4080, 0xC040, 0x3F80};
  const Response r = instance->Infer(
      {Tensor{"IN", TORII_TYPE_BF16, {4}, std::string(reinterpret_cast<const char*>(in.data()), 8)}});
  REQUIRE(r.ok());
  REQUIRE(r.output("OUT").data.size() == 8);
  std::vector<uint16_t> got(4);
  std::memcpy(got.data(), r.output("OUT").data.data(), 8);
  CHECK(got == want);
  CHECK(r.output("NOTE").strings().at(0).find("BF16, which numpy cannot represent") !=
        std::string::npos);
}

TEST_CASE("python runner: EXECUTION_ENV_PATH that cannot work is a load error naming it",
          "[python]") {
  TempDir dir;
  auto spec_with = [&](const std::string& env) {
    return MakeModel(dir, "add_sub", "env", 0, kAddSubInputs, kAddSubOutputs, "",
                     {{"EXECUTION_ENV_PATH", env}});
  };
  SECTION("missing") {
    const std::string e = LoadError(spec_with("/nonexistent/torii-env"));
    CHECK(e.find("EXECUTION_ENV_PATH '/nonexistent/torii-env' does not exist") !=
          std::string::npos);
  }
  SECTION("relative") {
    CHECK(LoadError(spec_with("envs/py")).find("must be an absolute path") != std::string::npos);
  }
  SECTION("an archive") {
    WriteFile(dir.path() + "/env/py.tar.gz", "not really");
    const std::string e = LoadError(spec_with("$$TRITON_MODEL_DIRECTORY/py.tar.gz"));
    CHECK(e.find("(" + dir.path() + "/env/py.tar.gz) is a file") != std::string::npos);
  }
  SECTION("no bin/python3") {
    std::filesystem::create_directories(dir.path() + "/emptyenv");
    CHECK(LoadError(spec_with(dir.path() + "/emptyenv")).find("has no bin/python3") !=
          std::string::npos);
  }
  SECTION("another Python version") {
    const std::string env = dir.path() + "/py39";
    WriteFile(env + "/pyvenv.cfg", "home = /usr/bin\nversion = 3.9.18\n");
    WriteFile(env + "/bin/python3", "");
    const std::string e = LoadError(spec_with(env));
    CHECK(e.find("holds Python 3.9") != std::string::npos);
    CHECK(e.find("this runner embeds Python 3.11") != std::string::npos);
  }
}

}  // namespace
}  // namespace torii_python_test
