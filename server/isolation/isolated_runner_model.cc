#include "server/isolation/isolated_runner_model.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "server/common/logging.h"
#include "server/core/datatype.h"
#include "server/core/request_validator.h"
#include "torii/host_checks.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

namespace torii {
namespace {

using Clock = std::chrono::steady_clock;
using isolation::Align64;
using isolation::BatchMessage;
using isolation::BatchReply;
using isolation::MessageType;
using isolation::ReadOutcome;

constexpr size_t kInitialRegion = size_t{1} << 20;
// How often a worker waiting for its batch wakes up to pass on
// cancellations, check the execution timeout and notice a dead child.
constexpr int kWaitSliceMs = 50;
// How long a worker whose child went away waits for the supervisor to learn
// why it ended.
constexpr auto kDeathWait = std::chrono::seconds(2);

int64_t MonotonicNs(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

std::string SignalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev != nullptr ? absl::StrCat("SIG", abbrev) : absl::StrCat("signal ", sig);
}

// "SIGSEGV", "SIGABRT, core dumped", "exit status 3".
std::string DescribeExit(const siginfo_t& info) {
  switch (info.si_code) {
    case CLD_EXITED:
      return absl::StrCat("exit status ", info.si_status);
    case CLD_KILLED:
      return SignalName(info.si_status);
    case CLD_DUMPED:
      return absl::StrCat(SignalName(info.si_status), ", core dumped");
    default:
      return absl::StrCat("ended (code ", info.si_code, ", status ", info.si_status, ")");
  }
}

std::string DescribeStatus(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exit status ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return SignalName(WTERMSIG(status));
  return absl::StrCat("wait status ", status);
}

std::string DefaultHostPath() {
  const char* env = std::getenv("TORII_RUNNER_HOST");
  if (env != nullptr && *env != '\0') return env;
  char buf[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "torii-runner-host";
  std::string exe(buf, static_cast<size_t>(n));
  return exe.substr(0, exe.rfind('/') + 1) + "torii-runner-host";
}

absl::Status ToStatus(int32_t code, const std::string& message) {
  if (code <= 0 || code > static_cast<int32_t>(absl::StatusCode::kUnauthenticated)) {
    return absl::UnknownError(message);
  }
  return absl::Status(static_cast<absl::StatusCode>(code), message);
}

}  // namespace

struct IsolatedRunnerModel::Channel {
  int fd = -1;
  isolation::SharedRegion region;
  uint64_t next_batch_id = 1;
  std::string out, in;  // frame buffers, reused
  BatchMessage batch;
  BatchReply reply;
};

// One child process and its channels. Shared with the workers using it, so a
// restart never closes a descriptor under them.
struct IsolatedRunnerModel::Generation {
  pid_t pid = 0;
  int control_fd = -1;
  std::vector<Channel> channels;
  // Guarded by the slot's mu.
  bool dead = false;
  std::string exit_reason;
  std::string kill_reason;  // set when the server killed it
  ~Generation() {
    if (control_fd >= 0) close(control_fd);
    for (auto& c : channels) {
      if (c.fd >= 0) close(c.fd);
    }
  }
};

// One child process slot: the instances it runs and its supervisor.
struct IsolatedRunnerModel::Slot {
  size_t index = 0;
  uint32_t first_instance = 0;
  uint32_t instance_count = 1;
  mutable std::mutex mu;
  std::condition_variable cv;
  std::shared_ptr<Generation> generation;  // the serving child, or null
  bool stopping = false;
  bool first_load_done = false;
  absl::Status first_load_status;
  std::string last_exit_reason;
  std::atomic<bool> healthy{false};
  std::atomic<uint64_t> restarts{0};
  std::thread supervisor;
};

IsolatedRunnerModel::IsolatedRunnerModel(Options options)
    : options_(std::move(options)),
      model_name_(options_.name),
      instance_count_(std::max<uint32_t>(1, options_.spec->instance_count)) {}

absl::StatusOr<std::unique_ptr<IsolatedRunnerModel>> IsolatedRunnerModel::Create(Options options) {
  std::unique_ptr<IsolatedRunnerModel> m(new IsolatedRunnerModel(std::move(options)));
  m->host_path_ = m->options_.host_path.empty() ? DefaultHostPath() : m->options_.host_path;
  if (access(m->host_path_.c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "model '", m->model_name_, "': isolation needs torii-runner-host, but ", m->host_path_,
        " is not an executable file (install it beside torii-server, or set TORII_RUNNER_HOST)"));
  }
  const bool per_instance = m->options_.spec->isolation.mode == IsolationMode::kProcessPerInstance;
  const size_t n_slots = per_instance ? m->instance_count_ : 1;
  for (size_t s = 0; s < n_slots; ++s) {
    auto slot = std::make_unique<Slot>();
    slot->index = s;
    slot->first_instance = per_instance ? static_cast<uint32_t>(s) : 0;
    slot->instance_count = per_instance ? 1 : static_cast<uint32_t>(m->instance_count_);
    for (uint32_t i = 0; i < slot->instance_count; ++i) m->instances_.push_back({slot.get(), i});
    m->slots_.push_back(std::move(slot));
  }
  // Slot 0 first: its runner may complete the config the others then get.
  // (Create() is the only writer of options_.spec, before any Execute().)
  // Each supervisor thread starts its child: PR_SET_PDEATHSIG follows the
  // thread that forked, so that thread lives as long as the model.
  for (auto& slot : m->slots_) {
    Slot* s = slot.get();
    s->supervisor = std::thread([p = m.get(), s] { p->Supervise(*s); });
    absl::Status status;
    {
      std::unique_lock<std::mutex> lock(s->mu);
      s->cv.wait(lock, [&] { return s->first_load_done; });
      status = s->first_load_status;
    }
    if (!status.ok()) return status;  // the destructor stops the slots started so far
    m->spec_settled_ = true;
  }
  return m;
}

IsolatedRunnerModel::~IsolatedRunnerModel() {
  for (auto& slot : slots_) {
    std::lock_guard<std::mutex> lock(slot->mu);
    slot->stopping = true;
    // EOF on every channel: the child finishes, unloads the model and exits.
    if (auto& g = slot->generation) {
      shutdown(g->control_fd, SHUT_RDWR);
      for (auto& c : g->channels) shutdown(c.fd, SHUT_RDWR);
    }
    slot->cv.notify_all();
  }
  const Clock::time_point deadline = Clock::now() + options_.stop_timeout;
  for (auto& slot : slots_) {
    std::unique_lock<std::mutex> lock(slot->mu);
    std::shared_ptr<Generation> g = slot->generation;
    if (g != nullptr && !slot->cv.wait_until(lock, deadline, [&] { return g->dead; })) {
      KillLocked(*slot, *g, absl::StrCat("it did not exit within ", options_.stop_timeout.count(),
                                         " ms of the unload"));
    }
  }
  for (auto& slot : slots_) {
    if (slot->supervisor.joinable()) slot->supervisor.join();
  }
}

bool IsolatedRunnerModel::healthy() const {
  for (const auto& s : slots_) {
    if (s->healthy.load()) return true;
  }
  return false;
}

bool IsolatedRunnerModel::InstanceReady(size_t instance) const {
  return instance < instances_.size() && instances_[instance].first->healthy.load();
}

uint64_t IsolatedRunnerModel::restarts() const {
  uint64_t n = 0;
  for (const auto& s : slots_) n += s->restarts.load();
  return n;
}

std::vector<std::pair<std::string, int64_t>> IsolatedRunnerModel::RunnerProcesses() const {
  std::vector<std::pair<std::string, int64_t>> out;
  for (const auto& s : slots_) {
    std::lock_guard<std::mutex> lock(s->mu);
    if (s->generation == nullptr || s->generation->dead) continue;
    const std::string label =
        s->instance_count == 1
            ? absl::StrCat("instance ", s->first_instance)
            : absl::StrCat("instances ", s->first_instance, "-",
                           s->first_instance + s->instance_count - 1);
    out.emplace_back(label, s->generation->pid);
  }
  return out;
}

RunnerProvenance IsolatedRunnerModel::provenance() const {
  std::lock_guard<std::mutex> lock(provenance_mu_);
  return provenance_;
}

std::string IsolatedRunnerModel::last_exit_reason() const {
  std::string reason;
  for (const auto& s : slots_) {
    std::lock_guard<std::mutex> lock(s->mu);
    if (!s->last_exit_reason.empty()) reason = s->last_exit_reason;
  }
  return reason;
}

pid_t IsolatedRunnerModel::pid(size_t instance) const {
  if (instance >= instances_.size()) return 0;
  Slot& s = *instances_[instance].first;
  std::lock_guard<std::mutex> lock(s.mu);
  return s.generation != nullptr && !s.generation->dead ? s.generation->pid : 0;
}

void IsolatedRunnerModel::Abort(const std::string& reason) {
  for (auto& slot : slots_) {
    std::lock_guard<std::mutex> lock(slot->mu);
    slot->stopping = true;
    if (slot->generation != nullptr) KillLocked(*slot, *slot->generation, reason);
    slot->cv.notify_all();
  }
}

void IsolatedRunnerModel::KillLocked(Slot& slot, Generation& g, const std::string& reason) {
  // The supervisor reaps only after marking the generation dead (under mu),
  // so while !dead the pid cannot have been reused.
  if (g.dead || g.pid <= 0) return;
  if (g.kill_reason.empty()) g.kill_reason = reason;
  kill(g.pid, SIGKILL);
  slot.healthy = false;
}

absl::StatusOr<std::shared_ptr<IsolatedRunnerModel::Generation>> IsolatedRunnerModel::Spawn(
    Slot& slot) {
  auto g = std::make_shared<Generation>();
  const std::string who = absl::StrCat("model '", model_name_, "': ");
  int control[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, control) != 0) {
    return absl::InternalError(absl::StrCat(who, "socketpair: ", std::strerror(errno)));
  }
  g->control_fd = control[0];
  std::vector<int> child_fds = {control[1]};
  std::vector<std::string> args = {host_path_, "--model=" + model_name_,
                                   absl::StrCat("--control-fd=", control[1])};
  absl::Status status;
  g->channels.resize(slot.instance_count);
  for (size_t i = 0; i < slot.instance_count && status.ok(); ++i) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
      status = absl::InternalError(absl::StrCat(who, "socketpair: ", std::strerror(errno)));
      break;
    }
    g->channels[i].fd = sv[0];
    // Reads of replies wake up every kWaitSliceMs (see AwaitReply).
    const timeval slice{0, kWaitSliceMs * 1000};
    setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &slice, sizeof(slice));
    child_fds.push_back(sv[1]);
    // The name only labels /proc/<pid>/fd; memfd names are limited to 249 bytes.
    auto region = isolation::SharedRegion::Create(
        absl::StrCat("torii-", model_name_.substr(0, 200), "-", slot.first_instance + i),
        kInitialRegion);
    if (!region.ok()) {
      status = absl::Status(region.status().code(), who + std::string(region.status().message()));
      break;
    }
    g->channels[i].region = std::move(*region);
    child_fds.push_back(g->channels[i].region.fd());
    args.push_back(absl::StrCat("--instance=", sv[1], ":", g->channels[i].region.fd()));
  }
  auto close_child_ends = [&] {
    // The memfds stay open here (the parent maps them); the rest was the child's.
    for (size_t k = 0; k < child_fds.size(); ++k) {
      if (k == 0 || k % 2 == 1) close(child_fds[k]);
    }
  };
  if (!status.ok()) {
    close_child_ends();
    return status;
  }

  // Everything the child needs is prepared before fork(): after it, only
  // async-signal-safe calls until exec.
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const uint64_t limit_mb = options_.spec->isolation.memory_limit_mb;
  struct rlimit limit;
  limit.rlim_cur = limit.rlim_max = static_cast<rlim_t>(limit_mb) << 20;
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    close_child_ends();
    return absl::ResourceExhaustedError(absl::StrCat(who, "fork: ", std::strerror(errno)));
  }
  if (pid == 0) {
    // Die with the server, even if it is SIGKILLed.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(126);
    // A process group of its own: a terminal's Ctrl-C goes to the server,
    // which drains and then stops us; and when this child ends the server
    // kills the whole group, helpers the runner started included.
    setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    if (limit_mb > 0) setrlimit(RLIMIT_AS, &limit);
    // When memory runs out, the kernel's OOM killer takes the runner
    // process first, not the server (raising the score needs no privilege).
    const int oom = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (oom >= 0) {
      if (write(oom, "1000", 4) < 0) {
      }
      close(oom);
    }
    // Nothing of the server's leaks into the child but our channels.
    if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
      for (int fd = 3; fd < 4096; ++fd) fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    for (int fd : child_fds) fcntl(fd, F_SETFD, 0);
    execv(argv[0], argv.data());
    _exit(127);
  }
  g->pid = pid;
  close_child_ends();

  auto reply = AwaitLoad(slot, *g);
  if (reply.ok() && reply->code == 0) {
    std::lock_guard<std::mutex> lock(provenance_mu_);
    if (slot.index == 0) {
      provenance_.runner = reply->runner;
      provenance_.runner_version = reply->runner_version;
      provenance_.runner_build = reply->runner_build;
      provenance_.runner_abi = reply->runner_abi;
      provenance_.properties = reply->properties;
    }
    return g;
  }
  // The load failed: make sure the child is gone, and say why.
  if (!reply.ok()) kill(pid, SIGKILL);
  int wstatus = 0;
  while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  kill(-pid, SIGKILL);  // helpers it may have started while loading
  g->pid = 0;
  if (reply.ok()) return ToStatus(reply->code, reply->message);  // the runner refused
  if (!absl::IsUnavailable(reply.status())) return reply.status();
  if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 127) {
    return absl::FailedPreconditionError(
        absl::StrCat(who, "could not start the runner process ", host_path_));
  }
  return absl::UnavailableError(absl::StrCat(who, "the runner process died while loading the model (",
                                             DescribeStatus(wstatus), ")"));
}

