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

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/common/logging.h"
#include "server/core/datatype.h"
#include "server/core/request_validator.h"

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
// cancellations and check the execution timeout.
constexpr int kWaitSliceMs = 50;
// How long a worker whose channel closed waits for the supervisor to learn
// why the child ended.
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

absl::Status ParseMs(const inference::ModelConfig& config, const std::string& key,
                     std::chrono::milliseconds* out) {
  auto it = config.parameters().find(key);
  if (it == config.parameters().end()) return absl::OkStatus();
  int64_t v = 0;
  if (!absl::SimpleAtoi(it->second.string_value(), &v) || v < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model '", config.name(), "': parameter ", key, " is \"", it->second.string_value(),
        "\"; expected a whole number of milliseconds >= 0"));
  }
  *out = std::chrono::milliseconds(v);
  return absl::OkStatus();
}

absl::Status ToStatus(int32_t code, const std::string& message) {
  if (code <= 0 || code > static_cast<int32_t>(absl::StatusCode::kUnauthenticated)) {
    return absl::UnknownError(message);
  }
  return absl::Status(static_cast<absl::StatusCode>(code), message);
}

}  // namespace

IsolatedRunnerModel::Generation::~Generation() {
  if (control_fd >= 0) close(control_fd);
  for (auto& c : channels) {
    if (c.fd >= 0) close(c.fd);
  }
}

absl::StatusOr<IsolatedRunnerModel::Options> IsolatedRunnerModel::OptionsFromConfig(
    const inference::ModelConfig& config, const RunnerModel::Options& model,
    const std::string& library_path) {
  Options o;
  o.model = model;
  o.library_path = library_path;
  absl::Status s = ParseMs(config, "execution_timeout_ms", &o.execution_timeout);
  if (s.ok()) s = ParseMs(config, "restart_backoff_ms", &o.backoff_initial);
  if (s.ok()) s = ParseMs(config, "restart_backoff_max_ms", &o.backoff_max);
  if (!s.ok()) return s;
  auto it = config.parameters().find("memory_limit_mb");
  if (it != config.parameters().end() &&
      (!absl::SimpleAtoi(it->second.string_value(), &o.memory_limit_mb) ||
       o.memory_limit_mb == 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model '", config.name(), "': parameter memory_limit_mb is \"",
        it->second.string_value(), "\"; expected a whole number of MiB > 0"));
  }
  if (o.backoff_initial.count() == 0) o.backoff_initial = std::chrono::milliseconds(1);
  if (o.backoff_max < o.backoff_initial) o.backoff_max = o.backoff_initial;
  return o;
}

IsolatedRunnerModel::IsolatedRunnerModel(Options options)
    : options_(std::move(options)),
      model_name_(options_.model.name),
      instance_count_(std::max<uint32_t>(1, options_.model.instance_count)) {}

absl::StatusOr<std::unique_ptr<IsolatedRunnerModel>> IsolatedRunnerModel::Create(Options options) {
  std::unique_ptr<IsolatedRunnerModel> m(new IsolatedRunnerModel(std::move(options)));
  m->host_path_ = m->options_.host_path.empty() ? DefaultHostPath() : m->options_.host_path;
  if (access(m->host_path_.c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "model '", m->model_name_, "': isolation \"process\" needs torii-runner-host, but ",
        m->host_path_, " is not an executable file (install it beside torii-server, or set "
        "TORII_RUNNER_HOST)"));
  }
  // The supervisor thread starts every child: PR_SET_PDEATHSIG follows the
  // thread that forked, so that thread must live as long as the model.
  m->supervisor_ = std::thread([p = m.get()] { p->Supervise(); });
  absl::Status status;
  {
    std::unique_lock<std::mutex> lock(m->mu_);
    m->cv_.wait(lock, [&] { return m->first_load_done_; });
    status = m->first_load_status_;
  }
  if (!status.ok()) {
    m->supervisor_.join();  // it stops after a failed first load
    return status;
  }
  return m;
}

IsolatedRunnerModel::~IsolatedRunnerModel() {
  std::shared_ptr<Generation> g;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    g = generation_;
  }
  cv_.notify_all();
  if (g != nullptr) {
    // EOF on every channel: the child finishes, unloads the model and exits.
    shutdown(g->control_fd, SHUT_RDWR);
    for (auto& c : g->channels) shutdown(c.fd, SHUT_RDWR);
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, options_.stop_timeout, [&] { return g->dead; })) {
      KillLocked(*g, absl::StrCat("it did not exit within ", options_.stop_timeout.count(),
                                  " ms of the unload"));
    }
  }
  if (supervisor_.joinable()) supervisor_.join();
}

std::string IsolatedRunnerModel::last_exit_reason() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_exit_reason_;
}

