// Runs the real torii-runner binary: check passes on the example models and
// fails, naming the check and the reason, on one broken runner per check
// (fixtures/); infer prints the right JSON; bench reports every batch size;
// the runner is found where the server would find it.
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/util/temp_dir.h"

namespace {

struct RunResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

std::string Quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') {
      q += "'\\''";
    } else {
      q += c;
    }
  }
  return q + "'";
}

RunResult Run(const std::vector<std::string>& args, bool merge_stderr = true) {
  std::string command = Quote(TORII_RUNNER_BIN);
  for (const auto& a : args) command += " " + Quote(a);
  // Every run is bounded even if the tool itself misbehaves.
  command = "timeout 100 " + command + (merge_stderr ? " 2>&1" : " 2>/dev/null");
  RunResult r;
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) r.output.append(buffer, n);
  const int status = pclose(pipe);
  REQUIRE(WIFEXITED(status));
  r.exit_code = WEXITSTATUS(status);
  UNSCOPED_INFO("torii-runner exit " << r.exit_code << ":\n" << r.output);
  return r;
}

std::string Example(const std::string& model) {
  return std::string(TORII_EXAMPLES_DIR) + "/" + model;
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// A temporary model directory whose config names runner `name`, with the
// runner library copied to <model>/<where> ("" = the model directory).
class TempModel {
 public:
  TempModel(const std::string& name, const std::string& library, const std::string& where = "")
      : root_("torii-runner-test-") {
    dir_ = root_.path() + "/" + name;
    REQUIRE(mkdir(dir_.c_str(), 0755) == 0);
    REQUIRE(mkdir((dir_ + "/1").c_str(), 0755) == 0);
    std::ofstream(dir_ + "/config.pbtxt")
        << "name: \"" << name << "\"\nbackend: \"" << name << "\"\nmax_batch_size: 8\n"
        << "input [ { name: \"INPUT0\" data_type: TYPE_FP32 dims: [ -1 ] } ]\n"
        << "output [ { name: \"OUTPUT0\" data_type: TYPE_FP32 dims: [ -1 ] } ]\n";
    const std::string dest =
        dir_ + (where.empty() ? "" : "/" + where) + "/libtorii_" + name + ".so";
    std::ifstream src(library, std::ios::binary);
    REQUIRE(src.good());
    std::ofstream(dest, std::ios::binary) << src.rdbuf();
  }
  const std::string& dir() const { return dir_; }

 private:
  torii::testing::TempDir root_;  // under $TMPDIR, removed with everything in it
  std::string dir_;
};

}  // namespace

TEST_CASE("check passes on the example models", "[check]") {
  for (const char* model : {"identity", "add_sub", "identity_bytes"}) {
    SECTION(model) {
      const RunResult r = Run({"check", Example(model)});
      CHECK(r.exit_code == 0);
      CHECK(Contains(r.output, "Result: PASS (8 passed, 0 skipped)"));
      for (const char* check : {"abi", "config", "signature", "batching", "concurrency",
                                "edge-inputs", "memory", "reload"}) {
        std::string name = check;
        name.resize(12, ' ');
        CHECK(Contains(r.output, "[PASS] " + name));
      }
      CHECK_FALSE(Contains(r.output, "[FAIL]"));
    }
  }
}

TEST_CASE("check reports provenance from the runner", "[check]") {
  const RunResult r = Run({"check", Example("identity"), "--skip",
                           "signature,batching,concurrency,edge-inputs,memory,reload"});
  CHECK(r.exit_code == 0);
  CHECK(Contains(r.output, "runner 'identity' 1.0.0, ABI 1."));
  CHECK(Contains(r.output, "sdk 0.1.0"));
  CHECK(Contains(r.output, "[SKIP] memory       skipped (--skip)"));
}

