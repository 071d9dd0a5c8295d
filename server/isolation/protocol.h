// The control protocol between the server and a runner host process
// (torii-runner-host), for isolated models.
//
// Transport: one Unix stream socketpair for control (load, then EOF = exit)
// and one per instance (batches). Every message is a frame:
//   u32 magic "TRH2" | u32 type | u32 body size | body
// Bodies are little-endian fixed-size fields plus length-prefixed strings
// (this is one host talking to itself, so no portability layer). Tensor bytes
// never travel in a frame: they sit in the instance's shared region
// (shared_memory.h) and frames carry offsets and sizes.
//
// Per instance, strictly one batch is outstanding: the server writes a Batch
// frame, the host answers with one BatchReply frame.
#ifndef TORII_SERVER_ISOLATION_PROTOCOL_H_
#define TORII_SERVER_ISOLATION_PROTOCOL_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "server/core/parameters.h"

namespace torii {
namespace isolation {

constexpr uint32_t kFrameMagic = 0x32485254;  // "TRH2"
constexpr size_t kFrameHeaderSize = 12;
/// Frames larger than this are refused (a corrupted peer, not a real batch).
constexpr uint32_t kMaxFrameBody = 64u << 20;

enum class MessageType : uint32_t {
  kLoad = 1,        // server -> host, on the control socket, once
  kLoadReply = 2,   // host -> server
  kBatch = 3,       // server -> host, on an instance socket
  kBatchReply = 4,  // host -> server
};

/// What the host needs to load the model.
struct LoadMessage {
  std::string name;
  int64_t version = 0;
  std::string directory;
  std::string version_directory;
  std::string library_path;
  std::string runner;                  // the runner's name (from its manifest)
  std::string default_model_filename;  // the runner's default (from its manifest)
  std::string config;                  // serialized inference::ModelConfig
  uint32_t first_instance = 0;         // instance indices this host runs
  uint32_t instance_count = 1;
  uint8_t allow_config_completion = 0;  // the runner may complete the config
  uint64_t max_input_bytes = 0;         // request size limit (for its own calls)
};

/// The load's outcome: code 0 = loaded, else an absl::StatusCode and message.
/// The ABI check and the provenance come from here: the server never opens
/// an isolated runner's library itself.
struct LoadReply {
  int32_t code = 0;
  std::string message;
  int64_t pid = 0;
  std::string runner;
  std::string runner_version;
  std::string runner_build;
  std::string runner_abi;
  std::vector<std::pair<std::string, std::string>> properties;
  std::string completed_config;  // serialized ModelConfig when the runner completed it
};

/// A tensor in the shared region.
struct TensorRef {
  std::vector<int64_t> shape;
  uint64_t offset = 0;
  uint64_t size = 0;
};

struct BatchMessage {
  struct Request {
    int64_t rows = 1;
    int64_t deadline_ns = INT64_MAX;  // steady clock (CLOCK_MONOTONIC); max = none
    std::string id;
    std::vector<TensorRef> inputs;    // in declared input order
    std::vector<uint8_t> requested;   // per declared output: 1 = asked for
    Parameters parameters;
  };
  uint64_t batch_id = 0;
  uint64_t region_size = 0;     // the region is at least this big now
  uint64_t cancel_offset = 0;   // one byte per request: 1 = cancelled
  uint64_t outputs_offset = 0;  // the host may write outputs from here on
  std::vector<Request> requests;
};

struct BatchReply {
  struct Output {
    uint32_t index = 0;    // declared output index
    int32_t datatype = 0;  // ToriiDataType
    TensorRef tensor;
  };
  struct Result {
    int32_t code = 0;  // absl::StatusCode; 0 = OK and `outputs` are set
    std::string message;
    std::vector<Output> outputs;
  };
  uint64_t batch_id = 0;
  uint64_t region_size = 0;  // the host may have grown the region
  std::vector<Result> results;
};

/// Appends a whole frame (header + body) to `out` (which is cleared first).
void Encode(const LoadMessage& m, std::string* out);
void Encode(const LoadReply& m, std::string* out);
void Encode(const BatchMessage& m, std::string* out);
void Encode(const BatchReply& m, std::string* out);

/// Decodes a frame body. INVALID_ARGUMENT (naming the field) when the body is
/// truncated, has trailing bytes, or holds impossible counts.
absl::Status Decode(absl::string_view body, LoadMessage* m);
absl::Status Decode(absl::string_view body, LoadReply* m);
absl::Status Decode(absl::string_view body, BatchMessage* m);
absl::Status Decode(absl::string_view body, BatchReply* m);

/// Writes a whole frame to a socket (MSG_NOSIGNAL; retries on EINTR and
/// partial writes). UNAVAILABLE when the peer is gone.
absl::Status WriteFrame(int fd, absl::string_view frame);

enum class ReadOutcome { kFrame, kClosed, kError, kTimeout };

/// Reads one whole frame from a blocking socket into `buffer`; on kFrame sets
/// `type` and `body` (a view into `buffer`). kClosed: the peer closed
/// (cleanly or mid-frame). kError: a malformed header or a read error, with
/// `error` set. kTimeout: the socket has a receive timeout (SO_RCVTIMEO) and
/// it passed before the first byte arrived (once a frame has begun, the rest
/// is waited for).
ReadOutcome ReadFrame(int fd, std::string* buffer, MessageType* type, absl::string_view* body,
                      std::string* error);

/// Checks that every tensor of a decoded message lies inside a region of
/// `region_size` bytes (and sizes do not overflow).
absl::Status CheckBounds(const BatchMessage& m, uint64_t region_size);
absl::Status CheckBounds(const BatchReply& m, uint64_t region_size);

}  // namespace isolation
}  // namespace torii

#endif  // TORII_SERVER_ISOLATION_PROTOCOL_H_
