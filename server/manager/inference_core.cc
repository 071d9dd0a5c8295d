#include "server/manager/inference_core.h"

#include "absl/strings/str_cat.h"
#include "server/manager/ensemble_model.h"

namespace torii {
namespace {

uint64_t NsSince(InferenceRequest::Clock::time_point t) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   InferenceRequest::Clock::now() - t)
                                   .count());
}

}  // namespace

void InferenceCore::Infer(std::unique_ptr<InferenceRequest> request) {
  // A draining server refuses new requests, but not the steps of ensemble
  // requests it accepted before.
  if (shutting_down_ && !IsEnsembleStep(*request)) {
    request->RespondError(
        absl::UnavailableError("the server is shutting down; retry on another replica"));
    return;
  }
  // A version may start draining between lookup and enqueue during a reload;
  // look it up again then, so a reload never fails a request.
  for (int attempt = 0;; ++attempt) {
    auto found = manager_->Get(request->model_name, request->model_version);
    if (!found.ok()) {
      request->RespondError(found.status());
      return;
    }
    const std::shared_ptr<ModelVersion> model = *std::move(found);
    request->served_version = model->version_string;
    // Failures before the queue count as failed requests of the model too.
    auto fail = [&](const absl::Status& s) {
      const char* reason = absl::IsInvalidArgument(s)       ? "invalid"
                           : absl::IsResourceExhausted(s)   ? "rejected"
                                                            : "unavailable";
      model->stats.RecordRequest(false, 0, NsSince(request->arrival), 0, reason);
      request->RespondError(s);
    };
    if (request->single_response && model->spec->decoupled) {
      return fail(absl::InvalidArgumentError(absl::StrCat(
          "model '", model->name, "' is decoupled (it may answer one request with any number "
          "of responses): call it with ModelStreamInfer, not ModelInfer")));
    }
    absl::Status s = ValidateRequest(*model->spec, limits_, request.get());
    if (!s.ok()) return fail(s);
    if (model->spec->is_ensemble()) {
      // An ensemble only sends its steps on: it starts them here rather than
      // behind a scheduler hop. A retiring version hands over to its successor.
      if (model->scheduler->stopping() && attempt < 3 && !shutting_down_) continue;
      static_cast<EnsembleModel*>(model->backend.get())->Submit(std::move(request), &model->stats);
      return;
    }
    s = model->scheduler->Enqueue(request);
    if (s.ok()) return;
    if (absl::IsUnavailable(s) && model->scheduler->stopping() && attempt < 3 && !shutting_down_) {
      continue;
    }
    return fail(s);
  }
}

}  // namespace torii
