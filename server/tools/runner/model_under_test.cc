#include "server/tools/runner/model_under_test.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/common/status_macros.h"
#include "server/core/datatype.h"
#include "torii/runner.h"

namespace torii {
namespace runner_tool {

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}

const HostTensor* TestResponse::output(const std::string& name) const {
  for (const auto& t : outputs) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

absl::StatusOr<std::unique_ptr<PreparedRequest>> PreparedRequest::Create(
    const std::string& model_name, const ModelSignature& signature, const TestRequest& request) {
  std::unique_ptr<PreparedRequest> p(new PreparedRequest());
  p->wire_.set_model_name(model_name);
  for (const auto& t : request.inputs) {
    auto* in = p->wire_.add_inputs();
    in->set_name(t.name);
    in->set_datatype(DataTypeName(t.datatype));
    for (int64_t d : t.shape) in->add_shape(d);
    p->wire_.add_raw_input_contents(t.data);
  }
  for (const auto& o : request.outputs) p->wire_.add_outputs()->set_name(o);
  TORII_RETURN_IF_ERROR(
      ValidateRequest(model_name, signature, p->wire_, ValidationLimits{}, &p->request_));
  p->request_.response = &p->response_;
  p->request_.arrival = InferenceRequest::Clock::now();
  return p;
}

TestResponse PreparedRequest::Response(const absl::Status& status) const {
  TestResponse r;
  r.status = status;
  if (!status.ok()) return r;
  for (int i = 0; i < response_.outputs_size(); ++i) {
    const auto& o = response_.outputs(i);
    HostTensor t;
    t.name = o.name();
    t.datatype = DataTypeFromName(o.datatype());
    t.shape.assign(o.shape().begin(), o.shape().end());
    if (i < response_.raw_output_contents_size()) t.data = response_.raw_output_contents(i);
    r.outputs.push_back(std::move(t));
  }
  return r;
}

absl::StatusOr<std::unique_ptr<ModelUnderTest>> ModelUnderTest::Load(
    const ModelLocation& location, Options options) {
  std::unique_ptr<ModelUnderTest> m(new ModelUnderTest(location));
  m->signature_ = std::make_unique<ModelSignature>(m->location_.parsed.config);
  if (options.library) {
    m->library_ = std::move(options.library);
  } else {
    TORII_ASSIGN_OR_RETURN(m->library_, RunnerLibrary::Open(location.runner_path));
  }
  uint32_t instances = options.instance_count;
  if (instances == 0) {
    for (const auto& g : m->location_.parsed.config.instance_group()) {
      instances += static_cast<uint32_t>(g.count() > 0 ? g.count() : 1);
    }
  }
  RunnerModel::Options ro;
  ro.name = m->location_.model_name;
  ro.version = m->location_.version;
  ro.directory = m->location_.model_dir;
  ro.version_directory = m->location_.version_dir;
  ro.config = &m->location_.parsed.config;
  ro.signature = m->signature_.get();
  ro.instance_count = std::max<uint32_t>(1, instances);
  TORII_ASSIGN_OR_RETURN(m->runner_, RunnerModel::Create(m->library_, ro));
  return m;
}

ModelUnderTest::~ModelUnderTest() { runner_.reset(); }

std::vector<TestResponse> ModelUnderTest::Execute(size_t instance,
                                                  const std::vector<TestRequest>& requests) {
  std::vector<TestResponse> responses(requests.size());
  std::vector<std::unique_ptr<PreparedRequest>> prepared(requests.size());
  std::vector<InferenceRequest*> batch;
  std::vector<size_t> index;
  for (size_t i = 0; i < requests.size(); ++i) {
    auto p = PreparedRequest::Create(location_.model_name, *signature_, requests[i]);
    if (!p.ok()) {
      responses[i].status = p.status();
      continue;
    }
    prepared[i] = std::move(*p);
    batch.push_back(prepared[i]->request());
    index.push_back(i);
  }
  if (batch.empty()) return responses;
  const std::vector<absl::Status> statuses = ExecutePrepared(instance, batch);
  for (size_t k = 0; k < index.size(); ++k) {
    responses[index[k]] = prepared[index[k]]->Response(statuses[k]);
  }
  return responses;
}

std::vector<absl::Status> ModelUnderTest::ExecutePrepared(
    size_t instance, const std::vector<InferenceRequest*>& requests) {
  return runner_->Execute(instance, requests);
}

}  // namespace runner_tool
}  // namespace torii
