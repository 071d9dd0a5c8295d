// torii-soak: minutes of concurrent traffic mixing valid, invalid and slow
// requests with model reloads, against a running Torii server. Records the
// server's resident memory over time and a histogram of status codes, and
// prints the memory slope (linear fit) and errors by code.
//
//   torii-soak --address=127.0.0.1:8001 --pid=<server pid> --seconds=300
//              --concurrency=64 [--reload-model=add_sub] [--slow-model=slow]
//              [--json=out.json]
//
// Exit code: 0 when every request got an expected status (OK for valid,
// INVALID_ARGUMENT/NOT_FOUND for invalid, OK or DEADLINE_EXCEEDED for slow),
// 1 otherwise. Memory figures are reported, never asserted.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "inference.grpc.pb.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Flags {
  std::string address = "127.0.0.1:8001";
  int pid = 0;
  int seconds = 60;
  int concurrency = 64;
  std::string reload_model;
  std::string slow_model;
  std::string json;
  std::string admin_header;  // "key=value" for restricted repository RPCs
};

bool ParseFlag(const std::string& arg, const char* name, std::string* out) {
  const std::string prefix = std::string("--") + name + "=";
  if (arg.rfind(prefix, 0) != 0) return false;
  *out = arg.substr(prefix.size());
  return true;
}

