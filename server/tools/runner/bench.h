// `torii-runner bench`: latency and throughput of a runner by batch size,
// without a server. A batch of B is B one-row requests merged into one
// execute call and split again, exactly as the server's batcher delivers
// them; no gRPC, no queueing. What it measures is the runner plus the
// server's batch assembly (and, for a runner that runs isolated, the trip
// through the runner host process), i.e. the floor under what clients see.
#ifndef TORII_SERVER_TOOLS_RUNNER_BENCH_H_
#define TORII_SERVER_TOOLS_RUNNER_BENCH_H_

#include <cstdint>
#include <ostream>
#include <vector>

#include "absl/status/status.h"
#include "server/tools/runner/input_generator.h"
#include "server/tools/runner/model_location.h"

namespace torii {
namespace runner_tool {

struct BenchOptions {
  DimsOverride dims;                 // --dims
  int64_t variable = 16;             // size of -1 dims without --dims
  std::vector<int64_t> batch_sizes;  // empty: 1, 8, 32 capped by max_batch_size
  double seconds = 2.0;              // measured time per batch size
  int warmup = 10;                   // calls before measuring
  bool json = false;                 // one JSON document instead of a table
};

/// The batch sizes a bench run uses for a model (see BenchOptions).
std::vector<int64_t> DefaultBatchSizes(int32_t max_batch_size);

absl::Status RunBench(const ModelLocation& location, const BenchOptions& options,
                      std::ostream& out);

}  // namespace runner_tool
}  // namespace torii

#endif  // TORII_SERVER_TOOLS_RUNNER_BENCH_H_