pid_t IsolatedRunnerModel::pid() const {
  std::lock_guard<std::mutex> lock(mu_);
  return generation_ != nullptr && !generation_->dead ? generation_->pid : 0;
}

void IsolatedRunnerModel::KillLocked(Generation& g, const std::string& reason) {
  // The supervisor reaps only after marking the generation dead (under mu_),
  // so while !dead the pid cannot have been reused.
  if (g.dead || g.pid <= 0) return;
  if (g.kill_reason.empty()) g.kill_reason = reason;
  kill(g.pid, SIGKILL);
  healthy_ = false;
}

absl::StatusOr<std::shared_ptr<IsolatedRunnerModel::Generation>> IsolatedRunnerModel::Spawn() {
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
  g->channels.resize(instance_count_);
  for (size_t i = 0; i < instance_count_ && status.ok(); ++i) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
      status = absl::InternalError(absl::StrCat(who, "socketpair: ", std::strerror(errno)));
      break;
    }
    g->channels[i].fd = sv[0];
    // Reads of replies wake up every kWaitSliceMs (see Execute).
    const timeval slice{0, kWaitSliceMs * 1000};
    setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &slice, sizeof(slice));
    child_fds.push_back(sv[1]);
    // The name only labels /proc/<pid>/fd; memfd names are limited to 249 bytes.
    auto region = isolation::SharedRegion::Create(
        absl::StrCat("torii-", model_name_.substr(0, 200), "-", i), kInitialRegion);
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
  struct rlimit limit;
  limit.rlim_cur = limit.rlim_max = static_cast<rlim_t>(options_.memory_limit_mb) << 20;
  const bool set_limit = options_.memory_limit_mb > 0;
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
    // Out of the server's process group: a terminal's Ctrl-C goes to the
    // server, which drains and then stops us.
    setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    if (set_limit) setrlimit(RLIMIT_AS, &limit);
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

  // The load: send it, then wait for the reply while watching for the child's
  // end and for the model being unloaded meanwhile.
  isolation::LoadMessage load;
  load.name = options_.model.name;
  load.version = options_.model.version;
  load.directory = options_.model.directory;
  load.version_directory = options_.model.version_directory;
  load.library_path = options_.library_path;
  options_.model.config->SerializeToString(&load.config);
  load.instance_count = static_cast<uint32_t>(instance_count_);
  std::string frame;
  isolation::Encode(load, &frame);
  status = isolation::WriteFrame(g->control_fd, frame);
  isolation::LoadReply reply;
  bool replied = false;
  while (status.ok()) {
    pollfd p{g->control_fd, POLLIN, 0};
    const int r = poll(&p, 1, 100);
    if (r < 0 && errno != EINTR) {
      status = absl::InternalError(absl::StrCat(who, "poll: ", std::strerror(errno)));
      break;
    }
    if (r > 0) {
      MessageType type;
      absl::string_view body;
      std::string error, buffer;
      const ReadOutcome out = isolation::ReadFrame(g->control_fd, &buffer, &type, &body, &error);
      if (out == ReadOutcome::kFrame && type == MessageType::kLoadReply &&
          isolation::Decode(body, &reply).ok()) {
        replied = true;
      }
      break;
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      status = absl::CancelledError(absl::StrCat(who, "unloaded while the runner process loaded it"));
    }
  }
  if (replied && reply.code == 0 && status.ok()) return g;

  // The load failed: make sure the child is gone, and say why.
  if (!replied || !status.ok()) kill(pid, SIGKILL);
  int wstatus = 0;
  while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  g->pid = 0;
  if (!status.ok()) return status;
  if (replied) {
    // The runner refused (code and message from RunnerModel::Create).
    return ToStatus(reply.code, reply.message);
  }
  if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 127) {
    return absl::FailedPreconditionError(
        absl::StrCat(who, "could not start the runner process ", host_path_));
  }
  return absl::UnavailableError(absl::StrCat(who, "the runner process died while loading the model (",
                                             DescribeStatus(wstatus), ")"));
}

