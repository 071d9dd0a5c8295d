// torii-perf: a perf_analyzer-style load generator for any KServe v2 server,
// over gRPC or HTTP. See --help and bench/README.md.
#include <grpcpp/grpcpp.h>

#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli.h"
#include "http_payload.h"
#include "http_transport.h"
#include "inference.grpc.pb.h"
#include "load_generator.h"
#include "measurement.h"
#include "model_inputs.h"
#include "payload.h"
#include "report.h"

namespace {

using torii::perf::PerfConfig;

absl::StatusOr<inference::ModelMetadataResponse> FetchMetadata(
    const PerfConfig& c) {
  if (c.protocol == torii::perf::Protocol::kHttp) {
    auto got = torii::perf::HttpGet(
        c.url, torii::perf::ModelPath(c.model_name, c.model_version), 10000);
    if (!got.ok()) return got.status();
    auto m = torii::perf::MetadataFromJson(got->second);
    if (!m.ok() || got->first != 200) {
      return absl::UnavailableError(absl::StrCat(
          "model metadata of ", c.model_name, " at ", c.url, ": HTTP ", got->first, " ",
          got->second.substr(0, 300), " (give --input to skip the metadata query)"));
    }
    return m;
  }
  auto channel =
      grpc::CreateChannel(c.url, grpc::InsecureChannelCredentials());
  auto stub = inference::GRPCInferenceService::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  inference::ModelMetadataRequest request;
  request.set_name(c.model_name);
  request.set_version(c.model_version);
  inference::ModelMetadataResponse response;
  grpc::Status s = stub->ModelMetadata(&ctx, request, &response);
  if (!s.ok()) {
    return absl::UnavailableError(absl::StrCat(
        "ModelMetadata(", c.model_name, ") at ", c.url, " failed: ",
        s.error_message(), " (give --input to skip the metadata query)"));
  }
  return response;
}

// Polls ModelReady until the model is ready or `c.wait_ready_ms` passes.
absl::Status WaitReady(const PerfConfig& c) {
  if (c.protocol == torii::perf::Protocol::kHttp) {
    auto give_up = std::chrono::steady_clock::now() +
                   std::chrono::milliseconds(c.wait_ready_ms);
    std::string last = "no answer";
    const std::string path =
        torii::perf::ModelPath(c.model_name, c.model_version) + "/ready";
    while (true) {
      auto got = torii::perf::HttpGet(c.url, path, 1000);
      if (got.ok() && got->first == 200) return absl::OkStatus();
      last = got.ok() ? absl::StrCat("HTTP ", got->first) : std::string(got.status().message());
      if (std::chrono::steady_clock::now() >= give_up) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return absl::UnavailableError(absl::StrCat("model '", c.model_name, "' at ", c.url,
                                               " not ready within ", c.wait_ready_ms,
                                               " ms (", last, ")"));
  }
  auto channel =
      grpc::CreateChannel(c.url, grpc::InsecureChannelCredentials());
  auto stub = inference::GRPCInferenceService::NewStub(channel);
  auto give_up = std::chrono::steady_clock::now() +
                 std::chrono::milliseconds(c.wait_ready_ms);
  std::string last = "no answer";
  while (true) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(1));
    inference::ModelReadyRequest request;
    request.set_name(c.model_name);
    request.set_version(c.model_version);
    inference::ModelReadyResponse response;
    grpc::Status s = stub->ModelReady(&ctx, request, &response);
    if (s.ok() && response.ready()) return absl::OkStatus();
    last = s.ok() ? "not ready" : s.error_message();
    if (std::chrono::steady_clock::now() >= give_up) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return absl::UnavailableError(absl::StrCat(
      "model '", c.model_name, "' at ", c.url, " not ready within ",
      c.wait_ready_ms, " ms (", last, ")"));
}

// Fills load->requests (gRPC) or load->http_requests (HTTP), one per sample.
absl::Status BuildRequests(PerfConfig& c, torii::perf::RunInfo* info,
                           torii::perf::LoadOptions* load) {
  using namespace torii::perf;
  std::vector<InputSpec> specs = c.inputs;
  bool from_file = c.input_data != "random" && c.input_data != "zero";
  if (!specs.empty()) {
    absl::Status s = ApplyShapes(&specs, c.shapes);
    if (!s.ok()) return s;
  } else if (!from_file) {
    auto metadata = FetchMetadata(c);
    if (!metadata.ok()) return metadata.status();
    auto resolved = InputsFromMetadata(*metadata, c.shapes, c.batch_size);
    if (!resolved.ok()) return resolved.status();
    specs = *resolved;
  }
  std::vector<Sample> samples;
  if (from_file) {
    std::ifstream in(c.input_data);
    if (!in) {
      return absl::NotFoundError(
          absl::StrCat("cannot read --input-data file ", c.input_data));
    }
    std::stringstream text;
    text << in.rdbuf();
    auto parsed = ParseInputDataJson(text.str(), specs);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(c.input_data, ": ", parsed.status().message()));
    }
    samples = *std::move(parsed);
  } else {
    auto sample = MakeSyntheticSample(
        specs, c.input_data == "zero" ? DataMode::kZero : DataMode::kRandom,
        c.seed, c.string_length);
    if (!sample.ok()) return sample.status();
    samples.push_back(*std::move(sample));
  }
  if (c.protocol == Protocol::kHttp) {
    HttpRequestOptions options;
    options.host = c.url;
    options.model_name = c.model_name;
    options.model_version = c.model_version;
    options.binary_inputs = c.http_binary_inputs;
    options.binary_outputs = c.http_binary_outputs;
    options.outputs = c.outputs;
    for (const Sample& sample : samples) {
      auto request = BuildHttpRequest(sample, options);
      if (!request.ok()) return request.status();
      load->http_requests.push_back(*std::move(request));
    }
  } else {
    RequestOptions options{c.model_name, c.model_version, c.typed, c.outputs};
    for (const Sample& sample : samples) {
      auto request = BuildRequest(sample, options);
      if (!request.ok()) return request.status();
      load->requests.push_back(*std::move(request));
    }
  }
  std::vector<std::string> described;
  for (const TensorData& t : samples.front()) {
    described.push_back(absl::StrCat(t.spec.name, ":", t.spec.datatype, ":",
                                     absl::StrJoin(t.spec.shape, ",")));
  }
  info->inputs = absl::StrJoin(described, " ");
  info->payload_bytes = PayloadBytes(samples.front());
  return absl::OkStatus();
}

