#include "server/manager/ensemble_model.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <map>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/common/logging.h"
#include "server/common/status_macros.h"
#include "server/core/datatype.h"

namespace torii {
namespace {

using Clock = InferenceRequest::Clock;

std::string StepLabel(const ModelSpec& ensemble, size_t i) {
  return absl::StrCat("step ", i, " (model '", ensemble.ensemble_steps[i].model_name, "')");
}

std::string Names(const std::vector<TensorSpec>& tensors) {
  std::vector<std::string> names;
  for (const auto& t : tensors) names.push_back(t.name);
  return absl::StrJoin(names, ", ");
}

// One declaration of an ensemble tensor: who declares it, as what.
struct TensorDecl {
  std::string who;  // "output 'Y' of step 0 (model 'pre')"
  ToriiDataType datatype = TORII_TYPE_INVALID;
  std::vector<int64_t> shape;  // with the batch dimension (-1) when batching
};

bool ShapesFit(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  if (a.size() != b.size()) return false;
  for (size_t k = 0; k < a.size(); ++k) {
    if (a[k] != -1 && b[k] != -1 && a[k] != b[k]) return false;
  }
  return true;
}

}  // namespace

absl::Status CheckEnsembleSteps(const ModelSpec& e, const std::vector<const ModelSpec*>& steps) {
  auto invalid = [&](const std::string& msg) {
    return absl::InvalidArgumentError(absl::StrCat("model '", e.name, "': ", msg));
  };
  if (steps.size() != e.ensemble_steps.size()) {
    return absl::InternalError(absl::StrCat("model '", e.name, "': ", steps.size(),
                                            " composing specs for ", e.ensemble_steps.size(),
                                            " steps"));
  }
  // The producer's declaration of every tensor: an ensemble input, or the
  // output of the step that produces it.
  std::map<std::string, TensorDecl> produced;
  for (const auto& in : e.inputs) {
    produced[in.name] = {absl::StrCat("ensemble input '", in.name, "'"), in.datatype,
                         e.WireShape(in)};
  }
  for (size_t i = 0; i < steps.size(); ++i) {
    const ModelSpec& m = *steps[i];
    const EnsembleStepSpec& st = e.ensemble_steps[i];
    if (m.decoupled) {
      return invalid(absl::StrCat(StepLabel(e, i), " is decoupled (it may answer a request "
                                  "with any number of responses); ensemble steps must answer "
                                  "each request with one response"));
    }
    if (m.max_batch_size > 0 && m.max_batch_size < e.max_batch_size) {
      return invalid(absl::StrCat(StepLabel(e, i), " takes batches of at most ", m.max_batch_size,
                                  " but the ensemble's max_batch_size is ", e.max_batch_size,
                                  "; lower the ensemble's max_batch_size to ", m.max_batch_size,
                                  " or less"));
    }
    for (const auto& [output, tensor] : st.output_map) {
      const int k = m.OutputIndex(output);
      if (k < 0) {
        return invalid(absl::StrCat(StepLabel(e, i), ": 'output_map' names output '", output,
                                    "', which the model does not have (its outputs: ",
                                    Names(m.outputs), ")"));
      }
      produced[tensor] = {absl::StrCat("output '", output, "' of ", StepLabel(e, i)),
                          m.outputs[k].datatype, m.WireShape(m.outputs[k])};
    }
  }
  auto fit = [&](const std::string& tensor, const TensorDecl& reader) -> absl::Status {
    auto it = produced.find(tensor);
    if (it == produced.end()) {
      // BuildModelSpec refuses this; kept for specs built elsewhere.
      return invalid(absl::StrCat("ensemble tensor '", tensor, "' is produced by nothing"));
    }
    const TensorDecl& p = it->second;
    if (p.datatype == reader.datatype && ShapesFit(p.shape, reader.shape)) {
      return absl::OkStatus();
    }
    return invalid(absl::StrCat(
        "ensemble tensor '", tensor, "': ", p.who, " is ", DataTypeName(p.datatype), " ",
        ShapeString(p.shape), " but ", reader.who, " is ", DataTypeName(reader.datatype), " ",
        ShapeString(reader.shape),
        p.datatype != reader.datatype ? " (the datatypes differ)"
                                      : " (the shapes differ; -1 matches any size)"));
  };
  for (size_t i = 0; i < steps.size(); ++i) {
    const ModelSpec& m = *steps[i];
    const EnsembleStepSpec& st = e.ensemble_steps[i];
    for (const auto& [input, tensor] : st.input_map) {
      if (m.InputIndex(input) < 0) {
        return invalid(absl::StrCat(StepLabel(e, i), ": 'input_map' names input '", input,
                                    "', which the model does not have (its inputs: ",
                                    Names(m.inputs), ")"));
      }
    }
    for (const TensorSpec& in : m.inputs) {
      auto it = st.input_map.find(in.name);
      if (it == st.input_map.end()) {
        return invalid(absl::StrCat(StepLabel(e, i), ": input '", in.name,
                                    "' of the model is not mapped; add it to the step's "
                                    "'input_map'"));
      }
      TORII_RETURN_IF_ERROR(fit(it->second, {absl::StrCat("input '", in.name, "' of ",
                                                          StepLabel(e, i)),
                                             in.datatype, m.WireShape(in)}));
    }
  }
  for (const TensorSpec& out : e.outputs) {
    TORII_RETURN_IF_ERROR(fit(out.name, {absl::StrCat("ensemble output '", out.name, "'"),
                                         out.datatype, e.WireShape(out)}));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// The graph, compiled once per ensemble version and shared by its runs.

struct EnsembleModel::Plan {
  struct Binding {
    std::string name;  // the step's input or output
    int tensor = -1;
  };
  struct Step {
    std::string model_name;
    std::string model_version;  // empty: the latest ready version
    std::string label;          // "step 1 (model 'net')"
    std::vector<Binding> inputs;
    std::vector<Binding> outputs;
    std::vector<int> reads;  // distinct tensors it reads
  };

  std::string name;
  std::shared_ptr<const ModelSpec> spec;
  InferenceDispatcher* dispatcher = nullptr;
  std::vector<Step> steps;
  size_t tensor_count = 0;
  std::vector<int> input_tensor;   // per ensemble input (declared order)
  std::vector<int> output_tensor;  // per ensemble output (declared order)
  std::vector<int> producer;       // per tensor: the step, -1 for an ensemble input
  std::vector<std::vector<int>> consumers;  // per tensor: distinct steps reading it
  std::vector<int> readers;                 // per tensor: consumers[t].size()
  std::vector<char> is_output;              // per tensor: an ensemble output
  std::vector<int> waits;   // per step: distinct step-produced tensors it reads
  std::vector<int> needed;  // per step: its output tensors some reader or the client needs

  static std::shared_ptr<const Plan> Compile(std::shared_ptr<const ModelSpec> spec,
                                             InferenceDispatcher* dispatcher) {
    auto p = std::make_shared<Plan>();
    p->name = spec->name;
    p->dispatcher = dispatcher;
    std::map<std::string, int> ids;
    auto id = [&](const std::string& tensor) {
      auto [it, inserted] = ids.emplace(tensor, static_cast<int>(ids.size()));
      return it->second;
    };
    for (const auto& in : spec->inputs) p->input_tensor.push_back(id(in.name));
    const auto& steps = spec->ensemble_steps;
    for (size_t i = 0; i < steps.size(); ++i) {
      Step s;
      s.model_name = steps[i].model_name;
      if (steps[i].model_version >= 0) s.model_version = std::to_string(steps[i].model_version);
      s.label = StepLabel(*spec, i);
      for (const auto& [input, tensor] : steps[i].input_map) {
        s.inputs.push_back({input, id(tensor)});
        if (std::find(s.reads.begin(), s.reads.end(), s.inputs.back().tensor) == s.reads.end()) {
          s.reads.push_back(s.inputs.back().tensor);
        }
      }
      for (const auto& [output, tensor] : steps[i].output_map) {
        s.outputs.push_back({output, id(tensor)});
      }
      p->steps.push_back(std::move(s));
    }
    for (const auto& out : spec->outputs) p->output_tensor.push_back(id(out.name));
    const size_t n = ids.size();
    p->tensor_count = n;
    p->producer.assign(n, -1);
    p->consumers.assign(n, {});
    p->is_output.assign(n, 0);
    for (int t : p->output_tensor) p->is_output[t] = 1;
    for (size_t i = 0; i < p->steps.size(); ++i) {
      for (const auto& b : p->steps[i].outputs) p->producer[b.tensor] = static_cast<int>(i);
      for (int t : p->steps[i].reads) p->consumers[t].push_back(static_cast<int>(i));
    }
    p->readers.resize(n);
    for (size_t t = 0; t < n; ++t) p->readers[t] = static_cast<int>(p->consumers[t].size());
    p->waits.assign(p->steps.size(), 0);
    p->needed.assign(p->steps.size(), 0);
    for (size_t i = 0; i < p->steps.size(); ++i) {
      for (int t : p->steps[i].reads) {
        if (p->producer[t] >= 0) ++p->waits[i];
      }
      for (const auto& b : p->steps[i].outputs) {
        if (p->readers[b.tensor] > 0 || p->is_output[b.tensor]) ++p->needed[i];
      }
    }
    p->spec = std::move(spec);
    return p;
  }
};

// What the version and its runs share: the count of runs in flight, and
// whether the version's statistics may still be recorded.
struct EnsembleModel::Shared {
  std::mutex mu;
  std::condition_variable cv;
  size_t in_flight = 0;
  bool alive = true;
};

// ---------------------------------------------------------------------------
// One ensemble request on its way through the graph.

class EnsembleModel::Run : public std::enable_shared_from_this<Run> {
 public:
  Run(std::shared_ptr<const Plan> plan, std::shared_ptr<Shared> shared,
      std::unique_ptr<InferenceRequest> request)
      : plan_(std::move(plan)), shared_(std::move(shared)), request_(std::move(request)) {
    const Plan& p = *plan_;
    tensors_.resize(p.tensor_count);
    waits_ = p.waits;
    readers_left_ = p.readers;
    needed_ = p.needed;
    responses_.resize(p.steps.size());
    sinks_.reserve(p.steps.size());
    for (size_t i = 0; i < p.steps.size(); ++i) sinks_.emplace_back(this, static_cast<int>(i));
  }

  static bool IsStep(const ResponseSink* sink) { return StepSink::Is(sink); }

  // Starts every step that reads only ensemble inputs.
  void Start() {
    const Plan& p = *plan_;
    // Validated: one input per declared input, in declared order.
    for (size_t k = 0; k < p.input_tensor.size(); ++k) {
      const InferenceInput& in = request_->inputs[k];
      Tensor& t = tensors_[p.input_tensor[k]];
      t.data = in.data;
      t.byte_size = in.byte_size;
      t.datatype = in.datatype;
      t.shape = in.shape;
    }
    std::vector<int> ready;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (size_t s = 0; s < p.steps.size(); ++s) {
        if (waits_[s] == 0) ready.push_back(static_cast<int>(s));
      }
      in_flight_ = static_cast<int>(ready.size());
    }
    for (int s : ready) Dispatch(s);
  }

 private:
  struct Tensor {
    const char* data = nullptr;
    size_t byte_size = 0;
    ToriiDataType datatype = TORII_TYPE_INVALID;
    Shape shape;
  };

  // Where a step's responses go. Each keeps the run alive through an
  // aliasing shared_ptr (the step request holds it).
  class StepSink : public ResponseSink {
   public:
    static bool Is(const ResponseSink* sink) {
      return dynamic_cast<const StepSink*>(sink) != nullptr;
    }
    StepSink(Run* run, int step) : run_(run), step_(step) {}
    void Deliver(std::unique_ptr<InferenceResponse> response, bool final) override {
      run_->OnResponse(step_, std::move(response), final);
    }

   private:
    Run* const run_;
    const int step_;
  };

  // Why step `s` must not start now, or OK.
  absl::Status StopReason(int s) const {
    const Plan::Step& step = plan_->steps[s];
    if (failed_.load(std::memory_order_acquire)) {
      return absl::AbortedError(absl::StrCat(step.label, " was not started: another step failed"));
    }
    // The deadline first: gRPC also marks a call cancelled when it expires.
    if (Clock::now() >= request_->deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat(step.label, " was not started: the client deadline passed"));
    }
    if (request_->Cancelled()) {
      return absl::CancelledError(
          absl::StrCat(step.label, " was not started: the request was cancelled"));
    }
    return absl::OkStatus();
  }

  void Dispatch(int s) {
    if (absl::Status stop = StopReason(s); !stop.ok()) {
      Finished(s, stop, nullptr, /*own_message=*/true);
      return;
    }
    const Plan::Step& step = plan_->steps[s];
    auto r = std::make_unique<InferenceRequest>();
    r->model_name = step.model_name;
    r->model_version = step.model_version;
    r->id = request_->id;
    r->parameters = request_->parameters;
    r->inputs.reserve(step.inputs.size());
    // The tensors a ready step reads were written (under mu_) before it was
    // found ready (under mu_), and are not written again.
    for (const auto& b : step.inputs) {
      const Tensor& t = tensors_[b.tensor];
      InferenceInput& in = r->inputs.emplace_back();
      in.name = b.name;
      in.datatype = t.datatype;
      in.shape = t.shape;
      in.data = t.data;
      in.byte_size = t.byte_size;
    }
    r->requested_outputs.reserve(step.outputs.size());
    for (const auto& b : step.outputs) r->requested_outputs.push_back({b.name, {}});
    r->deadline = request_->deadline;
    Run* run = this;
    r->is_cancelled = [run] {
      return run->failed_.load(std::memory_order_relaxed) || run->request_->Cancelled();
    };
    r->sink = std::shared_ptr<ResponseSink>(shared_from_this(), &sinks_[s]);
    r->single_response = true;
    plan_->dispatcher->Infer(std::move(r));
  }

  void OnResponse(int s, std::unique_ptr<InferenceResponse> response, bool final) {
    if (!final) {
      // Decoupled steps are refused at load; one that became decoupled
      // since is an error, reported once its final response comes.
      if (response != nullptr) extra_responses_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    absl::Status status;
    if (response == nullptr) {
      status = absl::InternalError("the model ended the request without a response");
    } else if (!response->status.ok()) {
      status = response->status;
    } else if (extra_responses_.load(std::memory_order_relaxed) > 0) {
      status = absl::InvalidArgumentError(
          "the model answered with several responses (it is decoupled); ensemble steps must "
          "answer with one");
    }
    Finished(s, status, status.ok() ? std::move(response) : nullptr, /*own_message=*/false);
  }

  // Step `s` is over: keeps its outputs (or the first error), starts the
  // steps they make ready, and answers the client after the last step.
  void Finished(int s, absl::Status status, std::unique_ptr<InferenceResponse> response,
                bool own_message) {
    const Plan& p = *plan_;
    const Plan::Step& step = p.steps[s];
    std::vector<int> ready;
    bool finish = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      --in_flight_;
      ++finished_;
      if (status.ok()) status = TakeOutputs(s, std::move(response));
      if (!status.ok()) {
        if (error_.ok()) {
          error_ = absl::Status(status.code(),
                                absl::StrCat("ensemble '", p.name, "' ",
                                             own_message ? "" : absl::StrCat(step.label, ": "),
                                             status.message()));
        }
        failed_.store(true, std::memory_order_release);
      }
      // The inputs this step read are released once no other step needs them.
      for (int t : step.reads) {
        if (--readers_left_[t] == 0 && !p.is_output[t]) Release(t);
      }
      if (!failed_.load(std::memory_order_relaxed)) {
        for (const auto& b : step.outputs) {
          for (int c : p.consumers[b.tensor]) {
            if (--waits_[c] == 0) ready.push_back(c);
          }
        }
      }
      in_flight_ += static_cast<int>(ready.size());
      finish = in_flight_ == 0;
    }
    for (int c : ready) Dispatch(c);
    if (finish) Finish();
  }

  // Keeps the outputs step `s` produced (mu_ held).
  absl::Status TakeOutputs(int s, std::unique_ptr<InferenceResponse> response) {
    const Plan& p = *plan_;
    const auto& bindings = p.steps[s].outputs;
    absl::InlinedVector<const OutputTensor*, 4> found(bindings.size(), nullptr);
    for (size_t k = 0; k < bindings.size(); ++k) {
      for (const OutputTensor& o : response->outputs()) {
        if (o.name == bindings[k].name) {
          found[k] = &o;
          break;
        }
      }
      if (found[k] == nullptr) {
        return absl::InternalError(
            absl::StrCat("the model's response has no output '", bindings[k].name, "'"));
      }
    }
    for (size_t k = 0; k < bindings.size(); ++k) {
      Tensor& t = tensors_[bindings[k].tensor];
      t.data = found[k]->data;
      t.byte_size = found[k]->byte_size;
      t.datatype = found[k]->datatype;
      t.shape = found[k]->shape;
    }
    // Outputs nobody reads are released at once.
    for (const auto& b : p.steps[s].outputs) {
      if (p.readers[b.tensor] == 0 && !p.is_output[b.tensor]) Release(b.tensor);
    }
    responses_[s] = std::move(response);
    return absl::OkStatus();
  }

  // Tensor `t` is needed no more: the response holding it goes when none of
  // its tensors is needed (mu_ held).
  void Release(int t) {
    const int producer = plan_->producer[t];
    if (producer < 0) return;  // the client's buffer
    Tensor& released = tensors_[t];
    released.data = nullptr;
    released.byte_size = 0;
    released.shape.clear();
    if (--needed_[producer] == 0) responses_[producer].reset();
  }

  // Answers the client: the ensemble outputs it asked for, or the first
  // error. Every started step has finished.
  void Finish() {
    absl::Status status;
    {
      std::lock_guard<std::mutex> lock(mu_);
      status = error_;
      if (status.ok() && finished_ != plan_->steps.size()) {
        status = absl::InternalError(absl::StrCat("ensemble '", plan_->name, "': only ", finished_,
                                                  " of ", plan_->steps.size(), " steps ran"));
      }
    }
    std::unique_ptr<InferenceResponse> response;
    if (status.ok()) {
      response = request_->NewResponse();
      status = FillResponse(response.get());
    }
    if (!status.ok()) {
      response = request_->NewResponse();
      response->status = status;
    }
    // The failure reason in statistics: the client's deadline or
    // cancellation (in whichever step they struck), else from the code.
    if (absl::IsCancelled(status)) request_->failure_reason = "cancelled";
    if (absl::IsDeadlineExceeded(status)) request_->failure_reason = "expired";
    // The version's statistics (on_final) are recorded only while it exists.
    if (request_->on_final) {
      auto on_final = std::move(request_->on_final);
      request_->on_final = nullptr;
      std::lock_guard<std::mutex> lock(shared_->mu);
      if (shared_->alive) on_final(status);
    }
    request_->Respond(std::move(response), /*final=*/true);
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& r : responses_) r.reset();
    }
    std::lock_guard<std::mutex> lock(shared_->mu);
    if (--shared_->in_flight == 0) shared_->cv.notify_all();
  }

  absl::Status FillResponse(InferenceResponse* response) {
    const Plan& p = *plan_;
    const ModelSpec& spec = *p.spec;
    for (size_t k = 0; k < spec.outputs.size(); ++k) {
      if (!request_->output_requested[k]) continue;
      const TensorSpec& decl = spec.outputs[k];
      const Tensor& t = tensors_[p.output_tensor[k]];
      const std::vector<int64_t> want = spec.WireShape(decl);
      const std::vector<int64_t> got(t.shape.begin(), t.shape.end());
      if (t.datatype != decl.datatype || !ShapesFit(want, got)) {
        return absl::InternalError(absl::StrCat(
            "ensemble '", p.name, "': output '", decl.name, "' from ",
            p.steps[p.producer[p.output_tensor[k]]].label, " is ", DataTypeName(t.datatype), " ",
            ShapeString(got), " but the ensemble declares ", DataTypeName(decl.datatype), " ",
            ShapeString(want)));
      }
      auto buffer = response->AddOutput(decl.name, t.datatype, t.shape, t.byte_size);
      if (!buffer.ok()) return buffer.status();
      if (t.byte_size > 0) std::memcpy(*buffer, t.data, t.byte_size);
    }
    return absl::OkStatus();
  }

  const std::shared_ptr<const Plan> plan_;
  const std::shared_ptr<Shared> shared_;
  const std::unique_ptr<InferenceRequest> request_;
  std::vector<StepSink> sinks_;
  std::atomic<bool> failed_{false};
  std::atomic<int> extra_responses_{0};

  std::mutex mu_;
  std::vector<Tensor> tensors_;
  std::vector<int> waits_;         // per step: inputs still to come
  std::vector<int> readers_left_;  // per tensor: readers not finished
  std::vector<int> needed_;        // per step: its outputs still needed
  std::vector<std::unique_ptr<InferenceResponse>> responses_;  // per step, owning its outputs
  int in_flight_ = 0;
  size_t finished_ = 0;
  absl::Status error_;
};

