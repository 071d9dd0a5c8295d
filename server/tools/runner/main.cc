// torii-runner: test a runner without a server. The model directory is loaded
// through the server's own code (config parser, runner catalog and manifest,
// spec, runner loader, request validation, batch assembly), in this process or
// in torii-runner-host processes when the server would isolate the model; no
// gRPC is involved.
//
//   torii-runner check MODEL_DIR   conformance suite (PASS/FAIL per check)
//   torii-runner infer MODEL_DIR --input INPUT0='[1,2,3]'   outputs as JSON
//   torii-runner bench MODEL_DIR   latency and throughput by batch size
#include <cstdlib>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "server/common/logging.h"
#include "server/tools/runner/bench.h"
#include "server/tools/runner/conformance.h"
#include "server/tools/runner/infer.h"
#include "server/tools/runner/model_location.h"
#include "server/tools/runner/sdk_version.h"
#include "server/tools/runner/tensor_json.h"
#include "torii/runner_abi.h"

namespace torii {
namespace runner_tool {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

constexpr char kUsage[] = R"(usage: torii-runner <check|infer|bench> MODEL_DIR [options]

Tests a Torii runner without a server: the model directory is loaded through
the server's own loader, request validation and batching code, in this
process, or in torii-runner-host processes when the server would isolate it
(a runner whose manifest says so, like the Python runner, or the config's
isolation parameter). MODEL_DIR holds config.pbtxt and version folders (1/,
2/, ...); config.pbtxt may be missing when the runner completes configs (a
Python model.py alone).

commands:
  check MODEL_DIR   run the conformance suite; exit 0 when every check passes
  infer MODEL_DIR   run one request and print the outputs as JSON
  bench MODEL_DIR   latency and throughput by batch size, without gRPC

common options:
  --version N              version folder to use (default: the highest)
  --runner FILE            use this runner library instead of searching
  --backend-directory DIR  where to look for libtorii_<runner>.so after
                           <model>/<version>/ and <model>/ (repeatable;
                           default: <dir of torii-runner>/../lib/torii)
  --verbose                details of passing checks and the runner's output
  -h, --help               this text

check options:
  --skip NAME[,NAME...]    checks not to run: abi, config, signature, batching,
                           concurrency, edge-inputs, memory, reload
  --dims NAME=D1,D2        sizes for an input's dims without the batch
                           dimension, replacing -1 (repeatable)
  --calls N                memory check: measured calls (default 1000)
  --reloads N              reload check: load/unload cycles (default 20)
  --timeout SECONDS        time allowed per check (default 120)
  --rss-limit-kib N        allowed VmRSS growth (default 4096)
  --heap-limit-kib N       allowed growth of malloc'ed memory (default 1024)
  --rtol X, --atol X       float tolerance when comparing outputs
                           (|a-b| <= atol + rtol*|b|; default 1e-5, 1e-6)

infer options:
  --input NAME=JSON        an input's values: a JSON array, nested or flat;
                           nesting gives the shape ([[1,2],[3,4]] is [2,2]);
                           for a batching model a missing batch dimension is
                           added as 1; strings for BYTES ({"b64": ".."} for
                           binary); "nan", "inf", "-inf" for floats
  --input NAME=@FILE       the same, read from FILE ("@-": standard input)
  --shape NAME=D1,D2       the input's full shape (reshapes a flat array)
  --output NAME            request only this output (repeatable)
  --nested                 print data nested by shape (default: flat)
  --compact                print the JSON on one line

bench options:
  --batch-sizes B1,B2,...  default 1,8,32 capped at max_batch_size
  --seconds S              measured time per batch size (default 2)
  --warmup N               calls before measuring (default 10)
  --dims NAME=D1,D2        as for check (default: 16 for every -1)
  --json                   print JSON instead of a table

exit status: 0 success; 1 a check or the request failed; 2 usage error
)";

struct Args {
  std::string command;
  std::string model_dir;
  LocateOptions locate;
  bool verbose = false;
  CheckOptions check;
  InferOptions infer;
  BenchOptions bench;
  bool dims_given = false;
};

// "NAME=VALUE" -> (NAME, VALUE).
bool SplitNameValue(const std::string& s, std::string* name, std::string* value) {
  const auto eq = s.find('=');
  if (eq == std::string::npos || eq == 0) return false;
  *name = s.substr(0, eq);
  *value = s.substr(eq + 1);
  return true;
}

bool ParseArgs(int argc, char** argv, Args* a, std::string* error) {
  if (argc < 2) {
    *error = "missing command (check, infer or bench)";
    return false;
  }
  a->command = argv[1];
  if (a->command != "check" && a->command != "infer" && a->command != "bench") {
    *error = absl::StrCat("unknown command '", a->command, "' (expected check, infer or bench)");
    return false;
  }
  const std::set<std::string> common = {"--version", "--runner", "--backend-directory",
                                        "--verbose"};
  const std::map<std::string, std::set<std::string>> per_command = {
      {"check",
       {"--skip", "--dims", "--calls", "--reloads", "--timeout", "--rss-limit-kib",
        "--heap-limit-kib", "--rtol", "--atol"}},
      {"infer", {"--input", "--shape", "--output", "--nested", "--compact"}},
      {"bench", {"--batch-sizes", "--seconds", "--warmup", "--dims", "--json"}}};
  const std::set<std::string> switches = {"--verbose", "--nested", "--compact", "--json"};

  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.size() < 2 || arg[0] != '-' || arg == "-") {
      if (!a->model_dir.empty()) {
        *error = absl::StrCat("unexpected argument '", arg, "' (MODEL_DIR is '", a->model_dir,
                              "')");
        return false;
      }
      a->model_dir = arg;
      continue;
    }
    std::string name = arg, value;
    bool has_value = false;
    const auto eq = arg.find('=');
    if (eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    if (common.count(name) == 0 && per_command.at(a->command).count(name) == 0) {
      *error = absl::StrCat("unknown option '", name, "' for ", a->command);
      return false;
    }
    if (switches.count(name) != 0) {
      if (has_value) {
        *error = absl::StrCat(name, " takes no value");
        return false;
      }
    } else if (!has_value) {
      if (i + 1 >= argc) {
        *error = absl::StrCat(name, " needs a value");
        return false;
      }
      value = argv[++i];
    }
    auto bad = [&](const std::string& what) {
      *error = absl::StrCat("bad value '", value, "' for ", name, ": expected ", what);
      return false;
    };
    int64_t n = 0;
    double x = 0;
    std::string key, rest;
    if (name == "--verbose") {
      a->verbose = true;
    } else if (name == "--version") {
      if (!absl::SimpleAtoi(value, &n) || n < 1) return bad("a version number >= 1");
      a->locate.version = n;
    } else if (name == "--runner") {
      a->locate.runner_path = value;
    } else if (name == "--backend-directory") {
      if (value.empty()) return bad("a directory");
      a->locate.backend_directories.push_back(value);
    } else if (name == "--skip") {
      for (absl::string_view s : absl::StrSplit(value, ',', absl::SkipEmpty())) {
        const auto& names = CheckNames();
        if (std::find(names.begin(), names.end(), std::string(s)) == names.end()) {
          return bad("check names among " + absl::StrJoin(names, ", "));
        }
        a->check.skip.insert(std::string(s));
      }
    } else if (name == "--dims") {
      if (!SplitNameValue(value, &key, &rest)) return bad("NAME=D1,D2");
      auto dims = ParseShape(rest);
      if (!dims.ok()) return bad("NAME=D1,D2 with non-negative sizes");
      a->check.dims[key] = *dims;
      a->bench.dims[key] = *dims;
    } else if (name == "--calls") {
      if (!absl::SimpleAtoi(value, &n) || n < 10 || n > 100000000) return bad("a number >= 10");
      a->check.calls = static_cast<int>(n);
    } else if (name == "--reloads") {
      if (!absl::SimpleAtoi(value, &n) || n < 2 || n > 100000) return bad("a number >= 2");
      a->check.reloads = static_cast<int>(n);
    } else if (name == "--timeout") {
      if (!absl::SimpleAtod(value, &x) || !(x > 0)) return bad("seconds > 0");
      a->check.timeout_seconds = x;
    } else if (name == "--rss-limit-kib") {
      if (!absl::SimpleAtoi(value, &n) || n < 0) return bad("KiB >= 0");
      a->check.rss_limit_kib = n;
    } else if (name == "--heap-limit-kib") {
      if (!absl::SimpleAtoi(value, &n) || n < 0) return bad("KiB >= 0");
      a->check.heap_limit_kib = n;
    } else if (name == "--rtol") {
      if (!absl::SimpleAtod(value, &x) || x < 0) return bad("a tolerance >= 0");
      a->check.rtol = x;
    } else if (name == "--atol") {
      if (!absl::SimpleAtod(value, &x) || x < 0) return bad("a tolerance >= 0");
      a->check.atol = x;
    } else if (name == "--input") {
      if (!SplitNameValue(value, &key, &rest)) return bad("NAME=<json> or NAME=@file");
      for (const auto& in : a->infer.inputs) {
        if (in.first == key) return bad("each input once (" + key + " is given twice)");
      }
      a->infer.inputs.emplace_back(key, rest);
    } else if (name == "--shape") {
      if (!SplitNameValue(value, &key, &rest)) return bad("NAME=D1,D2");
      auto dims = ParseShape(rest);
      if (!dims.ok()) return bad("NAME=D1,D2 with non-negative sizes");
      a->infer.shapes[key] = *dims;
    } else if (name == "--output") {
      if (value.empty()) return bad("an output name");
      a->infer.outputs.push_back(value);
    } else if (name == "--nested") {
      a->infer.nested = true;
    } else if (name == "--compact") {
      a->infer.compact = true;
    } else if (name == "--batch-sizes") {
      a->bench.batch_sizes.clear();
      for (absl::string_view s : absl::StrSplit(value, ',', absl::SkipEmpty())) {
        if (!absl::SimpleAtoi(s, &n) || n < 1) return bad("batch sizes >= 1 like 1,8,32");
        a->bench.batch_sizes.push_back(n);
      }
      if (a->bench.batch_sizes.empty()) return bad("batch sizes like 1,8,32");
    } else if (name == "--seconds") {
      if (!absl::SimpleAtod(value, &x) || !(x > 0) || x > 3600) return bad("seconds in (0, 3600]");
      a->bench.seconds = x;
    } else if (name == "--warmup") {
      if (!absl::SimpleAtoi(value, &n) || n < 0) return bad("a number >= 0");
      a->bench.warmup = static_cast<int>(n);
    } else if (name == "--json") {
      a->bench.json = true;
    }
  }
  if (a->model_dir.empty()) {
    *error = "missing MODEL_DIR";
    return false;
  }
  a->locate.model_dir = a->model_dir;
  a->check.verbose = a->verbose;
  return true;
}