void IsolatedRunnerModel::Supervise() {
  auto backoff = options_.backoff_initial;
  bool first = true;
  auto wait_backoff = [&](Duration d) {
    std::unique_lock<std::mutex> lock(mu_);
    return !cv_.wait_for(lock, d, [&] { return stopping_; });
  };
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
    }
    auto spawned = Spawn();
    if (!spawned.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      if (first) {
        first_load_status_ = spawned.status();
        first_load_done_ = true;
        cv_.notify_all();
        return;
      }
      if (stopping_) return;
      last_exit_reason_ = std::string(spawned.status().message());
    }
    if (!spawned.ok()) {
      LogError("runner process restart failed",
               {{"model", model_name_},
                {"reason", std::string(spawned.status().message())},
                {"retry_in_ms", std::to_string(backoff.count())}});
      if (!wait_backoff(backoff)) return;
      backoff = std::min(backoff * 2, options_.backoff_max);
      ++restarts_;
      continue;
    }
    std::shared_ptr<Generation> g = *spawned;
    const Clock::time_point started = Clock::now();
    bool unloaded;
    {
      std::lock_guard<std::mutex> lock(mu_);
      // Unloaded while this child was loading: it never serves.
      unloaded = stopping_;
      if (!unloaded) {
        generation_ = g;
        healthy_ = true;
        if (first) {
          first_load_done_ = true;
          first_load_status_ = absl::OkStatus();
        }
      }
    }
    if (unloaded) {
      kill(g->pid, SIGKILL);
      waitpid(g->pid, nullptr, 0);
      return;
    }
    cv_.notify_all();
    if (!first) {
      LogInfo("runner process restarted",
              {{"model", model_name_}, {"pid", std::to_string(g->pid)},
               {"restarts", std::to_string(restarts_.load())}});
    }
    first = false;

    // Wait for the child's end without reaping it yet (WNOWAIT): until it is
    // marked dead below, its pid stays valid for kill().
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
    bool stopping;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!g->kill_reason.empty()) {
        reason += ", sent by the server: " + g->kill_reason;
      } else if (info.si_code == CLD_KILLED && info.si_status == SIGKILL) {
        reason += ", from outside the server (the kernel's out-of-memory killer?)";
      }
      g->dead = true;
      g->exit_reason = reason;
      healthy_ = false;
      generation_.reset();
      stopping = stopping_;
      if (!stopping) last_exit_reason_ = reason;
    }
    cv_.notify_all();
    waitpid(g->pid, nullptr, 0);
    if (stopping) return;
    if (Clock::now() - started >= options_.backoff_reset) backoff = options_.backoff_initial;
    LogError("runner process died", {{"model", model_name_},
                                     {"pid", std::to_string(g->pid)},
                                     {"reason", reason},
                                     {"restart_in_ms", std::to_string(backoff.count())}});
    if (!wait_backoff(backoff)) return;
    backoff = std::min(backoff * 2, options_.backoff_max);
    ++restarts_;
  }
}

absl::Status IsolatedRunnerModel::DeathStatus(const std::shared_ptr<Generation>& g) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, kDeathWait, [&] { return g->dead; })) {
    // It closed its channel but lives on: it is of no use any more.
    KillLocked(*g, "it closed its channel");
    cv_.wait_for(lock, kDeathWait, [&] { return g->dead; });
  }
  const std::string reason = g->dead ? g->exit_reason : "no exit status yet";
  return absl::UnavailableError(absl::StrCat("model '", model_name_, "' runner process died (",
                                             reason, "); restarting"));
}

std::vector<absl::Status> IsolatedRunnerModel::FailAll(size_t n, const absl::Status& s) const {
  return std::vector<absl::Status>(n, s);
}

