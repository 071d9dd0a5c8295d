#include "server/tools/runner/conformance.h"

#include <dirent.h>
#include <dlfcn.h>
#include <malloc.h>
#include <sys/types.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "server/core/datatype.h"
#include "server/isolation/isolated_runner_model.h"
#include "server/repository/model_spec_builder.h"
#include "server/tools/runner/half_float.h"
#include "server/tools/runner/isolated_run.h"
#include "server/tools/runner/model_under_test.h"

namespace torii {
namespace runner_tool {
namespace {

// --- helpers ------------------------------------------------------------------

struct Memory {
  int64_t rss_kib = 0;   // VmRSS
  int64_t heap_kib = 0;  // bytes handed out by malloc (all arenas + mmapped)
};

Memory ReadMemory() {
  Memory m;
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (absl::StartsWith(line, "VmRSS:")) m.rss_kib = std::atoll(line.c_str() + 6);
  }
  const struct mallinfo2 mi = mallinfo2();
  m.heap_kib = static_cast<int64_t>((mi.uordblks + mi.hblkhd) / 1024);
  return m;
}

// VmRSS of another process (a runner host), 0 when it is gone.
int64_t RssOf(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (absl::StartsWith(line, "VmRSS:")) return std::atoll(line.c_str() + 6);
  }
  return 0;
}

int OpenDescriptors() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
  }
  return n - 1;  // the one opendir holds
}

std::string Describe(const absl::Status& s) {
  return absl::StrCat(absl::StatusCodeToString(s.code()), ": ", s.message());
}

// Errors that are runner bugs even though the host survived them.
bool IsRunnerBug(const absl::Status& s) {
  return absl::StrContains(s.message(), "runner reported a failure with status OK") ||
         absl::StrContains(s.message(), "let an exception cross the C ABI") ||
         absl::StrContains(s.message(), "let an unknown exception cross the C ABI");
}

std::string InputsText(const TestRequest& r) {
  std::vector<std::string> parts;
  for (const auto& t : r.inputs) {
    parts.push_back(absl::StrCat(t.name, " ", DataTypeName(t.datatype), " ", ShapeString(t.shape)));
  }
  return absl::StrJoin(parts, ", ");
}

std::string OutputsText(const TestResponse& r) {
  std::vector<std::string> parts;
  for (const auto& t : r.outputs) {
    parts.push_back(absl::StrCat(t.name, " ", DataTypeName(t.datatype), " ", ShapeString(t.shape)));
  }
  return absl::StrJoin(parts, ", ");
}

double ElementAsDouble(const HostTensor& t, size_t i) {
  switch (t.datatype) {
    case TORII_TYPE_FP16: {
      uint16_t h;
      std::memcpy(&h, t.data.data() + 2 * i, 2);
      return HalfToFloat(h);
    }
    case TORII_TYPE_BF16: {
      uint16_t b;
      std::memcpy(&b, t.data.data() + 2 * i, 2);
      return Bf16ToFloat(b);
    }
    case TORII_TYPE_FP32: {
      float f;
      std::memcpy(&f, t.data.data() + 4 * i, 4);
      return f;
    }
    default: {
      double d;
      std::memcpy(&d, t.data.data() + 8 * i, 8);
      return d;
    }
  }
}

bool IsFloat(ToriiDataType t) {
  return t == TORII_TYPE_FP16 || t == TORII_TYPE_BF16 || t == TORII_TYPE_FP32 ||
         t == TORII_TYPE_FP64;
}

// Empty when equal (floats within tolerance, NaN equal to NaN).
std::string CompareTensor(const HostTensor& got, const HostTensor& want, double rtol,
                          double atol) {
  if (got.datatype != want.datatype) {
    return absl::StrCat("output '", want.name, "' is ", DataTypeName(got.datatype),
                        " instead of ", DataTypeName(want.datatype));
  }
  if (got.shape != want.shape) {
    return absl::StrCat("output '", want.name, "' has shape ", ShapeString(got.shape),
                        " instead of ", ShapeString(want.shape));
  }
  if (got.data.size() != want.data.size()) {
    return absl::StrCat("output '", want.name, "' has ", got.data.size(), " bytes instead of ",
                        want.data.size());
  }
  if (IsFloat(got.datatype)) {
    const size_t n = got.data.size() / DataTypeSize(got.datatype);
    for (size_t i = 0; i < n; ++i) {
      const double a = ElementAsDouble(got, i);
      const double b = ElementAsDouble(want, i);
      if (std::isnan(a) && std::isnan(b)) continue;
      if (a == b) continue;
      if (!(std::fabs(a - b) <= atol + rtol * std::fabs(b))) {
        return absl::StrCat("output '", want.name, "' element ", i, " is ", a, " instead of ", b);
      }
    }
    return "";
  }
  if (got.data != want.data) {
    size_t i = 0;
    while (i < got.data.size() && got.data[i] == want.data[i]) ++i;
    return absl::StrCat("output '", want.name, "' differs from byte ", i);
  }
  return "";
}

