#include "load_generator.h"

#include <grpcpp/grpcpp.h>

#include <random>

#include "absl/strings/str_cat.h"
#include "http_transport.h"

namespace torii::perf {

using inference::ModelInferRequest;
using inference::ModelInferResponse;
using inference::ModelStreamInferResponse;

namespace {

class UnarySlot final : public Slot {
 public:
  UnarySlot(LoadGenerator* gen, inference::GRPCInferenceService::Stub* stub,
            const std::vector<ModelInferRequest>* requests, int64_t timeout_ms)
      : gen_(gen), stub_(stub), requests_(requests), timeout_ms_(timeout_ms) {}

  bool Send(size_t index, Clock::time_point start) override {
    const ModelInferRequest* request = &(*requests_)[index];
    {
      std::lock_guard<std::mutex> lock(mu_);
      context_ = std::make_unique<grpc::ClientContext>();
      if (timeout_ms_ > 0) {
        context_->set_deadline(std::chrono::system_clock::now() +
                               std::chrono::milliseconds(timeout_ms_));
      }
    }
    response_.Clear();
    start_ = start;
    stub_->async()->ModelInfer(
        context_.get(), request, &response_, [this](grpc::Status status) {
          gen_->OnComplete(this, start_, status.ok(),
                           StatusCodeName(status.error_code()),
                           status.error_message());
        });
    return true;
  }

  void Retire() override { gen_->OnSlotFinished(); }

  void Cancel() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (context_) context_->TryCancel();
  }

 private:
  LoadGenerator* const gen_;
  inference::GRPCInferenceService::Stub* const stub_;
  const std::vector<ModelInferRequest>* const requests_;
  const int64_t timeout_ms_;
  std::mutex mu_;  // context_ against Cancel()
  std::unique_ptr<grpc::ClientContext> context_;
  ModelInferResponse response_;
  Clock::time_point start_;
};

// A ModelStreamInfer stream carrying one request at a time, so each
// response belongs to the one request in flight (no id matching, no
// assumption about response order across requests).
class StreamSlot final
    : public Slot,
      public grpc::ClientBidiReactor<ModelInferRequest,
                                     ModelStreamInferResponse> {
 public:
  StreamSlot(LoadGenerator* gen, inference::GRPCInferenceService::Stub* stub,
             const std::vector<ModelInferRequest>* requests)
      : gen_(gen), requests_(requests) {
    stub->async()->ModelStreamInfer(&context_, this);
    StartRead(&response_);
    // The hold keeps OnDone away while the generator may still write from
    // its own threads; released by Retire() or when the stream breaks.
    AddHold();
    StartCall();
  }

  bool Send(size_t index, Clock::time_point start) override {
    const ModelInferRequest* request = &(*requests_)[index];
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (dead_ || hold_released_) return false;
      busy_ = true;
      write_done_ = false;
      read_done_ = false;
      start_ = start;
    }
    StartWrite(request);
    return true;
  }

