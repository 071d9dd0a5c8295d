// gRPC wire messages <-> the frontend-neutral request and response. The only
// code that reads a ModelInferRequest or writes a ModelInferResponse.
#ifndef TORII_SERVER_GRPC_WIRE_REQUEST_H_
#define TORII_SERVER_GRPC_WIRE_REQUEST_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "inference.pb.h"
#include "server/core/inference_request.h"
#include "server/core/inference_response.h"

namespace torii {

/// Fills `out` from `wire`: model, version, id, parameters, requested
/// outputs, and inputs. raw_input_contents are viewed in place (no copy;
/// `wire` must outlive the request); typed `contents` are converted to raw
/// bytes once, into `converted` (which must outlive the request too).
/// INVALID_ARGUMENT for what only the wire form can get wrong (an unknown
/// datatype name, raw and typed contents mixed, a typed value that does not
/// fit its datatype); everything else is ValidateRequest's job.
absl::Status RequestFromWire(const inference::ModelInferRequest& wire, InferenceRequest* out,
                             std::vector<std::string>* converted);

/// A response whose output buffers are the raw_output_contents of its own
/// ModelInferResponse, so a runner writes straight into the message gRPC
/// sends.
class WireResponse : public InferenceResponse {
 public:
  /// Completes the message (model, version, id, parameters, output
  /// metadata) and returns it; outputs() stay valid views into it.
  inference::ModelInferResponse& Finish();
  inference::ModelInferResponse& message() { return message_; }

 protected:
  absl::StatusOr<char*> AllocateBuffer(size_t index) override;

 private:
  inference::ModelInferResponse message_;
};

/// Parameters <-> the wire's map<string, InferParameter>.
void ParametersFromWire(const google::protobuf::Map<std::string, inference::InferParameter>& wire,
                        Parameters* out);
void ParametersToWire(const Parameters& params,
                      google::protobuf::Map<std::string, inference::InferParameter>* out);

}  // namespace torii

#endif  // TORII_SERVER_GRPC_WIRE_REQUEST_H_
