#include "server/manager/model_version.h"

#include "absl/strings/str_cat.h"

namespace torii {

bool ModelVersion::CanServe() const {
  return backend->healthy() && scheduler->stuck_instances() < backend->instance_count();
}

bool ModelVersion::Retire(std::chrono::milliseconds bound) {
  using Clock = Scheduler::Clock;
  if (scheduler->Drain(Clock::now() + bound)) return true;
  const std::string why = absl::StrCat("model '", name, "' version ", version_string,
                                       " was unloaded while its batch ran longer than ",
                                       bound.count(), " ms");
  scheduler->FailQueued(absl::UnavailableError(why));
  backend->Abort(why);
  // An aborted isolated batch returns at once; give it a moment.
  return scheduler->Drain(Clock::now() + std::chrono::seconds(2));
}

ModelVersion::~ModelVersion() {
  // Drain before the runner goes away: queued requests still finish.
  if (scheduler) scheduler->Shutdown();
  scheduler.reset();
  backend.reset();
}

}  // namespace torii
