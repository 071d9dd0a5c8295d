#include "server/isolation/runner_host.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/common/logging.h"
#include "server/repository/model_spec_builder.h"
#include "server/runner/runner_library.h"
#include "server/runner/runner_model.h"

namespace torii {
namespace isolation {
namespace {

constexpr int64_t kNoDeadline = INT64_MAX;

struct HostArgs {
  std::string model;
  int control_fd = -1;
  std::vector<std::pair<int, int>> instances;  // socket, memfd
};

bool ParseArgs(int argc, char** argv, HostArgs* out, std::string* error) {
  for (int i = 1; i < argc; ++i) {
    const absl::string_view a = argv[i];
    if (absl::StartsWith(a, "--model=")) {
      out->model = std::string(a.substr(8));
    } else if (absl::StartsWith(a, "--control-fd=")) {
      if (!absl::SimpleAtoi(a.substr(13), &out->control_fd)) {
        *error = absl::StrCat("bad ", a);
        return false;
      }
    } else if (absl::StartsWith(a, "--instance=")) {
      std::vector<absl::string_view> parts = absl::StrSplit(a.substr(11), ':');
      std::pair<int, int> fds;
      if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &fds.first) ||
          !absl::SimpleAtoi(parts[1], &fds.second)) {
        *error = absl::StrCat("bad ", a);
        return false;
      }
      out->instances.push_back(fds);
    } else {
      *error = absl::StrCat("unknown argument ", a);
      return false;
    }
  }
  if (out->control_fd < 0 || out->instances.empty()) {
    *error = "--control-fd and at least one --instance are required";
    return false;
  }
  return true;
}

// The channels were inherited across exec; from here on nothing the runner
// starts (a helper process that execs) may inherit them, or the server would
// not see them close when this process dies.
void CloseChannelsOnExec(const HostArgs& args) {
  fcntl(args.control_fd, F_SETFD, FD_CLOEXEC);
  for (const auto& [sock, memfd] : args.instances) {
    fcntl(sock, F_SETFD, FD_CLOEXEC);
    fcntl(memfd, F_SETFD, FD_CLOEXEC);
  }
}

// Output buffers of one batch, bump-allocated in the instance's region after
// the inputs. The region never moves when it grows, so buffers handed out
// earlier stay valid.
class RegionArena {
 public:
  RegionArena(SharedRegion* region, size_t start) : region_(region), next_(Align64(start)) {}
  absl::StatusOr<char*> Allocate(size_t n) {
    const size_t at = next_;
    const size_t end = at + Align64(n == 0 ? 1 : n);
    absl::Status s = region_->Reserve(end);
    if (!s.ok()) return s;
    next_ = end;
    return region_->data() + at;
  }

 private:
  SharedRegion* region_;
  size_t next_;
};

class RegionResponse : public InferenceResponse {
 public:
  explicit RegionResponse(RegionArena* arena) : arena_(arena) {}

 protected:
  absl::StatusOr<char*> AllocateBuffer(size_t index) override {
    return arena_->Allocate(outputs()[index].byte_size);
  }

 private:
  RegionArena* arena_;
};

// Collects the one response of each request of a batch.
class BatchSink : public ResponseSink {
 public:
  explicit BatchSink(RegionArena* arena) : arena_(arena) {}
  std::unique_ptr<InferenceResponse> NewResponse() override {
    return std::make_unique<RegionResponse>(arena_);
  }
  void Deliver(std::unique_ptr<InferenceResponse> response, bool final) override {
    if (final) final_ = std::move(response);
  }
  std::unique_ptr<InferenceResponse> Take() { return std::move(final_); }

 private:
  RegionArena* arena_;
  std::unique_ptr<InferenceResponse> final_;
};

}  // namespace

absl::Status InstanceServer::Serve() {
  std::string in, out;
  for (;;) {
    MessageType type;
    absl::string_view body;
    std::string error;
    switch (ReadFrame(fd_, &in, &type, &body, &error)) {
      case ReadOutcome::kClosed:
        return absl::OkStatus();
      case ReadOutcome::kTimeout:  // no receive timeout is set here
        continue;
      case ReadOutcome::kError:
        return absl::InternalError(error);
      case ReadOutcome::kFrame:
        break;
    }
    if (type != MessageType::kBatch) {
      return absl::InternalError(absl::StrCat("unexpected message type ", static_cast<uint32_t>(type)));
    }
    absl::Status s = HandleBatch(body, &out);
    if (!s.ok()) return s;
    s = WriteFrame(fd_, out);
    if (!s.ok()) return absl::OkStatus();  // the server went away
  }
}

