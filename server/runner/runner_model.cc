#include "server/runner/runner_model.h"

#include <time.h>

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "server/common/status_macros.h"
#include "server/core/request_validator.h"
#include "torii/runner.h"

namespace torii {
namespace {

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

uint64_t MonotonicNs(InferenceRequest::Clock::time_point t) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
}

}  // namespace

absl::StatusOr<std::unique_ptr<RunnerModel>> RunnerModel::Create(
    std::shared_ptr<RunnerLibrary> library, Options options) {
  std::unique_ptr<RunnerModel> m(new RunnerModel(std::move(library), options.signature));
  ToriiModel& tm = m->model_;
  tm.name = options.name;
  tm.version = options.version;
  tm.directory = options.directory;
  tm.version_directory = options.version_directory;
  tm.signature = options.signature;
  for (const auto& [k, v] : options.config->parameters()) tm.parameters[k] = v.string_value();
  google::protobuf::util::JsonPrintOptions json;
  json.preserve_proto_field_names = true;
  if (!google::protobuf::util::MessageToJsonString(*options.config, &tm.config_json, json).ok()) {
    tm.config_json = "{}";
  }

  const auto& sym = m->library_->symbols();
  const std::string context = absl::StrCat("model '", options.name, "' version ",
                                           options.version, ": ");
  void* state = nullptr;
  TORII_RETURN_IF_ERROR(CallRunner(context + "load failed: ", [&] {
    return sym.model_load(HostApi(), &tm, &state);
  }));
  m->model_state_ = state;
  m->loaded_ = true;
  for (uint32_t i = 0; i < std::max<uint32_t>(1, options.instance_count); ++i) {
    void* inst = nullptr;
    // On failure the destructor releases the instances created so far.
    TORII_RETURN_IF_ERROR(CallRunner(absl::StrCat(context, "instance ", i, " failed: "), [&] {
      return sym.instance_create(m->model_state_, i, &inst);
    }));
    m->instances_.push_back(inst);
  }
  return m;
}

RunnerModel::~RunnerModel() {
  const auto& sym = library_->symbols();
  for (void* inst : instances_) sym.instance_destroy(inst);
  if (loaded_) sym.model_unload(model_state_);
}

void RunnerModel::BuildInputs(ToriiBatch& batch) const {
  const auto& reqs = *batch.requests;
  batch.inputs.resize(signature_->inputs().size());
  for (size_t i = 0; i < batch.inputs.size(); ++i) {
    ToriiBatch::Input& in = batch.inputs[i];
    const InputData& first = reqs[0]->inputs[i];
    in.shape = first.shape;
    if (reqs.size() == 1) {
      // The common case: the runner reads the request's bytes in place.
      in.data = first.data;
      in.byte_size = first.byte_size;
      continue;
    }
    size_t total = 0;
    for (const auto* r : reqs) total += r->inputs[i].byte_size;
    in.merged.reserve(total);
    for (const auto* r : reqs) in.merged.append(r->inputs[i].data, r->inputs[i].byte_size);
    in.shape[0] = batch.total_rows;
    in.data = in.merged.data();
    in.byte_size = in.merged.size();
  }
}

std::vector<absl::Status> RunnerModel::CheckOutputs(const ToriiBatch& batch) const {
  std::vector<absl::Status> checked(batch.outputs.size());
  for (size_t k = 0; k < batch.outputs.size(); ++k) {
    const ToriiBatch::Output& out = batch.outputs[k];
    if (!batch.requested[k]) continue;
    const TensorSignature& ts = signature_->outputs()[k];
    if (!out.allocated) {
      checked[k] = absl::InternalError(absl::StrCat(
          "model '", model_.name, "': the runner produced no output '", ts.name, "'"));
    } else if (out.datatype == TORII_TYPE_BYTES) {
      // Runner-written BYTES must be well formed before a client sees them.
      int64_t elements = 1;
      for (int64_t d : out.shape) elements *= d;
      checked[k] = ValidateBytesBuffer(
          out.buffer.data(), out.buffer.size(), elements,
          absl::StrCat("model '", model_.name, "': runner output '", ts.name, "'"));
    }
  }
  return checked;
}