absl::StatusOr<isolation::LoadReply> IsolatedRunnerModel::AwaitLoad(Slot& slot, Generation& g) {
  const std::string who = absl::StrCat("model '", model_name_, "': ");
  isolation::LoadMessage load;
  load.name = options_.name;
  load.version = options_.version;
  load.directory = options_.directory;
  load.version_directory = options_.version_directory;
  load.library_path = options_.library_path;
  load.runner = options_.runner;
  load.default_model_filename = options_.default_model_filename;
  load.config = options_.config;
  load.first_instance = slot.first_instance;
  load.instance_count = slot.instance_count;
  load.allow_config_completion = options_.allow_config_completion ? 1 : 0;
  std::string frame;
  isolation::Encode(load, &frame);
  absl::Status status = isolation::WriteFrame(g.control_fd, frame);
  if (!status.ok()) return absl::UnavailableError(status.message());
  // Wait for the reply while watching for the child's end and for the model
  // being unloaded meanwhile.
  for (;;) {
    pollfd p{g.control_fd, POLLIN, 0};
    const int r = poll(&p, 1, 100);
    if (r < 0 && errno != EINTR) {
      return absl::InternalError(absl::StrCat(who, "poll: ", std::strerror(errno)));
    }
    if (r > 0) {
      MessageType type;
      absl::string_view body;
      std::string error, buffer;
      isolation::LoadReply reply;
      if (isolation::ReadFrame(g.control_fd, &buffer, &type, &body, &error) ==
              ReadOutcome::kFrame &&
          type == MessageType::kLoadReply && isolation::Decode(body, &reply).ok()) {
        // Only the first load of the first child may change the spec: later
        // children and restarts get the completed config and serve with it.
        if (reply.code == 0 && !reply.completed_config.empty() && !spec_settled_) {
          if (!options_.on_completed_config) {
            return absl::InternalError(who + "the runner completed the config unasked");
          }
          auto spec = options_.on_completed_config(reply.completed_config);
          if (!spec.ok()) return spec.status();
          options_.spec = std::move(*spec);
          options_.config = reply.completed_config;
        }
        return reply;
      }
      return absl::UnavailableError("no load reply");  // the child died or broke the protocol
    }
    std::lock_guard<std::mutex> lock(slot.mu);
    if (slot.stopping) {
      return absl::CancelledError(absl::StrCat(who, "unloaded while the runner process loaded it"));
    }
  }
}

