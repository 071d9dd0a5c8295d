// The response side of the request path, frontend-neutral.
//
// An InferenceResponse holds the outputs of one response. Its buffers come
// from the ResponseSink the caller attached to the request: the gRPC frontend
// allocates them inside the wire message, the HTTP frontend inside its body,
// a registered shared-memory region is written in place, and in-server callers
// (ensembles, runners calling models) get plain heap buffers. Runners write
// their outputs straight into that memory.
//
// Every request gets exactly one final Deliver(). A model with the decoupled
// transaction policy may deliver any number of responses before it.
#ifndef TORII_SERVER_CORE_INFERENCE_RESPONSE_H_
#define TORII_SERVER_CORE_INFERENCE_RESPONSE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/core/parameters.h"
#include "torii/runner_abi.h"

namespace torii {

class InferenceRequest;

using Shape = absl::InlinedVector<int64_t, 4>;

/// One output of a response. `data` points to `byte_size` bytes allocated by
/// the response (see InferenceResponse::AddOutput) and lives as long as it.
struct OutputTensor {
  std::string name;
  ToriiDataType datatype = TORII_TYPE_INVALID;
  Shape shape;
  char* data = nullptr;
  size_t byte_size = 0;
};

class InferenceResponse {
 public:
  InferenceResponse() = default;
  virtual ~InferenceResponse() = default;
  InferenceResponse(const InferenceResponse&) = delete;
  InferenceResponse& operator=(const InferenceResponse&) = delete;

  std::string model_name;
  std::string model_version;  // the version that served the request
  std::string id;             // the request's id
  Parameters parameters;
  /// Not OK: the response is an error and carries no outputs.
  absl::Status status;

  /// Adds an output and allocates `byte_size` bytes for it; returns the
  /// buffer to write. Outputs keep the order in which they were added.
  absl::StatusOr<char*> AddOutput(std::string name, ToriiDataType datatype, Shape shape,
                                  size_t byte_size);
  const std::vector<OutputTensor>& outputs() const { return outputs_; }

 protected:
  /// Allocates the buffer of outputs()[index] (already appended, with its
  /// name, datatype, shape and byte_size set). The default allocates heap
  /// memory owned by this response; frontends override it to allocate where
  /// the bytes must end up.
  virtual absl::StatusOr<char*> AllocateBuffer(size_t index);

 private:
  std::vector<OutputTensor> outputs_;
  std::vector<std::unique_ptr<char[]>> owned_;
};

/// Where a request's responses go. Implemented by each frontend and by
/// in-server callers.
class ResponseSink {
 public:
  virtual ~ResponseSink() = default;

  /// A new, empty response (the caller fills model, version and id). The
  /// default is a plain InferenceResponse with heap buffers.
  virtual std::unique_ptr<InferenceResponse> NewResponse();

  /// Receives one response of the request. `final` is true on the last call,
  /// which happens exactly once per request. `response` is never null except
  /// on a final call of a decoupled model that ends without a last response.
  /// Calls for one request never overlap, but may come from any thread.
  virtual void Deliver(std::unique_ptr<InferenceResponse> response, bool final) = 0;

  /// Called by a decoupled model before each non-final response: blocks while
  /// the receiver has too many responses of this request not yet taken
  /// (back-pressure), and returns false once the receiver is gone. The
  /// default never blocks.
  virtual bool AwaitCapacity(const InferenceRequest& request);
};

}  // namespace torii

#endif  // TORII_SERVER_CORE_INFERENCE_RESPONSE_H_
