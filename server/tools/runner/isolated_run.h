// Runs one step of a check in a forked child process, so a runner that
// crashes, aborts or hangs is reported (with the signal and the step it was
// in) instead of taking torii-runner down with it.
#ifndef TORII_SERVER_TOOLS_RUNNER_ISOLATED_RUN_H_
#define TORII_SERVER_TOOLS_RUNNER_ISOLATED_RUN_H_

#include <functional>
#include <string>
#include <vector>

namespace torii {
namespace runner_tool {

enum class Verdict { kPass, kFail, kSkip };

/// What one check concluded. Details starting with "note: " are shown even
/// when the check passes; the others with --verbose or on failure.
struct Outcome {
  Verdict verdict = Verdict::kPass;
  std::string summary;
  std::vector<std::string> details;
};

/// The child's side: progress and details travel to the parent as they
/// happen, so they survive a crash.
class ChildReporter {
 public:
  explicit ChildReporter(int fd) : fd_(fd) {}
  /// Names what the child is about to do ("case 'empty tensor'").
  void Step(const std::string& what);
  void Detail(const std::string& line);

 private:
  friend struct IsolatedRunAccess;
  void Send(char kind, const std::string& text);
  int fd_;
};

struct IsolatedResult {
  Outcome outcome;        // as reported by the child, or a crash/hang failure
  std::string last_step;  // the last Step() before the child ended
  std::string output;     // what the child wrote to stdout/stderr (runner logs)
};

/// Forks, runs `fn` in the child (its stdout/stderr captured), and waits up
/// to `timeout_seconds`. A child that dies by a signal, exits without a
/// result, or runs out of time yields a kFail outcome saying so. The calling
/// process must be single-threaded.
IsolatedResult RunIsolated(const std::function<Outcome(ChildReporter&)>& fn,
                           double timeout_seconds);

}  // namespace runner_tool
}  // namespace torii

#endif  // TORII_SERVER_TOOLS_RUNNER_ISOLATED_RUN_H_