TEST_CASE("check fails on a broken runner, naming the check and the reason", "[check]") {
  struct Case {
    const char* fixture;
    const char* library;
    std::vector<std::string> extra;
    const char* failing_check;
    std::vector<const char*> reason;
    const char* result = nullptr;  // default: "Result: FAIL (1 failed: <check>;"
  };
  const std::vector<Case> cases = {
      {"runner_fixture_wrong_shape", TORII_FIXTURE_WRONG_SHAPE, {}, "signature",
       {"the runner failed on valid generated inputs", "expected shape [1,-1]",
        "the runner produced [3]", "[SKIP] batching     needs a runner that answers valid"},
       "Result: FAIL (1 failed: signature; 3 passed, 4 skipped)"},
      {"runner_fixture_crash_on_empty", TORII_FIXTURE_CRASH_ON_EMPTY, {}, "edge-inputs",
       {"the runner crashed: signal 11 (SIGSEGV", "during case 'empty tensors"}},
      {"runner_fixture_leak", TORII_FIXTURE_LEAK, {}, "memory",
       {"memory grows: 1000 calls", "bytes per call are never given back"},
       "Result: FAIL (2 failed: memory, reload;"},
      {"runner_fixture_batch_dependent", TORII_FIXTURE_BATCH_DEPENDENT, {}, "batching",
       {"request 1 inside a batch of 4 requests", "got other outputs than alone"}},
      {"runner_fixture_shared_scratch", TORII_FIXTURE_SHARED_SCRATCH,
       {"--skip", "memory,reload,edge-inputs"}, "concurrency",
       {"two instances running at once disagree with the serial results"}},
      {"runner_fixture_hang", TORII_FIXTURE_HANG,
       {"--timeout", "1", "--skip", "batching,concurrency,edge-inputs,memory,reload"},
       "signature", {"did not finish within 1 s during inputs INPUT0 FP32 [1,3]"}},
      {"runner_fixture_pinned", TORII_FIXTURE_PINNED, {}, "reload",
       {"the library stays loaded after its model is unloaded"}},
  };
  for (const auto& c : cases) {
    SECTION(c.fixture) {
      TempModel model(c.fixture, c.library);
      std::vector<std::string> args = {"check", model.dir()};
      args.insert(args.end(), c.extra.begin(), c.extra.end());
      const auto start = std::chrono::steady_clock::now();
      const RunResult r = Run(args);
      CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(60));
      CHECK(r.exit_code == 1);
      std::string name = c.failing_check;
      name.resize(12, ' ');
      CHECK(Contains(r.output, "[FAIL] " + name));
      for (const char* reason : c.reason) CHECK(Contains(r.output, reason));
      CHECK(Contains(r.output, c.result != nullptr
                                   ? std::string(c.result)
                                   : "Result: FAIL (1 failed: " + std::string(c.failing_check) + ";"));
      // The checks before the failing one still pass: the failure is pinned
      // on the right check.
      CHECK(Contains(r.output, "[PASS] abi "));
      CHECK(Contains(r.output, "[PASS] config "));
    }
  }
}

TEST_CASE("check fails clearly when the runner cannot be found", "[check]") {
  TempModel model("runner_fixture_missing", TORII_FIXTURE_LEAK, "1");
  // The library sits in 1/ under another name: not what the config names.
  const std::string moved = model.dir() + "/1/libtorii_runner_fixture_missing.so";
  REQUIRE(rename(moved.c_str(), (model.dir() + "/1/libtorii_other.so").c_str()) == 0);
  const RunResult r =
      Run({"check", model.dir(), "--backend-directory", "/nonexistent-torii-backends"});
  CHECK(r.exit_code == 1);
  CHECK(Contains(r.output, "[FAIL] locate"));
  CHECK(Contains(r.output, "no libtorii_runner_fixture_missing.so in"));
  CHECK(Contains(r.output, "/nonexistent-torii-backends"));
}

TEST_CASE("an ensemble is refused: it has no runner to test", "[lookup]") {
  const RunResult r = Run({"check", Example("pipeline")});
  CHECK(r.exit_code == 1);
  CHECK(Contains(r.output, "[FAIL] locate       model 'pipeline' is an ensemble: torii-runner "
                           "tests a runner, and an ensemble has none"));
}

TEST_CASE("the runner is found in the version folder, like the server finds it", "[lookup]") {
  TempModel model("identity", TORII_IDENTITY_LIB, "1");
  const RunResult r = Run({"infer", model.dir(), "--backend-directory", "/nonexistent",
                           "--input", "INPUT0=[1,2]", "--compact"},
                          false);
  REQUIRE(r.exit_code == 0);
  CHECK(Contains(r.output, "\"shape\":[1,2]"));
}

