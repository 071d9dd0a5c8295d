// The tensor codec of the HTTP frontend: a KServe v2 JSON inference request,
// with Triton's binary tensor extension, into the frontend-neutral
// InferenceRequest; and an InferenceResponse back into a v2 JSON response
// (outputs as JSON `data` or as binary parts after the JSON).
//
// Copies: binary inputs are views into the request body; JSON `data` is
// parsed in place (simdjson) straight into one owned raw buffer per input;
// binary outputs are sent from the buffers the runner wrote.
#ifndef TORII_SERVER_HTTP_INFER_CODEC_H_
#define TORII_SERVER_HTTP_INFER_CODEC_H_

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/core/inference_request.h"
#include "server/http/http_message.h"
#include "server/http/model_service.h"
#include "server/manager/system_shared_memory.h"

namespace torii {
namespace http {

/// The header that gives the length of the JSON part of a body with binary
/// tensors after it.
inline constexpr char kInferHeaderLength[] = "inference-header-content-length";

/// How the client wants outputs returned: binary parts or JSON `data`.
struct OutputFormat {
  /// The request's `binary_data_output` parameter.
  bool binary_by_default = false;
  /// Requested outputs' `binary_data` parameter, where given.
  std::vector<std::pair<std::string, bool>> binary;
  /// Outputs the client placed in a shared-memory region (output, region).
  std::vector<std::pair<std::string, std::string>> shared_memory;

  bool Binary(absl::string_view output_name) const;
  /// The region output `output_name` is written to, or nullptr.
  const std::string* SharedMemoryRegion(absl::string_view output_name) const;
};

/// What a parsed request points into; must live until the final response.
struct InferRequestBuffers {
  /// The request body after Content-Encoding, with kBodyPadding spare bytes.
  std::string body;
  /// JSON `data` converted to raw tensor bytes, one buffer per input.
  std::vector<std::unique_ptr<char[]>> converted;
  /// The shared-memory regions the request reads and writes, kept mapped.
  SharedMemoryBinding binding;
};

/// The value of Inference-Header-Content-Length: nullopt when absent (the
/// whole body is JSON); 0 for Triton's raw binary request (the whole body is
/// the data of the model's one input). Not a byte count within the body:
/// INVALID_ARGUMENT.
absl::StatusOr<std::optional<size_t>> ParseInferHeaderLength(const std::string* value,
                                                             size_t body_size);

/// Fills `request` (model_name and model_version from the URL are set by the
/// caller) and `format` from `buffers->body`. `json_length` is the length of
/// the JSON part (the body size when the request carries no binary data).
/// JSON tensor data is limited to `max_input_bytes` in total after
/// conversion. Inputs and outputs with Triton's `shared_memory_region`,
/// `shared_memory_offset` and `shared_memory_byte_size` parameters are bound
/// through `shared_memory` into `buffers->binding` (inputs read in place,
/// outputs written in place); with a null `shared_memory` they are
/// UNIMPLEMENTED. Errors are INVALID_ARGUMENT (UNIMPLEMENTED for features
/// Torii does not offer; the registry's codes for regions) with a message
/// naming the input or output.
absl::Status ParseInferRequest(size_t json_length, size_t max_input_bytes,
                               const SystemSharedMemory* shared_memory,
                               InferRequestBuffers* buffers, InferenceRequest* request,
                               OutputFormat* format);

/// Triton's raw binary request (Inference-Header-Content-Length: 0): the whole
/// of `buffers->body` is the data of `model`'s one input, whose shape is
/// deduced as Triton does: a leading 1 when the model batches, and the one
/// variable dimension (if any) from the byte size. A BYTES input must have
/// shape [1]; its body is the one element. Outputs are returned binary.
/// INVALID_ARGUMENT when the model has more or fewer than one input or its
/// shape cannot be deduced.
absl::Status ParseRawInferRequest(const ModelMetadata& model, InferRequestBuffers* buffers,
                                  InferenceRequest* request, OutputFormat* format);

/// An InferenceResponse whose output buffers become parts of the HTTP body:
/// each output gets its own buffer, which a binary output is sent from as is;
/// an output bound to a shared-memory region in `binding` (which outlives
/// the response) is written there instead.
class HttpInferResponse : public InferenceResponse {
 public:
  explicit HttpInferResponse(const SharedMemoryBinding* binding = nullptr) : binding_(binding) {}

 protected:
  absl::StatusOr<char*> AllocateBuffer(size_t index) override;

 private:
  const SharedMemoryBinding* binding_;
  std::vector<std::unique_ptr<char[]>> buffers_;
};

/// Serializes a successful response into `out` (status 200, body, headers;
/// binary outputs are appended as `tail` parts owned through `out->keep`).
/// Fails (INTERNAL) when an output's bytes do not match its shape, and
/// INVALID_ARGUMENT for a JSON output that cannot be JSON (a BYTES element
/// that is not UTF-8).
absl::Status WriteInferResponse(std::shared_ptr<const InferenceResponse> response,
                                const OutputFormat& format, HttpResponse* out);

/// Triton's generate extension (docs/http.md): the body is one JSON object.
/// A member named like one of `model`'s inputs is that input: a value or a
/// flat array of values of its datatype (BYTES: strings), whose shape is
/// inferred from the declared shape as Triton does (the fixed dimensions take
/// their share, the innermost variable dimension the rest, other variable
/// dimensions 1). Any other member is a request parameter (a string, a number
/// or a boolean). "parameters" is an object whose members are read the same
/// way; "id" is the request id (and, as in Triton, also read as above). An
/// empty body is an empty object. JSON values are limited to
/// `max_input_bytes` after conversion. Errors are INVALID_ARGUMENT.
absl::Status ParseGenerateRequest(const ModelMetadata& model, size_t max_input_bytes,
                                  InferRequestBuffers* buffers, InferenceRequest* request);

/// A generate response as Triton writes it: one JSON object with "id" (when
/// the request had one), "model_name", "model_version", the response's
/// parameters and each output by name (one element alone, more as a flat
/// array; BYTES as strings), members in byte order of their names.
/// INVALID_ARGUMENT for a BYTES element that is not UTF-8; INTERNAL when an
/// output's bytes do not match its shape.
absl::StatusOr<std::string> GenerateResponseJson(const InferenceResponse& response);

}  // namespace http
}  // namespace torii

#endif  // TORII_SERVER_HTTP_INFER_CODEC_H_
