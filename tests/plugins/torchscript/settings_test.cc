// plugins/torchscript/settings.cc on its own: config parsing, naming rules
// and error summaries, without LibTorch.
#include "settings.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include <catch2/catch.hpp>

namespace torii {
namespace torchscript {
namespace {

ParameterLookup Params(std::map<std::string, std::string> values) {
  return [values](const std::string& key) -> std::optional<std::string> {
    auto it = values.find(key);
    if (it == values.end()) return std::nullopt;
    return it->second;
  };
}

const std::vector<TensorSpec> kInputs = {{"INPUT__0", TORII_TYPE_FP32, {-1, 4}},
                                         {"INPUT__1", TORII_TYPE_INT64, {2}}};

Settings Parse(const std::string& json, std::map<std::string, std::string> params = {},
               int32_t max_batch_size = 8) {
  return ParseSettings("m", json, Params(std::move(params)), "/repo/m", max_batch_size, kInputs);
}

std::string ParseError(const std::string& json, std::map<std::string, std::string> params = {},
                       int32_t max_batch_size = 8) {
  try {
    Parse(json, std::move(params), max_batch_size);
  } catch (const Error& e) {
    CHECK(e.code() == TORII_STATUS_INVALID_ARGUMENT);
    return e.what();
  }
  FAIL("parsed without error: " << json);
  return "";
}

TEST_CASE("settings default to Triton's") {
  const Settings s = Parse("{}");
  CHECK(s.model_filename == "model.pt");
  CHECK(s.intra_op_thread_count == 0);
  CHECK(s.inter_op_thread_count == 0);
  CHECK_FALSE(s.disable_optimized_execution);
  CHECK(s.warmup.empty());
  CHECK(Parse("").model_filename == "model.pt");  // an empty config is {}
}

TEST_CASE("parameters and default_model_filename are read") {
  const Settings s = Parse(R"({"default_model_filename": "net.pt"})",
                           {{"INTRA_OP_THREAD_COUNT", "4"},
                            {"INTER_OP_THREAD_COUNT", "2"},
                            {"DISABLE_OPTIMIZED_EXECUTION", "True"}});
  CHECK(s.model_filename == "net.pt");
  CHECK(s.intra_op_thread_count == 4);
  CHECK(s.inter_op_thread_count == 2);
  CHECK(s.disable_optimized_execution);
  CHECK_THAT(ParseError(R"({"default_model_filename": "../x.pt"})"),
             Catch::Contains("must be a file name"));
  CHECK_THAT(ParseError("{}", {{"INTRA_OP_THREAD_COUNT", "4 "}}),
             Catch::Contains("INTRA_OP_THREAD_COUNT must be an integer"));
  CHECK_THAT(ParseError("[1, 2]"), Catch::Contains("not a JSON object"));
}

TEST_CASE("booleans are read as Triton reads them") {
  for (const char* t : {"true", "TRUE", "1", "on", "yes"}) CHECK(ParseBool(t) == true);
  for (const char* f : {"false", "False", "0", "off", "no"}) CHECK(ParseBool(f) == false);
  CHECK_FALSE(ParseBool("maybe").has_value());
  CHECK_FALSE(ParseBool("").has_value());
}

TEST_CASE("config datatype names and numbers map to the ABI's") {
  CHECK(DataTypeFromConfig("TYPE_FP32") == TORII_TYPE_FP32);
  CHECK(DataTypeFromConfig("TYPE_STRING") == TORII_TYPE_BYTES);
  CHECK(DataTypeFromConfig("TYPE_BF16") == TORII_TYPE_BF16);
  CHECK(DataTypeFromConfig("11") == TORII_TYPE_FP32);
  CHECK(DataTypeFromConfig("TYPE_FLOAT") == TORII_TYPE_INVALID);
  CHECK(DataTypeFromConfig("15") == TORII_TYPE_INVALID);
  CHECK(TorchCanHold(TORII_TYPE_BF16));
  CHECK(TorchCanHold(TORII_TYPE_UINT8));
  CHECK_FALSE(TorchCanHold(TORII_TYPE_UINT16));
  CHECK_FALSE(TorchCanHold(TORII_TYPE_BYTES));
  CHECK_FALSE(TorchCanHold(TORII_TYPE_INVALID));
}

TEST_CASE("<name>__<index> naming") {
  CHECK(IndexFromName("INPUT__0") == 0);
  CHECK(IndexFromName("OUTPUT__12") == 12);
  CHECK(IndexFromName("my__input__3") == 3);
  CHECK_FALSE(IndexFromName("INPUT0").has_value());
  CHECK_FALSE(IndexFromName("INPUT__").has_value());
  CHECK_FALSE(IndexFromName("INPUT__x1").has_value());
  CHECK_FALSE(IndexFromName("INPUT__-1").has_value());
}

TEST_CASE("model_warmup is read from protobuf JSON") {
  const Settings s = Parse(R"({"model_warmup": [
      {"name": "a", "batch_size": 4, "count": 3, "inputs": {
         "INPUT__0": {"data_type": "TYPE_FP32", "dims": ["5", "4"], "zero_data": true},
         "INPUT__1": {"data_type": 9, "dims": [2], "input_data_file": "ids.bin"}}},
      {"inputs": {
         "INPUT__0": {"data_type": "TYPE_FP32", "dims": ["1", "4"], "random_data": true},
         "INPUT__1": {"data_type": "TYPE_INT64", "dims": ["2"], "zero_data": true}}}]})");
  REQUIRE(s.warmup.size() == 2);
  const WarmupSample& a = s.warmup[0];
  CHECK(a.name == "a");
  CHECK(a.batch_size == 4);
  CHECK(a.count == 3);
  REQUIRE(a.inputs.size() == 2);
  const WarmupInput& in0 = a.inputs[0].name == "INPUT__0" ? a.inputs[0] : a.inputs[1];
  const WarmupInput& in1 = a.inputs[0].name == "INPUT__0" ? a.inputs[1] : a.inputs[0];
  CHECK(in0.dims == std::vector<int64_t>{5, 4});
  CHECK(in0.source == WarmupInput::Source::kZero);
  CHECK(in1.datatype == TORII_TYPE_INT64);
  CHECK(in1.source == WarmupInput::Source::kFile);
  CHECK(in1.file == "/repo/m/warmup/ids.bin");
  // Proto3 leaves zero fields out: batch 1, count 1.
  CHECK(s.warmup[1].batch_size == 1);
  CHECK(s.warmup[1].count == 1);
}

TEST_CASE("model_warmup mistakes are named") {
  const std::string both_inputs =
      R"("INPUT__1": {"data_type": "TYPE_INT64", "dims": ["2"], "zero_data": true})";
  auto sample = [&](const std::string& fields, const std::string& input0) {
    return R"({"model_warmup": [{"name": "w", )" + fields + R"("inputs": {"INPUT__0": )" +
           input0 + ", " + both_inputs + "}}]}";
  };
  const std::string good0 = R"({"data_type": "TYPE_FP32", "dims": ["1", "4"], "zero_data": true})";
  CHECK_THAT(ParseError(sample(R"("batch_size": 9, )", good0)),
             Catch::Contains("batch_size 9 is outside [1, max_batch_size 8]"));
  CHECK_THAT(ParseError(sample(R"("batch_size": 2, )", good0), {}, 0),
             Catch::Contains("batch_size must be 0 or 1"));
  CHECK_THAT(ParseError(sample("", R"({"data_type": "TYPE_FP16", "dims": ["1", "4"], "zero_data": true})")),
             Catch::Contains("input 'INPUT__0' has data_type FP16, the input is declared FP32"));
  CHECK_THAT(ParseError(sample("", R"({"data_type": "TYPE_FP32", "dims": ["1", "5"], "zero_data": true})")),
             Catch::Contains("dims [1,5] do not fit the declared dims [-1,4]"));
  CHECK_THAT(ParseError(sample("", R"({"data_type": "TYPE_FP32", "dims": ["1", "4"]})")),
             Catch::Contains("sets none of zero_data, random_data, input_data_file"));
  CHECK_THAT(ParseError(R"({"model_warmup": [{"name": "w", "inputs": {"INPUT__0": )" + good0 + "}}]}"),
             Catch::Contains("model_warmup 'w' does not set input 'INPUT__1'"));
  CHECK_THAT(ParseError(R"({"model_warmup": {"name": "w"}})"),
             Catch::Contains("model_warmup must be a list"));
  CHECK_THAT(ParseError(sample(R"("count": "many", )", good0)),
             Catch::Contains("count must be an integer"));
}

TEST_CASE("warm-up bytes: zeros, deterministic random values, files") {
  WarmupInput in;
  in.name = "x";
  in.datatype = TORII_TYPE_FP16;
  in.source = WarmupInput::Source::kZero;
  CHECK(WarmupInputBytes(in, {2, 3}) == std::string(12, '\0'));

  in.source = WarmupInput::Source::kRandom;
  const std::string r1 = WarmupInputBytes(in, {2, 3});
  CHECK(r1 == WarmupInputBytes(in, {2, 3}));
  REQUIRE(r1.size() == 12);
  for (size_t i = 0; i < 6; ++i) {
    uint16_t h;
    std::memcpy(&h, r1.data() + 2 * i, 2);
    CHECK(h < 0x3c00);  // below 1.0 and not negative
  }
  in.datatype = TORII_TYPE_INT64;
  const std::string ids = WarmupInputBytes(in, {16});
  for (size_t i = 0; i < 16; ++i) {
    int64_t v;
    std::memcpy(&v, ids.data() + 8 * i, 8);
    CHECK((v == 0 || v == 1));
  }

  const std::string path = std::filesystem::temp_directory_path() / "torii_settings_test.bin";
  std::ofstream(path, std::ios::binary) << std::string(16, 'a');
  in.source = WarmupInput::Source::kFile;
  in.file = path;
  CHECK(WarmupInputBytes(in, {2}) == std::string(16, 'a'));
  CHECK_THROWS_WITH(WarmupInputBytes(in, {3}), Catch::Contains("holds 16 bytes"));
  std::filesystem::remove(path);
}

TEST_CASE("torch error text becomes one line") {
  // As LibTorch 1.13 reports a shape error inside a scripted forward().
  const std::string interpreter =
      "The following operation failed in the TorchScript interpreter.\n"
      "Traceback of TorchScript, serialized code (most recent call last):\n"
      "  File \"code/__torch__.py\", line 12, in forward\n"
      "    h = torch.relu(torch.linear(x, w1, b1))\n"
      "                   ~~~~~~~~~~~~ <--- HERE\n"
      "\n"
      "Traceback of TorchScript, original code (most recent call last):\n"
      "  File \"<string>\", line 3, in forward\n"
      "RuntimeError: mat1 and mat2 shapes cannot be multiplied (1x3 and 64x256)\n";
  CHECK(SummarizeTorchError(interpreter) ==
        "mat1 and mat2 shapes cannot be multiplied (1x3 and 64x256)");
  CHECK(SummarizeTorchError("The following operation failed in the TorchScript interpreter.\n"
                            "builtins.ValueError: ids must not be negative\n") ==
        "builtins.ValueError: ids must not be negative");
  CHECK(SummarizeTorchError("AssertionError: ids must not be negative") ==
        "AssertionError: ids must not be negative");
  CHECK(SummarizeTorchError("index 5 is out of bounds for dimension 0 with size 3\n"
                            "Exception raised from foo at bar.cpp:1 (most recent call first):\n"
                            "frame #0: ...") ==
        "index 5 is out of bounds for dimension 0 with size 3");
  CHECK(SummarizeTorchError("") == "unknown torch error");
}

}  // namespace
}  // namespace torchscript
}  // namespace torii