TEST_CASE("the version flag picks a version folder and refuses a missing one", "[lookup]") {
  const RunResult ok = Run({"infer", Example("identity"), "--version", "1", "--input",
                            "INPUT0=[5]", "--compact"},
                           false);
  CHECK(ok.exit_code == 0);
  const RunResult missing =
      Run({"infer", Example("identity"), "--version", "7", "--input", "INPUT0=[5]"});
  CHECK(missing.exit_code == 1);
  CHECK(Contains(missing.output, "has no version folder 7 (found: 1)"));
}

TEST_CASE("infer prints the outputs as v2 JSON", "[infer]") {
  SECTION("identity, nested input gives the shape") {
    const RunResult r =
        Run({"infer", Example("identity"), "--input", "INPUT0=[[1.5,-2,3],[4,5,6]]"}, false);
    REQUIRE(r.exit_code == 0);
    const auto j = nlohmann::json::parse(r.output);
    CHECK(j["model_name"] == "identity");
    CHECK(j["model_version"] == "1");
    REQUIRE(j["outputs"].size() == 1);
    const auto& out = j["outputs"][0];
    CHECK(out["name"] == "OUTPUT0");
    CHECK(out["datatype"] == "FP32");
    CHECK(out["shape"] == nlohmann::json::array({2, 3}));
    CHECK(out["data"] == nlohmann::json::array({1.5, -2.0, 3.0, 4.0, 5.0, 6.0}));
  }
  SECTION("identity adds the batch dimension and reshapes with --shape") {
    const RunResult flat = Run({"infer", Example("identity"), "--input", "INPUT0=[1,2,3]"}, false);
    REQUIRE(flat.exit_code == 0);
    CHECK(nlohmann::json::parse(flat.output)["outputs"][0]["shape"] ==
          nlohmann::json::array({1, 3}));
    const RunResult shaped = Run({"infer", Example("identity"), "--input", "INPUT0=[1,2,3,4]",
                                  "--shape", "INPUT0=2,2", "--nested"},
                                 false);
    REQUIRE(shaped.exit_code == 0);
    CHECK(nlohmann::json::parse(shaped.output)["outputs"][0]["data"] ==
          nlohmann::json::parse("[[1.0,2.0],[3.0,4.0]]"));
  }
  SECTION("add_sub computes sum and difference; --output selects") {
    std::string a = "[", b = "[";
    for (int i = 0; i < 16; ++i) {
      a += std::to_string(i) + (i < 15 ? "," : "]");
      b += std::string("1") + (i < 15 ? "," : "]");
    }
    const RunResult r = Run(
        {"infer", Example("add_sub"), "--input", "INPUT0=" + a, "--input", "INPUT1=" + b}, false);
    REQUIRE(r.exit_code == 0);
    const auto j = nlohmann::json::parse(r.output);
    REQUIRE(j["outputs"].size() == 2);
    for (const auto& out : j["outputs"]) {
      CHECK(out["shape"] == nlohmann::json::array({1, 16}));
      for (int i = 0; i < 16; ++i) {
        const double want = out["name"] == "OUTPUT0" ? i + 1.0 : i - 1.0;
        CHECK(out["data"][i].get<double>() == want);
      }
    }
    const RunResult only = Run({"infer", Example("add_sub"), "--input", "INPUT0=" + a, "--input",
                                "INPUT1=" + b, "--output", "OUTPUT1", "--compact"},
                               false);
    REQUIRE(only.exit_code == 0);
    const auto j1 = nlohmann::json::parse(only.output);
    REQUIRE(j1["outputs"].size() == 1);
    CHECK(j1["outputs"][0]["name"] == "OUTPUT1");
  }
  SECTION("BYTES: text as strings, binary as b64, from a file") {
    const torii::testing::TempDir dir("torii-runner-input-");
    const std::string path = dir.path() + "/input.json";
    std::ofstream(path) << R"(["hello", "", {"b64": "AP8="}])";
    const RunResult r =
        Run({"infer", Example("identity_bytes"), "--input", "INPUT0=@" + path}, false);
    REQUIRE(r.exit_code == 0);
    const auto out = nlohmann::json::parse(r.output)["outputs"][0];
    CHECK(out["datatype"] == "BYTES");
    CHECK(out["shape"] == nlohmann::json::array({1, 3}));
    CHECK(out["data"] == nlohmann::json::parse(R"(["hello", "", {"b64": "AP8="}])"));
  }
  SECTION("NaN and infinities travel as strings") {
    const RunResult r = Run(
        {"infer", Example("identity"), "--input", R"(INPUT0=["nan","inf","-inf",0])"}, false);
    REQUIRE(r.exit_code == 0);
    CHECK(nlohmann::json::parse(r.output)["outputs"][0]["data"] ==
          nlohmann::json::parse(R"(["nan","inf","-inf",0.0])"));
  }
}