std::string CompareResponse(const TestResponse& got, const TestResponse& want, double rtol,
                            double atol) {
  if (!got.status.ok()) return Describe(got.status);
  for (const auto& w : want.outputs) {
    const HostTensor* g = got.output(w.name);
    if (g == nullptr) return absl::StrCat("output '", w.name, "' is missing");
    std::string why = CompareTensor(*g, w, rtol, atol);
    if (!why.empty()) return why;
  }
  if (got.outputs.size() != want.outputs.size()) {
    return absl::StrCat(got.outputs.size(), " outputs instead of ", want.outputs.size());
  }
  return "";
}

// Empty when `r` carries exactly the `requested` outputs (all when empty), as
// config.pbtxt declares them, for a request of `rows` rows.
std::string CheckDeclared(const ModelSpec& sig, int64_t rows, const TestResponse& r,
                          const std::vector<std::string>& requested) {
  std::vector<std::string> expected = requested;
  if (expected.empty()) {
    for (const auto& o : sig.outputs) expected.push_back(o.name);
  }
  for (const auto& name : expected) {
    const HostTensor* t = r.output(name);
    if (t == nullptr) return absl::StrCat("the response has no output '", name, "'");
    const TensorSpec& ts = sig.outputs[static_cast<size_t>(sig.OutputIndex(name))];
    if (t->datatype != ts.datatype) {
      return absl::StrCat("output '", name, "' is ", DataTypeName(t->datatype),
                          ", config.pbtxt declares ", DataTypeName(ts.datatype));
    }
    std::vector<int64_t> want = sig.WireShape(ts);
    if (sig.batching_enabled()) want[0] = rows;
    bool ok = t->shape.size() == want.size();
    for (size_t i = 0; ok && i < want.size(); ++i) ok = want[i] == -1 || want[i] == t->shape[i];
    if (!ok) {
      return absl::StrCat("output '", name, "' has shape ", ShapeString(t->shape),
                          ", config.pbtxt declares ", ShapeString(want));
    }
    int64_t elements = 1;
    for (int64_t d : t->shape) elements *= d;
    const size_t esize = DataTypeSize(t->datatype);
    if (esize != 0 && t->data.size() != static_cast<size_t>(elements) * esize) {
      return absl::StrCat("output '", name, "' has ", t->data.size(), " bytes for shape ",
                          ShapeString(t->shape));
    }
    if (esize == 0) {
      const auto elems = DecodeBytesElements(t->data);
      if (!elems.ok()) return absl::StrCat("output '", name, "': ", elems.status().message());
      if (static_cast<int64_t>(elems->size()) != elements) {
        return absl::StrCat("output '", name, "' holds ", elems->size(),
                            " BYTES elements for shape ", ShapeString(t->shape));
      }
    }
  }
  for (const auto& t : r.outputs) {
    if (std::find(expected.begin(), expected.end(), t.name) == expected.end()) {
      return absl::StrCat("the response carries output '", t.name, "', which was not requested");
    }
  }
  return "";
}

struct Ctx {
  const ModelLocation& loc;
  const CheckOptions& opt;
};

Outcome Fail(std::string summary, std::vector<std::string> details = {}) {
  return Outcome{Verdict::kFail, std::move(summary), std::move(details)};
}
Outcome Pass(std::string summary, std::vector<std::string> details = {}) {
  return Outcome{Verdict::kPass, std::move(summary), std::move(details)};
}
Outcome Skip(std::string summary) { return Outcome{Verdict::kSkip, std::move(summary), {}}; }

absl::StatusOr<std::unique_ptr<ModelUnderTest>> Load(const Ctx& ctx, uint32_t instances = 0) {
  ModelUnderTest::Options o;
  o.instance_count = instances;
  return ModelUnderTest::Load(ctx.loc, o);
}

