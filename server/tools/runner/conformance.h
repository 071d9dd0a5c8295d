// `torii-runner check`: the conformance suite a runner must pass before a
// server is trusted with it. Every check runs in its own child process (see
// isolated_run.h), loads the model through the server's own code (in that
// process, or in torii-runner-host processes when the server would isolate
// the model: the runner's manifest, e.g. the Python runner's
// process_per_instance, or the config's isolation parameter), and reports
// PASS, FAIL (with the reasons) or SKIP.
//
//   abi          the library opens, exports the six entry points, was built
//                for a compatible ABI, and reports its provenance
//   config       config.pbtxt parses and the runner loads it and creates the
//                configured instances
//   signature    for generated inputs (several sizes for variable dims) the
//                runner answers with every declared output, as declared, and
//                honours requests for a single output
//   batching     a batch of N requests gives each request what it gets alone
//                (max_batch_size > 0)
//   concurrency  two instances executing on two threads at once agree with
//                the serial results
//   edge-inputs  inputs the server accepts but a runner may not expect (empty
//                tensors, NaN/Inf, integer extremes, binary strings, a full
//                batch) give outputs or an error, never a crash or a hang;
//                and malformed requests never reach the runner
//   memory       1,000 calls leave resident memory and the heap flat (of the
//                runner host processes, VmRSS only, for an isolated model)
//   reload       the model loads and unloads 20 times, and the library is
//                really unmapped after the last unload (so a hot swap runs
//                new code). An isolated model's runner is never mapped into
//                the server, and each load starts new runner processes: such
//                a runner may pin itself (the Python runner must), and the
//                check asks instead that every unload ends its processes
//                within the stop timeout and that the calling process does
//                not grow (memory, descriptors)
#ifndef TORII_SERVER_TOOLS_RUNNER_CONFORMANCE_H_
#define TORII_SERVER_TOOLS_RUNNER_CONFORMANCE_H_

#include <cstdint>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "server/tools/runner/input_generator.h"
#include "server/tools/runner/model_location.h"

namespace torii {
namespace runner_tool {

struct CheckOptions {
  DimsOverride dims;          // concrete sizes for inputs' dims (--dims)
  std::set<std::string> skip; // check names not to run (--skip)
  int calls = 1000;           // memory: calls measured (--calls)
  int reloads = 20;           // reload: load/unload cycles (--reloads)
  double timeout_seconds = 120;   // per check (--timeout)
  int64_t rss_limit_kib = 4096;   // memory/reload: VmRSS growth allowed
  int64_t heap_limit_kib = 1024;  // memory/reload: malloc'ed bytes growth allowed
  double rtol = 1e-5;         // float comparisons: |a-b| <= atol + rtol*|b|
  double atol = 1e-6;
  bool verbose = false;       // details and runner output of passing checks
};

/// Names of the checks, in the order they run.
const std::vector<std::string>& CheckNames();

/// Runs the suite on `location` and writes the report to `out`. Returns true
/// when no check failed.
bool RunConformance(const ModelLocation& location, const CheckOptions& options,
                    std::ostream& out);

}  // namespace runner_tool
}  // namespace torii

#endif  // TORII_SERVER_TOOLS_RUNNER_CONFORMANCE_H_