TEST_CASE("infer refuses bad input with the server's message", "[infer]") {
  struct Case {
    std::vector<std::string> args;
    const char* message;
  };
  const std::vector<Case> cases = {
      {{"infer", Example("add_sub"), "--input", "INPUT0=[1,2]", "--input", "INPUT1=[1,2]"},
       "input 'INPUT0': expected shape [-1,16], got [1,2]"},
      {{"infer", Example("add_sub"), "--input", "INPUT0=[1]"}, "INVALID_ARGUMENT"},
      {{"infer", Example("identity"), "--input", "INPUT9=[1]"},
       "has no input 'INPUT9'; its inputs are INPUT0"},
      {{"infer", Example("identity"), "--input", "INPUT0=[[1],[2,3]]"}, "not rectangular"},
      {{"infer", Example("identity"), "--input", "INPUT0=[1,"}, "not valid JSON"},
      {{"infer", Example("identity"), "--input", "INPUT0=[\"a\"]"}, "expected a number"},
      {{"infer", Example("identity"), "--input", "INPUT0=[1,2,3]", "--shape", "INPUT0=2,2"},
       "needs 4 elements, the JSON has 3"},
  };
  for (const auto& c : cases) {
    const RunResult r = Run(c.args);
    CHECK(r.exit_code == 1);
    CHECK(Contains(r.output, c.message));
  }
}

TEST_CASE("usage errors exit 2 with the reason", "[usage]") {
  struct Case {
    std::vector<std::string> args;
    const char* message;
  };
  const std::vector<Case> cases = {
      {{}, "missing command"},
      {{"frobnicate", "x"}, "unknown command 'frobnicate'"},
      {{"check"}, "missing MODEL_DIR"},
      {{"check", "a", "b"}, "unexpected argument 'b'"},
      {{"check", "a", "--input", "X=1"}, "unknown option '--input' for check"},
      {{"check", "a", "--skip", "nope"}, "expected check names among abi, config"},
      {{"infer", "a", "--version", "0"}, "expected a version number >= 1"},
      {{"bench", "a", "--batch-sizes", "0"}, "batch sizes >= 1"},
      {{"infer", "a", "--input"}, "--input needs a value"},
  };
  for (const auto& c : cases) {
    const RunResult r = Run(c.args);
    CHECK(r.exit_code == 2);
    CHECK(Contains(r.output, c.message));
  }
  const RunResult help = Run({"--help"});
  CHECK(help.exit_code == 0);
  CHECK(Contains(help.output, "usage: torii-runner"));
}

TEST_CASE("bench reports latency and throughput for each batch size", "[bench]") {
  const RunResult r =
      Run({"bench", Example("identity"), "--seconds", "0.1", "--warmup", "2", "--json"}, false);
  REQUIRE(r.exit_code == 0);
  const auto j = nlohmann::json::parse(r.output);
  CHECK(j["runner"] == "identity");
  REQUIRE(j["results"].size() == 3);
  const int sizes[] = {1, 8, 32};
  for (size_t i = 0; i < 3; ++i) {
    const auto& row = j["results"][i];
    CHECK(row["batch_size"] == sizes[i]);
    CHECK(row["calls"].get<int64_t>() >= 5);
    CHECK(row["p50_ms"].get<double>() > 0);
    CHECK(row["p99_ms"].get<double>() >= row["p50_ms"].get<double>());
    CHECK(row["inferences_per_s"].get<double>() ==
          Approx(row["batches_per_s"].get<double>() * sizes[i]));
  }
  const RunResult table = Run({"bench", Example("add_sub"), "--seconds", "0.05",
                               "--batch-sizes", "2,64"}, false);
  REQUIRE(table.exit_code == 0);
  CHECK(Contains(table.output, "inferences/s"));
  const RunResult too_big = Run({"bench", Example("add_sub"), "--batch-sizes", "65"});
  CHECK(too_big.exit_code == 1);
  CHECK(Contains(too_big.output, "batch size 65 is not possible: max_batch_size is 64"));
}