std::vector<absl::Status> IsolatedRunnerModel::Execute(
    size_t instance, const std::vector<InferenceRequest*>& requests, Timing* timing) {
  const Clock::time_point t0 = Clock::now();
  const size_t n = requests.size();
  std::shared_ptr<Generation> g;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (healthy_) g = generation_;
    if (g == nullptr) {
      return FailAll(n, absl::UnavailableError(absl::StrCat(
                            "model '", model_name_, "' runner process is restarting",
                            last_exit_reason_.empty() ? "" : " (last exit: " + last_exit_reason_ + ")",
                            "; retry later")));
    }
  }
  if (instance >= g->channels.size() || n == 0) {
    return FailAll(n, absl::InternalError("bad instance index"));
  }
  Channel& ch = g->channels[instance];
  const ModelSignature& sig = *options_.model.signature;

  // Layout: one cancel flag per request, then every input, 64-byte aligned.
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
    m.inputs.resize(q.inputs.size());
    for (size_t i = 0; i < q.inputs.size(); ++i) {
      m.inputs[i].shape = q.inputs[i].shape;
      m.inputs[i].offset = offset;
      m.inputs[i].size = q.inputs[i].byte_size;
      offset += Align64(q.inputs[i].byte_size);
    }
    m.requested.assign(q.output_requested.begin(), q.output_requested.end());
    m.parameters.clear();
    if (q.wire != nullptr && !q.wire->parameters().empty()) {
      inference::ModelInferRequest p;
      *p.mutable_parameters() = q.wire->parameters();
      p.SerializeToString(&m.parameters);
    }
  }
  b.outputs_offset = offset;
  absl::Status s = ch.region.Reserve(offset);
  if (!s.ok()) {
    return FailAll(n, absl::Status(s.code(), absl::StrCat("model '", model_name_, "': ", s.message())));
  }
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

  const Clock::time_point t1 = Clock::now();
  s = isolation::WriteFrame(ch.fd, ch.out);
  if (!s.ok()) return FailAll(n, DeathStatus(g));
  // Wait for the reply. The socket's receive timeout (kWaitSliceMs) wakes
  // us now and then to pass on cancellations and to enforce the execution
  // timeout; a child that dies closes the socket, which ends the read at once.
  const bool timed = options_.execution_timeout.count() > 0;
  const Clock::time_point kill_at = t1 + options_.execution_timeout;
  MessageType type;
  absl::string_view body;
  std::string error;
  ReadOutcome out;
  while ((out = isolation::ReadFrame(ch.fd, &ch.in, &type, &body, &error)) == ReadOutcome::kTimeout) {
    if (timed && Clock::now() >= kill_at) {
      const std::string why = absl::StrCat("instance ", instance, " exceeded execution_timeout_ms ",
                                           options_.execution_timeout.count());
      {
        std::lock_guard<std::mutex> lock(mu_);
        KillLocked(*g, why);
      }
      LogError("runner execution timed out; killing the runner process",
               {{"model", model_name_}, {"instance", std::to_string(instance)},
                {"execution_timeout_ms", std::to_string(options_.execution_timeout.count())}});
      return FailAll(n, absl::DeadlineExceededError(absl::StrCat(
                            "model '", model_name_, "': execution exceeded execution_timeout_ms (",
                            options_.execution_timeout.count(),
                            " ms); the runner process was killed and restarts")));
    }
    char* flags = ch.region.data() + b.cancel_offset;
    for (size_t q = 0; q < n; ++q) {
      const InferenceRequest& req = *requests[q];
      if (__atomic_load_n(flags + q, __ATOMIC_RELAXED) == 0 && req.is_cancelled &&
          req.is_cancelled()) {
        __atomic_store_n(flags + q, static_cast<char>(1), __ATOMIC_RELAXED);
      }
    }
  }
  if (out == ReadOutcome::kClosed) return FailAll(n, DeathStatus(g));
  BatchReply& reply = ch.reply;
  if (out == ReadOutcome::kFrame) {
    s = type == MessageType::kBatchReply ? isolation::Decode(body, &reply)
                                         : absl::InternalError("unexpected message type");
    if (s.ok() && (reply.batch_id != b.batch_id || reply.results.size() != n)) {
      s = absl::InternalError("the reply does not answer this batch");
    }
    if (s.ok()) s = ch.region.Follow(reply.region_size);
    if (s.ok()) s = isolation::CheckBounds(reply, ch.region.size());
  } else {
    s = absl::InternalError(error);
  }
  if (!s.ok()) {
    // A child that breaks the protocol cannot be trusted with the next batch.
    {
      std::lock_guard<std::mutex> lock(mu_);
      KillLocked(*g, absl::StrCat("protocol error: ", s.message()));
    }
    return FailAll(n, absl::UnavailableError(absl::StrCat(
                          "model '", model_name_, "': the runner process broke the protocol (",
                          s.message(), "); restarting")));
  }

  const Clock::time_point t2 = Clock::now();
  std::vector<absl::Status> result(n);
  base = ch.region.data();
  for (size_t r = 0; r < n; ++r) {
    const BatchReply::Result& res = reply.results[r];
    if (res.code != 0) {
      result[r] = ToStatus(res.code, res.message);
      continue;
    }
    InferenceRequest& q = *requests[r];
    for (const auto& o : res.outputs) {
      if (o.index >= sig.outputs().size()) {
        result[r] = absl::InternalError(
            absl::StrCat("model '", model_name_, "': the runner process named an unknown output"));
        break;
      }
      const TensorSignature& ts = sig.outputs()[o.index];
      if (ts.datatype == TORII_TYPE_BYTES) {
        int64_t elements = 1;
        for (int64_t d : o.tensor.shape) elements *= d;
        result[r] = ValidateBytesBuffer(base + o.tensor.offset, o.tensor.size, elements,
                                        absl::StrCat("model '", model_name_, "': runner output '",
                                                     ts.name, "'"));
        if (!result[r].ok()) break;
      }
      auto* tensor = q.response->add_outputs();
      tensor->set_name(ts.name);
      tensor->set_datatype(DataTypeName(ts.datatype));
      for (int64_t d : o.tensor.shape) tensor->add_shape(d);
      q.response->add_raw_output_contents(base + o.tensor.offset, o.tensor.size);
    }
  }
  if (timing != nullptr) *timing = Timing::Between(t0, t1, t2, Clock::now());
  return result;
}

}  // namespace torii
