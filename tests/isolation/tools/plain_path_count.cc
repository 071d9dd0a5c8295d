// torii-isolation-plain-count: drives an isolated identity model through
// ExecutionBackend::Execute N times, one 1 KiB FP32 request at a time, with
// nothing else running. Made for counting instructions of the plain isolated
// path (no sender, no model call) under callgrind:
//
//   valgrind --tool=callgrind --trace-children=yes
//     --callgrind-out-file=/tmp/cg.%p build/bin/torii-isolation-plain-count 2000
//   (one command line)
//
// Run it with two counts (say 2000 and 4000) and divide the difference of
// each process's total by the difference of the counts: start-up and load
// cancel out, what is left is the per-request cost of the server side (the
// parent) and of torii-runner-host (the child). See docs/decoupled.md.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "google/protobuf/text_format.h"
#include "model_config.pb.h"
#include "server/core/request_validator.h"
#include "server/isolation/isolated_runner_model.h"
#include "server/repository/model_spec_builder.h"

namespace {

class CountingSink : public torii::ResponseSink {
 public:
  void Deliver(std::unique_ptr<torii::InferenceResponse> response, bool final) override {
    if (final && response != nullptr && response->status.ok()) ++ok;
  }
  int ok = 0;
};

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 1000;
  const char* config_text = R"(name: "identity" backend: "identity" max_batch_size: 64
    input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
    output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
    parameters { key: "isolation" value { string_value: "process" } })";
  inference::ModelConfig config;
  if (!google::protobuf::TextFormat::ParseFromString(config_text, &config)) return 2;
  torii::RunnerManifest manifest;
  manifest.runner = "identity";
  auto spec = torii::BuildModelSpec(config, manifest, torii::SpecDefaults{});
  if (!spec.ok()) return 2;
  torii::IsolatedRunnerModel::Options o;
  o.name = "identity";
  o.version = 1;
  o.directory = "/nonexistent";
  o.version_directory = "/nonexistent/1";
  o.spec = std::make_shared<const torii::ModelSpec>(std::move(*spec));
  config.SerializeToString(&o.config);
  o.library_path = TORII_IDENTITY_RUNNER;
  o.runner = "identity";
  o.host_path = TORII_RUNNER_HOST_BINARY;
  auto backend = torii::IsolatedRunnerModel::Create(o);
  if (!backend.ok()) {
    std::fprintf(stderr, "%s\n", std::string(backend.status().message()).c_str());
    return 1;
  }
  std::vector<float> values(256, 1.5f);
  auto sink = std::make_shared<CountingSink>();
  for (int i = 0; i < n; ++i) {
    torii::RequestBatch batch;
    auto r = std::make_unique<torii::InferenceRequest>();
    r->model_name = "identity";
    r->sink = sink;
    torii::InferenceInput in;
    in.name = "INPUT0";
    in.datatype = TORII_TYPE_FP32;
    in.shape = {1, 256};
    in.data = reinterpret_cast<const char*>(values.data());
    in.byte_size = values.size() * sizeof(float);
    r->inputs.push_back(std::move(in));
    if (!torii::ValidateRequest(*o.spec, torii::ValidationLimits{}, r.get()).ok()) return 2;
    batch.push_back(std::move(r));
    (*backend)->Execute(0, batch, nullptr);
  }
  std::printf("%d of %d answered\n", sink->ok, n);
  return sink->ok == n ? 0 : 1;
}
