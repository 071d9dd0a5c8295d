#include "server/tools/runner/model_under_test.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/common/status_macros.h"
#include "server/isolation/isolated_runner_model.h"
#include "server/repository/model_spec_builder.h"
#include "server/runner/runner_model.h"

namespace torii {
namespace runner_tool {

using Clock = std::chrono::steady_clock;

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}

absl::StatusOr<std::vector<absl::string_view>> DecodeBytesElements(absl::string_view data) {
  std::vector<absl::string_view> out;
  size_t pos = 0;
  while (pos < data.size()) {
    if (data.size() - pos < 4) {
      return absl::InvalidArgumentError(absl::StrCat(
          "BYTES element ", out.size(), ": ", data.size() - pos,
          " byte(s) left where a 4-byte length prefix was expected"));
    }
    const auto* p = reinterpret_cast<const unsigned char*>(data.data() + pos);
    const size_t len = static_cast<size_t>(p[0]) | static_cast<size_t>(p[1]) << 8 |
                       static_cast<size_t>(p[2]) << 16 | static_cast<size_t>(p[3]) << 24;
    pos += 4;
    if (len > data.size() - pos) {
      return absl::InvalidArgumentError(absl::StrCat("BYTES element ", out.size(), " claims ",
                                                     len, " bytes but only ", data.size() - pos,
                                                     " remain"));
    }
    out.push_back(data.substr(pos, len));
    pos += len;
  }
  return out;
}

const HostTensor* TestResponse::output(const std::string& name) const {
  for (const auto& t : outputs) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

// --- CollectingSink ---------------------------------------------------------

void CollectingSink::Deliver(std::unique_ptr<InferenceResponse> response, bool final) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (response != nullptr) responses_.push_back(std::move(response));
    if (final) final_ = true;
  }
  if (final) cv_.notify_all();
}

bool CollectingSink::WaitFinal(Clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_until(lock, deadline, [&] { return final_; });
}

TestResponse CollectingSink::Collect(bool final) const {
  TestResponse r;
  r.status = Status(final);
  if (!r.status.ok()) return r;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& resp : responses_) {
    for (const OutputTensor& o : resp->outputs()) {
      HostTensor t;
      t.name = o.name;
      t.datatype = o.datatype;
      t.shape.assign(o.shape.begin(), o.shape.end());
      t.data.assign(o.data, o.byte_size);
      r.outputs.push_back(std::move(t));
    }
  }
  return r;
}

absl::Status CollectingSink::Status(bool final) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& resp : responses_) {
    if (!resp->status.ok()) return resp->status;
  }
  if (!final) {
    return absl::DeadlineExceededError(
        "the request never got its final response (a decoupled model that does not finish it?)");
  }
  return absl::OkStatus();
}

void CollectingSink::Reset() {
  std::lock_guard<std::mutex> lock(mu_);
  responses_.clear();
  final_ = false;
}

// --- PreparedRequest --------------------------------------------------------

absl::StatusOr<std::unique_ptr<PreparedRequest>> PreparedRequest::Create(
    const ModelSpec& spec, int64_t version, const TestRequest& request) {
  std::unique_ptr<PreparedRequest> p(new PreparedRequest());
  p->data_ = request;
  p->sink_ = std::make_shared<CollectingSink>();
  InferenceRequest& r = p->validated_;
  r.model_name = spec.name;
  for (const HostTensor& t : p->data_.inputs) {
    InferenceInput in;
    in.name = t.name;
    in.datatype = t.datatype;
    in.shape.assign(t.shape.begin(), t.shape.end());
    in.data = t.data.data();
    in.byte_size = t.data.size();
    r.inputs.push_back(std::move(in));
  }
  for (const auto& o : p->data_.outputs) r.requested_outputs.push_back({o, {}});
  r.sink = p->sink_;
  TORII_RETURN_IF_ERROR(ValidateRequest(spec, ValidationLimits{}, &r));
  r.served_version = std::to_string(version);
  return p;
}

std::unique_ptr<InferenceRequest> PreparedRequest::Take() {
  sink_->Reset();
  if (request_ == nullptr) request_ = std::make_unique<InferenceRequest>(validated_);
  request_->arrival = InferenceRequest::Clock::now();
  return std::move(request_);
}

// --- ModelUnderTest ---------------------------------------------------------

