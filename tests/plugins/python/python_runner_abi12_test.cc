// The Python runner's ABI 1.2 features through the SDK's fake host:
// decoupled models (response senders, from threads, after execute), calls
// to other models (Triton's BLS), auto-complete, request ids and parameters,
// provenance properties. Expected values are computed here, never by the
// code under test.
#include <cstdio>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "python_test_util.h"

namespace torii_python_test {
namespace {

using json = nlohmann::json;
using torii::Parameter;
using torii::testing::Stream;

const char kDecoupled[] = "\"model_transaction_policy\":{\"decoupled\":true}";

ModelSpec RepeatModel(const TempDir& dir) {
  ModelSpec spec = MakeModel(dir, "decoupled_repeat", "repeat", 0,
                             {{"IN", TORII_TYPE_INT32, {-1}},
                              {"DELAY", TORII_TYPE_UINT32, {-1}},
                              {"WAIT", TORII_TYPE_UINT32, {1}}},
                             {{"OUT", TORII_TYPE_INT32, {1}}, {"IDX", TORII_TYPE_UINT32, {1}}},
                             kDecoupled);
  spec.decoupled = true;
  return spec;
}

Request RepeatRequest(std::vector<int32_t> values, uint32_t delay_ms, uint32_t wait_ms) {
  Request r;
  const int64_t n = static_cast<int64_t>(values.size());
  r.inputs = {Tensor::Of<int32_t>("IN", {n}, values),
              Tensor::Of<uint32_t>("DELAY", {n}, std::vector<uint32_t>(values.size(), delay_ms)),
              Tensor::Of<uint32_t>("WAIT", {1}, {wait_ms})};
  return r;
}

std::string Sha256Of(const std::string& path) {
  std::string cmd = "sha256sum '" + path + "'";
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[128] = {0};
  const size_t n = fread(buf, 1, 64, p);
  pclose(p);
  return std::string(buf, n);
}

std::string CommandOutput(const std::string& cmd) {
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[256];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

TEST_CASE("python runner 1.2: a decoupled model answers from a thread after execute returned",
          "[python]") {
  TempDir dir;
  auto model = Host().Load(RepeatModel(dir));
  auto instance = model->CreateInstance();
  const std::vector<int32_t> values = {10, -20, 30, 40};

  std::shared_ptr<Stream> stream = instance->Submit(RepeatRequest(values, 20, 0));
  // execute() returned at once; the responses come later, from the model's
  // thread, which still reads the request's IN values.
  CHECK_FALSE(stream->finished());
  const auto responses = stream->Wait();
  REQUIRE(responses.size() == values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    REQUIRE(responses[i].ok());
    CHECK(responses[i].output("OUT").values<int32_t>() == std::vector<int32_t>{values[i]});
    CHECK(responses[i].output("IDX").values<uint32_t>() == std::vector<uint32_t>{uint32_t(i)});
  }

  SECTION("no elements: only the final flag") {
    CHECK(instance->Submit(RepeatRequest({}, 0, 0))->Wait().empty());
  }
  SECTION("two requests in flight at once keep their own order") {
    auto a = instance->Submit(RepeatRequest({1, 2, 3}, 15, 0));
    auto b = instance->Submit(RepeatRequest({7, 8}, 10, 0));
    const auto ra = a->Wait();
    const auto rb = b->Wait();
    REQUIRE(ra.size() == 3);
    REQUIRE(rb.size() == 2);
    CHECK(ra[2].output("OUT").values<int32_t>()[0] == 3);
    CHECK(rb[1].output("OUT").values<int32_t>()[0] == 8);
  }
  SECTION("a cancelled request stops early and still ends") {
    auto s = instance->Submit(RepeatRequest({1, 2, 3, 4, 5, 6, 7, 8}, 40, 0));
    s->WaitForResponses(1);
    s->Cancel();
    const auto got = s->Wait();
    CHECK(got.size() < 8);
  }
}

TEST_CASE("python runner 1.2: a decoupled execute that raises ends its requests with the error",
          "[python]") {
  TempDir dir;
  ModelSpec spec = MakeModel(dir, "decoupled_raise", "raiser", 0, {{"IN", TORII_TYPE_INT32, {1}}},
                             {{"OUT", TORII_TYPE_INT32, {1}}}, kDecoupled);
  spec.decoupled = true;
  auto model = Host().Load(spec);
  auto instance = model->CreateInstance();
  Request r;
  r.inputs = {Tensor::Of<int32_t>("IN", {1}, {0})};
  const auto responses = instance->Submit(r)->Wait();
  REQUIRE(responses.size() == 2);
  CHECK(responses[0].ok());
  CHECK(responses[1].code == TORII_STATUS_INTERNAL);
  CHECK(responses[1].message == "RuntimeError: broke after the first response");
  CHECK(LogContains(*model, "Traceback"));
}

TEST_CASE("python runner 1.2: async def execute in a decoupled model", "[python]") {
  TempDir dir;
  ModelSpec spec = MakeModel(dir, "decoupled_async", "stream_async", 0,
                             {{"IN", TORII_TYPE_INT32, {1}}}, {{"OUT", TORII_TYPE_INT32, {1}}},
                             kDecoupled);
  spec.decoupled = true;
  auto instance = Host().Load(spec)->CreateInstance();
  Request r;
  r.inputs = {Tensor::Of<int32_t>("IN", {1}, {3})};
  const auto responses = instance->Submit(r)->Wait();
  REQUIRE(responses.size() == 3);
  for (int32_t i = 0; i < 3; ++i) {
    CHECK(responses[size_t(i)].output("OUT").values<int32_t>() == std::vector<int32_t>{i});
  }
}

TEST_CASE("python runner 1.2: a default-mode model may answer through its sender", "[python]") {
  TempDir dir;
  const ModelSpec spec = MakeModel(dir, "sender_default", "sender", 0,
                                   {{"IN", TORII_TYPE_FP64, {2}}}, {{"OUT", TORII_TYPE_FP64, {2}}});
  auto instance = Host().Load(spec)->CreateInstance();
  const Response r = instance->Infer({Tensor::Of<double>("IN", {2}, {1.5, -2})});
  REQUIRE(r.ok());
  CHECK(r.output("OUT").values<double>() == std::vector<double>{4.5, -6});
}

TEST_CASE("python runner 1.2: batched outputs of different shapes go back one by one",
          "[python]") {
  TempDir dir;
  const ModelSpec spec = MakeModel(dir, "ragged", "ragged", 4, {{"IN", TORII_TYPE_INT32, {1}}},
                                   {{"OUT", TORII_TYPE_INT32, {-1}}}, "\"dynamic_batching\":{}");
  auto instance = Host().Load(spec)->CreateInstance();
  std::vector<Request> requests(3);
  const std::vector<int32_t> n = {2, 3, 2};
  for (size_t i = 0; i < 3; ++i) requests[i].inputs = {Tensor::Of<int32_t>("IN", {1, 1}, {n[i]})};
  const auto out = instance->Execute(requests);
  for (size_t i = 0; i < 3; ++i) {
    REQUIRE(out[i].ok());
    CHECK(out[i].output("OUT").shape == std::vector<int64_t>{1, n[i]});
    CHECK(out[i].output("OUT").values<int32_t>() == std::vector<int32_t>(size_t(n[i]), n[i]));
  }
}

TEST_CASE("python runner 1.2: request ids and parameters reach the model", "[python]") {
  TempDir dir;
  const ModelSpec spec = BatchingModel(dir);
  auto instance = Host().Load(spec)->CreateInstance();
  std::vector<Request> requests(2);
  for (size_t i = 0; i < 2; ++i) {
    requests[i].inputs = {Tensor::Of<float>("IN", {1, 3}, {1, 2, 3})};
    requests[i].id = "req-" + std::to_string(i);
  }
  Parameter temperature;
  temperature.type = TORII_PARAMETER_DOUBLE;
  temperature.double_value = 0.5;
  Parameter steps;
  steps.type = TORII_PARAMETER_INT64;
  steps.int64_value = -3;
  Parameter flag;
  flag.type = TORII_PARAMETER_BOOL;
  flag.bool_value = true;
  Parameter text;
  text.type = TORII_PARAMETER_STRING;
  text.string_value = "h\xc3\xa9";
  requests[1].parameters = {{"temperature", temperature}, {"steps", steps}, {"flag", flag},
                            {"text", text}};
  requests[1].requested_outputs = {"ID", "PARAMS"};
  const auto out = instance->Execute(requests);
  REQUIRE(out[0].ok());
  REQUIRE(out[1].ok());
  CHECK(out[0].output("ID").strings().at(0) == "req-0");
  CHECK(out[1].output("ID").strings().at(0) == "req-1");
  CHECK(json::parse(out[0].output("PARAMS").strings().at(0)) == json::object());
  CHECK(json::parse(out[1].output("PARAMS").strings().at(0)) ==
        json{{"temperature", 0.5}, {"steps", -3}, {"flag", true}, {"text", "h\xc3\xa9"}});
  // Request 1 named its outputs: it gets only those.
  CHECK(out[1].outputs.size() == 2);
}

TEST_CASE("python runner 1.2: a sender a model keeps past unload refuses to send", "[python]") {
  TempDir dir;
  ModelSpec spec = MakeModel(dir, "late_sender", "late", 0, {{"IN", TORII_TYPE_INT32, {1}}},
                             {{"OUT", TORII_TYPE_INT32, {1}}}, kDecoupled);
  spec.decoupled = true;
  std::shared_ptr<Stream> stream;
  {
    auto model = Host().Load(spec);
    auto instance = model->CreateInstance();
    Request r;
    r.inputs = {Tensor::Of<int32_t>("IN", {1}, {0})};
    stream = instance->Submit(r);
  }  // unloaded while the model's thread still holds the sender
  const auto responses = stream->Wait();
  REQUIRE(responses.size() == 1);
  CHECK(responses[0].code == TORII_STATUS_INTERNAL);  // the host ended it at unload
  const std::string result = spec.version_directory + "/late_send.txt";
  for (int i = 0; i < 100 && !std::filesystem::exists(result); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(ReadFile(result) ==
        "refused: the model was unloaded; the server ended this request");
}

// A model served by the fake host: OUTPUT0 = INPUT0 + INPUT1,
// OUTPUT1 = INPUT0 - INPUT1 (FP32), plus `scale` on OUTPUT0.
torii::testing::ModelHandler AddSubHandler(float scale, std::vector<Request>* seen,
                                           std::mutex* mu) {
  return [=](const Request& r) {
    if (seen != nullptr) {
      std::lock_guard<std::mutex> lock(*mu);
      seen->push_back(r);
    }
    std::vector<float> a, b;
    std::vector<int64_t> shape;
    for (const auto& t : r.inputs) {
      if (t.name == "INPUT0") {
        a = t.values<float>();
        shape = t.shape;
      }
      if (t.name == "INPUT1") b = t.values<float>();
    }
    std::vector<float> s(a.size()), d(a.size());
    for (size_t i = 0; i < a.size(); ++i) {
      s[i] = (a[i] + b[i]) * scale;
      d[i] = a[i] - b[i];
    }
    Response out;
    out.outputs = {Tensor::Of<float>("OUTPUT0", shape, s), Tensor::Of<float>("OUTPUT1", shape, d)};
    return std::vector<Response>{out};
  };
}

ModelSpec BlsModel(const TempDir& dir, const std::string& source, const std::string& name,
                   bool with_model_name = true) {
  std::vector<TensorSpec> inputs = {{"INPUT0", TORII_TYPE_FP32, {4}},
                                    {"INPUT1", TORII_TYPE_FP32, {4}}};
  if (with_model_name) inputs.insert(inputs.begin(), {"MODEL_NAME", TORII_TYPE_BYTES, {1}});
  return MakeModel(dir, source, name, 0, inputs,
                   {{"OUTPUT0", TORII_TYPE_FP32, {4}}, {"OUTPUT1", TORII_TYPE_FP32, {4}}});
}

Request BlsRequest(const std::string& model, std::vector<float> a, std::vector<float> b) {
  Request r;
  r.inputs = {Tensor::Strings("MODEL_NAME", {1}, {model}), Tensor::Of<float>("INPUT0", {4}, a),
              Tensor::Of<float>("INPUT1", {4}, b)};
  r.id = "7";
  return r;
}

TEST_CASE("python runner 1.2: exec() calls another model", "[python]") {
  TempDir dir;
  std::vector<Request> seen;
  std::mutex mu;
  Host().AddModel("adder", AddSubHandler(1, &seen, &mu));
  auto instance = Host().Load(BlsModel(dir, "bls", "bls_sync"))->CreateInstance();
  const std::vector<float> a = {1, 2, 3, 4}, b = {0.5f, 0.5f, -1, 8};

  const Response r = instance->Execute({BlsRequest("adder", a, b)})[0];
  REQUIRE(r.ok());
  for (size_t i = 0; i < 4; ++i) {
    CHECK(r.output("OUTPUT0").values<float>()[i] == a[i] + b[i]);
    CHECK(r.output("OUTPUT1").values<float>()[i] == a[i] - b[i]);
  }
  std::lock_guard<std::mutex> lock(mu);
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].id == "bls-7");
  CHECK(seen[0].requested_outputs == std::vector<std::string>{"OUTPUT0", "OUTPUT1"});
  CHECK(seen[0].parameters.at("origin").string_value == "bls");
  CHECK(seen[0].parameters.at("depth").int64_value == 1);

  SECTION("an unknown model: the call's error fails the request") {
    const Response e = instance->Execute({BlsRequest("no_such_model", a, b)})[0];
    CHECK(e.code == TORII_STATUS_INTERNAL);
    CHECK(e.message.find("TritonModelException:") == 0);
    CHECK(e.message.find("no_such_model") != std::string::npos);
  }
}

TEST_CASE("python runner 1.2: a Python model calls a Python model", "[python]") {
  TempDir dir;
  auto add_sub = Host().Load(MakeModel(
      dir, "add_sub", "add_sub_py", 0,
      {{"INPUT0", TORII_TYPE_FP32, {4}}, {"INPUT1", TORII_TYPE_FP32, {4}}},
      {{"OUTPUT0", TORII_TYPE_FP32, {4}}, {"OUTPUT1", TORII_TYPE_FP32, {4}}}));
  Host().AddModel(add_sub);
  auto instance = Host().Load(BlsModel(dir, "bls", "bls_py"))->CreateInstance();
  const Response r =
      instance->Execute({BlsRequest("add_sub_py", {1, 2, 3, 4}, {4, 3, 2, 1})})[0];
  REQUIRE(r.ok());
  CHECK(r.output("OUTPUT0").values<float>() == std::vector<float>{5, 5, 5, 5});
  CHECK(r.output("OUTPUT1").values<float>() == std::vector<float>{-3, -1, 1, 3});
}

TEST_CASE("python runner 1.2: async_exec() and asyncio.gather in async def execute",
          "[python]") {
  TempDir dir;
  Host().AddModel("model_a", AddSubHandler(1, nullptr, nullptr));
  Host().AddModel("model_b", AddSubHandler(100, nullptr, nullptr));
  auto instance =
      Host().Load(BlsModel(dir, "bls_async", "bls_async", /*with_model_name=*/false))
          ->CreateInstance();
  Request r;
  r.inputs = {Tensor::Of<float>("INPUT0", {4}, {1, 2, 3, 4}),
              Tensor::Of<float>("INPUT1", {4}, {1, 1, 1, 1})};
  const Response out = instance->Execute({r})[0];
  REQUIRE(out.ok());
  CHECK(out.output("OUTPUT0").values<float>() == std::vector<float>{2, 3, 4, 5});   // model_a
  CHECK(out.output("OUTPUT1").values<float>() == std::vector<float>{0, 1, 2, 3});   // model_b
}

TEST_CASE("python runner 1.2: exec(decoupled=True) iterates a stream of responses", "[python]") {
  TempDir dir;
  Host().AddModel("stream", [](const Request& r) {
    const int32_t n = r.inputs.at(0).values<int32_t>().at(0);
    std::vector<Response> out;
    for (int32_t i = 1; i <= n; ++i) {
      Response resp;
      resp.outputs = {Tensor::Of<int32_t>("OUT", {1}, {i})};
      out.push_back(resp);
    }
    return out;
  });
  auto instance = Host().Load(MakeModel(dir, "bls_decoupled", "bls_stream", 0,
                                        {{"IN", TORII_TYPE_INT32, {1}}},
                                        {{"SUM", TORII_TYPE_INT64, {1}},
                                         {"COUNT", TORII_TYPE_INT64, {1}}}))
                      ->CreateInstance();
  const Response r = instance->Infer({Tensor::Of<int32_t>("IN", {1}, {4})});
  REQUIRE(r.ok());
  CHECK(r.output("SUM").values<int64_t>() == std::vector<int64_t>{1 + 2 + 3 + 4});
  CHECK(r.output("COUNT").values<int64_t>() == std::vector<int64_t>{4});
}

TEST_CASE("python runner 1.2: auto_complete_config completes a folder with no config",
          "[python]") {
  TempDir dir;
  ModelSpec spec = MakeModel(dir, "autocomplete", "ac", 0, {}, {});
  REQUIRE(spec.config_json == "{\"name\":\"ac\",\"backend\":\"python\"}");
  auto model = Host().Load(spec);
  REQUIRE(model->completed_config_json().has_value());
  const json completed = json::parse(*model->completed_config_json());
  CHECK(completed["max_batch_size"] == 4);
  CHECK(completed.contains("dynamic_batching"));
  CHECK(completed["input"].size() == 2);
  CHECK(completed["output"][1]["name"] == "OUTPUT1");
  CHECK(completed["name"] == "ac");
  CHECK(model->spec().max_batch_size == 4);
  REQUIRE(model->spec().inputs.size() == 2);
  auto instance = model->CreateInstance();
  Request r;
  r.inputs = {Tensor::Of<float>("INPUT0", {2, 4}, {1, 2, 3, 4, 5, 6, 7, 8}),
              Tensor::Of<float>("INPUT1", {2, 4}, {1, 1, 1, 1, 1, 1, 1, 1})};
  const Response out = instance->Execute({r})[0];
  REQUIRE(out.ok());
  CHECK(out.output("OUTPUT1").values<float>() == std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7});

