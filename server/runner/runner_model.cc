#include "server/runner/runner_model.h"

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/common/status_macros.h"
#include "server/core/request_validator.h"
#include "server/core/datatype.h"

namespace torii {
namespace {

using Clock = InferenceRequest::Clock;

// Calls into a runner. The SDK never lets an exception out, but a runner
// written against the bare C header might; catch it here rather than die.
template <typename Fn>
absl::Status CallRunner(const std::string& context, Fn&& fn) {
  try {
    ToriiError* err = fn();
    // A runner that already names the model needs no second prefix.
    if (err != nullptr && absl::StartsWith(err->message, context)) return ConsumeRunnerError(err, "");
    return ConsumeRunnerError(err, context);
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat(context, "runner let an exception cross the C ABI: ", e.what()));
  } catch (...) {
    return absl::InternalError(
        absl::StrCat(context, "runner let an unknown exception cross the C ABI"));
  }
}

uint64_t MonotonicNs(Clock::time_point t) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
}

int64_t Elements(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

}  // namespace

absl::StatusOr<std::unique_ptr<RunnerModel>> RunnerModel::Create(
    std::shared_ptr<RunnerLibrary> library, Options options) {
  std::unique_ptr<RunnerModel> m(new RunnerModel(std::move(library)));
  ToriiModel& tm = m->model_;
  tm.name = options.name;
  tm.version = options.version;
  tm.directory = options.directory;
  tm.version_directory = options.version_directory;
  tm.spec = options.spec;
  tm.dispatcher = options.dispatcher;
  if (options.metrics != nullptr) {
    tm.metrics = std::make_unique<host_metrics::Owner>(options.metrics, options.metric_observer);
  }
  tm.complete_config = std::move(options.complete_config);

  const auto& sym = m->library_->symbols();
  const std::string context = absl::StrCat("model '", options.name, "' version ",
                                           options.version, ": ");
  void* state = nullptr;
  tm.loading = true;
  absl::Status loaded = CallRunner(context + "load failed: ", [&] {
    return sym.model_load(HostApi(), &tm, &state);
  });
  tm.loading = false;
  TORII_RETURN_IF_ERROR(loaded);
  m->model_state_ = state;
  m->loaded_ = true;
  const uint32_t count = std::max<uint32_t>(1, options.instance_count);
  for (uint32_t k = 0; k < count; ++k) {
    const uint32_t i = options.first_instance + k;
    void* inst = nullptr;
    // On failure the destructor releases the instances created so far.
    TORII_RETURN_IF_ERROR(CallRunner(absl::StrCat(context, "instance ", i, " failed: "), [&] {
      return sym.instance_create(m->model_state_, i, &inst);
    }));
    m->instances_.push_back(inst);
    m->scratch_.push_back(std::make_unique<Scratch>());
  }
  m->call_context_ = absl::StrCat("model '", options.name, "': ");
  return m;
}

RunnerModel::~RunnerModel() {
  const auto& sym = library_->symbols();
  for (void* inst : instances_) sym.instance_destroy(inst);
  // Requests the runner took over and never finished get an answer.
  AbandonSenders(&model_);
  if (loaded_) sym.model_unload(model_state_);
  // What the runner did not delete leaves /metrics with the model.
  model_.metrics.reset();
}

RunnerProvenance RunnerModel::provenance() const {
  RunnerProvenance p = library_->provenance();
  std::lock_guard<std::mutex> lock(model_.mu);
  p.properties = model_.properties;
  return p;
}

void RunnerModel::BuildInputs(ToriiBatch& batch) const {
  const RequestBatch& reqs = *batch.requests;
  batch.inputs.resize(model_.spec->inputs.size());
  for (size_t i = 0; i < batch.inputs.size(); ++i) {
    ToriiBatch::Input& in = batch.inputs[i];
    const InferenceInput& first = reqs[0]->inputs[i];
    in.shape = first.shape;
    if (reqs.size() == 1) {
      // The common case: the runner reads the request's bytes in place.
      in.data = first.data;
      in.byte_size = first.byte_size;
      continue;
    }
    size_t total = 0;
    for (const auto& r : reqs) total += r->inputs[i].byte_size;
    in.merged.reset(new char[total == 0 ? 1 : total]);
    size_t pos = 0;
    for (const auto& r : reqs) {
      if (r->inputs[i].byte_size > 0) {
        std::memcpy(in.merged.get() + pos, r->inputs[i].data, r->inputs[i].byte_size);
      }
      pos += r->inputs[i].byte_size;
    }
    in.shape[0] = batch.total_rows;
    in.data = in.merged.get();
    in.byte_size = total;
  }
}

void RunnerModel::CheckOutputs(const ToriiBatch& batch,
                               std::vector<absl::Status>& checked) const {
  checked.assign(batch.outputs.size(), absl::OkStatus());
  for (size_t k = 0; k < batch.outputs.size(); ++k) {
    const ToriiBatch::Output& out = batch.outputs[k];
    if (!batch.requested[k]) continue;
    const TensorSpec& ts = model_.spec->outputs[k];
    if (!out.allocated) {
      checked[k] = absl::InternalError(absl::StrCat(
          "model '", model_.name, "': the runner produced no output '", ts.name, "'"));
    } else if (out.datatype == TORII_TYPE_BYTES) {
      // Runner-written BYTES must be well formed before a client sees them;
      // a runner's bad output is the server's fault: INTERNAL.
      absl::Status s = ValidateBytesBuffer(
          out.data, out.byte_size, Elements(out.shape),
          absl::StrCat("model '", model_.name, "': runner output '", ts.name, "'"));
      if (!s.ok()) checked[k] = absl::InternalError(s.message());
    }
  }
}