bool WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.close();
  if (!out) std::cerr << "torii-perf: cannot write " << path << "\n";
  return static_cast<bool>(out);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace torii::perf;
  std::vector<std::string> args(argv, argv + argc);
  auto config = ParseCommandLine(argc, argv);
  if (!config.ok()) {
    std::cerr << "torii-perf: " << config.status().message() << "\n";
    return 1;
  }
  PerfConfig& c = *config;
  if (c.help) {
    std::cout << Usage();
    return 0;
  }
  if (c.wait_ready_ms > 0) {
    absl::Status ready = WaitReady(c);
    if (!ready.ok()) {
      std::cerr << "torii-perf: " << ready.message() << "\n";
      return 1;
    }
  }
  c.measure.on_count_start =
      ShellCommandHook("on-count-start", c.on_count_start_cmd);
  c.measure.on_count_end = ShellCommandHook("on-count-end", c.on_count_end_cmd);
  RunInfo info;
  info.label = c.label;
  info.url = c.url;
  info.model_name = c.model_name;
  info.model_version = c.model_version;
  const bool http = c.protocol == Protocol::kHttp;
  info.protocol = http ? "http" : "grpc";
  info.api = c.streaming ? "streaming" : "unary";
  if (http) {
    info.contents = c.http_binary_inputs ? "binary" : "json";
    info.output_format = c.http_binary_outputs ? "binary" : "json";
  } else {
    info.contents = c.typed ? "typed" : "raw";
  }
  info.channels = c.channels;
  info.measurement_interval_ms = c.measure.measurement_interval_ms;
  info.stability_percentage = c.measure.stability_percentage;
  info.max_trials = c.measure.max_trials;
  info.percentile = c.measure.percentile;
  info.command_line = absl::StrJoin(args, " ");

  LoadOptions load;
  absl::Status built = BuildRequests(c, &info, &load);
  if (!built.ok()) {
    std::cerr << "torii-perf: " << built.message() << "\n";
    return 1;
  }
  load.protocol = c.protocol;
  load.http_threads = c.http_threads;
  load.url = c.url;
  load.channels = c.channels;
  load.streaming = c.streaming;
  load.request_timeout_ms = c.request_timeout_ms;
  load.distribution = c.distribution;
  load.max_inflight = c.max_inflight;
  load.seed = c.seed;
  auto gen = LoadGenerator::Create(std::move(load));
  if (!gen.ok()) {
    std::cerr << "torii-perf: " << gen.status().message() << "\n";
    return 1;
  }

  std::cout << "*** Measurement Settings ***\n";
  if (http) {
    std::cout << "  Server: " << c.url << " (HTTP/1.1, " << info.contents
              << " inputs, " << info.output_format
              << " outputs, one keep-alive connection per slot, " << c.http_threads
              << " client thread" << (c.http_threads == 1 ? "" : "s") << ")\n";
  } else {
    std::cout << "  Server: " << c.url << " (gRPC, " << info.api << ", "
              << info.contents << " contents, " << c.channels << " channel"
              << (c.channels == 1 ? "" : "s") << ")\n";
  }
  std::cout
            << "  Model: " << c.model_name
            << (c.model_version.empty() ? "" : " version " + c.model_version)
            << "\n  Inputs: " << info.inputs << " (" << info.payload_bytes
            << " bytes)\n";
  if (c.measure.request_count > 0) {
    std::cout << "  Fixed count: " << c.measure.request_count
              << " requests per point";
    if (c.measure.warmup_count > 0) {
      std::cout << " after " << c.measure.warmup_count << " warm-up requests";
    }
    std::cout << "\n\n";
  } else {
    std::cout << "  Measurement window: " << c.measure.measurement_interval_ms
              << " msec; stable when 3 windows are within "
              << c.measure.stability_percentage << "% (max "
              << c.measure.max_trials << " windows)\n\n";
  }
  std::vector<PointResult> results;
  if (c.rate_mode) {
    for (double rate : c.request_rates) {
      results.push_back(MeasureRequestRate(**gen, rate, c.measure, std::cout));
      PrintPoint(std::cout, results.back(), c.measure.percentile);
    }
  } else {
    for (int concurrency : c.concurrency) {
      results.push_back(
          MeasureConcurrency(**gen, concurrency, c.measure, std::cout));
      if (!results.back().setup_error.empty()) break;  // reported below
      PrintPoint(std::cout, results.back(), c.measure.percentile);
    }
  }
  std::cout << "\n";
  PrintSweep(std::cout, results);
  bool wrote = true;
  if (!c.csv_path.empty()) wrote = WriteFile(c.csv_path, CsvReport(results)) && wrote;
  if (!c.json_path.empty()) {
    wrote = WriteFile(c.json_path, JsonReport(info, results)) && wrote;
  }
  if (!wrote) return 1;
  for (const PointResult& r : results) {
    if (!r.setup_error.empty()) {
      std::cerr << "torii-perf: " << r.setup_error << "\n";
      return 1;
    }
  }
  for (const PointResult& r : results) {
    if (r.error_count() > 0) return 2;
  }
  return 0;
}