#define TORII_LOAD_OR_FAIL(var, ...)                                     \
  auto var##_or = Load(__VA_ARGS__);                                     \
  if (!var##_or.ok()) {                                                  \
    return Fail("the model did not load: " + Describe(var##_or.status())); \
  }                                                                      \
  auto var = std::move(*var##_or)

// --- the checks -----------------------------------------------------------------

Outcome CheckAbi(const Ctx& ctx, ChildReporter& rep) {
  rep.Step("opening " + ctx.loc.runner_path);
  auto lib = RunnerLibrary::Open(ctx.loc.runner_path);
  if (!lib.ok()) return Fail(std::string(lib.status().message()));
  const RunnerProvenance& p = (*lib)->provenance();
  std::vector<std::string> details = {
      absl::StrCat("runner: ", p.runner, " ", p.runner_version),
      absl::StrCat("build: ", p.runner_build),
      absl::StrCat("ABI: runner ", p.runner_abi, ", this server ", TORII_RUNNER_ABI_VERSION_MAJOR,
                   ".", TORII_RUNNER_ABI_VERSION_MINOR)};
  if (p.runner != ctx.loc.runner_name) {
    details.push_back(absl::StrCat("note: the library calls itself '", p.runner,
                                   "' but config.pbtxt names runner '", ctx.loc.runner_name,
                                   "'; logs and metadata will say '", p.runner, "'"));
  }
  if (absl::StrContains(p.runner_build, "rev unknown")) {
    details.push_back(
        "note: no source revision recorded: build with torii_add_runner() inside a git "
        "checkout, or pass REVISION / -DTORII_RUNNER_REVISION=...");
  }
  if (p.runner_version == "unknown") {
    details.push_back("note: the runner reports no version");
  }
  if (ctx.loc.manifest.isolation != IsolationMode::kNone) {
    details.push_back(absl::StrCat(
        "the runner's manifest says isolation \"", IsolationModeName(ctx.loc.manifest.isolation),
        "\": the library was opened here (in this check's own process) only to read its ABI "
        "version and provenance, as torii-runner-host does; its models run in runner host "
        "processes"));
  }
  return Pass(absl::StrCat("runner '", p.runner, "' ", p.runner_version, ", ABI ", p.runner_abi,
                           " (server ", TORII_RUNNER_ABI_VERSION_MAJOR, ".",
                           TORII_RUNNER_ABI_VERSION_MINOR, "); ", p.runner_build),
              details);
}

Outcome CheckConfig(const Ctx& ctx, ChildReporter& rep) {
  rep.Step("loading the model");
  TORII_LOAD_OR_FAIL(m, ctx);
  const ModelSpec& sig = m->spec();
  std::vector<std::string> details;
  for (const auto& w : ctx.loc.parsed.warnings) details.push_back("note: " + w);
  for (const auto& t : sig.inputs) {
    details.push_back(absl::StrCat("input ", t.name, " ", DataTypeName(t.datatype), " ",
                                   ShapeString(sig.WireShape(t))));
  }
  for (const auto& t : sig.outputs) {
    details.push_back(absl::StrCat("output ", t.name, " ", DataTypeName(t.datatype), " ",
                                   ShapeString(sig.WireShape(t))));
  }
  const std::string shape = absl::StrCat(sig.inputs.size(), " input(s), ", sig.outputs.size(),
                                         " output(s), max_batch_size ", sig.max_batch_size);
  std::string summary;
  if (!ctx.loc.has_config_file) {
    summary = absl::StrCat("no config.pbtxt: the runner completed the config (", shape, ")");
  } else if (m->config_completed()) {
    summary = absl::StrCat("config.pbtxt parses; the runner completed it (", shape, ")");
  } else {
    summary = absl::StrCat("config.pbtxt parses (", shape, ")");
  }
  absl::StrAppend(&summary, "; the runner loaded version ", ctx.loc.version, " and created ",
                  m->instance_count(), " instance(s)");
  if (m->isolated()) {
    const std::vector<pid_t> pids = m->runner_pids();
    absl::StrAppend(&summary, " in ", pids.size(), " torii-runner-host process(es)");
    details.push_back(absl::StrCat(
        "note: isolation \"", IsolationModeName(m->isolation()), "\" (",
        m->isolation() == ctx.loc.manifest.isolation ? "the runner's manifest" : "config.pbtxt",
        "): the model runs in torii-runner-host processes, as the server runs it (pids ",
        absl::StrJoin(pids, ", "), ")"));
  }
  if (m->config_completed()) {
    details.push_back(absl::StrCat("the completed config: ", sig.config_json));
    // The loader checks a completed config only as far as the spec needs
    // (BuildModelSpec), not as strictly as a config.pbtxt: a runner can
    // complete a config the server loads but no request can ever match.
    const absl::Status valid = ValidateModelConfig(m->config(), "the completed config");
    if (!valid.ok()) {
      details.push_back(
          "auto_complete_config must declare what a config.pbtxt could declare: unique names, "
          "TYPE_* datatypes, dims of -1 or >= 0");
      return Fail(absl::StrCat("the runner completed the config into one that config.pbtxt "
                               "could not hold: ",
                               valid.message()),
                  details);
    }
  }
  for (const auto& [key, value] : m->provenance().properties) {
    details.push_back(absl::StrCat("property ", key, ": ", value));
  }
  rep.Step("unloading the model");
  m.reset();
  return Pass(summary, details);
}

Outcome CheckSignature(const Ctx& ctx, ChildReporter& rep) {
  TORII_LOAD_OR_FAIL(m, ctx);
  const ModelSpec& sig = m->spec();
  InputGenerator gen(sig, ctx.opt.dims);
  struct Case {
    int64_t rows;
    int64_t variable;
  };
  std::vector<Case> cases = {{1, 3}};
  if (gen.HasVariableDims()) {
    cases.push_back({1, 1});
    cases.push_back({1, 5});
  }
  if (sig.batching_enabled() && sig.max_batch_size >= 2) cases.push_back({2, 3});
  std::vector<std::string> details;
  TestResponse first;
  TestRequest first_req;
  for (size_t c = 0; c < cases.size(); ++c) {
    TestRequest req = gen.Request(cases[c].rows, cases[c].variable, 17 + c);
    rep.Step(absl::StrCat("inputs ", InputsText(req)));
    TestResponse r = m->Infer(req);
    if (!r.status.ok()) {
      return Fail(absl::StrCat("the runner failed on valid generated inputs (", InputsText(req),
                               "): ", Describe(r.status)),
                  {"generated values: floats k/8 in [-1, 1], integers 0..3, short strings; "
                   "pick other sizes with --dims NAME=d1,d2"});
    }
    const int64_t rows = sig.batching_enabled() ? cases[c].rows : 1;
    std::string why = CheckDeclared(sig, rows, r, {});
    if (!why.empty()) {
      return Fail(absl::StrCat("for inputs ", InputsText(req), ": ", why));
    }
    details.push_back(absl::StrCat(InputsText(req), " -> ", OutputsText(r)));
    if (c == 0) {
      first = r;
      first_req = req;
    }
  }
  // A client may ask for any subset of outputs; each alone must come back
  // alone, with the values it has when all are requested.
  if (sig.outputs.size() > 1) {
    for (const auto& o : sig.outputs) {
      TestRequest req = first_req;
      req.outputs = {o.name};
      rep.Step("requesting only output " + o.name);
      TestResponse r = m->Infer(req);
      if (!r.status.ok()) {
        return Fail(absl::StrCat("requesting only output '", o.name, "' failed: ",
                                 Describe(r.status)));
      }
      std::string why = CheckDeclared(sig, 1, r, {o.name});
      if (why.empty()) {
        TestResponse want;
        want.outputs = {*first.output(o.name)};
        why = CompareResponse(r, want, ctx.opt.rtol, ctx.opt.atol);
      }
      if (!why.empty()) return Fail(absl::StrCat("requesting only output '", o.name, "': ", why));
    }
    details.push_back("each output requested alone comes back alone, with the same values");
  }
  return Pass(absl::StrCat("every declared output came back as declared for ", cases.size(),
                           " input shape(s)"),
              details);
}

Outcome CheckBatching(const Ctx& ctx, ChildReporter& rep) {
  // A runner that completes configs may set max_batch_size itself: ask the
  // loaded model then.
  std::unique_ptr<ModelUnderTest> m;
  int32_t mbs = ctx.loc.parsed.config.max_batch_size();
  if (ctx.loc.manifest.auto_complete_config) {
    auto loaded = Load(ctx);
    if (!loaded.ok()) return Fail("the model did not load: " + Describe(loaded.status()));
    m = std::move(*loaded);
    mbs = m->spec().max_batch_size;
  }
  if (mbs == 0) return Skip("max_batch_size is 0: the model does not batch");
  if (mbs == 1) return Skip("max_batch_size is 1: requests are never merged");
  if (m == nullptr) {
    auto loaded = Load(ctx);
    if (!loaded.ok()) return Fail("the model did not load: " + Describe(loaded.status()));
    m = std::move(*loaded);
  }
  InputGenerator gen(m->spec(), ctx.opt.dims);
  std::vector<std::vector<int64_t>> groups = {
      std::vector<int64_t>(static_cast<size_t>(std::min<int32_t>(4, mbs)), 1)};
  if (mbs >= 3) groups.push_back({2, 1});
  std::vector<std::string> details;
  for (const auto& rows : groups) {
    std::vector<TestRequest> reqs;
    for (size_t i = 0; i < rows.size(); ++i) reqs.push_back(gen.Request(rows[i], 3, 100 + i));
    const std::string what = absl::StrCat("a batch of ", reqs.size(), " requests with rows [",
                                          absl::StrJoin(rows, ","), "]");
    rep.Step(what);
    const std::vector<TestResponse> batched = m->Execute(0, reqs);
    for (size_t i = 0; i < reqs.size(); ++i) {
      rep.Step(absl::StrCat("request ", i, " of ", what, " alone"));
      const TestResponse alone = m->Infer(reqs[i]);
      if (!alone.status.ok()) {
        return Fail(absl::StrCat("request ", i, " failed alone: ", Describe(alone.status)));
      }
      if (!batched[i].status.ok()) {
        return Fail(absl::StrCat("request ", i, " failed inside ", what,
                                 " but succeeds alone: ", Describe(batched[i].status)));
      }
      std::string why = CompareResponse(batched[i], alone, ctx.opt.rtol, ctx.opt.atol);
      if (!why.empty()) {
        return Fail(absl::StrCat("request ", i, " inside ", what,
                                 " got other outputs than alone: ", why),
                    {"a runner must treat rows independently and give each request rows "
                     "[offset, offset+rows) of every output; a model that is not "
                     "deterministic can skip this check with --skip batching"});
      }
    }
    details.push_back(what + ": each request got what it gets alone");
  }
  return Pass(absl::StrCat("batched requests get what they get alone (",
                           absl::StrJoin(groups, "; ",
                                         [](std::string* out, const std::vector<int64_t>& g) {
                                           absl::StrAppend(out, "rows [", absl::StrJoin(g, ","),
                                                           "]");
                                         }),
                           ")"),
              details);
}

Outcome CheckConcurrency(const Ctx& ctx, ChildReporter& rep) {
  rep.Step("loading the model with 2 instances");
  TORII_LOAD_OR_FAIL(m, ctx, 2);
  InputGenerator gen(m->spec(), ctx.opt.dims);
  std::vector<TestRequest> reqs;
  std::vector<TestResponse> want;
  for (int i = 0; i < 6; ++i) {
    reqs.push_back(gen.Request(1, 3, 200 + static_cast<uint64_t>(i)));
    want.push_back(m->Infer(reqs.back(), 0));
    if (!want.back().status.ok()) {
      return Fail("the runner failed on valid generated inputs: " + Describe(want.back().status));
    }
  }
  constexpr int kRounds = 30;
  std::atomic<int> ready{0};
  std::string errors[2];
  rep.Step("2 threads executing on instances 0 and 1 at once");
  auto worker = [&](size_t t) {
    ready.fetch_add(1);
    while (ready.load() < 2) std::this_thread::yield();
    for (int round = 0; round < kRounds && errors[t].empty(); ++round) {
      for (size_t k = 0; k < reqs.size(); ++k) {
        const size_t i = t == 0 ? k : reqs.size() - 1 - k;
        const TestResponse r = m->Infer(reqs[i], t);
        std::string why = CompareResponse(r, want[i], ctx.opt.rtol, ctx.opt.atol);
        if (!why.empty()) {
          errors[t] = absl::StrCat("instance ", t, ", round ", round, ", request ", i, ": ", why);
          break;
        }
      }
    }
  };
  std::thread a(worker, 0), b(worker, 1);
  a.join();
  b.join();
  for (const auto& e : errors) {
    if (!e.empty()) {
      return Fail("two instances running at once disagree with the serial results: " + e,
                  {"instances run in parallel on different threads: share only immutable "
                   "state through the Model, keep scratch buffers per Instance"});
    }
  }
  return Pass(absl::StrCat("2 instances ran ", 2 * kRounds * reqs.size(),
                           " requests on 2 threads at once and agree with the serial results"));
}

Outcome CheckEdgeInputs(const Ctx& ctx, ChildReporter& rep) {
  TORII_LOAD_OR_FAIL(m, ctx);
  const ModelSpec& sig = m->spec();
  InputGenerator gen(sig, ctx.opt.dims);
  std::vector<std::string> details;

  // Malformed requests must stop at validation, before any runner code.
  {
    const TestRequest good = gen.Request(1, 3, 5);
    struct Bad {
      std::string what;
      TestRequest req;
    };
    std::vector<Bad> bad;
    if (!good.inputs.empty()) {
      Bad shape{"an extra dimension", good};
      shape.req.inputs[0].shape.push_back(1);
      bad.push_back(shape);
      Bad dtype{"another datatype", good};
      dtype.req.inputs[0].datatype =
          good.inputs[0].datatype == TORII_TYPE_INT8 ? TORII_TYPE_UINT8 : TORII_TYPE_INT8;
      bad.push_back(dtype);
      Bad missing{"a missing input", good};
      missing.req.inputs.erase(missing.req.inputs.begin());
      bad.push_back(missing);
    }
    Bad unknown{"an unknown output", good};
    unknown.req.outputs = {"NO_SUCH_OUTPUT_"};
    bad.push_back(unknown);
    std::vector<std::string> refused;
    for (const auto& b : bad) {
      auto p = PreparedRequest::Create(sig, ctx.loc.version, b.req);
      if (p.ok() || p.status().code() != absl::StatusCode::kInvalidArgument) {
        return Fail(absl::StrCat("a request with ", b.what,
                                 " was not refused by validation (server bug?)"));
      }
      refused.push_back(b.what);
    }
    details.push_back(absl::StrCat("refused before the runner: ", absl::StrJoin(refused, ", ")));
  }

  struct Case {
    std::string what;
    std::vector<TestRequest> reqs;
  };
  std::vector<Case> cases;
  cases.push_back({"all-zero inputs", {gen.Request(1, 3, 1, Values::kZeros)}});
  cases.push_back({"extreme values (NaN, +-Inf, -0, integer min/max, binary and 4 KiB strings)",
                   {gen.Request(1, 7, 2, Values::kExtreme)}});
  if (gen.HasVariableDims()) {
    cases.push_back({"empty tensors (variable dims 0)", {gen.Request(1, 0, 3)}});
    // Long, but bounded: about a million elements per input at most.
    const size_t k = gen.MaxVariableDims();
    const int64_t n = k == 1 ? 1024 : k == 2 ? 256 : k == 3 ? 64 : 16;
    cases.push_back({absl::StrCat("long variable dims (", n, ")"), {gen.Request(1, n, 4)}});
  }
  const int32_t mbs = sig.max_batch_size;
  if (sig.batching_enabled() && mbs > 1) {
    cases.push_back({absl::StrCat("one request of max_batch_size (", mbs, ") rows"),
                     {gen.Request(mbs, 3, 6)}});
    std::vector<TestRequest> many;
    const int32_t n = std::min<int32_t>(mbs, 64);
    for (int32_t i = 0; i < n; ++i) many.push_back(gen.Request(1, 3, 300 + static_cast<uint64_t>(i)));
    cases.push_back({absl::StrCat(n, " one-row requests in one batch"), many});
  }
  int answered = 0, refused = 0;
  for (const auto& c : cases) {
    rep.Step("case '" + c.what + "'");
    const std::vector<TestResponse> rs = m->Execute(0, c.reqs);
    std::string result;
    for (size_t i = 0; i < rs.size(); ++i) {
      const TestResponse& r = rs[i];
      if (r.status.ok()) {
        int64_t rows = 1;
        if (sig.batching_enabled() && !c.reqs[i].inputs.empty()) rows = c.reqs[i].inputs[0].shape[0];
        std::string why = CheckDeclared(sig, rows, r, {});
        if (!why.empty()) return Fail(absl::StrCat("case '", c.what, "': ", why));
        if (result.empty()) result = "answered";
      } else if (IsRunnerBug(r.status)) {
        return Fail(absl::StrCat("case '", c.what, "': ", Describe(r.status)));
      } else {
        result = "refused: " + Describe(r.status);
      }
    }
    (absl::StartsWith(result, "answered") ? answered : refused) += 1;
    details.push_back(absl::StrCat(c.what, ": ", result));
  }
  return Pass(absl::StrCat(cases.size(), " edge cases: ", answered, " answered, ", refused,
                           " refused with an error, none crashed; malformed requests never "
                           "reach the runner"),
              details);
}

// What the memory check measures: this process for a runner in process; the
// runner host processes for one that runs isolated (whose heap cannot be
// read from here, so only their VmRSS counts).
Memory MeasureModel(const ModelUnderTest& m) {
  if (!m.isolated()) return ReadMemory();
  Memory total;
  for (pid_t pid : m.runner_pids()) total.rss_kib += RssOf(pid);
  return total;
}

Outcome CheckMemory(const Ctx& ctx, ChildReporter& rep) {
  TORII_LOAD_OR_FAIL(m, ctx);
  InputGenerator gen(m->spec(), ctx.opt.dims);
  std::vector<TestRequest> reqs;
  for (int i = 0; i < 4; ++i) reqs.push_back(gen.Request(1, 3, 400 + static_cast<uint64_t>(i)));
  const int calls = std::max(10, ctx.opt.calls);
  const int warmup = std::min(100, calls);
  const bool isolated = m->isolated();
  rep.Step(absl::StrCat(warmup, " warm-up calls"));
  for (int i = 0; i < warmup; ++i) {
    const TestResponse r = m->Infer(reqs[static_cast<size_t>(i) % reqs.size()]);
    if (!r.status.ok()) return Fail(absl::StrCat("warm-up call ", i, " failed: ", Describe(r.status)));
  }
  const Memory base = MeasureModel(*m);
  std::vector<std::string> samples;
  rep.Step(absl::StrCat(calls, " measured calls"));
  for (int i = 0; i < calls; ++i) {
    const TestResponse r = m->Infer(reqs[static_cast<size_t>(i) % reqs.size()]);
    if (!r.status.ok()) return Fail(absl::StrCat("call ", i, " failed: ", Describe(r.status)));
    if ((i + 1) % (calls / 10) == 0) {
      const Memory now = MeasureModel(*m);
      samples.push_back(isolated ? absl::StrCat(now.rss_kib - base.rss_kib)
                                 : absl::StrCat(now.rss_kib - base.rss_kib, "/",
                                                now.heap_kib - base.heap_kib));
    }
  }
  const Memory end = MeasureModel(*m);
  const int64_t rss = end.rss_kib - base.rss_kib;
  const int64_t heap = end.heap_kib - base.heap_kib;
  std::vector<std::string> details;
  std::string summary;
  if (isolated) {
    details = {absl::StrCat("VmRSS of the runner host process(es) ", base.rss_kib, " KiB -> ",
                            end.rss_kib, " KiB (their heap cannot be read from here: only VmRSS "
                            "is checked)"),
               absl::StrCat("growth (RSS KiB) every ", calls / 10, " calls: ",
                            absl::StrJoin(samples, " "))};
    summary = absl::StrCat(calls, " calls: VmRSS of the runner process ", rss >= 0 ? "+" : "",
                           rss, " KiB (limit ", ctx.opt.rss_limit_kib, ")");
  } else {
    details = {absl::StrCat("VmRSS ", base.rss_kib, " KiB -> ", end.rss_kib,
                            " KiB; heap in use ", base.heap_kib, " KiB -> ", end.heap_kib, " KiB"),
               absl::StrCat("growth (RSS/heap KiB) every ", calls / 10, " calls: ",
                            absl::StrJoin(samples, " "))};
    summary = absl::StrCat(calls, " calls: VmRSS ", rss >= 0 ? "+" : "", rss, " KiB (limit ",
                           ctx.opt.rss_limit_kib, "), heap ", heap >= 0 ? "+" : "", heap,
                           " KiB (limit ", ctx.opt.heap_limit_kib, ")");
  }
  if (rss > ctx.opt.rss_limit_kib || (!isolated && heap > ctx.opt.heap_limit_kib)) {
    details.push_back(absl::StrCat("about ", std::max(rss, heap) * 1024 / calls,
                                   " bytes per call are never given back: a leak in the runner "
                                   "(free what Execute allocates; outputs belong to the host)"));
    return Fail("memory grows: " + summary, details);
  }
  return Pass("memory stays flat over " + summary, details);
}

// A runner that may run in process must unload completely, or a server could
// never swap in a new build of it: after the last model using it is
// unloaded, its library must be unmapped. A runner whose models run isolated
// (the runner's manifest, e.g. the Python runner's process_per_instance, or
// the config's isolation parameter) is never mapped into the server: each
// load starts new runner host processes and each unload ends them, so such a
// runner may pin itself in memory (the Python runner must: an interpreter
// cannot be restarted). For it the check asks instead that every unload ends
// its processes in time and that nothing of the runner enters this process.
Outcome CheckReload(const Ctx& ctx, ChildReporter& rep) {
  const int cycles = std::max(2, ctx.opt.reloads);
  auto planned = BuildModelSpec(ctx.loc.parsed.config, ctx.loc.manifest, SpecDefaults{},
                                /*require_io=*/false);
  if (!planned.ok()) return Fail("the model did not load: " + Describe(planned.status()));
  const IsolationMode isolation = planned->isolation.mode;
  const bool isolated = isolation != IsolationMode::kNone;
  const auto stop_timeout = IsolatedRunnerModel::Options{}.stop_timeout;
  int still_mapped = 0;
  int stop_timeouts = 0;
  std::chrono::milliseconds slowest_unload{0};
  Memory base;
  int base_fds = 0;
  for (int c = 0; c < cycles; ++c) {
    rep.Step(absl::StrCat("load/unload cycle ", c + 1));
    ModelUnderTest::Options o;
    if (!isolated) {
      auto lib = RunnerLibrary::Open(ctx.loc.runner_path);
      if (!lib.ok()) return Fail(absl::StrCat("cycle ", c + 1, ": ", lib.status().message()));
      o.library = std::move(*lib);  // the model holds the only reference
    }
    auto m = ModelUnderTest::Load(ctx.loc, std::move(o));
    if (!m.ok()) return Fail(absl::StrCat("cycle ", c + 1, ": ", Describe(m.status())));
    const TestRequest req = InputGenerator((*m)->spec(), ctx.opt.dims).Request(1, 3, 500);
    const TestResponse r = (*m)->Infer(req);
    if (!r.status.ok()) {
      return Fail(absl::StrCat("cycle ", c + 1, ": the reloaded model failed: ", Describe(r.status)));
    }
    const auto unload_start = std::chrono::steady_clock::now();
    m->reset();
    const auto unload = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - unload_start);
    slowest_unload = std::max(slowest_unload, unload);
    // An isolated unload that took the whole stop timeout ended in SIGKILL.
    if (isolated && unload >= stop_timeout) ++stop_timeouts;
    // RTLD_NOLOAD finds the library only if it is mapped here (left mapped
    // by dlclose, or, for an isolated runner, ever opened in this process).
    if (void* h = dlopen(ctx.loc.runner_path.c_str(), RTLD_NOW | RTLD_NOLOAD)) {
      ++still_mapped;
      dlclose(h);
    }
    if (c == 0) {
      base = ReadMemory();
      base_fds = OpenDescriptors();
    }
  }
  const Memory end = ReadMemory();
  const int end_fds = OpenDescriptors();
  const int64_t rss = end.rss_kib - base.rss_kib;
  const int64_t heap = end.heap_kib - base.heap_kib;
  const std::string growth = absl::StrCat("VmRSS ", rss >= 0 ? "+" : "", rss, " KiB, heap ",
                                          heap >= 0 ? "+" : "", heap, " KiB after the first");
  if (!isolated && still_mapped > 0) {
    return Fail(
        absl::StrCat("the library stays loaded after its model is unloaded (", still_mapped,
                     " of ", cycles, " cycles), so a server could never swap in a new build"),
        {"usually STB_GNU_UNIQUE symbols (inline statics, templates) or -z nodelete leaking "
         "out of the library: build it with torii_add_runner(), whose version script exports "
         "only the torii_runner_* entry points"});
  }
  if (isolated && still_mapped > 0) {
    return Fail(absl::StrCat("the runner library was mapped into the calling process although "
                             "its models run isolated (",
                             still_mapped, " of ", cycles, " cycles): a torii-runner bug"));
  }
  if (stop_timeouts > 0) {
    return Fail(
        absl::StrCat("the runner process did not exit within ", stop_timeout.count(),
                     " ms of the unload in ", stop_timeouts, " of ", cycles,
                     " cycles and was killed"),
        {"after the server closes its channels, torii-runner-host destroys the instances, "
         "unloads the model and exits: instance_destroy or model_unload (a Python model's "
         "finalize) hangs or takes too long"});
  }
  if (rss > ctx.opt.rss_limit_kib || heap > ctx.opt.heap_limit_kib) {
    if (isolated) {
      return Fail(absl::StrCat("memory of the calling process grows across load/infer/unload "
                               "cycles of isolated runner processes: ",
                               growth),
                  {"this is the server's side of isolation (IsolatedRunnerModel), not the "
                   "runner: report it"});
    }
    return Fail(absl::StrCat("memory grows across load/infer/unload cycles: ", growth),
                {"model_unload/instance_destroy must release everything model_load and "
                 "instance_create allocated (each cycle also runs one request: when the "
                 "memory check fails too, look there first)"});
  }
  if (isolated && end_fds > base_fds) {
    return Fail(absl::StrCat("file descriptors leak across load/unload cycles of isolated runner "
                             "processes: ",
                             base_fds, " -> ", end_fds, " after the first"),
                {"this is the server's side of isolation (IsolatedRunnerModel), not the "
                 "runner: report it"});
  }
  if (!isolated) {
    return Pass(absl::StrCat(cycles,
                             " load/infer/unload cycles; the library was unmapped each time; ",
                             growth));
  }
  std::vector<std::string> details = {absl::StrCat(
      "open file descriptors of the calling process: ", base_fds, " -> ", end_fds,
      " after the first cycle")};
  const bool from_manifest = isolation == ctx.loc.manifest.isolation;
  if (!from_manifest) {
    details.push_back(
        "note: the runner's manifest allows it to run in process, where unloading must unmap "
        "its library; config.pbtxt isolates this model, so that was not checked (check a copy "
        "of the model without the isolation parameter)");
  }
  return Pass(absl::StrCat(
                  cycles, " load/infer/unload cycles, each in new torii-runner-host process(es) "
                  "(isolation \"", IsolationModeName(isolation), "\" from ",
                  from_manifest ? "the runner's manifest" : "config.pbtxt",
                  "); each unloaded and exited (slowest ", slowest_unload.count(),
                  " ms); the library never entered this process, so a runner that pins itself "
                  "is fine; ",
                  growth),
              details);
}

using CheckFn = Outcome (*)(const Ctx&, ChildReporter&);
struct CheckDef {
  std::string name;
  CheckFn fn;
};

const std::vector<CheckDef>& Checks() {
  static const std::vector<CheckDef> checks = {
      {"abi", CheckAbi},           {"config", CheckConfig},
      {"signature", CheckSignature}, {"batching", CheckBatching},
      {"concurrency", CheckConcurrency}, {"edge-inputs", CheckEdgeInputs},
      {"memory", CheckMemory},     {"reload", CheckReload},
  };
  return checks;
}

std::string Indent(const std::string& text, const std::string& prefix) {
  std::string out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    absl::StrAppend(&out, prefix, line, "\n");
  }
  return out;
}

std::string LastLines(const std::string& text, size_t n) {
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  if (lines.size() > n) lines.erase(lines.begin(), lines.end() - static_cast<std::ptrdiff_t>(n));
  return absl::StrJoin(lines, "\n");
}

}  // namespace

