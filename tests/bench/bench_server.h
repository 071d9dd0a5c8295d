// An in-process gRPC server on a free loopback port, for bench/ tests.
#ifndef TORII_TESTS_BENCH_BENCH_SERVER_H_
#define TORII_TESTS_BENCH_BENCH_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

namespace torii::bench::testing {

/// Serves `service` on 127.0.0.1 at a port the kernel picks; shuts down
/// (2 s grace) when destroyed. `service` must outlive this object.
class InProcessServer {
 public:
  explicit InProcessServer(grpc::Service* service);
  ~InProcessServer();
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }

 private:
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace torii::bench::testing

#endif  // TORII_TESTS_BENCH_BENCH_SERVER_H_
