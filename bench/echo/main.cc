// torii-echo-server: the bare gRPC ceiling for Torii benchmarks.
//
//   torii-echo-server --port=0 --port_file=/tmp/p   # any free port
//
// Prints "torii-echo-server listening on ADDR:PORT" once serving; stops
// cleanly on SIGINT or SIGTERM.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/synchronization/mutex.h"
#include "echo_service.h"

ABSL_FLAG(std::string, address, "127.0.0.1", "address to listen on");
ABSL_FLAG(int, port, 8001, "port to listen on; 0 picks a free one");
ABSL_FLAG(bool, mutex_deadlock_detection, false,
          "keep Abseil's Mutex deadlock detection on. Debian builds Abseil "
          "without NDEBUG, so it is on by default and every gRPC lock updates "
          "a lock graph (~12% of the echo's instructions per request); the "
          "ceiling turns it off unless this is true");
ABSL_FLAG(std::string, port_file, "",
          "if set, the bound port is written to this file once serving");

namespace {

int RunServer() {
  // Block the stop signals in every thread (gRPC's included) and wait for
  // them on this one, so shutdown runs outside a signal handler.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  if (!absl::GetFlag(FLAGS_mutex_deadlock_detection)) {
    absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  }
  torii::bench::EchoService service;
  grpc::ServerBuilder builder;
  int port = 0;
  std::string address = absl::GetFlag(FLAGS_address) + ":" +
                        std::to_string(absl::GetFlag(FLAGS_port));
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port);
  builder.SetMaxReceiveMessageSize(-1);
  builder.SetMaxSendMessageSize(-1);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::cerr << "torii-echo-server: cannot listen on " << address << "\n";
    return 1;
  }
  if (!absl::GetFlag(FLAGS_port_file).empty()) {
    // Write then rename, so a script polling the file never reads half.
    std::string path = absl::GetFlag(FLAGS_port_file);
    std::ofstream(path + ".tmp") << port << "\n";
    std::rename((path + ".tmp").c_str(), path.c_str());
  }
  std::cout << "torii-echo-server listening on "
            << absl::GetFlag(FLAGS_address) << ":" << port << std::endl;
  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Bare gRPC echo of GRPCInferenceService (the benchmark ceiling).");
  absl::ParseCommandLine(argc, argv);
  return RunServer();
}