// --- Python models (issue 12, item 7) -----------------------------------------
// The Python runner's manifest (lib/torii/libtorii_python.json) says
// process_per_instance: torii-runner runs these models in torii-runner-host
// processes, as the server does, and completes a missing config through the
// model's auto_complete_config.
#ifdef TORII_PYTHON_RUNNER_LIB

namespace {

std::string PyModel(const std::string& model) {
  return std::string(TORII_TEST_MODELS_DIR) + "/" + model;
}

}  // namespace

TEST_CASE("check passes on a Python model, run isolated as its manifest asks", "[python]") {
  const RunResult r = Run({"check", PyModel("py_scale")});
  CHECK(r.exit_code == 0);
  CHECK(Contains(r.output, "Result: PASS (8 passed, 0 skipped)"));
  CHECK(Contains(r.output, "runner library   " + std::string(TORII_PYTHON_RUNNER_LIB)));
  CHECK(Contains(r.output, "isolation        process_per_instance (the runner's manifest)"));
  CHECK(Contains(r.output, "[PASS] config       config.pbtxt parses (2 input(s), 3 output(s), "
                           "max_batch_size 8); the runner loaded version 1 and created 1 "
                           "instance(s) in 1 torii-runner-host process(es)"));
  CHECK(Contains(r.output, "[PASS] memory       memory stays flat over 1000 calls: VmRSS of the "
                           "runner process"));
  // The Python runner pins itself (RTLD_NODELETE); isolated, that is no defect.
  CHECK(Contains(r.output, "[PASS] reload       20 load/infer/unload cycles, each in new "
                           "torii-runner-host process(es) (isolation \"process_per_instance\" "
                           "from the runner's manifest)"));
  CHECK(Contains(r.output, "the library never entered this process"));
}

TEST_CASE("check completes the config of a Python model that has none", "[python]") {
  const RunResult r = Run({"check", PyModel("py_autocomplete"), "--reloads", "3"});
  CHECK(r.exit_code == 0);
  CHECK(Contains(r.output, "Result: PASS (8 passed, 0 skipped)"));
  CHECK(Contains(r.output, "config           none: runner 'python' completes it"));
  CHECK(Contains(r.output, "[PASS] config       no config.pbtxt: the runner completed the config "
                           "(1 input(s), 2 output(s), max_batch_size 4)"));
  // max_batch_size comes from the completed config: batching is checked.
  CHECK(Contains(r.output, "[PASS] batching     batched requests get what they get alone"));
  CHECK(Contains(r.output, "[PASS] reload       3 load/infer/unload cycles"));
}