int Main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-h" || arg == "--help" || arg == "help") {
      std::cout << kUsage << "\nSDK " << SdkVersion() << ", runner ABI "
                << TORII_RUNNER_ABI_VERSION_MAJOR << "." << TORII_RUNNER_ABI_VERSION_MINOR
                << "\n";
      return kExitOk;
    }
  }
  Args args;
  std::string error;
  if (!ParseArgs(argc, argv, &args, &error)) {
    std::cerr << "torii-runner: " << error << "\n(torii-runner --help for usage)\n";
    return kExitUsage;
  }
  LogOptions log;
  log.verbose = args.verbose ? 1 : 0;
  SetLogOptions(log);

  auto location = LocateModel(args.locate);
  if (!location.ok()) {
    if (args.command == "check") {
      std::cout << "torii-runner check: " << args.model_dir << "\n\n"
                << "[FAIL] locate       " << location.status().message() << "\n\n"
                << "Result: FAIL (the model directory or its runner cannot be found)\n";
    } else {
      std::cerr << "torii-runner: " << location.status().message() << "\n";
    }
    return kExitFailed;
  }

  if (args.command == "check") {
    return RunConformance(*location, args.check, std::cout) ? kExitOk : kExitFailed;
  }
  absl::Status s = args.command == "infer" ? RunInfer(*location, args.infer, std::cout)
                                           : RunBench(*location, args.bench, std::cout);
  if (!s.ok()) {
    std::cerr << "torii-runner " << args.command << ": "
              << absl::StatusCodeToString(s.code()) << ": " << s.message() << "\n";
    return kExitFailed;
  }
  return kExitOk;
}

}  // namespace
}  // namespace runner_tool
}  // namespace torii

int main(int argc, char** argv) { return torii::runner_tool::Main(argc, argv); }