const std::vector<std::string>& CheckNames() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const auto& c : Checks()) n.push_back(c.name);
    return n;
  }();
  return names;
}

bool RunConformance(const ModelLocation& loc, const CheckOptions& opt, std::ostream& out) {
  out << "torii-runner check: model '" << loc.model_name << "' version " << loc.version << "\n"
      << "  model directory  " << loc.model_dir << "\n"
      << "  runner library   " << loc.runner_path << "\n";
  if (!loc.has_config_file) {
    out << "  config           none: runner '" << loc.runner_name
        << "' completes it (auto_complete_config in its manifest)\n";
  }
  auto planned = BuildModelSpec(loc.parsed.config, loc.manifest, SpecDefaults{},
                                /*require_io=*/false);
  if (planned.ok() && planned->isolation.mode != IsolationMode::kNone) {
    out << "  isolation        " << IsolationModeName(planned->isolation.mode) << " ("
        << (planned->isolation.mode == loc.manifest.isolation ? "the runner's manifest"
                                                                 : "config.pbtxt")
        << "): the model runs in torii-runner-host processes, as the server runs it\n";
  }
  out << "\n";
  const Ctx ctx{loc, opt};
  std::vector<std::string> failed;
  int passed = 0, skipped = 0;
  // A model that does not load blocks every later check; a runner that fails
  // valid requests blocks the checks that compare or repeat them (edge-inputs
  // still runs: surviving odd input is worth knowing about on its own).
  std::string blocked;
  for (const auto& check : Checks()) {
    Outcome o;
    IsolatedResult r;
    const bool needs_answers = check.name != "edge-inputs";
    if (opt.skip.count(check.name) != 0) {
      o = Skip("skipped (--skip)");
    } else if (!blocked.empty() && (blocked != "signature" || needs_answers)) {
      o = Skip(blocked == "signature" ? "needs a runner that answers valid requests (see signature)"
                                      : "needs a runner that loads the model");
    } else {
      out.flush();
      r = RunIsolated([&](ChildReporter& rep) { return check.fn(ctx, rep); },
                      opt.timeout_seconds);
      o = r.outcome;
    }
    const char* tag = o.verdict == Verdict::kPass ? "PASS" : o.verdict == Verdict::kFail ? "FAIL" : "SKIP";
    std::string name = check.name;
    name.resize(12, ' ');
    out << "[" << tag << "] " << name << " " << o.summary << "\n";
    const bool failed_now = o.verdict == Verdict::kFail;
    for (const auto& d : o.details) {
      if (failed_now || opt.verbose || absl::StartsWith(d, "note: ")) {
        out << Indent(d, "                    ");
      }
    }
    if (!r.output.empty() && (failed_now || opt.verbose)) {
      out << "                    output of the runner process"
          << (opt.verbose ? "" : " (last 20 lines)") << ":\n"
          << Indent(opt.verbose ? r.output : LastLines(r.output, 20), "                    | ");
    }
    if (failed_now) {
      failed.push_back(check.name);
      if (blocked.empty() &&
          (check.name == "abi" || check.name == "config" || check.name == "signature")) {
        blocked = check.name;
      }
    } else if (o.verdict == Verdict::kPass) {
      ++passed;
    } else {
      ++skipped;
    }
  }
  out << "\n";
  if (failed.empty()) {
    out << "Result: PASS (" << passed << " passed, " << skipped << " skipped)\n";
    return true;
  }
  out << "Result: FAIL (" << failed.size() << " failed: " << absl::StrJoin(failed, ", ") << "; "
      << passed << " passed, " << skipped << " skipped)\n";
  return false;
}

}  // namespace runner_tool
}  // namespace torii