long RssKiB(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

inference::ModelInferRequest Identity(std::mt19937& rng, size_t n) {
  inference::ModelInferRequest r;
  r.set_model_name("identity");
  auto* in = r.add_inputs();
  in->set_name("INPUT0");
  in->set_datatype("FP32");
  in->add_shape(1);
  in->add_shape(static_cast<int64_t>(n));
  std::string raw(n * 4, '\0');
  for (size_t i = 0; i < n; ++i) {
    const float v = static_cast<float>(rng() % 1000);
    std::memcpy(&raw[i * 4], &v, 4);
  }
  r.add_raw_input_contents(raw);
  return r;
}

// A valid request mutated into one of the invalid kinds.
inference::ModelInferRequest Invalid(std::mt19937& rng, int kind) {
  inference::ModelInferRequest r = Identity(rng, 4);
  switch (kind % 6) {
    case 0: r.set_model_name("no_such_model"); break;
    case 1: r.mutable_inputs(0)->set_datatype("INT8"); break;
    case 2: r.set_raw_input_contents(0, "abc"); break;
    case 3: r.mutable_inputs(0)->set_shape(0, 100000); break;
    case 4: r.mutable_inputs(0)->set_name("NOPE"); break;
    default: r.mutable_inputs(0)->add_shape(-1); break;
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    std::string v;
    if (ParseFlag(a, "address", &f.address)) continue;
    if (ParseFlag(a, "pid", &v)) { f.pid = std::stoi(v); continue; }
    if (ParseFlag(a, "seconds", &v)) { f.seconds = std::stoi(v); continue; }
    if (ParseFlag(a, "concurrency", &v)) { f.concurrency = std::stoi(v); continue; }
    if (ParseFlag(a, "reload-model", &f.reload_model)) continue;
    if (ParseFlag(a, "slow-model", &f.slow_model)) continue;
    if (ParseFlag(a, "json", &f.json)) continue;
    if (ParseFlag(a, "admin-header", &f.admin_header)) continue;
    std::fprintf(stderr, "torii-soak: unknown argument %s\n", a.c_str());
    return 2;
  }

  auto channel = grpc::CreateChannel(f.address, grpc::InsecureChannelCredentials());
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::map<std::string, uint64_t> codes;  // "<kind> <CODE>" -> count
  std::atomic<uint64_t> unexpected{0};

  auto record = [&](const char* kind, const grpc::Status& s, bool expected) {
    static const char* kNames[] = {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
                                   "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED",
                                   "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
                                   "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE",
                                   "DATA_LOSS", "UNAUTHENTICATED"};
    const int c = static_cast<int>(s.error_code());
    std::lock_guard<std::mutex> lock(mu);
    ++codes[std::string(kind) + " " + (c >= 0 && c <= 16 ? kNames[c] : "?")];
    if (!expected) {
      if (unexpected++ < 5) {
        std::fprintf(stderr, "unexpected %s: %d %s\n", kind, c, s.error_message().c_str());
      }
    }
  };

  std::vector<std::thread> clients;
  for (int t = 0; t < f.concurrency; ++t) {
    clients.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t) * 7919u + 1);
      auto stub = inference::GRPCInferenceService::NewStub(channel);
      for (uint64_t i = 0; !stop; ++i) {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
        inference::ModelInferResponse resp;
        const int pick = static_cast<int>(rng() % 10);
        if (pick < 6) {
          auto req = Identity(rng, 1 + rng() % 256);
          const grpc::Status s = stub->ModelInfer(&ctx, req, &resp);
          const bool same = s.ok() && resp.raw_output_contents_size() == 1 &&
                            resp.raw_output_contents(0) == req.raw_input_contents(0);
          record("valid", s, same);
        } else if (pick < 9 || f.slow_model.empty()) {
          const grpc::Status s = stub->ModelInfer(&ctx, Invalid(rng, static_cast<int>(i)), &resp);
          record("invalid", s, s.error_code() == grpc::INVALID_ARGUMENT || s.error_code() == grpc::NOT_FOUND);
        } else {
          grpc::ClientContext slow_ctx;
          slow_ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(100));
          auto req = Identity(rng, 4);
          req.set_model_name(f.slow_model);
          (*req.mutable_parameters())["sleep_ms"].set_int64_param(static_cast<int64_t>(rng() % 200));
          const grpc::Status s = stub->ModelInfer(&slow_ctx, req, &resp);
          record("slow", s, s.ok() || s.error_code() == grpc::DEADLINE_EXCEEDED);
        }
      }
    });
  }

  // Reloads: explicit RepositoryModelLoad every 2 s (needs explicit mode).
  std::thread reloader;
  if (!f.reload_model.empty()) {
    reloader = std::thread([&] {
      auto stub = inference::GRPCInferenceService::NewStub(channel);
      while (!stop) {
        grpc::ClientContext ctx;
        if (const auto eq = f.admin_header.find('='); eq != std::string::npos) {
          ctx.AddMetadata(f.admin_header.substr(0, eq), f.admin_header.substr(eq + 1));
        }
        inference::RepositoryModelLoadRequest q;
        q.set_model_name(f.reload_model);
        inference::RepositoryModelLoadResponse r;
        record("reload", stub->RepositoryModelLoad(&ctx, q, &r), true);
        for (int i = 0; i < 20 && !stop; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    });
  }

  // Resident memory once a second.
  std::vector<std::pair<double, long>> rss;
  const auto start = Clock::now();
  while (Clock::now() - start < std::chrono::seconds(f.seconds)) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    const double t = std::chrono::duration<double>(Clock::now() - start).count();
    if (f.pid > 0) rss.emplace_back(t, RssKiB(f.pid));
  }
  stop = true;
  for (auto& c : clients) c.join();
  if (reloader.joinable()) reloader.join();

  // Least-squares slope of RSS over the second half (after warm-up).
  double slope_kib_per_min = 0;
  const size_t from = rss.size() / 2;
  if (rss.size() - from >= 2) {
    double n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (size_t i = from; i < rss.size(); ++i) {
      n += 1;
      sx += rss[i].first;
      sy += static_cast<double>(rss[i].second);
      sxx += rss[i].first * rss[i].first;
      sxy += rss[i].first * static_cast<double>(rss[i].second);
    }
    slope_kib_per_min = (n * sxy - sx * sy) / (n * sxx - sx * sx) * 60.0;
  }

  uint64_t total = 0;
  std::ostringstream json;
  json << "{\"seconds\":" << f.seconds << ",\"concurrency\":" << f.concurrency << ",\"codes\":{";
  bool first = true;
  std::printf("status codes:\n");
  for (const auto& [k, n] : codes) {
    std::printf("  %-32s %10llu\n", k.c_str(), static_cast<unsigned long long>(n));
    json << (first ? "" : ",") << "\"" << k << "\":" << n;
    first = false;
    total += n;
  }
  json << "},\"rss_kib\":[";
  for (size_t i = 0; i < rss.size(); ++i) json << (i ? "," : "") << "[" << rss[i].first << "," << rss[i].second << "]";
  json << "],\"rss_slope_kib_per_min\":" << slope_kib_per_min << ",\"unexpected\":" << unexpected << "}\n";
  std::printf("requests: %llu in %d s (%.0f/s), unexpected statuses: %llu\n",
              static_cast<unsigned long long>(total), f.seconds, double(total) / f.seconds,
              static_cast<unsigned long long>(unexpected.load()));
  if (!rss.empty()) {
    std::printf("resident memory: start %ld KiB, end %ld KiB, slope over the second half %.1f KiB/min\n",
                rss.front().second, rss.back().second, slope_kib_per_min);
  }
  if (!f.json.empty()) std::ofstream(f.json) << json.str();
  return unexpected == 0 ? 0 : 1;
}
