// Dispatch from a runtime crb_dtype to a template instantiation, for ops defined on f32 and f64.
#ifndef CRB_CPU_DTYPE_H
#define CRB_CPU_DTYPE_H

#include "errors.h"

namespace crb_cpu {

// Calls fn(float{}) or fn(double{}); any other dtype reports CRB_ERR_UNSUPPORTED for `op`.
template <class Fn>
crb_status dispatch_float(crb_dtype dtype, const char* op, Fn&& fn) {
  switch (dtype) {
    case CRB_F32: return fn(float{});
    case CRB_F64: return fn(double{});
    default:
      return fail(CRB_ERR_UNSUPPORTED, op, "dtype %s is not supported on the CPU backend (float32 or float64 only)",
                  crb_dtype_name(dtype));
  }
}

}  // namespace crb_cpu

#endif  // CRB_CPU_DTYPE_H
