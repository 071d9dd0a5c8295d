// Status helpers for absl::Status / absl::StatusOr (Abseil 20220623 ships
// none). One prefixed pair of macros, used everywhere inside the server.
#ifndef TORII_SERVER_COMMON_STATUS_MACROS_H_
#define TORII_SERVER_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define TORII_STATUS_CONCAT_INNER_(a, b) a##b
#define TORII_STATUS_CONCAT_(a, b) TORII_STATUS_CONCAT_INNER_(a, b)

/// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define TORII_RETURN_IF_ERROR(expr)                 \
  do {                                              \
    ::absl::Status torii_status_ = (expr);          \
    if (!torii_status_.ok()) return torii_status_;  \
  } while (0)

/// `lhs = value of expr` (an absl::StatusOr), or returns its error.
#define TORII_ASSIGN_OR_RETURN(lhs, expr) \
  TORII_ASSIGN_OR_RETURN_IMPL_(TORII_STATUS_CONCAT_(torii_statusor_, __LINE__), lhs, expr)
#define TORII_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()

#endif  // TORII_SERVER_COMMON_STATUS_MACROS_H_
