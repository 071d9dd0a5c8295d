#include "server/http/http_api.h"

#include <simdjson.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/common/logging.h"
#include "server/core/datatype.h"
#include "server/http/compression.h"
#include "server/http/http_status.h"
#include "server/http/infer_codec.h"
#include "server/http/json_writer.h"

namespace torii {
namespace http {

const char* const HttpApi::kExtensions[] = {"model_configuration", "statistics",
                                            "model_repository",    "schedule_policy",
                                            "system_shared_memory", "binary_tensor_data",
                                            nullptr};

namespace {

enum class Endpoint {
  kServerMetadata,
  kHealthLive,
  kHealthReady,
  kModelMetadata,
  kModelReady,
  kModelInfer,
  kModelGenerate,
  kModelGenerateStream,
  kModelConfig,
  kModelStats,  // also every model's, with an empty model name
  kRepositoryIndex,
  kRepositoryLoad,
  kRepositoryUnload,
  kShmStatus,  // system shared memory: all regions, or the route's one
  kShmRegister,
  kShmUnregister,
  kCudaShmStatus,  // CUDA shared memory: refused as Triton without GPUs
  kCudaShmRegister,
  kCudaShmUnregister,
  kTrace,    // trace settings: not implemented, as over gRPC
  kLogging,  // log settings: not implemented, as over gRPC
  kNone,     // no endpoint at that path
};

// Metric label values, indexed by Endpoint.
constexpr const char* kEndpointNames[] = {
    "server_metadata",  "health_live",         "health_ready",      "model_metadata",
    "model_ready",      "infer",               "generate",          "generate_stream",
    "model_config",     "model_stats",
    "repository_index", "repository_load",     "repository_unload", "shm_status",
    "shm_register",     "shm_unregister",      "cuda_shm_status",   "cuda_shm_register",
    "cuda_shm_unregister", "trace",           "logging",           "none"};
static_assert(sizeof(kEndpointNames) / sizeof(kEndpointNames[0]) == HttpApi::kEndpoints,
              "one name per endpoint");
static_assert(static_cast<size_t>(Endpoint::kNone) + 1 == HttpApi::kEndpoints,
              "HttpApi::kEndpoints counts the endpoints");

size_t StatusIndex(int status) {
  for (size_t i = 0; i < HttpApi::kCountedStatuses.size(); ++i) {
    if (HttpApi::kCountedStatuses[i] == status) return i;
  }
  return HttpApi::kCountedStatuses.size();
}

// Wraps the server's responder: counts every answer by endpoint and status
// and, with Options::log_requests, logs it. The endpoint is set once the
// path is routed, before anything is sent.
class ObservedResponder final : public HttpResponder {
 public:
  ObservedResponder(std::shared_ptr<HttpResponder> inner,
                    std::shared_ptr<HttpApi::Counters> counters, const HttpRequest* request,
                    bool log)
      : inner_(std::move(inner)), counters_(std::move(counters)) {
    if (log) {
      start_ = std::chrono::steady_clock::now();
      method_ = request->method;
      path_ = request->path;
      log_ = true;
    }
  }

  Endpoint endpoint = Endpoint::kNone;

  void Send(HttpResponse response) override {
    if (sent_.exchange(true)) return;
    Observe(response.status);
    inner_->Send(std::move(response));
  }
  // A streamed answer is counted and logged when it starts (its status is
  // known then; the duration is the time to the first response).
  std::shared_ptr<HttpStream> StartStream(HttpResponse head) override {
    if (sent_.exchange(true)) return nullptr;
    Observe(head.status);
    return inner_->StartStream(std::move(head));
  }
  bool Gone() const override { return inner_->Gone(); }

 private:
  void Observe(int status) {
    (*counters_)[static_cast<size_t>(endpoint)][StatusIndex(status)].fetch_add(
        1, std::memory_order_relaxed);
    if (log_) {
      const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::steady_clock::now() - start_)
                          .count();
      LogVerbose("HTTP request", {{"method", method_},
                                  {"path", path_},
                                  {"status", std::to_string(status)},
                                  {"duration_us", std::to_string(us)}});
    }
  }

