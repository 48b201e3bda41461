// Per-thread last error of the CPU backend, and the one helper every op reports failures through.
#ifndef CRB_CPU_ERRORS_H
#define CRB_CPU_ERRORS_H

#include "../backend/backend_api.h"
#include "../backend/geometry.h"
#include "../backend/names.h"  // crb_status_name, crb_dtype_name, ...

namespace crb_cpu {

// Fills the calling thread's crb_error and returns `code`, so call sites read
// `return fail(CRB_ERR_INVALID, "conv2d_forward", "groups %d does not divide c %d", g, c);`.
crb_status fail(crb_status code, const char* op, const char* fmt, ...) __attribute__((format(printf, 3, 4)));

// A descriptor assertion of geometry.h (Note [one place per rule]): CRB_OK, or CRB_ERR_INVALID
// naming the op and the rule the descriptor breaks.
inline crb_status check(bool ok, const crb_geom_error& e, const char* op) {
  if (ok) return CRB_OK;
  return fail(CRB_ERR_INVALID, op, "invalid descriptor: %s expected %s, received %s", e.arg, e.expected.c_str(),
              e.received.c_str());
}

const crb_error* last_error();

}  // namespace crb_cpu

#endif  // CRB_CPU_ERRORS_H
