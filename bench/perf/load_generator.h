// The load engine of torii-perf: closed-loop (fixed concurrency) and
// open-loop (request rate) load over gRPC's callback client API (unary
// ModelInfer or ModelStreamInfer streams) or over HTTP/1.1 (KServe v2 REST,
// one keep-alive connection per request slot).
#ifndef TORII_BENCH_PERF_LOAD_GENERATOR_H_
#define TORII_BENCH_PERF_LOAD_GENERATOR_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "inference.grpc.pb.h"
#include "recorder.h"

namespace torii::perf {

using Clock = std::chrono::steady_clock;

enum class Distribution { kConstant, kPoisson };
enum class Protocol { kGrpc, kHttp };

struct LoadOptions {
  std::string url = "127.0.0.1:8001";  ///< host:port, insecure
  Protocol protocol = Protocol::kGrpc;
  /// HTTP: the complete requests (BuildHttpRequest), sent round-robin.
  std::vector<std::string> http_requests;
  /// HTTP: threads running the client's connections.
  int http_threads = 2;
  /// Channels (TCP connections); request slot i uses channel i % channels.
  /// 1 = one shared HTTP/2 connection multiplexing every request, as most
  /// clients deploy; more spreads the load over several connections (and
  /// so over several server pollers).
  int channels = 1;
  bool streaming = false;  ///< ModelStreamInfer instead of unary ModelInfer
  /// Per-request deadline for unary calls; 0 = none (a deadline costs the
  /// client a timer per call, so it is off by default).
  int64_t request_timeout_ms = 0;
  /// Requests sent round-robin. Must outlive nothing: the generator copies.
  std::vector<inference::ModelInferRequest> requests;
  Distribution distribution = Distribution::kConstant;  ///< rate mode only
  /// Rate mode: at most this many requests in flight; a send due while the
  /// cap is reached is skipped and counted (see skipped()).
  int max_inflight = 10000;
  uint64_t seed = 1;  ///< Poisson gaps
  /// How long to wait for the channels to connect in Create().
  int64_t connect_timeout_ms = 10000;
};

class HttpTransport;

/// One request at a time: a unary call, a stream with one request in
/// flight, or an HTTP/1.1 connection. Owned by the LoadGenerator until
/// Stop() has seen it finish.
class Slot {
 public:
  virtual ~Slot() = default;
  /// Sends request number `index` of the generator's requests. `start` is
  /// the time the latency counts from. Returns false if the slot can no
  /// longer send (a broken stream); the slot then finishes on its own.
  virtual bool Send(size_t index, Clock::time_point start) = 0;
  /// No more sends: the slot finishes (OnSlotFinished) once idle.
  virtual void Retire() = 0;
  /// Cancels whatever is in flight (thread-safe).
  virtual void Cancel() = 0;
};

/// Drives load against one server. Start*/Stop pairs may repeat (one per
/// measured point). Not thread-safe: call Start*/Stop/Wait from one thread;
/// the gRPC callback threads report into recorder().
class LoadGenerator {
 public:
  /// Connects the channels (fails with UNAVAILABLE naming the url if they
  /// do not connect within connect_timeout_ms).
  static absl::StatusOr<std::unique_ptr<LoadGenerator>> Create(
      LoadOptions options);
  ~LoadGenerator();

  /// Closed loop: `concurrency` requests always outstanding; each completion
  /// sends the next on the same slot (one unary call at a time, or one
  /// stream with one request in flight). With max_requests > 0 the slots
  /// stop after that many requests in all (see WaitUntilIdle()).
  void StartConcurrency(int concurrency, uint64_t max_requests = 0);
  /// Open loop: requests sent at `rate` per second by a pacer thread, each
  /// on an idle slot (new slots are opened as needed), whether or not
  /// earlier ones completed. Latency counts from the scheduled send time,
  /// so a late pacer or a full server shows in the figures (no coordinated
  /// omission).
  void StartRate(double rate);
  /// Blocks until every slot has retired, which happens on its own only
  /// when a max_requests budget runs out. Returns false on timeout.
  bool WaitUntilIdle(std::chrono::milliseconds timeout);
  /// Stops sending, lets in-flight requests finish (cancelling them after
  /// `drain_timeout`), and closes streams. Outcomes of drained requests are
  /// recorded as usual.
  void Stop(std::chrono::milliseconds drain_timeout =
                std::chrono::milliseconds(30000));

  Recorder& recorder() { return recorder_; }
  /// Rate mode: sends skipped because max_inflight requests were in flight.
  uint64_t skipped() const { return skipped_.load(); }
  /// Most slots (in-flight requests) open at once since the last Start*.
  size_t peak_slots();

  // Called by slots from gRPC callback threads.
  void OnComplete(Slot* slot, Clock::time_point start, bool ok,
                  const std::string& code_name, const std::string& message);
  void OnSlotFinished();

 private:
  explicit LoadGenerator(LoadOptions options);
  size_t NextRequest();
  bool TakeBudget();
  Slot* NewSlot();  // requires mu_
  void Retire(Slot* slot);
  void PacerLoop(double rate);

  LoadOptions options_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<inference::GRPCInferenceService::Stub>> stubs_;
  std::unique_ptr<HttpTransport> http_;
  Recorder recorder_;

  enum class Mode { kIdle, kConcurrency, kRate };
  Mode mode_ = Mode::kIdle;
  std::atomic<bool> running_{false};
  std::atomic<uint64_t> next_request_{0};
  bool budgeted_ = false;
  std::atomic<int64_t> budget_{0};
  std::atomic<uint64_t> skipped_{0};

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Slot>> slots_;  // all slots of this Start
  std::vector<Slot*> idle_;                   // rate mode
  size_t live_slots_ = 0;                     // not yet finished
  size_t peak_slots_ = 0;
  std::thread pacer_;
};

}  // namespace torii::perf

#endif  // TORII_BENCH_PERF_LOAD_GENERATOR_H_
