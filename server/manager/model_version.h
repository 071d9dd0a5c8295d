// One loaded version of a model, immutable after load: its spec, the config
// it serves with, its backend (runner instances), scheduler and statistics.
// Requests and RPCs hold it through std::shared_ptr, so a version being
// replaced stays alive until the last user lets go.
#ifndef TORII_SERVER_MANAGER_MODEL_VERSION_H_
#define TORII_SERVER_MANAGER_MODEL_VERSION_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "model_config.pb.h"
#include "server/core/execution_backend.h"
#include "server/core/model_spec.h"
#include "server/scheduler/model_statistics.h"
#include "server/scheduler/scheduler.h"

namespace torii {

struct ModelVersion {
  std::string name;
  int64_t version = 0;
  std::string version_string;
  /// Of the version folder's files (and a model-folder runner library), at
  /// load: a reload keeps a version whose fingerprint and config are equal.
  std::string fingerprint;
  /// The config as read (source of truth for reload comparisons) and as
  /// served (completed by the runner when it did so).
  inference::ModelConfig source_config;
  inference::ModelConfig config;
  std::shared_ptr<const ModelSpec> spec;
  RunnerProvenance provenance;  // at load
  // Declared in destruction order (reverse): the scheduler goes first, then
  // the backend, then the statistics requests still report to.
  ModelStatistics stats;
  std::unique_ptr<ExecutionBackend> backend;
  std::unique_ptr<Scheduler> scheduler;
  std::atomic<size_t> reported_stuck{0};  // last stuck count logged

  /// Loaded, its backend can execute (an isolated runner may be restarting),
  /// and not every instance is stuck in a batch.
  bool CanServe() const;

  /// Stops taking requests and finishes what is queued and running, within
  /// `bound`; past it, queued requests are answered UNAVAILABLE and running
  /// batches aborted (isolated runners are killed). False when a batch is
  /// still stuck in an in-process runner after that: the version must then
  /// be kept alive (its threads are inside the runner).
  bool Retire(std::chrono::milliseconds bound);

  ~ModelVersion();
};

}  // namespace torii

#endif  // TORII_SERVER_MANAGER_MODEL_VERSION_H_
