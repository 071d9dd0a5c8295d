#include "server/isolation/runner_host.h"

#include <errno.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

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
#include "server/core/datatype.h"

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
  if (s.ok()) s = region_.Follow(batch_.region_size);
  if (s.ok()) s = CheckBounds(batch_, region_.size());
  if (!s.ok()) return s;
  const size_t n = batch_.requests.size();
  const size_t n_in = signature_->inputs().size();
  const size_t n_out = signature_->outputs().size();
  if (n == 0) return absl::InternalError("a batch with no requests");
  if (requests_.size() < n) {
    requests_.resize(n);
    responses_.resize(n);
    wires_.resize(n);
  }
  pointers_.clear();
  for (size_t r = 0; r < n; ++r) {
    const BatchMessage::Request& m = batch_.requests[r];
    if (m.inputs.size() != n_in || m.requested.size() != n_out) {
      return absl::InternalError("a batch request does not match the model's signature");
    }
    InferenceRequest& q = requests_[r];
    q.inputs.resize(n_in);
    for (size_t i = 0; i < n_in; ++i) {
      q.inputs[i].shape = m.inputs[i].shape;
      q.inputs[i].data = region_.data() + m.inputs[i].offset;
      q.inputs[i].byte_size = m.inputs[i].size;
    }
    q.output_requested.assign(m.requested.begin(), m.requested.end());
    q.rows = m.rows;
    q.deadline = m.deadline_ns == kNoDeadline
                     ? InferenceRequest::Clock::time_point::max()
                     : InferenceRequest::Clock::time_point(std::chrono::nanoseconds(m.deadline_ns));
    if (m.parameters.empty()) {
      q.wire = &empty_wire_;
    } else {
      if (!wires_[r].ParseFromString(m.parameters)) {
        return absl::InternalError("malformed request parameters");
      }
      q.wire = &wires_[r];
    }
    responses_[r].Clear();
    q.response = &responses_[r];
    const uint64_t flag = batch_.cancel_offset + r;
    q.is_cancelled = [this, flag] {
      return __atomic_load_n(region_.data() + flag, __ATOMIC_RELAXED) != 0;
    };
    pointers_.push_back(&q);
  }

  std::vector<absl::Status> statuses = model_->Execute(instance_, pointers_, nullptr);

  // Outputs go into the region after the inputs; grow it if they do not fit.
  size_t need = Align64(batch_.outputs_offset);
  for (size_t r = 0; r < n; ++r) {
    if (!statuses[r].ok()) continue;
    for (const auto& raw : responses_[r].raw_output_contents()) need += Align64(raw.size());
  }
  s = region_.Reserve(need);
  reply_.batch_id = batch_.batch_id;
  reply_.results.resize(n);
  size_t offset = Align64(batch_.outputs_offset);
  for (size_t r = 0; r < n; ++r) {
    BatchReply::Result& res = reply_.results[r];
    res.outputs.clear();
    res.message.clear();
    if (statuses[r].ok() && !s.ok()) statuses[r] = s;  // could not grow the region
    if (!statuses[r].ok()) {
      res.code = static_cast<int32_t>(statuses[r].code());
      res.message = std::string(statuses[r].message());
      continue;
    }
    res.code = 0;
    const inference::ModelInferResponse& resp = responses_[r];
    res.outputs.resize(static_cast<size_t>(resp.outputs_size()));
    for (int j = 0; j < resp.outputs_size(); ++j) {
      const auto& t = resp.outputs(j);
      const std::string& raw = resp.raw_output_contents(j);
      BatchReply::Output& o = res.outputs[static_cast<size_t>(j)];
      const int k = signature_->OutputIndex(t.name());
      o.index = static_cast<uint32_t>(k < 0 ? 0 : k);
      o.datatype = k < 0 ? 0 : static_cast<int32_t>(signature_->outputs()[static_cast<size_t>(k)].datatype);
      o.tensor.shape.assign(t.shape().begin(), t.shape().end());
      o.tensor.offset = offset;
      o.tensor.size = raw.size();
      if (!raw.empty()) std::memcpy(region_.data() + offset, raw.data(), raw.size());
      offset += Align64(raw.size());
    }
  }
  reply_.region_size = region_.size();
  Encode(reply_, reply_frame);
  return absl::OkStatus();
}

int RunnerHostMain(int argc, char** argv) {
  HostArgs args;
  std::string error;
  if (!ParseArgs(argc, argv, &args, &error)) {
    std::fprintf(stderr,
                 "torii-runner-host: %s\n"
                 "torii-runner-host is started by torii-server for models with "
                 "isolation \"process\"; it is not run by hand.\n",
                 error.c_str());
    return 2;
  }
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
  inference::ModelConfig config;
  std::unique_ptr<ModelSignature> signature;
  std::unique_ptr<RunnerModel> model;
  absl::Status status;
  if (!config.ParseFromString(load.config)) {
    status = absl::InternalError("the model config did not reach the runner host intact");
  } else if (load.instance_count != args.instances.size()) {
    status = absl::InternalError("instance count and channels differ");
  } else {
    signature = std::make_unique<ModelSignature>(config);
    auto library = RunnerLibrary::Open(load.library_path);
    if (!library.ok()) {
      status = library.status();
    } else {
      RunnerModel::Options o;
      o.name = load.name;
      o.version = load.version;
      o.directory = load.directory;
      o.version_directory = load.version_directory;
      o.config = &config;
      o.signature = signature.get();
      o.instance_count = load.instance_count;
      auto created = RunnerModel::Create(*library, o);
      if (created.ok()) {
        model = std::move(*created);
      } else {
        status = created.status();
      }
    }
  }
  LoadReply reply;
  reply.code = static_cast<int32_t>(status.code());
  reply.message = std::string(status.message());
  reply.pid = getpid();
  Encode(reply, &frame);
  if (!WriteFrame(args.control_fd, frame).ok() || !status.ok()) return status.ok() ? 3 : 1;

  std::vector<std::unique_ptr<InstanceServer>> servers;
  for (size_t i = 0; i < args.instances.size(); ++i) {
    auto region = SharedRegion::Adopt(args.instances[i].second);
    if (!region.ok()) {
      LogError("runner host cannot map its shared region",
               {{"model", load.name}, {"reason", std::string(region.status().message())}});
      return 4;
    }
    servers.push_back(std::make_unique<InstanceServer>(model.get(), signature.get(), i,
                                                       args.instances[i].first,
                                                       std::move(*region)));
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
  model.reset();  // destroys the instances and unloads the model
  // Leave without running other libraries' exit-time destructors (a runner
  // may have left threads behind): the model is unloaded, nothing is lost.
  std::fflush(nullptr);
  std::_Exit(0);
}

}  // namespace isolation
}  // namespace torii
