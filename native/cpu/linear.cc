// Linear layer, y = x W^T + b, through the packed GEMM.
//   x, dx: (m, k)   W, dW: (n, k)   b, db: (n)   y, dy: (m, n)
// dx, dW and db are overwritten; a null one is skipped.
#include "dtype.h"
#include "gemm.h"
#include "ops.h"
#include "threadpool.h"

namespace crb_cpu {

namespace {

crb_status check_desc(const crb_linear_desc* d, const char* op) {
  crb_geom_error e;
  return check(crb_linear_check(d, &e), e, op);
}

template <class T>
crb_status forward(const crb_linear_desc* d, const T* x, const T* w, const T* b, T* y) {
  const int64_t m = d->m, k = d->k, n = d->n;
  if (b) {
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) y[i * n + j] = b[j];
  }
  if (!gemm<T>(m, n, k, T(1), row_major(x, k), transposed(w, k), b ? T(1) : T(0), y, n, true))
    return fail(CRB_ERR_OOM, "linear_forward", "could not allocate GEMM packing buffers");
  return CRB_OK;
}

template <class T>
crb_status backward(const crb_linear_desc* d, const T* x, const T* w, const T* dy, T* dx, T* dw, T* db) {
  const int64_t m = d->m, k = d->k, n = d->n;
  // dx (m x k) = dy (m x n) * W (n x k)
  if (dx && !gemm<T>(m, k, n, T(1), row_major(dy, n), row_major(w, k), T(0), dx, k, true))
    return fail(CRB_ERR_OOM, "linear_backward", "could not allocate GEMM packing buffers");
  // dW (n x k) = dy^T (n x m) * x (m x k)
  if (dw && !gemm<T>(n, k, m, T(1), transposed(dy, n), row_major(x, k), T(0), dw, k, true))
    return fail(CRB_ERR_OOM, "linear_backward", "could not allocate GEMM packing buffers");
  if (db) {
    parallel_for(n, 64, [&](int64_t j0, int64_t j1, int) {
      for (int64_t j = j0; j < j1; ++j) {
        double total = 0;
        for (int64_t i = 0; i < m; ++i) total += dy[i * n + j];
        db[j] = T(total);
      }
    });
  }
  return CRB_OK;
}

}  // namespace

crb_status linear_forward(const crb_linear_desc* d, const void* x, const void* w, const void* b, void* y) {
  if (crb_status st = check_desc(d, "linear_forward")) return st;
  return dispatch_float(d->dtype, "linear_forward", [&](auto zero) {
    using T = decltype(zero);
    return forward<T>(d, (const T*)x, (const T*)w, (const T*)b, (T*)y);
  });
}

crb_status linear_backward(const crb_linear_desc* d, const void* x, const void* w, const void* dy, void* dx, void* dw,
                           void* db) {
  if (crb_status st = check_desc(d, "linear_backward")) return st;
  return dispatch_float(d->dtype, "linear_backward", [&](auto zero) {
    using T = decltype(zero);
    return backward<T>(d, (const T*)x, (const T*)w, (const T*)dy, (T*)dx, (T*)dw, (T*)db);
  });
}

}  // namespace crb_cpu