  std::shared_ptr<HttpResponder> inner_;
  std::shared_ptr<HttpApi::Counters> counters_;
  std::atomic<bool> sent_{false};
  bool log_ = false;
  std::chrono::steady_clock::time_point start_;
  std::string method_, path_;
};

bool IsDigits(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Clients quote model names in URLs (tritonclient does).
bool PercentDecode(absl::string_view in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    const int hi = HexValue(in[i + 1]), lo = HexValue(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

// A model name from a URL names a directory of the repository.
bool IsPlainModelName(const std::string& name) {
  return !name.empty() && name != "." && name != ".." &&
         name.find_first_of("/\\") == std::string::npos && name.find('\0') == std::string::npos;
}

// Triton answers an unknown request coding as unsupported; RFC 9110 says 415
// with the codings that are accepted.
HttpResponse UnsupportedCoding(const absl::Status& status) {
  HttpResponse r = ErrorResponse(415, status.message());
  r.SetHeader("Accept-Encoding", "gzip, deflate");
  return r;
}

HttpResponse JsonResponse(std::string body) {
  HttpResponse r;
  r.body = std::move(body);
  r.SetHeader("Content-Type", "application/json");
  return r;
}

HttpResponse EmptyResponse(int status) {
  HttpResponse r;
  r.status = status;
  return r;
}

HttpResponse EmptyOrError(const absl::Status& status) {
  return status.ok() ? EmptyResponse(200) : ErrorResponse(status);
}

void WriteDuration(JsonWriter* w, const char* name, const DurationStat& d) {
  w->Key(name);
  w->StartObject();
  w->Key("count");
  w->Uint(d.count);
  w->Key("ns");
  w->Uint(d.ns);
  w->EndObject();
}

std::string StatsJson(const std::vector<ModelStats>& stats) {
  std::string out;
  JsonWriter w(&out);
  w.StartObject();
  w.Key("model_stats");
  w.StartArray();
  for (const ModelStats& s : stats) {
    w.StartObject();
    w.Key("name");
    w.String(s.name);
    w.Key("version");
    w.String(s.version);
    w.Key("last_inference");
    w.Uint(s.last_inference_ms);
    w.Key("inference_count");
    w.Uint(s.inference_count);
    w.Key("execution_count");
    w.Uint(s.execution_count);
    w.Key("inference_stats");
    w.StartObject();
    WriteDuration(&w, "success", s.success);
    WriteDuration(&w, "fail", s.fail);
    WriteDuration(&w, "queue", s.queue);
    WriteDuration(&w, "compute_input", s.compute_input);
    WriteDuration(&w, "compute_infer", s.compute_infer);
    WriteDuration(&w, "compute_output", s.compute_output);
    WriteDuration(&w, "cache_hit", s.cache_hit);
    WriteDuration(&w, "cache_miss", s.cache_miss);
    w.EndObject();
    w.Key("batch_stats");
    w.StartArray();
    for (const BatchStat& b : s.batch_stats) {
      w.StartObject();
      w.Key("batch_size");
      w.Uint(b.batch_size);
      WriteDuration(&w, "compute_input", b.compute_input);
      WriteDuration(&w, "compute_infer", b.compute_infer);
      WriteDuration(&w, "compute_output", b.compute_output);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return out;
}

std::string MetadataJson(const ModelMetadata& m) {
  std::string out;
  JsonWriter w(&out);
  auto tensors = [&](const char* key, const std::vector<TensorMetadata>& ts) {
    w.Key(key);
    w.StartArray();
    for (const TensorMetadata& t : ts) {
      w.StartObject();
      w.Key("name");
      w.String(t.name);
      w.Key("datatype");
      w.String(DataTypeName(t.datatype));
      w.Key("shape");
      w.StartArray();
      for (int64_t d : t.shape) w.Int(d);
      w.EndArray();
      w.EndObject();
    }
    w.EndArray();
  };
  w.StartObject();
  w.Key("name");
  w.String(m.name);
  w.Key("versions");
  w.StartArray();
  for (const std::string& v : m.versions) w.String(v);
  w.EndArray();
  w.Key("platform");
  w.String(m.platform);
  tensors("inputs", m.inputs);
  tensors("outputs", m.outputs);
  if (!m.properties.empty()) {
    w.Key("properties");
    w.StartObject();
    for (const auto& [k, v] : m.properties) {
      w.Key(k);
      w.String(v);
    }
    w.EndObject();
  }
  w.EndObject();
  return out;
}

// Parses a small JSON control body (index, load, unload) and calls
// fn(key, value) for each member of its top-level object; an empty body has
// no members.
template <typename Fn>
absl::Status ForEachBodyMember(std::string& body, Fn&& fn) {
  if (absl::StripAsciiWhitespace(body).empty()) return absl::OkStatus();
  EnsureBodyPadding(body);
  simdjson::ondemand::parser parser;
  simdjson::ondemand::document doc;
  simdjson::ondemand::object obj;
  if (auto e = parser.iterate(body.data(), body.size(), body.capacity()).get(doc)) {
    return absl::InvalidArgumentError(absl::StrCat("the request body is not valid JSON: ",
                                                   simdjson::error_message(e)));
  }
  if (doc.get_object().get(obj)) {
    return absl::InvalidArgumentError("the request body must be a JSON object");
  }
  for (auto fr : obj) {
    simdjson::ondemand::field f;
    std::string_view key;
    if (auto e = std::move(fr).get(f)) {
      return absl::InvalidArgumentError(absl::StrCat("the request body is not valid JSON: ",
                                                     simdjson::error_message(e)));
    }
    if (f.unescaped_key().get(key)) return absl::InvalidArgumentError("invalid JSON key");
    absl::Status s = fn(key, f.value());
    if (!s.ok()) return s;
  }
  const char* rest;
  if (doc.current_location().get(rest) == simdjson::SUCCESS) {
    return absl::InvalidArgumentError("the request body has data after its JSON object");
  }
  return absl::OkStatus();
}

// Where an inference request's answer goes: formats the final response into
// the HTTP answer (compressed when the client asked) and sends it.
class HttpInferCall final : public ResponseSink {
 public:
  HttpInferCall(std::shared_ptr<HttpResponder> responder, ContentCoding coding,
                std::shared_ptr<std::atomic<int64_t>> in_flight)
      : responder_(std::move(responder)), coding_(coding), in_flight_(std::move(in_flight)) {
    ++*in_flight_;
  }

  InferRequestBuffers buffers;
  OutputFormat format;

  std::unique_ptr<InferenceResponse> NewResponse() override {
    return std::make_unique<HttpInferResponse>(&buffers.binding);
  }

  void Deliver(std::unique_ptr<InferenceResponse> response, bool final) override {
    if (response != nullptr) {
      ++responses_;
      last_ = std::move(response);
    }
    if (!final) return;
    HttpResponse out;
    if (last_ == nullptr) {
      out = ErrorResponse(absl::InternalError("the model finished the request without a response"));
    } else if (responses_ > 1) {
      out = ErrorResponse(absl::InternalError(
          absl::StrCat("expected a single response, got ", responses_)));
    } else if (!last_->status.ok()) {
      out = ErrorResponse(last_->status);
    } else if (absl::Status intact = buffers.binding.CheckIntact(); !intact.ok()) {
      // A region truncated under the request: what was read or written
      // there is lost, whatever the runner said.
      out = ErrorResponse(intact);
    } else {
      std::shared_ptr<const InferenceResponse> r(std::move(last_));
      absl::Status s = WriteInferResponse(std::move(r), format, &out);
      if (s.ok() && coding_ != ContentCoding::kIdentity) s = CompressBody(&out);
      if (!s.ok()) out = ErrorResponse(s);
    }
    last_.reset();
    responder_->Send(std::move(out));
    --*in_flight_;
  }

 private:
  absl::Status CompressBody(HttpResponse* out) {
    std::vector<absl::string_view> pieces;
    pieces.reserve(1 + out->tail.size());
    pieces.emplace_back(out->body);
    for (absl::string_view t : out->tail) pieces.push_back(t);
    auto compressed = Compress(coding_, pieces);
    if (!compressed.ok()) return absl::OkStatus();  // answer uncompressed, as Triton does
    out->body = *std::move(compressed);
    out->tail.clear();
    out->keep.reset();
    out->SetHeader("Content-Encoding", std::string(CodingName(coding_)));
    return absl::OkStatus();
  }

  std::shared_ptr<HttpResponder> responder_;
  ContentCoding coding_;
  std::shared_ptr<std::atomic<int64_t>> in_flight_;
  std::unique_ptr<InferenceResponse> last_;
  int responses_ = 0;
};

// Where a generate request's responses go (Triton's generate extension).
// /generate expects exactly one response and answers it as one JSON object;
// a second response makes the answer an error, and the request is cancelled
// so the model stops. /generate_stream writes each response as a
// server-sent event ("data: {...}\n\n") as it arrives: the stream starts
// with the first response (its status: 200, or the error's), errors later
// are events {"error": "..."}, and the body ends after the final. A request
// that fails before any response (refused by validation, the queue, ...)
// is answered as a plain JSON error instead.
class GenerateCall final : public ResponseSink {
 public:
  GenerateCall(std::shared_ptr<HttpResponder> responder, bool streaming,
               std::shared_ptr<std::atomic<int64_t>> in_flight)
      : responder_(std::move(responder)), streaming_(streaming), in_flight_(std::move(in_flight)) {
    ++*in_flight_;
  }

  InferRequestBuffers buffers;

  void Deliver(std::unique_ptr<InferenceResponse> response, bool final) override {
    if (streaming_) {
      DeliverEvent(std::move(response), final);
    } else {
      DeliverOne(std::move(response), final);
    }
    if (final) --*in_flight_;
  }

  bool AwaitCapacity(const InferenceRequest& request) override {
    if (!streaming_) return !too_many_.load() && !responder_->Gone();
    std::shared_ptr<HttpStream> stream = Stream();
    if (stream == nullptr) return !responder_->Gone();
    return stream->AwaitRoom(HttpApi::kGenerateStreamMaxUnwritten, request.deadline);
  }

  // The request's cancellation probe: the client went away (or, for
  // /generate, the model answers with more than the one response expected).
  bool Cancelled() const {
    if (!streaming_) return too_many_.load() || responder_->Gone();
    std::shared_ptr<HttpStream> stream = Stream();
    return stream != nullptr ? stream->Gone() : responder_->Gone();
  }

 private:
  std::shared_ptr<HttpStream> Stream() const {
    std::lock_guard<std::mutex> lock(mu_);
    return stream_;
  }

  void DeliverOne(std::unique_ptr<InferenceResponse> response, bool final) {
    if (response != nullptr && ++responses_ == 1) {
      first_ = std::move(response);
    } else if (response != nullptr) {
      too_many_ = true;
    }
    if (!final) return;
    HttpResponse out;
    if (responses_ != 1) {
      // Triton's words, then what arrived.
      out = ErrorResponse(absl::InternalError(absl::StrCat(
          "generate expects model to produce exactly 1 response, got ",
          responses_ == 0 ? "none" : "more than one",
          "; use generate_stream for a model that answers with any number of responses")));
    } else if (!first_->status.ok()) {
      out = ErrorResponse(first_->status);
    } else {
      auto json = GenerateResponseJson(*first_);
      if (json.ok()) {
        out.body = *std::move(json);
        out.SetHeader("Content-Type", "application/json");
      } else {
        out = ErrorResponse(json.status());
      }
    }
    first_.reset();
    responder_->Send(std::move(out));
  }

  void DeliverEvent(std::unique_ptr<InferenceResponse> response, bool final) {
    std::shared_ptr<HttpStream> stream = Stream();
    if (stream == nullptr) {
      if (response != nullptr && final && !response->status.ok()) {
        // Failed before it produced anything: a plain error answer.
        responder_->Send(ErrorResponse(response->status));
        return;
      }
      HttpResponse head;
      head.status = response == nullptr || response->status.ok()
                        ? 200
                        : HttpStatusFromStatus(response->status);
      head.SetHeader("Content-Type", "text/event-stream; charset=utf-8");
      head.SetHeader("Cache-Control", "no-cache");
      stream = responder_->StartStream(std::move(head));
      if (stream == nullptr) return;  // answered already: nothing can follow
      std::lock_guard<std::mutex> lock(mu_);
      stream_ = stream;
    }
    if (response != nullptr) {
      std::string event = "data: ";
      if (response->status.ok()) {
        auto json = GenerateResponseJson(*response);
        event += json.ok() ? *json : ErrorJson(json.status().message());
      } else {
        event += ErrorJson(response->status.message());
      }
      event += "\n\n";
      stream->Write(std::move(event));
    }
    if (final) stream->End();
  }

  std::shared_ptr<HttpResponder> responder_;
  const bool streaming_;
  std::shared_ptr<std::atomic<int64_t>> in_flight_;
  // /generate: the first response and how many arrived.
  std::unique_ptr<InferenceResponse> first_;
  int responses_ = 0;
  std::atomic<bool> too_many_{false};
  // /generate_stream: the stream, once the first response started it.
  mutable std::mutex mu_;
  std::shared_ptr<HttpStream> stream_;
};

}  // namespace

struct HttpApi::Route {
  Endpoint endpoint;
  const char* method;  // the one method the endpoint takes; null: GET or POST
  const char* group;   // restricted-API protocol group
  std::string model;
  std::string version;
};

HttpApi::HttpApi(Options options)
    : options_(std::move(options)),
      repository_pool_(std::make_unique<TaskPool>(std::max<size_t>(1, options_.repository_threads),
                                                  /*max_queued=*/64)) {
  shared_memory_ = options_.shared_memory;
  if (shared_memory_ == nullptr) {
    own_shared_memory_ = std::make_unique<SystemSharedMemory>();
    shared_memory_ = own_shared_memory_.get();
  }
}

std::vector<HttpApi::RequestCount> HttpApi::RequestCounts() const {
  std::vector<RequestCount> out;
  for (size_t e = 0; e < kEndpoints; ++e) {
    for (size_t i = 0; i <= kCountedStatuses.size(); ++i) {
      const uint64_t n = (*counters_)[e][i].load(std::memory_order_relaxed);
      if (n == 0) continue;
      out.push_back({kEndpointNames[e], i < kCountedStatuses.size() ? kCountedStatuses[i] : 0, n});
    }
  }
  return out;
}

void HttpApi::Handle(std::unique_ptr<HttpRequest> request,
                     std::shared_ptr<HttpResponder> server_responder) {
  auto responder = std::make_shared<ObservedResponder>(std::move(server_responder), counters_,
                                                       request.get(), options_.log_requests);
  // Split and decode the path: /v2/models/{m}[/versions/{v}][/{action}], ...
  std::vector<std::string> seg;
  for (absl::string_view s : absl::StrSplit(request->path, '/', absl::SkipEmpty())) {
    std::string decoded;
    if (!PercentDecode(s, &decoded)) {
      return responder->Send(ErrorResponse(
          400, absl::StrCat("malformed percent-encoding in the path '", request->path, "'")));
    }
    seg.push_back(std::move(decoded));
  }
  std::optional<Route> route;
  const size_t n = seg.size();
  if (n >= 1 && seg[0] == "v2") {
    if (n == 1) {
      route = Route{Endpoint::kServerMetadata, "GET", "metadata", "", ""};
    } else if (n == 3 && seg[1] == "health" && (seg[2] == "live" || seg[2] == "ready")) {
      route = Route{seg[2] == "live" ? Endpoint::kHealthLive : Endpoint::kHealthReady, "GET",
                    "health", "", ""};
    } else if (n == 3 && seg[1] == "models" && seg[2] == "stats") {
      route = Route{Endpoint::kModelStats, "GET", "statistics", "", ""};
    } else if (n >= 3 && seg[1] == "models") {
      Route r{Endpoint::kModelMetadata, "GET", "metadata", seg[2], ""};
      size_t i = 3;
      bool ok = true;
      if (i < n && seg[i] == "versions") {
        ok = i + 1 < n && IsDigits(seg[i + 1]);
        if (ok) r.version = seg[i + 1];
        i += 2;
      }
      if (ok && i + 1 == n) {
        if (seg[i] == "ready") {
          r = Route{Endpoint::kModelReady, "GET", "health", r.model, r.version};
        } else if (seg[i] == "infer") {
          r = Route{Endpoint::kModelInfer, "POST", "inference", r.model, r.version};
        } else if (seg[i] == "generate") {
          r = Route{Endpoint::kModelGenerate, "POST", "inference", r.model, r.version};
        } else if (seg[i] == "generate_stream") {
          r = Route{Endpoint::kModelGenerateStream, "POST", "inference", r.model, r.version};
        } else if (seg[i] == "config") {
          r = Route{Endpoint::kModelConfig, "GET", "model-config", r.model, r.version};
        } else if (seg[i] == "stats") {
          r = Route{Endpoint::kModelStats, "GET", "statistics", r.model, r.version};
        } else {
          ok = false;
        }
      } else if (ok && i + 2 == n && seg[i] == "trace" && seg[i + 1] == "setting") {
        r = Route{Endpoint::kTrace, nullptr, "trace", r.model, ""};  // /v2/models/{m}/trace/setting
      } else if (i != n) {
        ok = false;
      }
      if (ok) route = std::move(r);
    } else if (n == 3 && seg[1] == "trace" && seg[2] == "setting") {
      route = Route{Endpoint::kTrace, nullptr, "trace", "", ""};
    } else if (n == 2 && seg[1] == "logging") {
      route = Route{Endpoint::kLogging, nullptr, "logging", "", ""};
    } else if (n == 3 && seg[1] == "repository" && seg[2] == "index") {
      route = Route{Endpoint::kRepositoryIndex, "POST", "model-repository", "", ""};
    } else if (n == 5 && seg[1] == "repository" && seg[2] == "models" &&
               (seg[4] == "load" || seg[4] == "unload")) {
      route = Route{seg[4] == "load" ? Endpoint::kRepositoryLoad : Endpoint::kRepositoryUnload,
                    "POST", "model-repository", seg[3], ""};
    } else if (n >= 3 && (seg[1] == "systemsharedmemory" || seg[1] == "cudasharedmemory")) {
      // /v2/{system,cuda}sharedmemory[/region/{r}]/{status,register,unregister}
      const bool cuda = seg[1] == "cudasharedmemory";
      std::string region;
      const std::string* action = nullptr;
      if (n == 3) {
        action = &seg[2];
      } else if (n == 5 && seg[2] == "region") {
        region = seg[3];
        action = &seg[4];
      }
      if (action != nullptr && *action == "status") {
        route = Route{cuda ? Endpoint::kCudaShmStatus : Endpoint::kShmStatus, "GET",
                      "shared-memory", region, ""};
      } else if (action != nullptr && *action == "register" && !region.empty()) {
        route = Route{cuda ? Endpoint::kCudaShmRegister : Endpoint::kShmRegister, "POST",
                      "shared-memory", region, ""};
      } else if (action != nullptr && *action == "unregister") {
        route = Route{cuda ? Endpoint::kCudaShmUnregister : Endpoint::kShmUnregister, "POST",
                      "shared-memory", region, ""};
      }
    }
  }
  if (!route) {
    return responder->Send(ErrorResponse(
        404, absl::StrCat("no endpoint at '", request->path,
                          "'; the v2 endpoints are under /v2 (see docs/http.md)")));
  }

  responder->endpoint = route->endpoint;
  // The restriction applies whatever the method, as in Triton.
  auto restricted = options_.restricted.find(route->group);
  if (restricted != options_.restricted.end()) {
    const std::string* value = request->Header(restricted->second.header);
    if (value == nullptr || *value != restricted->second.value) {
      return responder->Send(ErrorResponse(absl::PermissionDeniedError(absl::StrCat(
          "this API (", route->group, ") is restricted: the request needs the header '",
          restricted->second.header, "' with the configured value"))));
    }
  }
  // A null method: GET (read) and POST (change) alike.
  if (route->method == nullptr ? request->method != "GET" && request->method != "POST"
                               : request->method != route->method) {
    if (route->method == nullptr) {
      HttpResponse r = ErrorResponse(
          405, absl::StrCat("method ", request->method, " is not allowed on ", request->path,
                            "; use GET or POST"));
      r.SetHeader("Allow", "GET, POST");
      return responder->Send(std::move(r));
    }
    HttpResponse r = ErrorResponse(
        405, absl::StrCat("method ", request->method, " is not allowed on ", request->path,
                          "; use ", route->method));
    r.SetHeader("Allow", route->method);
    return responder->Send(std::move(r));
  }
  Dispatch(*route, std::move(request), responder);
}

void HttpApi::Dispatch(const Route& route, std::unique_ptr<HttpRequest> request,
                       const std::shared_ptr<HttpResponder>& responder) {
  ModelService& models = *options_.models;
  switch (route.endpoint) {
    case Endpoint::kServerMetadata: {
      std::string out;
      JsonWriter w(&out);
      w.StartObject();
      w.Key("name");
      w.String(options_.server_name);
      w.Key("version");
      w.String(options_.server_version);
      w.Key("extensions");
      w.StartArray();
      for (const char* const* e = kExtensions; *e != nullptr; ++e) w.String(*e);
      w.EndArray();
      w.EndObject();
      return responder->Send(JsonResponse(std::move(out)));
    }
    case Endpoint::kHealthLive:
      // Live whenever this answers, whatever the models are doing.
      return responder->Send(EmptyResponse(200));
    case Endpoint::kHealthReady:
      // Triton answers "not ready" with 400.
      return responder->Send(EmptyResponse(models.ServerReady() ? 200 : 400));
    case Endpoint::kModelReady: {
      auto ready = models.ModelReady(route.model, route.version);
      if (!ready.ok()) return responder->Send(ErrorResponse(ready.status()));
      if (*ready) return responder->Send(EmptyResponse(200));
      return responder->Send(ErrorResponse(
          400, absl::StrCat("model '", route.model, "'",
                            route.version.empty() ? "" : absl::StrCat(" version ", route.version),
                            " is not ready")));
    }
    case Endpoint::kModelMetadata: {
      auto m = models.Metadata(route.model, route.version);
      if (!m.ok()) return responder->Send(ErrorResponse(m.status()));
      return responder->Send(JsonResponse(MetadataJson(*m)));
    }
    case Endpoint::kModelConfig: {
      auto c = models.ConfigJson(route.model, route.version);
      if (!c.ok()) return responder->Send(ErrorResponse(c.status()));
      return responder->Send(JsonResponse(*std::move(c)));
    }
    case Endpoint::kModelStats: {
      auto s = models.Statistics(route.model, route.version);
      if (!s.ok()) return responder->Send(ErrorResponse(s.status()));
      return responder->Send(JsonResponse(StatsJson(*s)));
    }
    case Endpoint::kModelInfer:
      return Infer(route, std::move(request), responder);
    case Endpoint::kModelGenerate:
    case Endpoint::kModelGenerateStream:
      return Generate(route, std::move(request), responder,
                      route.endpoint == Endpoint::kModelGenerateStream);
    case Endpoint::kRepositoryIndex:
    case Endpoint::kRepositoryLoad:
    case Endpoint::kRepositoryUnload:
      return RepositoryAction(route, *request, responder);
    case Endpoint::kShmStatus:
    case Endpoint::kShmRegister:
    case Endpoint::kShmUnregister:
    case Endpoint::kCudaShmStatus:
    case Endpoint::kCudaShmRegister:
    case Endpoint::kCudaShmUnregister:
      return SharedMemoryAction(route, *request, responder);
    case Endpoint::kTrace:
      return responder->Send(ErrorResponse(absl::UnimplementedError(absl::StrCat(
          "trace settings (request tracing) are not implemented by Torii ",
          options_.server_version))));
    case Endpoint::kLogging:
      return responder->Send(ErrorResponse(absl::UnimplementedError(absl::StrCat(
          "log settings (changing them at run time) are not implemented by Torii ",
          options_.server_version,
          "; start the server with --log-verbose and --log-format instead"))));
    case Endpoint::kNone:
      break;  // not routed here
  }
}

void HttpApi::RepositoryAction(const Route& route, const HttpRequest& request,
                               const std::shared_ptr<HttpResponder>& responder) {
  auto coding = RequestCoding(request.Header("content-encoding"));
  if (!coding.ok()) return responder->Send(UnsupportedCoding(coding.status()));
  auto body = Decompress(*coding, request.body, options_.max_request_bytes);
  if (!body.ok()) return responder->Send(ErrorResponse(body.status()));

  if (route.endpoint == Endpoint::kRepositoryIndex) {
    bool ready = false;
    absl::Status s = ForEachBodyMember(*body, [&](std::string_view key, simdjson::ondemand::value v) {
      if (key == "ready" && v.get_bool().get(ready)) {
        return absl::InvalidArgumentError("'ready' must be true or false");
      }
      return absl::OkStatus();
    });
    if (!s.ok()) return responder->Send(ErrorResponse(s));
    std::string out;
    JsonWriter w(&out);
    w.StartArray();
    for (const ModelIndexEntry& e : options_.models->Index(ready)) {
      w.StartObject();
      w.Key("name");
      w.String(e.name);
      if (!e.version.empty()) {
        w.Key("version");
        w.String(e.version);
      }
      w.Key("state");
      w.String(e.state);
      w.Key("reason");
      w.String(e.reason);
      w.EndObject();
    }
    w.EndArray();
    return responder->Send(JsonResponse(std::move(out)));
  }

  if (!IsPlainModelName(route.model)) {
    return responder->Send(ErrorResponse(absl::InvalidArgumentError(absl::StrCat(
        "model name '", route.model, "' must be a plain directory name in the repository"))));
  }
  const bool load = route.endpoint == Endpoint::kRepositoryLoad;
  // Errors start "failed to load 'm': ", as Triton's do (its clients and
  // example scripts look for the words), and as gRPC's.
  const std::string failed =
      absl::StrCat("failed to ", load ? "load" : "unload", " '", route.model, "': ");
  auto fail = [&](const absl::Status& st) {
    return responder->Send(ErrorResponse(absl::Status(st.code(), absl::StrCat(failed, st.message()))));
  };
  bool unload_dependents = false;
  // A load override (Triton's model-repository extension): "config" is the
  // model config as JSON text, "file:<path>" a file's contents in base64.
  // The decoded bytes live with the task until the load returns.
  auto override_data = std::make_shared<std::pair<ModelOverride, std::vector<std::string>>>();
  std::vector<std::pair<std::string, std::string>> files;  // path, decoded
  absl::Status s = ForEachBodyMember(*body, [&](std::string_view key, simdjson::ondemand::value v) {
    if (key != "parameters") return absl::OkStatus();
    simdjson::ondemand::object params;
    if (v.get_object().get(params)) return absl::InvalidArgumentError("'parameters' must be an object");
    for (auto fr : params) {
      simdjson::ondemand::field f;
      std::string_view name_sv;
      if (std::move(fr).get(f) || f.unescaped_key().get(name_sv)) {
        return absl::InvalidArgumentError("'parameters' is not valid JSON");
      }
      const std::string name(name_sv);
      if (!load && name == "unload_dependents") {
        if (f.value().get_bool().get(unload_dependents)) {
          return absl::InvalidArgumentError("'unload_dependents' must be true or false");
        }
        continue;
      }
      if (load && name == "config") {
        std::string_view text;
        if (f.value().get_string().get(text)) {
          return absl::InvalidArgumentError(
              "load parameter 'config' must be a string holding the model config as JSON");
        }
        override_data->first.config_json = std::string(text);
        continue;
      }
      if (load && absl::StartsWith(name, kOverrideFilePrefix)) {
        std::string_view b64;
        std::string bytes;
        if (f.value().get_string().get(b64) ||
            !absl::Base64Unescape(absl::string_view(b64.data(), b64.size()), &bytes)) {
          return absl::InvalidArgumentError(absl::StrCat(
              "load parameter '", name, "' must be a string holding the file in base64"));
        }
        files.emplace_back(name.substr(std::strlen(kOverrideFilePrefix)), std::move(bytes));
        continue;
      }
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown ", load ? "load" : "unload", " parameter '", name, "' (accepted: ",
          load ? "'config' and 'file:<version>/<name>'" : "'unload_dependents'", ")"));
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return fail(s);
  auto& [override, storage] = *override_data;
  storage.reserve(files.size());
  for (auto& [path, bytes] : files) {
    storage.push_back(std::move(bytes));
    override.files.emplace_back(path, absl::string_view(storage.back()));
  }
  // Loading can take seconds: not on an I/O thread.
  if (!repository_pool_->Submit([models = options_.models, responder, name = route.model, load,
                                 unload_dependents, failed, override_data] {
        absl::Status st = load ? models->Load(name, override_data->first)
                               : models->Unload(name, unload_dependents);
        if (!st.ok()) st = absl::Status(st.code(), absl::StrCat(failed, st.message()));
        responder->Send(st.ok() ? EmptyResponse(200) : ErrorResponse(st));
      })) {
    fail(absl::ResourceExhaustedError(
        "too many repository loads and unloads are waiting; retry later"));
  }
}

void HttpApi::SharedMemoryAction(const Route& route, const HttpRequest& request,
                                 const std::shared_ptr<HttpResponder>& responder) {
  const std::string& region = route.model;  // the route's {r}, may be empty
  switch (route.endpoint) {
    case Endpoint::kShmStatus: {
      auto regions = shared_memory_->Status(region);
      if (!regions.ok()) return responder->Send(ErrorResponse(regions.status()));
      std::string out;
      JsonWriter w(&out);
      w.StartArray();
      for (const auto& r : *regions) {
        w.StartObject();
        w.Key("name");
        w.String(r.name);
        w.Key("key");
        w.String(r.key);
        w.Key("offset");
        w.Uint(r.offset);
        w.Key("byte_size");
        w.Uint(r.byte_size);
        w.EndObject();
      }
      w.EndArray();
      return responder->Send(JsonResponse(std::move(out)));
    }
    case Endpoint::kShmUnregister:
      return responder->Send(EmptyOrError(shared_memory_->Unregister(region)));
    case Endpoint::kShmRegister: {
      auto coding = RequestCoding(request.Header("content-encoding"));
      if (!coding.ok()) return responder->Send(UnsupportedCoding(coding.status()));
      auto body = Decompress(*coding, request.body, options_.max_request_bytes);
      if (!body.ok()) return responder->Send(ErrorResponse(body.status()));
      std::string key;
      uint64_t offset = 0, byte_size = 0;
      bool has_key = false, has_size = false;
      absl::Status s =
          ForEachBodyMember(*body, [&](std::string_view k, simdjson::ondemand::value v) {
            if (k == "key") {
              std::string_view sv;
              if (v.get_string().get(sv)) return absl::InvalidArgumentError("'key' must be a string");
              key = std::string(sv);
              has_key = true;
            } else if (k == "offset" || k == "byte_size") {
              uint64_t n;
              if (v.get_uint64().get(n)) {
                return absl::InvalidArgumentError(absl::StrCat(
                    "'", absl::string_view(k.data(), k.size()), "' must be a non-negative integer"));
              }
              (k == "offset" ? offset : byte_size) = n;
              has_size = has_size || k == "byte_size";
            }
            return absl::OkStatus();
          });
      if (s.ok() && (!has_key || !has_size)) {
        s = absl::InvalidArgumentError(
            "registering a system shared memory region needs a JSON body with 'key' (the "
            "shared-memory object, e.g. \"/my_region\") and 'byte_size' ('offset' is optional)");
      }
      if (!s.ok()) return responder->Send(ErrorResponse(s));
      return responder->Send(EmptyOrError(shared_memory_->Register(region, key, offset, byte_size)));
    }
    // CUDA shared memory as Triton answers it when built without GPU
    // support, as the gRPC frontend does: nothing can be registered, so the
    // status lists nothing and unregistering has nothing to do.
    case Endpoint::kCudaShmStatus:
      if (!region.empty()) {
        return responder->Send(ErrorResponse(absl::NotFoundError(absl::StrCat(
            "no CUDA shared memory region '", region,
            "' is registered: Torii runs on the CPU and has no CUDA support"))));
      }
      return responder->Send(JsonResponse("[]"));
    case Endpoint::kCudaShmRegister:
      return responder->Send(ErrorResponse(absl::InvalidArgumentError(absl::StrCat(
          "failed to register CUDA shared memory region '", region,
          "': GPUs not supported: Torii runs on the CPU and has no CUDA support; use system "
          "shared memory (/v2/systemsharedmemory/region/", region, "/register) instead"))));
    case Endpoint::kCudaShmUnregister:
      return responder->Send(EmptyResponse(200));
    default:
      return;
  }
}

void HttpApi::Infer(const Route& route, std::unique_ptr<HttpRequest> request,
                    const std::shared_ptr<HttpResponder>& responder) {
  auto coding = RequestCoding(request->Header("content-encoding"));
  if (!coding.ok()) return responder->Send(UnsupportedCoding(coding.status()));
  auto call = std::make_shared<HttpInferCall>(
      responder, ResponseCoding(request->Header("accept-encoding")), in_flight_);
  if (*coding == ContentCoding::kIdentity) {
    call->buffers.body = std::move(request->body);
  } else {
    auto body = Decompress(*coding, request->body, options_.max_request_bytes);
    if (!body.ok()) {
      --*in_flight_;
      return responder->Send(ErrorResponse(body.status()));
    }
    call->buffers.body = *std::move(body);
  }
  auto header_length = ParseInferHeaderLength(request->Header(kInferHeaderLength),
                                              call->buffers.body.size());
  auto ir = std::make_unique<InferenceRequest>();
  ir->model_name = route.model;
  ir->model_version = route.version;
  ir->single_response = true;
  absl::Status s = header_length.status();
  if (s.ok() && header_length->has_value() && **header_length == 0) {
    // Triton's raw binary request: the body is the data of the model's one
    // input, whose name, datatype and shape come from the model.
    auto model = options_.models->Metadata(route.model, route.version);
    s = model.ok() ? ParseRawInferRequest(*model, &call->buffers, ir.get(), &call->format)
                   : model.status();
  } else if (s.ok()) {
    const size_t json_length = header_length->value_or(call->buffers.body.size());
    s = ParseInferRequest(json_length, options_.max_request_bytes, shared_memory_,
                          &call->buffers, ir.get(), &call->format);
  }
  if (!s.ok()) {
    --*in_flight_;
    return responder->Send(ErrorResponse(s));
  }
  ir->is_cancelled = [responder] { return responder->Gone(); };
  ir->sink = std::move(call);
  options_.dispatcher->Infer(std::move(ir));
}

void HttpApi::Generate(const Route& route, std::unique_ptr<HttpRequest> request,
                       const std::shared_ptr<HttpResponder>& responder, bool stream) {
  auto coding = RequestCoding(request->Header("content-encoding"));
  if (!coding.ok()) return responder->Send(UnsupportedCoding(coding.status()));
  // The model's inputs say which members are tensors, of which datatype and
  // shape (an unknown or unready model fails here as /infer fails).
  auto model = options_.models->Metadata(route.model, route.version);
  if (!model.ok()) return responder->Send(ErrorResponse(model.status()));
  auto call = std::make_shared<GenerateCall>(responder, stream, in_flight_);
  absl::Status s;
  if (*coding == ContentCoding::kIdentity) {
    call->buffers.body = std::move(request->body);
  } else {
    auto body = Decompress(*coding, request->body, options_.max_request_bytes);
    if (body.ok()) {
      call->buffers.body = *std::move(body);
    } else {
      s = body.status();
    }
  }
  auto ir = std::make_unique<InferenceRequest>();
  ir->model_name = route.model;
  ir->model_version = route.version;
  // Both endpoints take a decoupled model: /generate as long as it answers
  // with exactly one response.
  ir->single_response = false;
  if (s.ok()) s = ParseGenerateRequest(*model, options_.max_request_bytes, &call->buffers, ir.get());
  if (!s.ok()) {
    --*in_flight_;
    return responder->Send(ErrorResponse(s));
  }
  ir->is_cancelled = [call] { return call->Cancelled(); };
  ir->sink = std::move(call);
  options_.dispatcher->Infer(std::move(ir));
}

}  // namespace http
}  // namespace torii