absl::Status InstanceServer::HandleBatch(absl::string_view body, std::string* reply_frame) {
  absl::Status s = Decode(body, &batch_);
  if (!s.ok()) return s;
  s = region_.Follow(batch_.region_size);
  if (absl::IsResourceExhausted(s)) {
    // Too big for this child's memory limit: fail the batch, keep serving.
    reply_.batch_id = batch_.batch_id;
    reply_.region_size = region_.size();
    reply_.results.assign(batch_.requests.size(), BatchReply::Result{});
    for (auto& res : reply_.results) {
      res.code = static_cast<int32_t>(s.code());
      res.message = absl::StrCat("model '", spec_->name, "': ", s.message());
    }
    Encode(reply_, reply_frame);
    return absl::OkStatus();
  }
  if (s.ok()) s = CheckBounds(batch_, region_.size());
  if (!s.ok()) return s;
  const size_t n = batch_.requests.size();
  const size_t n_in = spec_->inputs.size();
  const size_t n_out = spec_->outputs.size();
  if (n == 0) return absl::InternalError("a batch with no requests");

  RegionArena arena(&region_, batch_.outputs_offset);
  std::vector<std::shared_ptr<BatchSink>> sinks(n);
  RequestBatch requests(n);
  for (size_t r = 0; r < n; ++r) {
    BatchMessage::Request& m = batch_.requests[r];
    if (m.inputs.size() != n_in || m.requested.size() != n_out) {
      return absl::InternalError("a batch request does not match the model's signature");
    }
    auto q = std::make_unique<InferenceRequest>();
    q->model_name = spec_->name;
    q->id = std::move(m.id);
    q->parameters = std::move(m.parameters);
    q->inputs.resize(n_in);
    for (size_t i = 0; i < n_in; ++i) {
      InferenceInput& in = q->inputs[i];
      in.name = spec_->inputs[i].name;
      in.datatype = spec_->inputs[i].datatype;
      in.shape.assign(m.inputs[i].shape.begin(), m.inputs[i].shape.end());
      in.data = region_.data() + m.inputs[i].offset;
      in.byte_size = m.inputs[i].size;
    }
    q->output_requested.assign(m.requested.begin(), m.requested.end());
    q->rows = m.rows;
    q->deadline = m.deadline_ns == kNoDeadline
                      ? InferenceRequest::Clock::time_point::max()
                      : InferenceRequest::Clock::time_point(std::chrono::nanoseconds(m.deadline_ns));
    const char* flag = region_.data() + batch_.cancel_offset + r;
    q->is_cancelled = [flag] { return __atomic_load_n(flag, __ATOMIC_RELAXED) != 0; };
    sinks[r] = std::make_shared<BatchSink>(&arena);
    q->sink = sinks[r];
    requests[r] = std::move(q);
  }

  model_->Execute(instance_, requests, nullptr);

  reply_.batch_id = batch_.batch_id;
  reply_.results.resize(n);
  for (size_t r = 0; r < n; ++r) {
    BatchReply::Result& res = reply_.results[r];
    res.outputs.clear();
    res.message.clear();
    res.code = 0;
    std::unique_ptr<InferenceResponse> resp = sinks[r]->Take();
    if (resp == nullptr) {
      res.code = static_cast<int32_t>(absl::StatusCode::kInternal);
      res.message = absl::StrCat("model '", spec_->name,
                                 "': the runner did not answer the request (isolated models "
                                 "cannot answer after execute returns)");
      continue;
    }
    if (!resp->status.ok()) {
      res.code = static_cast<int32_t>(resp->status.code());
      res.message = std::string(resp->status.message());
      continue;
    }
    for (const OutputTensor& t : resp->outputs()) {
      BatchReply::Output& o = res.outputs.emplace_back();
      const int k = spec_->OutputIndex(t.name);
      o.index = static_cast<uint32_t>(k < 0 ? 0 : k);
      o.datatype = static_cast<int32_t>(t.datatype);
      o.tensor.shape.assign(t.shape.begin(), t.shape.end());
      o.tensor.offset = static_cast<uint64_t>(t.data - region_.data());
      o.tensor.size = t.byte_size;
    }
  }
  reply_.region_size = region_.size();
  Encode(reply_, reply_frame);
  return absl::OkStatus();
}

