// A test runner that reports what the scheduler did and misbehaves on demand.
//
// Config: INPUT0 FP32 [-1]; outputs OUTPUT0 FP32 [-1] (= INPUT0), BATCH INT64
// [1] (rows in the batch this row ran in), INSTANCE INT64 [1] (instance
// index), CONCURRENT INT64 [1] (executions in flight, across instances, while
// this one ran).
// Request parameters (or model parameters of the same name):
//   sleep_ms (int64)  sleep before answering
//   peers (int64)     wait (up to 10 s) until this many executions are in
//                     flight, so concurrency is observed without racing the
//                     clock on a loaded machine
//   mode (string)     "error" | "throw" | "bad_shape" | "bad_dtype" |
//                     "no_output" | "fail_odd" (fails requests whose first
//                     value is odd)
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>

#include "torii/runner.h"

namespace {

std::atomic<int64_t> g_in_flight{0};
std::atomic<int64_t> g_arrivals{0};  // executions started, ever

class ProbeInstance : public torii::Instance {
 public:
  ProbeInstance(uint32_t index, std::string mode, int64_t sleep_ms)
      : index_(index), mode_(std::move(mode)), sleep_ms_(sleep_ms) {}

  void Execute(torii::Batch& batch) override {
    const int64_t now_in_flight = ++g_in_flight;
    const int64_t my_arrival = ++g_arrivals;
    int64_t max_in_flight = now_in_flight;
    // Any execution that starts while this one runs proves two in flight,
    // even if it ends before this one looks again.
    auto seen = [&] {
      return std::max<int64_t>({max_in_flight, g_in_flight.load(),
                                g_arrivals.load() > my_arrival ? now_in_flight + 1 : int64_t{0}});
    };
    std::string mode = mode_;
    int64_t sleep_ms = sleep_ms_;
    int64_t peers = 0;
    for (size_t r = 0; r < batch.request_count(); ++r) {
      if (auto p = batch.request_parameter(r, "mode")) mode = p->string_value;
      if (auto p = batch.request_parameter(r, "sleep_ms")) sleep_ms = p->int64_value;
      if (auto p = batch.request_parameter(r, "peers")) peers = p->int64_value;
    }
    if (sleep_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (seen() < peers && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    max_in_flight = seen();
    struct Leave {
      ~Leave() { --g_in_flight; }
    } leave;

    if (mode == "error") throw torii::Error(TORII_STATUS_FAILED_PRECONDITION, "probe: asked to fail");
    if (mode == "throw") throw std::runtime_error("probe: boom");
    if (mode == "no_output") return;

    torii::Input in = batch.input("INPUT0");
    std::vector<int64_t> shape(in.shape().begin(), in.shape().end());
    const int64_t rows = shape[0];
    if (mode == "bad_dtype") {
      batch.AllocateOutput<int32_t>("OUTPUT0", shape);
      return;
    }
    if (mode == "bad_shape") shape.push_back(1);  // rank differs from the config
    auto out = batch.AllocateOutput<float>("OUTPUT0", shape);
    auto vals = in.values<float>();
    std::memcpy(out.data(), vals.data(), std::min(out.size(), vals.size()) * sizeof(float));
    for (auto [name, value] : {std::pair<const char*, int64_t>{"BATCH", rows},
                               {"INSTANCE", static_cast<int64_t>(index_)},
                               {"CONCURRENT", max_in_flight}}) {
      if (!batch.output_requested(name)) continue;
      auto o = batch.AllocateOutput<int64_t>(name, {rows, 1});
      for (auto& v : o) v = value;
    }
    // BYTES_OUT (BYTES [1]), when declared and asked for: one element per
    // row, or with mode "bad_bytes" a length prefix that runs past the end.
    if (batch.output_requested("BYTES_OUT")) {
      const size_t n = static_cast<size_t>(rows);
      void* p = batch.AllocateOutput("BYTES_OUT", TORII_TYPE_BYTES, {rows, 1}, n * 5);
      auto* bytes = static_cast<unsigned char*>(p);
      for (size_t r = 0; r < n; ++r) {
        const uint32_t len = mode == "bad_bytes" ? 1000 : 1;
        std::memcpy(bytes + r * 5, &len, 4);
        bytes[r * 5 + 4] = 'x';
      }
    }
    if (mode == "fail_odd") {
      int64_t row = 0;
      for (size_t r = 0; r < batch.request_count(); ++r) {
        if (static_cast<int64_t>(vals[static_cast<size_t>(row * shape[1])]) % 2 != 0) {
          batch.FailRequest(r, TORII_STATUS_INVALID_ARGUMENT, "probe: odd request");
        }
        row += batch.request_rows(r);
      }
    }
  }

 private:
  uint32_t index_;
  std::string mode_;
  int64_t sleep_ms_;
};

class ProbeModel : public torii::Model {
 public:
  explicit ProbeModel(const torii::ModelContext& ctx)
      : mode_(ctx.parameter("mode").value_or("")),
        sleep_ms_(std::stoll(ctx.parameter("sleep_ms").value_or("0"))) {
    if (ctx.parameter("fail_load")) {
      throw torii::Error(TORII_STATUS_INVALID_ARGUMENT, "probe: fail_load is set");
    }
  }
  std::unique_ptr<torii::Instance> CreateInstance(uint32_t index) override {
    return std::make_unique<ProbeInstance>(index, mode_, sleep_ms_);
  }

 private:
  std::string mode_;
  int64_t sleep_ms_;
};

}  // namespace

TORII_RUNNER(ProbeModel, "probe", "1.0.0");
