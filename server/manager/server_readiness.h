// Whether the server takes traffic, one answer for every frontend: gRPC's
// ServerReady and grpc.health.v1, HTTP's /v2/health/ready, and anything
// else that reports readiness read it here, so they never disagree.
#ifndef TORII_SERVER_MANAGER_SERVER_READINESS_H_
#define TORII_SERVER_MANAGER_SERVER_READINESS_H_

#include <atomic>

#include "server/manager/inference_core.h"
#include "server/manager/model_manager.h"

namespace torii {

class ServerReadiness {
 public:
  /// `manager` and `core` must outlive this object. `strict`: readiness also
  /// needs every model ready (--strict-readiness).
  ServerReadiness(const ModelManager* manager, const InferenceCore* core, bool strict)
      : manager_(manager), core_(core), strict_(strict) {}

  /// Marks the end of startup loading (until then the server is live, not
  /// ready). Thread-safe.
  void SetStarted() { started_ = true; }

  /// Started, not shutting down and, when strict, no model loading or
  /// failed (models unloaded on purpose do not count). Thread-safe.
  bool IsReady() const {
    if (!started_ || core_->shutting_down()) return false;
    return !strict_ || manager_->AllReady();
  }

 private:
  const ModelManager* const manager_;
  const InferenceCore* const core_;
  const bool strict_;
  std::atomic<bool> started_{false};
};

}  // namespace torii

#endif  // TORII_SERVER_MANAGER_SERVER_READINESS_H_
