#include "server/tools/runner/isolated_run.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <exception>

#include "absl/strings/str_cat.h"

namespace torii {
namespace runner_tool {
namespace {

// Messages are lines "<kind><text>\n"; newlines inside text travel as \x1f.
constexpr char kStep = 'S';
constexpr char kDetail = 'D';
constexpr char kPass = 'P';
constexpr char kFail = 'F';
constexpr char kSkip = 'K';

void WriteAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    const ssize_t n = write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

std::string ReadFile(int fd) {
  std::string out;
  if (lseek(fd, 0, SEEK_SET) < 0) return out;
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

}  // namespace

void ChildReporter::Send(char kind, const std::string& text) {
  std::string line(1, kind);
  for (char c : text) line += c == '\n' ? '\x1f' : c;
  line += '\n';
  WriteAll(fd_, line);
}

void ChildReporter::Step(const std::string& what) { Send(kStep, what); }
void ChildReporter::Detail(const std::string& line) { Send(kDetail, line); }

struct IsolatedRunAccess {
  static void Finish(ChildReporter& r, const Outcome& o) {
    const char kind = o.verdict == Verdict::kPass ? kPass
                      : o.verdict == Verdict::kSkip ? kSkip
                                                   : kFail;
    for (const auto& d : o.details) r.Send(kDetail, d);
    r.Send(kind, o.summary);
  }
};

IsolatedResult RunIsolated(const std::function<Outcome(ChildReporter&)>& fn,
                           double timeout_seconds) {
  IsolatedResult result;
  Outcome& out = result.outcome;
  int fds[2];
  FILE* log = tmpfile();
  if (pipe(fds) != 0 || log == nullptr) {
    out.verdict = Verdict::kFail;
    out.summary = absl::StrCat("cannot start a child process: ", strerror(errno));
    if (log != nullptr) fclose(log);
    return result;
  }
  fflush(stdout);
  fflush(stderr);
  const pid_t pid = fork();
  if (pid < 0) {
    out.verdict = Verdict::kFail;
    out.summary = absl::StrCat("fork failed: ", strerror(errno));
    close(fds[0]);
    close(fds[1]);
    fclose(log);
    return result;
  }
  if (pid == 0) {
    // The child: never outlives the parent, writes runner output to the log.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(fds[0]);
    dup2(fileno(log), STDOUT_FILENO);
    dup2(fileno(log), STDERR_FILENO);
    ChildReporter reporter(fds[1]);
    Outcome o;
    try {
      o = fn(reporter);
    } catch (const std::exception& e) {
      o.verdict = Verdict::kFail;
      o.summary = absl::StrCat("the check threw: ", e.what());
    } catch (...) {
      o.verdict = Verdict::kFail;
      o.summary = "the check threw a non-standard exception";
    }
    IsolatedRunAccess::Finish(reporter, o);
    fflush(stdout);
    fflush(stderr);
    // Skip atexit handlers and static destructors: the runner may have
    // registered some in this process copy, and they are not under test here.
    _exit(0);
  }

  close(fds[1]);
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<int64_t>(timeout_seconds * 1000));
  std::string buffer;
  bool finished = false;
  bool timed_out = false;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    const int r = poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 1000)));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    char buf[4096];
    const ssize_t n = read(fds[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF: the child is done (or dead)
    buffer.append(buf, static_cast<size_t>(n));
    size_t nl;
    while ((nl = buffer.find('\n')) != std::string::npos) {
      std::string line = buffer.substr(0, nl);
      buffer.erase(0, nl + 1);
      if (line.empty()) continue;
      const char kind = line[0];
      std::string text = line.substr(1);
      for (char& c : text) {
        if (c == '\x1f') c = '\n';
      }
      switch (kind) {
        case kStep: result.last_step = text; break;
        case kDetail: out.details.push_back(text); break;
        case kPass:
        case kFail:
        case kSkip:
          finished = true;
          out.verdict = kind == kPass ? Verdict::kPass : kind == kSkip ? Verdict::kSkip
                                                                       : Verdict::kFail;
          out.summary = text;
          break;
        default: break;
      }
    }
  }
  close(fds[0]);
  if (timed_out) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.output = ReadFile(fileno(log));
  fclose(log);

  const std::string during =
      result.last_step.empty() ? "" : absl::StrCat(" during ", result.last_step);
  if (timed_out) {
    out.verdict = Verdict::kFail;
    out.summary = absl::StrCat("did not finish within ", timeout_seconds, " s", during,
                               " (the runner hangs or is too slow; see --timeout)");
  } else if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    out.verdict = Verdict::kFail;
    out.summary = absl::StrCat("the runner crashed: signal ", sig, " (SIG", sigabbrev_np(sig) ? sigabbrev_np(sig) : "?",
                               ", ", strsignal(sig), ")", during);
  } else if (!finished) {
    out.verdict = Verdict::kFail;
    out.summary = absl::StrCat("the process exited with status ",
                               WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                               " before reporting a result", during,
                               " (did the runner call exit()?)");
  }
  return result;
}

}  // namespace runner_tool
}  // namespace torii
