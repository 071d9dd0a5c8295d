// ModelStreamInfer: the bidirectional streaming RPC. Each request read from
// the stream goes through the same request path as ModelInfer; every answer
// (or error) is written back on the stream.
#ifndef TORII_SERVER_GRPC_STREAM_INFER_H_
#define TORII_SERVER_GRPC_STREAM_INFER_H_

#include <atomic>

#include "inference.grpc.pb.h"

namespace torii {

class InferenceService;

/// A reactor serving one stream; it deletes itself when gRPC is done with it.
/// `in_flight` counts answers not yet written (shutdown waits for them).
grpc::ServerBidiReactor<inference::ModelInferRequest, inference::ModelStreamInferResponse>*
NewStreamReactor(InferenceService* service, grpc::CallbackServerContext* ctx,
                 std::atomic<int64_t>* in_flight);

}  // namespace torii

#endif  // TORII_SERVER_GRPC_STREAM_INFER_H_