// ---------------------------------------------------------------------------

bool IsEnsembleStep(const InferenceRequest& request) {
  return EnsembleModel::Run::IsStep(request.sink.get());
}

absl::StatusOr<std::unique_ptr<EnsembleModel>> EnsembleModel::Create(Options options) {
  if (options.spec == nullptr || !options.spec->is_ensemble()) {
    return absl::InvalidArgumentError("EnsembleModel: the spec is not an ensemble's");
  }
  if (options.dispatcher == nullptr || options.models == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "model '", options.spec->name, "': an ensemble needs the server's request path and "
        "model manager"));
  }
  auto plan = Plan::Compile(options.spec, options.dispatcher);
  std::unique_ptr<EnsembleModel> model(new EnsembleModel(std::move(options), std::move(plan)));
  TORII_RETURN_IF_ERROR(model->Availability());
  return model;
}

EnsembleModel::EnsembleModel(Options options, std::shared_ptr<const Plan> plan)
    : options_(std::move(options)), plan_(std::move(plan)), shared_(std::make_shared<Shared>()) {}

EnsembleModel::~EnsembleModel() {
  std::unique_lock<std::mutex> lock(shared_->mu);
  if (!shared_->cv.wait_for(lock, options_.drain_timeout,
                            [&] { return shared_->in_flight == 0; })) {
    LogWarning("ensemble unloaded with requests still running their steps; they will be "
               "answered, but not counted in its statistics",
               {{"model", plan_->name}, {"in_flight", std::to_string(shared_->in_flight)}});
  }
  shared_->alive = false;
}