void IsolatedRunnerModel::Supervise(Slot& slot) {
  auto backoff = options_.spec->isolation.backoff_initial;
  bool first = true;
  auto wait_backoff = [&](Duration d) {
    std::unique_lock<std::mutex> lock(slot.mu);
    return !slot.cv.wait_for(lock, d, [&] { return slot.stopping; });
  };
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(slot.mu);
      if (slot.stopping) {
        if (first) {
          slot.first_load_status = absl::CancelledError("unloaded");
          slot.first_load_done = true;
          slot.cv.notify_all();
        }
        return;
      }
    }
    auto spawned = Spawn(slot);
    if (!spawned.ok()) {
      {
        std::lock_guard<std::mutex> lock(slot.mu);
        if (first) {
          slot.first_load_status = spawned.status();
          slot.first_load_done = true;
          slot.cv.notify_all();
          return;
        }
        if (slot.stopping) return;
        slot.last_exit_reason = std::string(spawned.status().message());
      }
      LogError("runner process restart failed",
               {{"model", model_name_},
                {"reason", std::string(spawned.status().message())},
                {"retry_in_ms", std::to_string(backoff.count())}});
      if (!wait_backoff(backoff)) return;
      backoff = std::min(backoff * 2, options_.spec->isolation.backoff_max);
      ++slot.restarts;
      continue;
    }
    std::shared_ptr<Generation> g = *spawned;
    const Clock::time_point started = Clock::now();
    bool unloaded;
    {
      std::lock_guard<std::mutex> lock(slot.mu);
      // Unloaded while this child was loading: it never serves.
      unloaded = slot.stopping;
      if (!unloaded) {
        slot.generation = g;
        slot.healthy = true;
      }
      if (first) {
        slot.first_load_done = true;
        slot.first_load_status =
            unloaded ? absl::CancelledError("unloaded while loading") : absl::OkStatus();
      }
    }
    if (unloaded) {
      kill(-g->pid, SIGKILL);
      waitpid(g->pid, nullptr, 0);
      slot.cv.notify_all();
      return;
    }
    slot.cv.notify_all();
    if (!first) {
      LogInfo("runner process restarted",
              {{"model", model_name_}, {"pid", std::to_string(g->pid)},
               {"restarts", std::to_string(slot.restarts.load())}});
    }
    first = false;

    // Wait for the child's end without reaping it yet (WNOWAIT): until it is
    // marked dead below, its pid (and process group id) stays valid for kill().
    siginfo_t info;
    std::memset(&info, 0, sizeof(info));
    int rc;
    while ((rc = waitid(P_PID, static_cast<id_t>(g->pid), &info, WEXITED | WNOWAIT)) != 0 &&
           errno == EINTR) {
    }
    std::string reason;
    if (rc == 0) {
      reason = DescribeExit(info);
    } else {
      // Someone else reaps our children (SIGCHLD set to SIG_IGN somewhere in
      // the process): we cannot learn the status, only the end.
      const std::string why = std::strerror(errno);
      while (kill(g->pid, 0) == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      reason = "ended; exit status unknown (waitid: " + why + ")";
    }
    // Whatever the runner started goes with it: helpers must not outlive it
    // (nor hold copies of its channels).
    kill(-g->pid, SIGKILL);
    bool stopping;
    {
      std::lock_guard<std::mutex> lock(slot.mu);
      if (!g->kill_reason.empty()) {
        reason += ", sent by the server: " + g->kill_reason;
      } else if (info.si_code == CLD_KILLED && info.si_status == SIGKILL) {
        reason += ", from outside the server (the kernel's out-of-memory killer?)";
      }
      g->dead = true;
      g->exit_reason = reason;
      slot.healthy = false;
      slot.generation.reset();
      stopping = slot.stopping;
      if (!stopping) slot.last_exit_reason = reason;
    }
    slot.cv.notify_all();
    waitpid(g->pid, nullptr, 0);
    if (stopping) return;
    if (Clock::now() - started >= options_.backoff_reset) {
      backoff = options_.spec->isolation.backoff_initial;
    }
    LogError("runner process died", {{"model", model_name_},
                                     {"pid", std::to_string(g->pid)},
                                     {"reason", reason},
                                     {"restart_in_ms", std::to_string(backoff.count())}});
    if (!wait_backoff(backoff)) return;
    backoff = std::min(backoff * 2, options_.spec->isolation.backoff_max);
    ++slot.restarts;
  }
}