  void OnWriteDone(bool /*ok*/) override {
    // A failed write means a broken stream; the read fails too and OnDone
    // reports the request.
    bool complete;
    {
      std::lock_guard<std::mutex> lock(mu_);
      write_done_ = true;
      complete = read_done_;
    }
    if (complete) Complete();
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      bool release;
      {
        std::lock_guard<std::mutex> lock(mu_);
        dead_ = true;
        release = !hold_released_;
        hold_released_ = true;
      }
      if (release) RemoveHold();
      return;
    }
    ok_ = response_.error_message().empty();
    message_ = ok_ ? std::string() : response_.error_message();
    bool complete;
    {
      std::lock_guard<std::mutex> lock(mu_);
      read_done_ = true;
      complete = write_done_;
    }
    // The next response cannot arrive before the next write, so reusing
    // response_ is safe once its fields were read above.
    StartRead(&response_);
    if (complete) Complete();
  }

  void OnDone(const grpc::Status& status) override {
    bool in_flight;
    Clock::time_point start;
    {
      std::lock_guard<std::mutex> lock(mu_);
      in_flight = busy_;
      busy_ = false;
      start = start_;
    }
    if (in_flight) {
      // The stream ended under a request: report it with the stream's code.
      bool cancelled_ok = status.ok();
      gen_->OnComplete(nullptr, start, false,
                       cancelled_ok ? "UNAVAILABLE"
                                    : StatusCodeName(status.error_code()),
                       cancelled_ok ? "stream closed with a request in flight"
                                    : status.error_message());
    } else if (!status.ok() && status.error_code() != grpc::CANCELLED) {
      gen_->OnComplete(nullptr, Clock::now(), false,
                       StatusCodeName(status.error_code()),
                       absl::StrCat("stream: ", status.error_message()));
    }
    gen_->OnSlotFinished();
  }

  void Retire() override {
    bool dead;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (hold_released_) return;  // broken: OnDone finishes the slot
      hold_released_ = true;
      dead = dead_;
    }
    if (!dead) StartWritesDone();
    RemoveHold();
  }

  void Cancel() override { context_.TryCancel(); }

 private:
  void Complete() {
    Clock::time_point start;
    {
      std::lock_guard<std::mutex> lock(mu_);
      busy_ = false;
      start = start_;
    }
    gen_->OnComplete(this, start, ok_, ok_ ? "OK" : "STREAM_ERROR", message_);
  }

  LoadGenerator* const gen_;
  const std::vector<ModelInferRequest>* const requests_;
  grpc::ClientContext context_;
  ModelStreamInferResponse response_;
  bool ok_ = true;  // outcome of the last response (callback threads only)
  std::string message_;
  std::mutex mu_;
  bool busy_ = false, write_done_ = false, read_done_ = false;
  bool dead_ = false, hold_released_ = false;
  Clock::time_point start_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<LoadGenerator>> LoadGenerator::Create(
    LoadOptions options) {
  const bool http = options.protocol == Protocol::kHttp;
  if (http ? options.http_requests.empty() : options.requests.empty()) {
    return absl::InvalidArgumentError("no requests to send");
  }
  if (options.channels < 1) {
    return absl::InvalidArgumentError("--channels must be >= 1");
  }
  std::unique_ptr<LoadGenerator> gen(new LoadGenerator(std::move(options)));
  const LoadOptions& o = gen->options_;
  if (http) {
    auto transport = HttpTransport::Create(o.url, o.http_threads, o.connect_timeout_ms);
    if (!transport.ok()) return transport.status();
    gen->http_ = *std::move(transport);
    return gen;
  }
  auto deadline = std::chrono::system_clock::now() +
                  std::chrono::milliseconds(o.connect_timeout_ms);
  for (int i = 0; i < o.channels; ++i) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);
    args.SetMaxSendMessageSize(-1);
    // Without a local subchannel pool, channels to the same target share
    // one TCP connection and "N channels" would be a fiction.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    auto channel = grpc::CreateCustomChannel(
        o.url, grpc::InsecureChannelCredentials(), args);
    if (!channel->WaitForConnected(deadline)) {
      return absl::UnavailableError(absl::StrCat(
          "cannot connect to ", o.url, " within ", o.connect_timeout_ms,
          " ms"));
    }
    gen->stubs_.push_back(inference::GRPCInferenceService::NewStub(channel));
    gen->channels_.push_back(std::move(channel));
  }
  return gen;
}

LoadGenerator::LoadGenerator(LoadOptions options)
    : options_(std::move(options)) {}

LoadGenerator::~LoadGenerator() { Stop(); }

size_t LoadGenerator::NextRequest() {
  uint64_t i = next_request_.fetch_add(1, std::memory_order_relaxed);
  const size_t n = options_.protocol == Protocol::kHttp ? options_.http_requests.size()
                                                        : options_.requests.size();
  return static_cast<size_t>(i % n);
}

bool LoadGenerator::TakeBudget() {
  return !budgeted_ || budget_.fetch_sub(1, std::memory_order_relaxed) > 0;
}

Slot* LoadGenerator::NewSlot() {
  size_t index = slots_.size();
  if (http_ != nullptr) {
    // One keep-alive connection per slot, as HTTP/1.1 clients do.
    slots_.push_back(http_->NewSlot(this, &options_.http_requests));
  } else if (options_.streaming) {
    slots_.push_back(std::make_unique<StreamSlot>(
        this, stubs_[index % stubs_.size()].get(), &options_.requests));
  } else {
    slots_.push_back(std::make_unique<UnarySlot>(
        this, stubs_[index % stubs_.size()].get(), &options_.requests,
        options_.request_timeout_ms));
  }
  ++live_slots_;
  peak_slots_ = std::max(peak_slots_, live_slots_);
  return slots_.back().get();
}

