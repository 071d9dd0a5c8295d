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
// Per instance channel, strictly one batch is outstanding: the server writes
// a Batch frame, the host answers with one BatchReply frame. That is the
// plain path, and all of it for a request answered by the return of execute.
//
// The control socket carries the load handshake, then becomes the child's
// events channel, full duplex, many frames outstanding both ways (read with
// FrameReader): responses a runner sends through a response sender (during
// or after execute), the parent's acknowledgements of them, cancellations,
// calls to other models and their results, and the runner's log lines. Their
// tensors sit in two heaps shared by the two processes: the child heap
// (allocated by the child: sender outputs, call inputs) and the parent heap
// (allocated by the server: call results). See docs/reliability.md.
#ifndef TORII_SERVER_ISOLATION_PROTOCOL_H_
#define TORII_SERVER_ISOLATION_PROTOCOL_H_

#include <cstdint>
#include <string>
#include <tuple>
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
  // The events channel (the control socket after the load):
  kResponse = 5,    // host -> server: a response sent through a sender
  kAck = 6,         // server -> host: a response was taken (or the receiver is gone)
  kCancel = 7,      // server -> host: a request answered through a sender was cancelled
  kCall = 8,        // host -> server: a call to another model
  kCallResult = 9,  // server -> host: one response of a call
  kFreeResult = 10, // host -> server: call results the runner released
  kLog = 11,        // host -> server: a runner's log line (host->log)
  kMetric = 12,     // host -> server: a runner-defined metric operation (ABI 1.3)
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

/// BatchReply::Result::code of a request the runner answers through a
/// response sender: its responses travel on the events channel.
constexpr int32_t kAnsweredBySender = -1;

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

/// Names one request of one batch: instance channel (child-local index),
/// batch id and position in the batch.
struct RequestHandle {
  uint32_t channel = 0;
  uint64_t batch_id = 0;
  uint32_t index = 0;
  bool operator<(const RequestHandle& o) const {
    return std::tie(channel, batch_id, index) < std::tie(o.channel, o.batch_id, o.index);
  }
  bool operator==(const RequestHandle& o) const {
    return channel == o.channel && batch_id == o.batch_id && index == o.index;
  }
};

/// One response of a request answered through a sender. Outputs lie in the
/// child heap; the host frees them when the server acknowledges this frame.
struct ResponseMessage {
  RequestHandle handle;
  uint8_t final = 0;
  uint8_t has_response = 1;  // 0: the final flag alone
  int32_t code = 0;          // absl::StatusCode; 0 = OK
  std::string message;
  std::vector<BatchReply::Output> outputs;
  uint64_t heap_size = 0;  // the child heap is at least this big now
};

/// The server took one response of `handle` (in order): its child-heap
/// memory is free again, and a non-final one returns a credit. `gone`: the
/// receiver went away; the response was dropped and later ones will be too.
struct AckMessage {
  RequestHandle handle;
  uint8_t gone = 0;
};

struct CancelMessage {
  RequestHandle handle;
};

/// A named tensor in one of the heaps.
struct NamedTensor {
  std::string name;
  int32_t datatype = 0;  // ToriiDataType
  TensorRef tensor;
};

/// A runner's call to another model. Inputs lie in the child heap until the
/// final CallResult.
struct CallMessage {
  uint64_t call_id = 0;
  std::string model;
  int64_t version = -1;  // -1: the highest ready version
  std::string id;
  Parameters parameters;
  std::vector<NamedTensor> inputs;
  std::vector<std::string> outputs;  // empty: all
  int64_t deadline_ns = INT64_MAX;   // steady clock; max = none
  uint64_t heap_size = 0;            // child heap
};

/// One response to a call (outputs in the parent heap, released by a
/// FreeMessage), or the final flag alone.
struct CallResultMessage {
  uint64_t call_id = 0;
  uint8_t final = 0;
  uint8_t has_response = 1;
  int32_t code = 0;
  std::string message;
  std::string model_name;
  std::string model_version;
  std::string id;
  std::vector<NamedTensor> outputs;
  uint64_t heap_size = 0;  // parent heap
};

/// Parent-heap blocks (offsets) the runner no longer reads.
struct FreeMessage {
  std::vector<uint64_t> offsets;
};

struct LogMessage {
  int32_t level = 2;  // ToriiLogLevel
  std::string message;
};

/// One operation on the runner-defined metrics of a child (ABI 1.3), sent
/// after it succeeded in the child, in the order of the operations. `id`
/// names a family or metric handle of the child (unique per child process).
struct MetricMessage {
  enum Op : uint8_t {
    kFamilyNew = 1,     // id, name, help, kind
    kFamilyDelete = 2,  // id
    kMetricNew = 3,     // id, family_id, labels, buckets
    kMetricDelete = 4,  // id
    kIncrement = 5,     // id, value
    kSet = 6,           // id, value
    kObserve = 7,       // id, value
  };
  uint8_t op = 0;
  uint64_t id = 0;
  uint64_t family_id = 0;
  int32_t kind = 0;  // ToriiMetricKind
  double value = 0;
  std::string name;
  std::string help;
  std::vector<std::pair<std::string, std::string>> labels;
  std::vector<double> buckets;
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
void Encode(const ResponseMessage& m, std::string* out);
void Encode(const AckMessage& m, std::string* out);
void Encode(const CancelMessage& m, std::string* out);
void Encode(const CallMessage& m, std::string* out);
void Encode(const CallResultMessage& m, std::string* out);
void Encode(const FreeMessage& m, std::string* out);
void Encode(const LogMessage& m, std::string* out);
void Encode(const MetricMessage& m, std::string* out);
absl::Status Decode(absl::string_view body, ResponseMessage* m);
absl::Status Decode(absl::string_view body, AckMessage* m);
absl::Status Decode(absl::string_view body, CancelMessage* m);
absl::Status Decode(absl::string_view body, CallMessage* m);
absl::Status Decode(absl::string_view body, CallResultMessage* m);
absl::Status Decode(absl::string_view body, FreeMessage* m);
absl::Status Decode(absl::string_view body, LogMessage* m);
absl::Status Decode(absl::string_view body, MetricMessage* m);

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

/// Reads frames from a socket on which several may be outstanding (the
/// events channel): keeps what it read past one frame for the next. One
/// reader per socket.
class FrameReader {
 public:
  /// The next whole frame already read, if any (the view is valid until the
  /// next call). kFrame, or kTimeout when none is complete yet; kError for a
  /// malformed header.
  ReadOutcome Next(MessageType* type, absl::string_view* body, std::string* error);
  /// One recv (MSG_DONTWAIT unless `block`): kFrame = bytes arrived (call
  /// Next), kTimeout = nothing to read now, kClosed, kError.
  ReadOutcome Fill(int fd, bool block, std::string* error);

 private:
  std::string buffer_;
  size_t begin_ = 0;
  size_t end_ = 0;
};

/// Checks that every tensor of a decoded message lies inside a region of
/// `region_size` bytes (and sizes do not overflow).
absl::Status CheckBounds(const BatchMessage& m, uint64_t region_size);
absl::Status CheckBounds(const BatchReply& m, uint64_t region_size);
absl::Status CheckBounds(const std::vector<BatchReply::Output>& outputs, uint64_t region_size);
absl::Status CheckBounds(const std::vector<NamedTensor>& tensors, uint64_t region_size);

}  // namespace isolation
}  // namespace torii

#endif  // TORII_SERVER_ISOLATION_PROTOCOL_H_