void EnsembleModel::Execute(size_t /*instance*/, RequestBatch& requests, Timing* timing) {
  const Clock::time_point start = Clock::now();
  RequestBatch taken;
  taken.swap(requests);
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->in_flight += taken.size();
  }
  for (auto& r : taken) {
    auto run = std::make_shared<Run>(plan_, shared_, std::move(r));
    run->Start();
  }
  const Clock::time_point done = Clock::now();
  if (timing != nullptr) *timing = Timing::Between(start, done, done, done);
}

void EnsembleModel::Submit(std::unique_ptr<InferenceRequest> request, ModelStatistics* stats) {
  auto ns = [](Clock::duration d) {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
  };
  InferenceRequest* r = request.get();
  const uint64_t rows = static_cast<uint64_t>(r->rows);
  r->execution_start = Clock::now();
  r->on_final = [stats, r, ns](const absl::Status& outcome) {
    stats->RecordRequest(outcome.ok(), static_cast<uint64_t>(r->rows),
                         ns(Clock::now() - r->arrival), ns(r->execution_start - r->arrival),
                         outcome.ok() ? nullptr
                                      : ModelStatistics::FailureReason(outcome, r->failure_reason));
  };
  RequestBatch batch;
  batch.push_back(std::move(request));
  Timing timing;
  Execute(0, batch, &timing);
  stats->RecordExecution(rows, timing.input_ns, timing.infer_ns, timing.output_ns);
}