size_t LoadGenerator::peak_slots() {
  std::lock_guard<std::mutex> lock(mu_);
  return peak_slots_;
}

void LoadGenerator::StartConcurrency(int concurrency, uint64_t max_requests) {
  Stop();
  mode_ = Mode::kConcurrency;
  budgeted_ = max_requests > 0;
  budget_ = static_cast<int64_t>(max_requests);
  skipped_ = 0;
  running_ = true;
  std::vector<Slot*> started;
  {
    std::lock_guard<std::mutex> lock(mu_);
    peak_slots_ = 0;
    for (int i = 0; i < concurrency; ++i) started.push_back(NewSlot());
  }
  for (Slot* slot : started) {
    if (!TakeBudget() || !slot->Send(NextRequest(), Clock::now())) {
      Retire(slot);
    }
  }
}

void LoadGenerator::StartRate(double rate) {
  Stop();
  mode_ = Mode::kRate;
  budgeted_ = false;
  skipped_ = 0;
  running_ = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    peak_slots_ = 0;
  }
  pacer_ = std::thread([this, rate] { PacerLoop(rate); });
}

void LoadGenerator::PacerLoop(double rate) {
  std::mt19937_64 rng(options_.seed);
  std::exponential_distribution<double> poisson(rate);
  const auto constant_gap = std::chrono::duration<double>(1.0 / rate);
  Clock::time_point next = Clock::now();
  std::unique_lock<std::mutex> lock(mu_);
  while (running_) {
    // Sleep until the send is due (or Stop()); a late pacer sends at once,
    // so the schedule, not the pacer, sets the average rate.
    cv_.wait_until(lock, next, [this] { return !running_.load(); });
    if (!running_) break;
    Slot* slot = nullptr;
    while (slot == nullptr) {
      if (!idle_.empty()) {
        slot = idle_.back();
        idle_.pop_back();
      } else if (live_slots_ < static_cast<size_t>(options_.max_inflight)) {
        slot = NewSlot();
      } else {
        break;
      }
      lock.unlock();
      bool sent = slot->Send(NextRequest(), next);
      lock.lock();
      if (!sent) slot = nullptr;  // a broken stream finishes on its own
      else break;
    }
    if (slot == nullptr) ++skipped_;
    auto gap = options_.distribution == Distribution::kPoisson
                   ? std::chrono::duration<double>(poisson(rng))
                   : constant_gap;
    next += std::chrono::duration_cast<Clock::duration>(gap);
  }
}

void LoadGenerator::OnComplete(Slot* slot, Clock::time_point start, bool ok,
                               const std::string& code_name,
                               const std::string& message) {
  auto now = Clock::now();
  if (ok) {
    recorder_.RecordSuccess(
        std::chrono::duration_cast<std::chrono::nanoseconds>(now - start)
            .count());
  } else {
    recorder_.RecordError(code_name, message);
  }
  if (slot == nullptr) return;  // a broken stream: it finishes by itself
  if (mode_ == Mode::kConcurrency) {
    if (running_ && TakeBudget() && slot->Send(NextRequest(), Clock::now())) {
      return;
    }
    Retire(slot);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (running_) {
      idle_.push_back(slot);
      return;
    }
  }
  Retire(slot);
}

void LoadGenerator::Retire(Slot* slot) { slot->Retire(); }

void LoadGenerator::OnSlotFinished() {
  std::lock_guard<std::mutex> lock(mu_);
  --live_slots_;
  cv_.notify_all();
}

bool LoadGenerator::WaitUntilIdle(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [this] { return live_slots_ == 0; });
}

void LoadGenerator::Stop(std::chrono::milliseconds drain_timeout) {
  if (mode_ == Mode::kIdle) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    running_ = false;
    cv_.notify_all();
  }
  if (pacer_.joinable()) pacer_.join();
  std::vector<Slot*> idle;
  {
    std::lock_guard<std::mutex> lock(mu_);
    idle.swap(idle_);
  }
  for (Slot* slot : idle) Retire(slot);
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, drain_timeout,
                    [this] { return live_slots_ == 0; })) {
    for (auto& slot : slots_) slot->Cancel();
    cv_.wait(lock, [this] { return live_slots_ == 0; });
  }
  slots_.clear();
  mode_ = Mode::kIdle;
}

}  // namespace torii::perf