absl::Status RunnerModel::ScatterOutputs(ToriiBatch& batch, size_t r, int64_t row_offset,
                                         const std::vector<absl::Status>& checked) {
  const auto& reqs = *batch.requests;
  InferenceRequest& req = *reqs[r];
  const bool whole = reqs.size() == 1;

  for (size_t k = 0; k < batch.outputs.size(); ++k) {
    if (!req.output_requested[k]) continue;
    ToriiBatch::Output& out = batch.outputs[k];
    const TensorSignature& ts = signature_->outputs()[k];
    TORII_RETURN_IF_ERROR(checked[k]);
    int64_t elements = 1;
    for (int64_t d : out.shape) elements *= d;
    auto* tensor = req.response->add_outputs();
    tensor->set_name(ts.name);
    tensor->set_datatype(DataTypeName(out.datatype));
    for (size_t d = 0; d < out.shape.size(); ++d) {
      tensor->add_shape(d == 0 && signature_->batching() ? req.rows : out.shape[d]);
    }
    if (whole) {
      // Move the host buffer into the response: no copy.
      req.response->add_raw_output_contents(std::move(out.buffer));
      continue;
    }
    std::string* dst = req.response->add_raw_output_contents();
    if (batch.total_rows == 0) continue;
    if (out.datatype != TORII_TYPE_BYTES) {
      const size_t row_bytes = out.buffer.size() / static_cast<size_t>(batch.total_rows);
      dst->assign(out.buffer, static_cast<size_t>(row_offset) * row_bytes,
                  static_cast<size_t>(req.rows) * row_bytes);
      continue;
    }
    // BYTES: walk the length prefixes to find this request's elements.
    const size_t per_row = static_cast<size_t>(elements / batch.total_rows);
    const size_t first = static_cast<size_t>(row_offset) * per_row;
    const size_t count = static_cast<size_t>(req.rows) * per_row;
    size_t pos = 0, begin = 0;
    for (size_t e = 0; e < first + count; ++e) {
      if (e == first) begin = pos;
      uint32_t len;
      std::memcpy(&len, out.buffer.data() + pos, 4);  // little-endian hosts only
      pos += 4 + len;
    }
    if (count == 0) begin = pos;
    dst->assign(out.buffer, begin, pos - begin);
  }
  return absl::OkStatus();
}

std::vector<absl::Status> RunnerModel::Execute(size_t instance,
                                               const std::vector<InferenceRequest*>& requests,
                                               Timing* timing) {
  using Clock = InferenceRequest::Clock;
  const Clock::time_point t0 = Clock::now();
  ToriiBatch batch;
  batch.model = &model_;
  batch.requests = &requests;
  for (const auto* r : requests) {
    batch.total_rows += r->rows;
    if (r->deadline != InferenceRequest::Clock::time_point::max()) {
      const uint64_t ns = MonotonicNs(r->deadline);
      if (batch.deadline_ns == 0 || ns < batch.deadline_ns) batch.deadline_ns = ns;
    }
  }
  BuildInputs(batch);
  batch.outputs.resize(signature_->outputs().size());
  batch.requested.assign(signature_->outputs().size(), false);
  for (const auto* r : requests) {
    for (size_t k = 0; k < batch.requested.size(); ++k) {
      if (r->output_requested[k]) batch.requested[k] = true;
    }
  }
  batch.failed.assign(requests.size(), absl::OkStatus());

  const Clock::time_point t1 = Clock::now();
  const absl::Status status = CallRunner(absl::StrCat("model '", model_.name, "': "), [&] {
    return library_->symbols().instance_execute(instances_[instance], &batch);
  });
  const Clock::time_point t2 = Clock::now();

  std::vector<absl::Status> result(requests.size());
  // Outputs are checked once per batch, not once per request.
  const std::vector<absl::Status> checked =
      status.ok() ? CheckOutputs(batch) : std::vector<absl::Status>();
  int64_t row_offset = 0;
  for (size_t r = 0; r < requests.size(); ++r) {
    if (!batch.failed[r].ok()) {
      result[r] = batch.failed[r];
    } else if (!status.ok()) {
      result[r] = status;
    } else {
      result[r] = ScatterOutputs(batch, r, row_offset, checked);
    }
    row_offset += requests[r]->rows;
  }
  if (timing != nullptr) *timing = Timing::Between(t0, t1, t2, Clock::now());
  return result;
}

}  // namespace torii