absl::Status IsolatedRunnerModel::DeathStatus(Slot& slot, const std::shared_ptr<Generation>& g) {
  std::unique_lock<std::mutex> lock(slot.mu);
  if (!slot.cv.wait_for(lock, kDeathWait, [&] { return g->dead; })) {
    // It closed its channel but lives on: it is of no use any more.
    KillLocked(slot, *g, "it closed its channel");
    slot.cv.wait_for(lock, kDeathWait, [&] { return g->dead; });
  }
  const std::string reason = g->dead ? g->exit_reason : "no exit status yet";
  return absl::UnavailableError(absl::StrCat("model '", model_name_, "' runner process died (",
                                             reason, "); restarting"));
}

absl::Status IsolatedRunnerModel::SendBatch(Channel& ch, const RequestBatch& requests) {
  // Layout: one cancel flag per request, then every input, 64-byte aligned.
  const size_t n = requests.size();
  BatchMessage& b = ch.batch;
  b.batch_id = ch.next_batch_id++;
  b.cancel_offset = 0;
  b.requests.resize(n);
  size_t offset = Align64(n);
  for (size_t r = 0; r < n; ++r) {
    const InferenceRequest& q = *requests[r];
    BatchMessage::Request& m = b.requests[r];
    m.rows = q.rows;
    m.deadline_ns = q.deadline == Clock::time_point::max() ? INT64_MAX : MonotonicNs(q.deadline);
    m.id = q.id;
    m.inputs.resize(q.inputs.size());
    for (size_t i = 0; i < q.inputs.size(); ++i) {
      m.inputs[i].shape.assign(q.inputs[i].shape.begin(), q.inputs[i].shape.end());
      m.inputs[i].offset = offset;
      m.inputs[i].size = q.inputs[i].byte_size;
      offset += Align64(q.inputs[i].byte_size);
    }
    m.requested.assign(q.output_requested.begin(), q.output_requested.end());
    m.parameters = q.parameters;
  }
  b.outputs_offset = offset;
  absl::Status s = ch.region.Reserve(offset);
  if (!s.ok()) return absl::Status(s.code(), absl::StrCat("model '", model_name_, "': ", s.message()));
  char* base = ch.region.data();
  std::memset(base, 0, n);
  for (size_t r = 0; r < n; ++r) {
    const InferenceRequest& q = *requests[r];
    for (size_t i = 0; i < q.inputs.size(); ++i) {
      if (q.inputs[i].byte_size > 0) {
        std::memcpy(base + b.requests[r].inputs[i].offset, q.inputs[i].data, q.inputs[i].byte_size);
      }
    }
  }
  b.region_size = ch.region.size();
  isolation::Encode(b, &ch.out);
  return isolation::WriteFrame(ch.fd, ch.out);
}

