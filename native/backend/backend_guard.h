// The one exception guard of both backends' tables (C++ only). A C++ exception (std::bad_alloc
// from a host container, say) must not unwind through the C ABI into the addon: every ops.def
// entry of a table is a wrapper that runs the backend's function inside a catch-all and turns
// what it catches into a crb_error through the backend's own error setter. backend_table.inc
// applies it to every row of ops.def inside a backend's namespace.
#ifndef CRB_BACKEND_GUARD_H
#define CRB_BACKEND_GUARD_H

#include <cstdio>
#include <cstring>  // std::memset in backend_table.inc
#include <exception>
#include <new>

#include "backend_api.h"

// A backend's error setter: records the failure of `op` for last_error() and returns `code`.
using crb_record_fn = crb_status (*)(crb_status code, const char* op, const char* status, const char* message);

// The status for the exception being handled: std::bad_alloc -> CRB_ERR_OOM, anything else ->
// CRB_ERR_INTERNAL, recorded through `record`. Call only inside a catch block.
inline crb_status crb_status_of_exception(const char* op, crb_record_fn record) noexcept {
  try {
    throw;
  } catch (const std::bad_alloc&) {
    return record(CRB_ERR_OOM, op, "std::bad_alloc", "out of host memory");
  } catch (const std::exception& e) {
    char message[512];
    std::snprintf(message, sizeof message, "unexpected C++ exception: %s", e.what());
    return record(CRB_ERR_INTERNAL, op, "exception", message);
  } catch (...) {
    return record(CRB_ERR_INTERNAL, op, "exception", "unexpected C++ exception");
  }
}

// Defines `crb_status guarded_<name> params noexcept`, which calls `name args` in the guard.
#define CRB_GUARDED_OP(name, params, args, record)               \
  crb_status guarded_##name params noexcept {                    \
    try {                                                        \
      return name args;                                          \
    } catch (...) {                                              \
      return crb_status_of_exception(#name, record);             \
    }                                                            \
  }

#endif  // CRB_BACKEND_GUARD_H