  SECTION("a config that contradicts the model is refused, naming both") {
    ModelSpec bad = MakeModel(dir, "autocomplete", "ac_bad", 0, {},
                              {{"OUTPUT0", TORII_TYPE_INT32, {4}}});
    const std::string e = LoadError(bad);
    CHECK(e.find("auto_complete_config failed: ValueError: unable to load model 'ac_bad', "
                 "configuration expects datatype TYPE_INT32 for output 'OUTPUT0', model "
                 "provides TYPE_FP32") != std::string::npos);
  }
}

TEST_CASE("python runner 1.2: provenance: interpreter, model.py hash, imported packages",
          "[python]") {
  TempDir dir;
  ModelSpec spec = MakeModel(dir, "add_sub", "prov", 0,
                             {{"INPUT0", TORII_TYPE_FP32, {4}}, {"INPUT1", TORII_TYPE_FP32, {4}}},
                             {{"OUTPUT0", TORII_TYPE_FP32, {4}}, {"OUTPUT1", TORII_TYPE_FP32, {4}}});
  auto model = Host().Load(spec);
  auto instance = model->CreateInstance();
  const auto props = model->properties();
  const std::string python =
      CommandOutput(std::string(TORII_PYTHON_EXECUTABLE) +
                    " -c 'import platform, numpy; print(platform.python_version(), "
                    "numpy.__version__)'");
  const std::string py_version = python.substr(0, python.find(' '));
  const std::string np_version = python.substr(python.find(' ') + 1);
  CHECK(props.at("python_version") == py_version);
  CHECK(props.at("model_file") == "model.py");
  CHECK(props.at("model_sha256") == Sha256Of(spec.version_directory + "/model.py"));
  CHECK(props.at("python_packages").find("numpy==" + np_version) != std::string::npos);
  CHECK(props.at("python_prefix") == "/usr");
}

}  // namespace
}  // namespace torii_python_test
