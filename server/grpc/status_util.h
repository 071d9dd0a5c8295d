// absl::Status <-> grpc::Status: the codes are the same numbers.
#ifndef TORII_SERVER_GRPC_STATUS_UTIL_H_
#define TORII_SERVER_GRPC_STATUS_UTIL_H_

#include <grpcpp/support/status.h>

#include <string>

#include "absl/status/status.h"

namespace torii {

inline grpc::Status ToGrpcStatus(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

}  // namespace torii

#endif  // TORII_SERVER_GRPC_STATUS_UTIL_H_
