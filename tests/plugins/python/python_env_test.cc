// EXECUTION_ENV_PATH: the interpreter is configured once per process, so
// every case runs in a child process forked from this test process, which
// itself never loads the runner.
#include <poll.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <functional>

#include "python_test_util.h"

namespace torii_python_test {
namespace {

// Runs `fn` in a child process and returns the text it produced (or what went
// wrong). The child never returns into Catch2.
std::string InChild(const std::function<std::string()>& fn) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    std::string out;
    try {
      out = fn();
    } catch (const std::exception& e) {
      out = std::string("exception: ") + e.what();
    }
    size_t done = 0;
    while (done < out.size()) {
      const ssize_t n = write(fds[1], out.data() + done, out.size() - done);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    _exit(0);  // no atexit handlers, no interpreter teardown
  }
  close(fds[1]);
  std::string out;
  char buf[4096];
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (;;) {
    pollfd p{fds[0], POLLIN, 0};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      kill(pid, SIGKILL);
      out += "[timed out]";
      break;
    }
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    const ssize_t n = read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status)) out += "[child died: status " + std::to_string(status) + "]";
  return out;
}

ModelSpec ProbeModel(const TempDir& dir, const std::string& name, const std::string& env) {
  std::map<std::string, std::string> params;
  if (!env.empty()) params["EXECUTION_ENV_PATH"] = env;
  return MakeModel(dir, "env_probe", name, 0, {{"IN", TORII_TYPE_INT32, {1}}},
                   {{"OUT", TORII_TYPE_BYTES, {1}}}, "", params);
}

std::string Probe(const ModelSpec& spec) {
  auto host = FakeHost::Open(RunnerPath());
  auto model = host->Load(spec);
  auto instance = model->CreateInstance();
  const Response r = instance->Infer({Tensor::Of<int32_t>("IN", {1}, {0})});
  if (!r.ok()) return "error: " + r.message;
  return r.output("OUT").strings().at(0);
}

void MakeVenv(const std::string& path, bool system_site_packages) {
  const std::string cmd = std::string(TORII_PYTHON_EXECUTABLE) + " -m venv --without-pip " +
                          (system_site_packages ? "--system-site-packages " : "") + path;
  REQUIRE(std::system(cmd.c_str()) == 0);
}

std::string SitePackages(const std::string& venv) {
  return venv + "/lib/python3.11/site-packages";
}

TEST_CASE("python env: the default is the Python the runner was built with", "[python]") {
  TempDir dir;
  const ModelSpec spec = ProbeModel(dir, "probe", "");
  const std::string out = InChild([&] { return Probe(spec); });
  CHECK(out.rfind("/usr|", 0) == 0);
  CHECK(out.find("|absent") != std::string::npos);
}

TEST_CASE("python env: a venv in the model folder brings its own packages", "[python]") {
  TempDir dir;
  const ModelSpec spec = ProbeModel(dir, "probe", "$$TRITON_MODEL_DIRECTORY/venv");
  const std::string venv = spec.directory + "/venv";
  MakeVenv(venv, /*system_site_packages=*/true);
  WriteFile(SitePackages(venv) + "/torii_env_probe.py", "WHERE = 'from the venv'\n");
  const std::string out = InChild([&] { return Probe(spec); });
  INFO(out);
  // sys.prefix is the venv (realpath), numpy comes from the system packages,
  // the probe module from the venv.
  CHECK(out.rfind(std::filesystem::canonical(venv).string() + "|", 0) == 0);
  CHECK(out.find("|from the venv") != std::string::npos);
}

TEST_CASE("python env: a venv without numpy fails the load saying so", "[python]") {
  TempDir dir;
  const std::string venv = dir.path() + "/bare";
  MakeVenv(venv, /*system_site_packages=*/false);
  const ModelSpec spec = ProbeModel(dir, "probe", venv);
  const std::string out = InChild([&] {
    try {
      Probe(spec);
      return std::string("loaded");
    } catch (const torii::Error& e) {
      return std::string(e.what());
    }
  });
  INFO(out);
  CHECK(out.find("needs numpy") != std::string::npos);
  CHECK(out.find("ModuleNotFoundError: No module named 'numpy'") != std::string::npos);
}

TEST_CASE("python env: one process runs one environment", "[python]") {
  TempDir dir;
  const ModelSpec plain = ProbeModel(dir, "plain", "");
  const std::string venv = dir.path() + "/venv";
  MakeVenv(venv, true);
  const ModelSpec other = ProbeModel(dir, "other", venv);
  const std::string out = InChild([&] {
    auto host = FakeHost::Open(RunnerPath());
    auto first = host->Load(plain);
    try {
      host->Load(other);
      return std::string("loaded both");
    } catch (const torii::Error& e) {
      return std::string(e.what());
    }
  });
  INFO(out);
  CHECK(out.find("already runs Python for the default Python") != std::string::npos);
  CHECK(out.find("EXECUTION_ENV_PATH " + std::filesystem::canonical(venv).string()) !=
        std::string::npos);
}

}  // namespace
}  // namespace torii_python_test
