// Shared by every file of the CUDA backend: the per-thread error, the check macros and the
// small helpers each op needs. Deliberately free of cuDNN headers (see cudnn_utils.h) so the
// kernel-only files compile fast.
//
// Note [errors never abort]
// Every failing call goes through one of two macros, CRB_CUDA_CHECK (CUDA runtime) or
// CRB_CUDNN_CHECK (cuDNN, in cudnn_utils.h). Each records the op name, the shapes of the op's
// arguments, the call that failed and its status string into the calling thread's crb_error,
// then returns the crb_status from the current function. Nothing here exits or throws: the
// backend is a library inside a Node process.
#ifndef CRB_CUDA_COMMON_H
#define CRB_CUDA_COMMON_H

#include <cuda_runtime_api.h>

#include <cstdint>
#include <cstdio>

#include "../backend/backend_api.h"
#include "../backend/geometry.h"
#include "../backend/names.h"  // crb_dtype_name, crb_layout_name, crb_dtype_size

namespace crb_cuda {

// What an op is doing, for error messages: "conv2d_forward" + "x (8, 64, 56, 56) NCHW f32, ...".
// Built once at the top of each entry point; cheap (one snprintf) next to a kernel launch.
struct OpScope {
  const char* op;
  char shapes[384];
  explicit OpScope(const char* op_name) : op(op_name) { shapes[0] = '\0'; }
  OpScope(const char* op_name, const char* fmt, ...) __attribute__((format(printf, 3, 4)));
};

// Fills the thread's crb_error and returns `code`.
crb_status fail(crb_status code, const OpScope& scope, const char* status, const char* fmt, ...)
    __attribute__((format(printf, 4, 5)));
crb_status invalid(const OpScope& scope, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
crb_status unsupported(const OpScope& scope, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
// A descriptor assertion of geometry.h (Note [one place per rule]): CRB_OK, or CRB_ERR_INVALID
// naming the op and the rule the descriptor breaks.
inline crb_status check(bool ok, const crb_geom_error& e, const OpScope& scope) {
  if (ok) return CRB_OK;
  return invalid(scope, "invalid descriptor: %s expected %s, received %s", e.arg, e.expected.c_str(), e.received.c_str());
}
// Records a failed CUDA runtime call: cudaErrorMemoryAllocation -> CRB_ERR_OOM, else CRB_ERR_CUDA.
crb_status cuda_failure(const OpScope& scope, cudaError_t err, const char* call, const char* file, int line);
const crb_error* last_error();
void clear_error();
void restore_error(const crb_error& saved);  // replays an error recorded earlier

bool is_float_dtype(crb_dtype dtype);

}  // namespace crb_cuda

// Evaluates a CUDA runtime call; on failure records it (see Note [errors never abort]) and
// returns from the enclosing function, which must return crb_status and have `scope` in view.
#define CRB_CUDA_CHECK(scope, call)                                                   \
  do {                                                                                \
    cudaError_t crb_err_ = (call);                                                    \
    if (crb_err_ != cudaSuccess)                                                      \
      return ::crb_cuda::cuda_failure((scope), crb_err_, #call, __FILE__, __LINE__);  \
  } while (0)

// Checks the launch of the kernel just queued (bad configuration, no kernel image, ...).
#define CRB_CUDA_CHECK_LAUNCH(scope) CRB_CUDA_CHECK(scope, cudaGetLastError())

// Propagates a failing crb_status (the error is already recorded).
#define CRB_TRY(expr)                       \
  do {                                      \
    crb_status crb_st_ = (expr);            \
    if (crb_st_ != CRB_OK) return crb_st_;  \
  } while (0)

#endif  // CRB_CUDA_COMMON_H