absl::Status IsolatedRunnerModel::AwaitReply(Slot& slot, const std::shared_ptr<Generation>& g,
                                            Channel& ch, const RequestBatch& requests,
                                            size_t instance) {
  // The socket's receive timeout (kWaitSliceMs) wakes us now and then to pass
  // on cancellations, to enforce the execution timeout, and to notice a dead
  // child even when something it started still holds its end of the socket.
  const auto timeout = options_.spec->execution_timeout;
  const bool timed = timeout.count() > 0;
  const Clock::time_point kill_at = Clock::now() + timeout;
  MessageType type;
  absl::string_view body;
  std::string error;
  ReadOutcome out;
  while ((out = isolation::ReadFrame(ch.fd, &ch.in, &type, &body, &error)) == ReadOutcome::kTimeout) {
    {
      std::lock_guard<std::mutex> lock(slot.mu);
      if (g->dead) break;
    }
    if (timed && Clock::now() >= kill_at) {
      {
        std::lock_guard<std::mutex> lock(slot.mu);
        KillLocked(slot, *g, absl::StrCat("instance ", instance,
                                          " exceeded execution_timeout_ms ", timeout.count()));
      }
      LogError("runner execution timed out; killing the runner process",
               {{"model", model_name_}, {"instance", std::to_string(instance)},
                {"execution_timeout_ms", std::to_string(timeout.count())}});
      return absl::DeadlineExceededError(absl::StrCat(
          "model '", model_name_, "': execution exceeded execution_timeout_ms (", timeout.count(),
          " ms); the runner process was killed and restarts"));
    }
    char* flags = ch.region.data() + ch.batch.cancel_offset;
    for (size_t q = 0; q < requests.size(); ++q) {
      if (__atomic_load_n(flags + q, __ATOMIC_RELAXED) == 0 && requests[q]->Cancelled()) {
        __atomic_store_n(flags + q, static_cast<char>(1), __ATOMIC_RELAXED);
      }
    }
  }
  if (out == ReadOutcome::kTimeout || out == ReadOutcome::kClosed) return DeathStatus(slot, g);
  absl::Status s;
  if (out == ReadOutcome::kFrame) {
    s = type == MessageType::kBatchReply ? isolation::Decode(body, &ch.reply)
                                         : absl::InternalError("unexpected message type");
    if (s.ok() && (ch.reply.batch_id != ch.batch.batch_id ||
                   ch.reply.results.size() != requests.size())) {
      s = absl::InternalError("the reply does not answer this batch");
    }
    if (s.ok()) s = ch.region.Follow(ch.reply.region_size);
    if (s.ok()) s = isolation::CheckBounds(ch.reply, ch.region.size());
  } else {
    s = absl::InternalError(error);
  }
  if (!s.ok()) {
    // A child that breaks the protocol cannot be trusted with the next batch.
    {
      std::lock_guard<std::mutex> lock(slot.mu);
      KillLocked(slot, *g, absl::StrCat("protocol error: ", s.message()));
    }
    return absl::UnavailableError(absl::StrCat("model '", model_name_,
                                               "': the runner process broke the protocol (",
                                               s.message(), "); restarting"));
  }
  return absl::OkStatus();
}