namespace {

struct LoadedModel {
  std::shared_ptr<const ModelSpec> spec;
  std::unique_ptr<RunnerModel> model;
};

// Loads the model the server asked for; fills `reply` either way.
LoadedModel Load(const LoadMessage& load, LoadReply* reply) {
  LoadedModel out;
  reply->pid = getpid();
  auto fail = [&](const absl::Status& s) {
    reply->code = static_cast<int32_t>(s.code());
    reply->message = std::string(s.message());
    return std::move(out);
  };
  inference::ModelConfig config;
  if (!config.ParseFromString(load.config)) {
    return fail(absl::InternalError("the model config did not reach the runner host intact"));
  }
  RunnerManifest manifest;
  manifest.runner = load.runner;
  manifest.default_model_filename = load.default_model_filename;
  const bool may_complete = load.allow_config_completion != 0;
  auto spec = BuildModelSpec(config, manifest, SpecDefaults{}, /*require_io=*/!may_complete);
  if (!spec.ok()) return fail(spec.status());
  // The ABI check runs here, in the child: a runner whose library cannot be
  // opened, or whose static initialisers crash, never touches the server.
  auto library = RunnerLibrary::Open(load.library_path);
  if (!library.ok()) {
    return fail(absl::Status(library.status().code(),
                             absl::StrCat("model '", load.name, "': ", library.status().message())));
  }
  const RunnerProvenance& p = (*library)->provenance();
  reply->runner = p.runner;
  reply->runner_version = p.runner_version;
  reply->runner_build = p.runner_build;
  reply->runner_abi = p.runner_abi;

  RunnerModel::Options o;
  o.name = load.name;
  o.version = load.version;
  o.directory = load.directory;
  o.version_directory = load.version_directory;
  o.spec = std::make_shared<const ModelSpec>(std::move(*spec));
  o.first_instance = load.first_instance;
  o.instance_count = load.instance_count;
  inference::ModelConfig completed;
  bool was_completed = false;
  if (may_complete) {
    o.complete_config = [&](const std::string& json)
        -> absl::StatusOr<std::shared_ptr<const ModelSpec>> {
      auto c = ConfigFromJson(json, absl::StrCat("model '", load.name, "': completed config"));
      if (!c.ok()) return c.status();
      if (c->name().empty()) c->set_name(load.name);
      auto s = BuildModelSpec(*c, manifest, SpecDefaults{});
      if (!s.ok()) return s.status();
      completed = std::move(*c);
      was_completed = true;
      return std::make_shared<const ModelSpec>(std::move(*s));
    };
  }
  auto created = RunnerModel::Create(*library, std::move(o));
  if (!created.ok()) return fail(created.status());
  out.model = std::move(*created);
  out.spec = out.model->spec();
  if (out.spec->inputs.empty() || out.spec->outputs.empty()) {
    out.model.reset();
    return fail(absl::InvalidArgumentError(absl::StrCat(
        "model '", load.name, "': the config declares no ",
        out.spec->inputs.empty() ? "'input'" : "'output'", " and the runner did not complete it")));
  }
  reply->properties = out.model->provenance().properties;
  if (was_completed) completed.SerializeToString(&reply->completed_config);
  return out;
}

}  // namespace

int RunnerHostMain(int argc, char** argv) {
  HostArgs args;
  std::string error;
  if (!ParseArgs(argc, argv, &args, &error)) {
    std::fprintf(stderr,
                 "torii-runner-host: %s\n"
                 "torii-runner-host is started by torii-server for isolated models; it is not "
                 "run by hand.\n",
                 error.c_str());
    return 2;
  }
  CloseChannelsOnExec(args);
  signal(SIGPIPE, SIG_IGN);

  // The load request.
  std::string buffer, frame;
  MessageType type;
  absl::string_view body;
  LoadMessage load;
  if (ReadFrame(args.control_fd, &buffer, &type, &body, &error) != ReadOutcome::kFrame ||
      type != MessageType::kLoad || !Decode(body, &load).ok()) {
    return 3;  // the server went away before asking for anything
  }
  LoadReply reply;
  LoadedModel loaded;
  if (load.instance_count != args.instances.size()) {
    reply.code = static_cast<int32_t>(absl::StatusCode::kInternal);
    reply.message = "instance count and channels differ";
  } else {
    loaded = Load(load, &reply);
  }
  Encode(reply, &frame);
  if (!WriteFrame(args.control_fd, frame).ok() || reply.code != 0) return reply.code != 0 ? 1 : 3;

  // Reserved address space counts against RLIMIT_AS (memory_limit_mb): a
  // limited child reserves a quarter of its limit for all its regions.
  size_t max_region = SharedRegion::kDefaultMaxSize;
  struct rlimit limit;
  if (getrlimit(RLIMIT_AS, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    max_region = std::min<size_t>(max_region, std::max<size_t>(size_t{4} << 20,
        static_cast<size_t>(limit.rlim_cur) / 4 / args.instances.size()));
  }
  std::vector<std::unique_ptr<InstanceServer>> servers;
  for (size_t i = 0; i < args.instances.size(); ++i) {
    auto region = SharedRegion::Adopt(args.instances[i].second, max_region);
    if (!region.ok()) {
      LogError("runner host cannot map its shared region",
               {{"model", load.name}, {"reason", std::string(region.status().message())}});
      return 4;
    }
    servers.push_back(std::make_unique<InstanceServer>(
        loaded.model.get(), loaded.spec, i, args.instances[i].first, std::move(*region)));
  }
  std::vector<std::thread> threads;
  for (auto& s : servers) {
    threads.emplace_back([&s, &load] {
      absl::Status st = s->Serve();
      if (!st.ok()) {
        LogError("runner host instance stopped",
                 {{"model", load.name}, {"reason", std::string(st.message())}});
        // The server cannot use this instance any more: leave, so it restarts us.
        std::_Exit(5);
      }
    });
  }
  // The control socket stays quiet until the server closes it: then stop.
  char c;
  while (recv(args.control_fd, &c, 1, 0) < 0 && errno == EINTR) {
  }
  for (const auto& a : args.instances) shutdown(a.first, SHUT_RDWR);
  for (auto& t : threads) t.join();
  loaded.model.reset();  // destroys the instances and unloads the model
  // Leave without running other libraries' exit-time destructors (a runner
  // may have left threads behind): the model is unloaded, nothing is lost.
  std::fflush(nullptr);
  std::_Exit(0);
}

}  // namespace isolation
}  // namespace torii