absl::StatusOr<std::unique_ptr<ModelUnderTest>> ModelUnderTest::Load(const ModelLocation& loc,
                                                                     Options options) {
  std::unique_ptr<ModelUnderTest> m(new ModelUnderTest(loc));
  ModelUnderTest* model = m.get();
  model->final_wait_ = options.final_wait;
  model->config_ = loc.parsed.config;
  const RunnerManifest& manifest = model->location_.manifest;
  // A runner that may complete the config may be handed one without inputs
  // and outputs (Triton's auto-complete), as the server's loader does.
  const bool may_complete = manifest.auto_complete_config;
  TORII_ASSIGN_OR_RETURN(ModelSpec built, BuildModelSpec(model->config_, manifest, SpecDefaults{},
                                                         /*require_io=*/!may_complete));
  const uint32_t configured_instances = built.instance_count;
  if (options.instance_count > 0) built.instance_count = options.instance_count;
  auto spec = std::make_shared<const ModelSpec>(std::move(built));

  // A config the runner completed: checked like a config.pbtxt, and it may
  // not change what was decided from the original (the loader's rule).
  auto accept_completed = [model, spec, configured_instances](inference::ModelConfig c)
      -> absl::StatusOr<std::shared_ptr<const ModelSpec>> {
    const std::string& name = model->location_.model_name;
    if (c.name().empty()) c.set_name(name);
    if (c.name() != name) {
      return absl::InvalidArgumentError(absl::StrCat(
          "model '", name, "': the runner's completed config renames the model to '", c.name(),
          "'"));
    }
    TORII_ASSIGN_OR_RETURN(ModelSpec completed, BuildModelSpec(c, model->location_.manifest,
                                                               SpecDefaults{}, true));
    if (completed.instance_count != configured_instances ||
        completed.isolation.mode != spec->isolation.mode) {
      return absl::InvalidArgumentError(absl::StrCat(
          "model '", name,
          "': the runner's completed config changes instance groups or isolation, which "
          "auto-complete may not"));
    }
    completed.instance_count = spec->instance_count;
    model->config_ = std::move(c);
    model->config_completed_ = true;
    return std::make_shared<const ModelSpec>(std::move(completed));
  };

  if (spec->isolation.mode == IsolationMode::kNone) {
    if (options.library) {
      model->library_ = std::move(options.library);
    } else {
      TORII_ASSIGN_OR_RETURN(model->library_, RunnerLibrary::Open(loc.runner_path));
    }
    RunnerModel::Options o;
    o.name = loc.model_name;
    o.version = loc.version;
    o.directory = loc.model_dir;
    o.version_directory = loc.version_dir;
    o.spec = spec;
    o.instance_count = spec->instance_count;
    if (may_complete) {
      o.complete_config = [model, accept_completed](const std::string& json)
          -> absl::StatusOr<std::shared_ptr<const ModelSpec>> {
        TORII_ASSIGN_OR_RETURN(
            auto c, ConfigFromJson(json, absl::StrCat("model '", model->location_.model_name,
                                                      "': completed config")));
        return accept_completed(std::move(c));
      };
    }
    TORII_ASSIGN_OR_RETURN(auto rm, RunnerModel::Create(model->library_, std::move(o)));
    model->spec_ = rm->spec();
    model->backend_ = std::move(rm);
  } else {
    IsolatedRunnerModel::Options o;
    o.name = loc.model_name;
    o.version = loc.version;
    o.directory = loc.model_dir;
    o.version_directory = loc.version_dir;
    o.spec = spec;
    model->config_.SerializeToString(&o.config);
    o.library_path = loc.runner_path;
    o.runner = manifest.runner;
    o.default_model_filename = spec->default_model_filename;
    o.allow_config_completion = may_complete;
    o.on_completed_config = [model, accept_completed](const std::string& serialized)
        -> absl::StatusOr<std::shared_ptr<const ModelSpec>> {
      inference::ModelConfig c;
      if (!c.ParseFromString(serialized)) {
        return absl::InternalError(absl::StrCat("model '", model->location_.model_name,
                                                "': the completed config arrived damaged"));
      }
      return accept_completed(std::move(c));
    };
    TORII_ASSIGN_OR_RETURN(auto im, IsolatedRunnerModel::Create(std::move(o)));
    model->spec_ = im->spec();
    model->isolated_ = im.get();
    model->backend_ = std::move(im);
  }
  if (model->spec_->inputs.empty() || model->spec_->outputs.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("model '", loc.model_name, "': the config declares no ",
                     model->spec_->inputs.empty() ? "'input'" : "'output'",
                     " and the runner did not complete it"));
  }
  return m;
}

ModelUnderTest::~ModelUnderTest() {
  isolated_ = nullptr;
  backend_.reset();
}

std::vector<pid_t> ModelUnderTest::runner_pids() const {
  std::vector<pid_t> pids;
  for (const auto& [label, pid] : backend_->RunnerProcesses()) pids.push_back(static_cast<pid_t>(pid));
  return pids;
}

std::vector<TestResponse> ModelUnderTest::Execute(size_t instance,
                                                  const std::vector<TestRequest>& requests) {
  std::vector<TestResponse> responses(requests.size());
  std::vector<std::unique_ptr<PreparedRequest>> prepared(requests.size());
  std::vector<PreparedRequest*> batch;
  std::vector<size_t> index;
  for (size_t i = 0; i < requests.size(); ++i) {
    auto p = PreparedRequest::Create(*spec_, location_.version, requests[i]);
    if (!p.ok()) {
      responses[i].status = p.status();
      continue;
    }
    prepared[i] = std::move(*p);
    batch.push_back(prepared[i].get());
    index.push_back(i);
  }
  if (batch.empty()) return responses;
  const std::vector<absl::Status> statuses = ExecutePrepared(instance, batch);
  for (size_t k = 0; k < index.size(); ++k) {
    if (statuses[k].ok()) {
      responses[index[k]] = batch[k]->sink().Collect(/*final=*/true);
    } else {
      responses[index[k]].status = statuses[k];
    }
  }
  return responses;
}

std::vector<absl::Status> ModelUnderTest::ExecutePrepared(
    size_t instance, const std::vector<PreparedRequest*>& requests) {
  RequestBatch batch;
  batch.reserve(requests.size());
  for (PreparedRequest* p : requests) batch.push_back(p->Take());
  backend_->Execute(instance, batch, nullptr);
  // Requests a decoupled model kept are answered from its threads.
  const Clock::time_point deadline = Clock::now() + final_wait_;
  std::vector<absl::Status> statuses(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    if (batch[i] != nullptr) requests[i]->Give(std::move(batch[i]));
    CollectingSink& sink = requests[i]->sink();
    const bool final = sink.WaitFinal(deadline);
    statuses[i] = sink.Status(final);
  }
  return statuses;
}

}  // namespace runner_tool
}  // namespace torii
