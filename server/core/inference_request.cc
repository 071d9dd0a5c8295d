#include "server/core/inference_request.h"

namespace torii {

std::unique_ptr<InferenceResponse> InferenceRequest::NewResponse() const {
  std::unique_ptr<InferenceResponse> r = sink->NewResponse();
  r->model_name = model_name;
  r->model_version = served_version;
  r->id = id;
  return r;
}

void InferenceRequest::Respond(std::unique_ptr<InferenceResponse> response, bool final) {
  if (response != nullptr && !response->status.ok() && outcome_.ok()) outcome_ = response->status;
  if (final && on_final) on_final(outcome_);
  sink->Deliver(std::move(response), final);
}

void InferenceRequest::RespondError(const absl::Status& status) {
  std::unique_ptr<InferenceResponse> r = NewResponse();
  r->status = status;
  Respond(std::move(r), /*final=*/true);
}

}  // namespace torii