void IsolatedRunnerModel::Answer(Channel& ch, RequestBatch& requests) {
  const ModelSpec& spec = *options_.spec;
  const char* base = ch.region.data();
  for (size_t r = 0; r < requests.size(); ++r) {
    InferenceRequest& q = *requests[r];
    const BatchReply::Result& res = ch.reply.results[r];
    if (res.code != 0) {
      q.RespondError(ToStatus(res.code, res.message));
      continue;
    }
    // The child is not trusted: every output is checked against the spec
    // before a client sees it, and copied before it is checked, so the child
    // cannot change it in between.
    std::unique_ptr<InferenceResponse> response = q.NewResponse();
    std::vector<char> seen(spec.outputs.size(), 0);
    absl::Status s;
    for (const auto& o : res.outputs) {
      if (o.index >= spec.outputs.size() || seen[o.index]) {
        s = absl::InternalError(absl::StrCat("model '", model_name_,
                                             "': the runner process named an unknown or repeated "
                                             "output"));
        break;
      }
      seen[o.index] = 1;
      const TensorSpec& ts = spec.outputs[o.index];
      if (!q.output_requested[o.index]) continue;
      const std::string who = absl::StrCat("model '", model_name_, "' output '", ts.name, "'");
      std::string error = host_checks::CheckOutputAllocation(
          who, {ts.datatype, &ts.dims}, spec.batching_enabled() ? q.rows : -1,
          static_cast<ToriiDataType>(o.datatype), o.tensor.shape.data(), o.tensor.shape.size(),
          o.tensor.size);
      if (!error.empty()) {
        s = absl::InternalError(error);
        break;
      }
      auto dst = response->AddOutput(ts.name, ts.datatype,
                                     Shape(o.tensor.shape.begin(), o.tensor.shape.end()),
                                     o.tensor.size);
      if (!dst.ok()) {
        s = dst.status();
        break;
      }
      if (o.tensor.size > 0) std::memcpy(*dst, base + o.tensor.offset, o.tensor.size);
      if (ts.datatype == TORII_TYPE_BYTES) {
        int64_t elements = 1;
        for (int64_t d : o.tensor.shape) elements *= d;
        s = ValidateBytesBuffer(*dst, o.tensor.size, elements,
                                absl::StrCat("model '", model_name_, "': runner output '",
                                             ts.name, "'"));
        if (!s.ok()) {
          s = absl::InternalError(s.message());
          break;
        }
      }
    }
    for (size_t k = 0; s.ok() && k < spec.outputs.size(); ++k) {
      if (q.output_requested[k] && !seen[k]) {
        s = absl::InternalError(absl::StrCat("model '", model_name_,
                                             "': the runner produced no output '",
                                             spec.outputs[k].name, "'"));
      }
    }
    if (s.ok()) {
      q.Respond(std::move(response), /*final=*/true);
    } else {
      q.RespondError(s);
    }
  }
}