absl::StatusOr<std::vector<std::shared_ptr<const ModelSpec>>> EnsembleModel::ServingSpecs() const {
  const ModelSpec& spec = *options_.spec;
  std::vector<std::shared_ptr<const ModelSpec>> specs;
  specs.reserve(spec.ensemble_steps.size());
  for (size_t i = 0; i < spec.ensemble_steps.size(); ++i) {
    const EnsembleStepSpec& st = spec.ensemble_steps[i];
    auto s = options_.models->ServingSpec(st.model_name, st.model_version);
    if (!s.ok()) {
      return absl::Status(s.status().code(),
                          absl::StrCat("model '", spec.name, "': ", StepLabel(spec, i),
                                       " cannot run: ", s.status().message()));
    }
    specs.push_back(*std::move(s));
  }
  return specs;
}

absl::Status EnsembleModel::Availability() const {
  TORII_ASSIGN_OR_RETURN(auto specs, ServingSpecs());
  std::lock_guard<std::mutex> lock(check_mu_);
  if (checked_specs_.empty() || specs != checked_specs_) {
    std::vector<const ModelSpec*> raw;
    for (const auto& s : specs) raw.push_back(s.get());
    checked_ = CheckEnsembleSteps(*options_.spec, raw);
    checked_specs_ = std::move(specs);
  }
  return checked_;
}

std::vector<std::string> EnsembleModel::ComposingModelNames() const {
  std::vector<std::string> names;
  for (const auto& st : options_.spec->ensemble_steps) {
    if (std::find(names.begin(), names.end(), st.model_name) == names.end()) {
      names.push_back(st.model_name);
    }
  }
  return names;
}

size_t EnsembleModel::in_flight() const {
  std::lock_guard<std::mutex> lock(shared_->mu);
  return shared_->in_flight;
}

RunnerProvenance EnsembleModel::provenance() const {
  RunnerProvenance p;
  p.runner = "ensemble";
  p.runner_version = "built-in";
  p.runner_build = "torii-server";
  std::vector<std::string> steps;
  for (const auto& st : options_.spec->ensemble_steps) {
    steps.push_back(st.model_version < 0 ? st.model_name
                                         : absl::StrCat(st.model_name, ":", st.model_version));
  }
  p.properties.emplace_back("ensemble_steps", absl::StrJoin(steps, ","));
  return p;
}

}  // namespace torii
