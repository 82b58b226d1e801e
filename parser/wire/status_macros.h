// Early-return helpers for absl::Status and absl::StatusOr.
//
// QMIG_RETURN_IF_ERROR(expr): evaluates an absl::Status expression once and
// returns it from the enclosing function unless it is OK.
// QMIG_ASSIGN_OR_RETURN(lhs, expr): evaluates an absl::StatusOr expression
// once; returns its status unless it is OK, else moves the value into `lhs`
// (a declaration or an lvalue). Both are statements; neither may be used
// twice on one line (the temporary is named after __LINE__).
#ifndef QMIG_PARSER_WIRE_STATUS_MACROS_H_
#define QMIG_PARSER_WIRE_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define QMIG_ASSIGN_OR_RETURN(lhs, expr) \
  QMIG_ASSIGN_OR_RETURN_IMPL(QMIG_CONCAT(_qmig_statusor_, __LINE__), lhs, expr)
#define QMIG_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return tmp.status();              \
  lhs = std::move(*tmp)
#define QMIG_CONCAT(a, b) QMIG_CONCAT_INNER(a, b)
#define QMIG_CONCAT_INNER(a, b) a##b
#define QMIG_RETURN_IF_ERROR(expr)               \
  do {                                           \
    absl::Status _qmig_status = (expr);          \
    if (!_qmig_status.ok()) return _qmig_status; \
  } while (0)

#endif  // QMIG_PARSER_WIRE_STATUS_MACROS_H_
