// The one entry to the request path. Frontends and in-server callers
// (ensemble steps, runners calling other models) build an InferenceRequest
// and hand it here; the implementation (server/manager/inference_core.h)
// looks the model up, validates the request once and queues it on the
// model's scheduler. Declared here, below the layers that call it, so a
// runner or an ensemble can call models without depending on the manager.
#ifndef TORII_SERVER_CORE_INFERENCE_DISPATCHER_H_
#define TORII_SERVER_CORE_INFERENCE_DISPATCHER_H_

#include <memory>

#include "server/core/inference_request.h"

namespace torii {

class InferenceDispatcher {
 public:
  virtual ~InferenceDispatcher() = default;

  /// Looks up, validates and schedules `request`. The outcome always reaches
  /// request->sink: responses, or one final error response (unknown model:
  /// NOT_FOUND, invalid request: INVALID_ARGUMENT, ...). The sink may be
  /// called before this returns. Thread-safe.
  virtual void Infer(std::unique_ptr<InferenceRequest> request) = 0;
};

}  // namespace torii

#endif  // TORII_SERVER_CORE_INFERENCE_DISPATCHER_H_