absl::Status RunnerModel::ScatterOutputs(ToriiBatch& batch, size_t r, int64_t row_offset,
                                         InferenceResponse& response) const {
  const InferenceRequest& req = *(*batch.requests)[r];
  for (size_t k = 0; k < batch.outputs.size(); ++k) {
    if (!req.output_requested[k]) continue;
    const ToriiBatch::Output& out = batch.outputs[k];
    Shape shape = out.shape;
    if (model_.spec->batching_enabled()) shape[0] = req.rows;
    const char* src = out.data;
    size_t size = 0;
    if (batch.total_rows > 0 && out.datatype != TORII_TYPE_BYTES) {
      const size_t row_bytes = out.byte_size / static_cast<size_t>(batch.total_rows);
      src = out.data + static_cast<size_t>(row_offset) * row_bytes;
      size = static_cast<size_t>(req.rows) * row_bytes;
    } else if (batch.total_rows > 0) {
      // BYTES: walk the length prefixes to find this request's elements.
      const size_t per_row = static_cast<size_t>(Elements(out.shape) / batch.total_rows);
      const size_t first = static_cast<size_t>(row_offset) * per_row;
      const size_t count = static_cast<size_t>(req.rows) * per_row;
      size_t pos = 0, begin = 0;
      for (size_t e = 0; e < first + count; ++e) {
        if (e == first) begin = pos;
        uint32_t len;
        std::memcpy(&len, out.data + pos, 4);  // little-endian hosts only
        pos += 4 + len;
      }
      if (count == 0) begin = pos;
      src = out.data + begin;
      size = pos - begin;
    }
    TORII_ASSIGN_OR_RETURN(char* dst, response.AddOutput(model_.spec->outputs[k].name,
                                                         out.datatype, std::move(shape), size));
    if (size > 0) std::memcpy(dst, src, size);
  }
  return absl::OkStatus();
}

void RunnerModel::AnswerRequests(Scratch& scratch, const absl::Status& status) {
  ToriiBatch& batch = scratch.batch;
  RequestBatch& reqs = *batch.requests;
  // Outputs are checked once per batch, not once per request.
  std::vector<absl::Status>& checked = scratch.checked;
  checked.clear();
  if (status.ok()) CheckOutputs(batch, checked);
  for (size_t r = 0; r < reqs.size(); ++r) {
    // Taken over by a sender: the runner answers it.
    if (reqs[r] == nullptr || batch.senders[r] != nullptr) continue;
    InferenceRequest& req = *reqs[r];
    absl::Status s = !batch.failed[r].ok() ? batch.failed[r] : status;
    for (size_t k = 0; s.ok() && k < checked.size(); ++k) {
      if (req.output_requested[k] && !checked[k].ok()) s = checked[k];
    }
    if (s.ok() && batch.direct_response != nullptr) {
      req.Respond(std::move(batch.direct_response), /*final=*/true);
      continue;
    }
    std::unique_ptr<InferenceResponse> response;
    if (s.ok()) {
      response = req.NewResponse();
      s = ScatterOutputs(batch, r, scratch.row_offsets[r], *response);
    }
    if (s.ok()) {
      req.Respond(std::move(response), /*final=*/true);
    } else {
      req.RespondError(s);
    }
  }
}

void RunnerModel::Execute(size_t instance, RequestBatch& requests, Timing* timing) {
  const Clock::time_point t0 = Clock::now();
  Scratch& scratch = *scratch_[instance];
  ToriiBatch& batch = scratch.batch;
  batch.model = &model_;
  batch.requests = &requests;
  batch.total_rows = 0;
  batch.deadline_ns = 0;
  for (const auto& r : requests) {
    batch.total_rows += r->rows;
    if (r->deadline != Clock::time_point::max()) {
      const uint64_t ns = MonotonicNs(r->deadline);
      if (batch.deadline_ns == 0 || ns < batch.deadline_ns) batch.deadline_ns = ns;
    }
  }
  if (requests.size() == 1) batch.direct_response = requests[0]->NewResponse();
  BuildInputs(batch);
  const size_t n_out = model_.spec->outputs.size();
  batch.outputs.resize(n_out);
  batch.requested.assign(n_out, 0);
  for (const auto& r : requests) {
    for (size_t k = 0; k < n_out; ++k) batch.requested[k] |= r->output_requested[k];
  }
  batch.failed.assign(requests.size(), absl::OkStatus());
  batch.senders.resize(requests.size());
  std::vector<int64_t>& row_offsets = scratch.row_offsets;
  row_offsets.assign(requests.size(), 0);
  for (size_t r = 1; r < requests.size(); ++r) {
    row_offsets[r] = row_offsets[r - 1] + requests[r - 1]->rows;
  }

  const Clock::time_point t1 = Clock::now();
  const absl::Status status = CallRunner(call_context_, [&] {
    return library_->symbols().instance_execute(instances_[instance], &batch);
  });
  const Clock::time_point t2 = Clock::now();
  // Requests a runner took over live on in their senders.
  HandOverTakenRequests(&batch);
  AnswerRequests(scratch, status);
  // Let go of everything this batch held (buffers, senders, the requests);
  // the vectors keep their capacity for the next batch.
  batch.requests = nullptr;
  batch.direct_response.reset();
  batch.inputs.clear();
  batch.outputs.clear();
  batch.failed.clear();
  batch.senders.clear();
  if (timing != nullptr) *timing = Timing::Between(t0, t1, t2, Clock::now());
}

}  // namespace torii