void IsolatedRunnerModel::Execute(size_t instance, RequestBatch& requests, Timing* timing) {
  const Clock::time_point t0 = Clock::now();
  auto fail_all = [&](const absl::Status& s) {
    for (auto& r : requests) r->RespondError(s);
    if (timing != nullptr) *timing = Timing::Between(t0, t0, t0, Clock::now());
  };
  if (instance >= instances_.size() || requests.empty()) {
    return fail_all(absl::InternalError("bad instance index"));
  }
  Slot& slot = *instances_[instance].first;
  std::shared_ptr<Generation> g;
  {
    std::lock_guard<std::mutex> lock(slot.mu);
    if (slot.healthy) g = slot.generation;
    if (g == nullptr) {
      return fail_all(absl::UnavailableError(absl::StrCat(
          "model '", model_name_, "' runner process is restarting",
          slot.last_exit_reason.empty() ? "" : " (last exit: " + slot.last_exit_reason + ")",
          "; retry later")));
    }
  }
  Channel& ch = g->channels[instances_[instance].second];
  absl::Status s = SendBatch(ch, requests);
  if (!s.ok()) {
    return fail_all(absl::IsUnavailable(s) ? DeathStatus(slot, g) : s);
  }
  const Clock::time_point t1 = Clock::now();
  s = AwaitReply(slot, g, ch, requests, instance);
  if (!s.ok()) return fail_all(s);
  const Clock::time_point t2 = Clock::now();
  Answer(ch, requests);
  if (timing != nullptr) *timing = Timing::Between(t0, t1, t2, Clock::now());
}

}  // namespace torii