TEST_CASE("infer runs a Python model in a runner host process", "[python]") {
  SECTION("with config.pbtxt") {
    const RunResult r = Run({"infer", PyModel("py_scale"), "--input", "INPUT0=[1.5,-2,3]",
                             "--input", "TEXT=[\"hello\"]"},
                            false);
    REQUIRE(r.exit_code == 0);
    const auto j = nlohmann::json::parse(r.output);
    CHECK(j["model_name"] == "py_scale");
    REQUIRE(j["outputs"].size() == 3);
    CHECK(j["outputs"][0]["name"] == "OUTPUT0");
    CHECK(j["outputs"][0]["shape"] == nlohmann::json::array({1, 3}));
    CHECK(j["outputs"][0]["data"] == nlohmann::json::array({3.0, -4.0, 6.0}));
    CHECK(j["outputs"][1]["name"] == "LENGTH");
    CHECK(j["outputs"][1]["data"] == nlohmann::json::array({5}));
    // The model's Python code ran in torii-runner-host (comm is cut at 15
    // characters), never in torii-runner itself.
    CHECK(j["outputs"][2]["name"] == "PROCESS");
    CHECK(j["outputs"][2]["data"] == nlohmann::json::array({"torii-runner-ho"}));
    const RunResult one = Run({"infer", PyModel("py_scale"), "--input", "INPUT0=[1]", "--input",
                               "TEXT=[\"\"]", "--output", "LENGTH", "--compact"},
                              false);
    REQUIRE(one.exit_code == 0);
    const auto j1 = nlohmann::json::parse(one.output);
    REQUIRE(j1["outputs"].size() == 1);
    CHECK(j1["outputs"][0]["data"] == nlohmann::json::array({0}));
  }
  SECTION("without config.pbtxt: the completed config's signature") {
    const RunResult r = Run({"infer", PyModel("py_autocomplete"), "--input",
                             "INPUT0=[[1,2,3,4],[5,6,7,8]]", "--compact"},
                            false);
    REQUIRE(r.exit_code == 0);
    const auto j = nlohmann::json::parse(r.output);
    REQUIRE(j["outputs"].size() == 2);
    CHECK(j["outputs"][0]["data"] == nlohmann::json::array({2, 3, 4, 5, 6, 7, 8, 9}));
    CHECK(j["outputs"][1]["shape"] == nlohmann::json::array({2, 1}));
    CHECK(j["outputs"][1]["data"] == nlohmann::json::array({10, 26}));
    const RunResult bad = Run({"infer", PyModel("py_autocomplete"), "--input", "INPUT0=[1,2,3]"});
    CHECK(bad.exit_code == 1);
    CHECK(Contains(bad.output, "input 'INPUT0': expected shape [-1,4], got [1,3]"));
  }
}

TEST_CASE("bench measures a Python model through its runner host", "[python]") {
  for (const char* model : {"py_scale", "py_autocomplete"}) {
    SECTION(model) {
      const RunResult r = Run(
          {"bench", PyModel(model), "--seconds", "0.1", "--warmup", "2", "--json"}, false);
      REQUIRE(r.exit_code == 0);
      const auto j = nlohmann::json::parse(r.output);
      CHECK(j["runner"] == "python");
      CHECK(j["isolation"] == "process_per_instance");
      const int max_batch = std::string(model) == "py_scale" ? 8 : 4;
      REQUIRE(j["results"].size() == 2);
      CHECK(j["results"][0]["batch_size"] == 1);
      CHECK(j["results"][1]["batch_size"] == max_batch);
      for (const auto& row : j["results"]) {
        CHECK(row["calls"].get<int64_t>() >= 5);
        CHECK(row["p50_ms"].get<double>() > 0);
      }
    }
  }
}

TEST_CASE("reload fails for a Python model whose runner process does not exit", "[python]") {
  // finalize() hangs: each unload ends with the runner host killed after the
  // stop timeout (5 s).
  const RunResult r = Run({"check", PyModel("py_slow_unload"), "--reloads", "2", "--skip",
                           "signature,batching,concurrency,edge-inputs,memory"});
  CHECK(r.exit_code == 1);
  CHECK(Contains(r.output, "[FAIL] reload       the runner process did not exit within 5000 ms "
                           "of the unload in 2 of 2 cycles"));
  CHECK(Contains(r.output, "Result: FAIL (1 failed: reload; 2 passed, 5 skipped)"));
}

TEST_CASE("check fails when a Python model completes its config into a bad one", "[python]") {
  const RunResult r = Run({"check", PyModel("py_bad_autocomplete")});
  CHECK(r.exit_code == 1);
  CHECK(Contains(r.output, "[FAIL] config       the runner completed the config into one that "
                           "config.pbtxt could not hold: the completed config: input 'INPUT0': "
                           "'dims' has -7"));
  CHECK(Contains(r.output, "Result: FAIL (1 failed: config; 1 passed, 6 skipped)"));
}

TEST_CASE("a model.py folder without config.pbtxt needs a runner that completes configs",
          "[python]") {
  // Without the Python runner's manifest in the backend directory, nothing
  // claims model.py, as in the server.
  const RunResult r = Run({"check", PyModel("py_autocomplete"), "--backend-directory",
                           "/nonexistent-torii-backends"});
  CHECK(r.exit_code == 1);
  CHECK(Contains(r.output, "[FAIL] locate       no config.pbtxt in "));
  CHECK(Contains(r.output, "no version folder holds a model file whose runner can complete a "
                           "config"));
}

#endif  // TORII_PYTHON_RUNNER_LIB
