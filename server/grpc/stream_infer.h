// ModelStreamInfer: the bidirectional streaming RPC. Each request read from
// the stream goes through the same request path as ModelInfer; every answer
// (or error) is written back on the stream. A decoupled model's responses are
// written as they are sent, with Triton's conventions (docs/decoupled.md):
// the request id on every message, the bool parameter triton_final_response
// on every message, and the final flag alone written as an empty response
// only when the request set triton_enable_empty_final_response.
#ifndef TORII_SERVER_GRPC_STREAM_INFER_H_
#define TORII_SERVER_GRPC_STREAM_INFER_H_

#include <atomic>
#include <cstddef>

#include "inference.grpc.pb.h"

namespace torii {

class InferenceService;

/// Back-pressure: at most this many messages of one stream wait to be
/// written; a runner's non-final sender_send blocks meanwhile (until the
/// client reads, goes away, or the request's deadline passes).
constexpr size_t kStreamMaxUnwritten = 16;

/// A reactor serving one stream; it deletes itself when gRPC is done with it.
/// `in_flight` counts answers not yet written (shutdown waits for them).
grpc::ServerBidiReactor<inference::ModelInferRequest, inference::ModelStreamInferResponse>*
NewStreamReactor(InferenceService* service, grpc::CallbackServerContext* ctx,
                 std::atomic<int64_t>* in_flight);

}  // namespace torii

#endif  // TORII_SERVER_GRPC_STREAM_INFER_H_
