// torii-perf over HTTP: the KServe v2 REST request bytes for a sample (JSON
// `data`, or Triton's binary tensor extension), and model metadata read from
// the REST answer.
#ifndef TORII_BENCH_PERF_HTTP_PAYLOAD_H_
#define TORII_BENCH_PERF_HTTP_PAYLOAD_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "inference.pb.h"
#include "payload.h"

namespace torii::perf {

struct HttpRequestOptions {
  std::string host;  ///< the Host header, "127.0.0.1:8000"
  std::string model_name;
  std::string model_version;
  /// Inputs as raw bytes after the JSON (binary_data_size), as tritonclient
  /// sends them; false: as JSON `data`.
  bool binary_inputs = true;
  /// Ask for outputs as raw bytes after the JSON (binary_data_output).
  bool binary_outputs = true;
  std::vector<std::string> outputs;  ///< requested outputs; empty = all
};

/// A complete HTTP/1.1 POST .../infer request (request line, headers, body),
/// sent as is, again and again, on keep-alive connections. JSON data exists
/// for every datatype except FP16 and BF16 (as in Triton, binary only).
absl::StatusOr<std::string> BuildHttpRequest(const Sample& sample,
                                             const HttpRequestOptions& options);

/// The JSON part of the request body alone (for tests).
absl::StatusOr<std::string> HttpRequestJson(const Sample& sample,
                                            const HttpRequestOptions& options);

/// GET /v2/models/{m}[/versions/{v}]'s JSON as the gRPC metadata message
/// (name, versions, platform, inputs and outputs), so the same input
/// resolution serves both protocols.
absl::StatusOr<inference::ModelMetadataResponse> MetadataFromJson(
    absl::string_view json);

/// "/v2/models/<m>[/versions/<v>]" with the name percent-encoded.
std::string ModelPath(const std::string& model, const std::string& version);

}  // namespace torii::perf

#endif  // TORII_BENCH_PERF_HTTP_PAYLOAD_H_
