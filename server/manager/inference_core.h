// The request path's entry (InferenceDispatcher): look the model up, check
// the request once against its spec, queue it on the version's scheduler.
// Shared by every frontend and by in-server callers (ensemble steps, runners
// calling other models), so they all get the same validation, scheduling,
// statistics and errors.
#ifndef TORII_SERVER_MANAGER_INFERENCE_CORE_H_
#define TORII_SERVER_MANAGER_INFERENCE_CORE_H_

#include <atomic>
#include <memory>

#include "server/core/inference_dispatcher.h"
#include "server/core/request_validator.h"
#include "server/manager/model_manager.h"

namespace torii {

class InferenceCore : public InferenceDispatcher {
 public:
  InferenceCore(const ModelManager* manager, ValidationLimits limits)
      : manager_(manager), limits_(limits) {}

  void Infer(std::unique_ptr<InferenceRequest> request) override;

  /// From now on every request is answered UNAVAILABLE (shutdown).
  void SetShuttingDown() { shutting_down_ = true; }
  bool shutting_down() const { return shutting_down_; }
  const ValidationLimits& limits() const { return limits_; }

 private:
  const ModelManager* manager_;
  const ValidationLimits limits_;
  std::atomic<bool> shutting_down_{false};
};

}  // namespace torii

#endif  // TORII_SERVER_MANAGER_INFERENCE_CORE_H_
