// ReLU, PyTorch semantics: NaN passes through forward; backward is threshold_backward on the
// output, dx = (y <= 0) ? 0 : dy.
//   x, y, dy, dx: numel elements
#include "dtype.h"
#include "ops.h"
#include "threadpool.h"

namespace crb_cpu {

namespace {
constexpr int64_t kGrain = 1 << 15;

// The loops read their pointers from locals, not from the closure: if a store could alias the
// closure (e.g. under -fno-strict-aliasing) the compiler would reload them after every element
// and give up vectorising.
template <class T>
void forward(T* y, const T* x, int64_t numel) {
  parallel_for(numel, kGrain, [y, x](int64_t b, int64_t e, int) {
    T* const out = y;
    const T* const in = x;
    for (int64_t i = b; i < e; ++i) {
      const T v = in[i];
      out[i] = v < T(0) ? T(0) : v;
    }
  });
}

template <class T>
void backward(T* dx, const T* dy, const T* y, int64_t numel) {
  parallel_for(numel, kGrain, [dx, dy, y](int64_t b, int64_t e, int) {
    T* const out = dx;
    const T* const grad = dy;
    const T* const fwd = y;
    for (int64_t i = b; i < e; ++i) {
      const T g = grad[i];  // loaded unconditionally so the select vectorises
      out[i] = fwd[i] <= T(0) ? T(0) : g;
    }
  });
}
}  // namespace

crb_status relu_forward(void* y, const void* x, int64_t numel, crb_dtype dtype) {
  if (numel < 0) return fail(CRB_ERR_INVALID, "relu_forward", "numel must be >= 0, got %lld", (long long)numel);
  return dispatch_float(dtype, "relu_forward", [&](auto zero) {
    using T = decltype(zero);
    forward<T>(static_cast<T*>(y), static_cast<const T*>(x), numel);
    return CRB_OK;
  });
}

crb_status relu_backward(void* dx, const void* dy, const void* y, int64_t numel, crb_dtype dtype) {
  if (numel < 0) return fail(CRB_ERR_INVALID, "relu_backward", "numel must be >= 0, got %lld", (long long)numel);
  return dispatch_float(dtype, "relu_backward", [&](auto zero) {
    using T = decltype(zero);
    backward<T>(static_cast<T*>(dx), static_cast<const T*>(dy), static_cast<const T*>(y), numel);
    return CRB_OK;
  });
}

}  // namespace crb_cpu
