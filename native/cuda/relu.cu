// ReLU forward through cuDNN's activation API; bfloat16 through a kernel of ours (the legacy
// activation API's bfloat16 support varies by cuDNN version and GPU). Tensors are flat runs of
// numel elements, described to cuDNN as (chunk, 1, 1, 1) pieces of at most 2^30 elements (its
// legacy API indexes with 32-bit ints). Backward is always our kernel: PyTorch's
// threshold_backward masks with `y <= 0 ? 0 : dy`, so where y is NaN the gradient passes
// through; cuDNN's activation backward gives 0 there (NaN > 0 is false).
//   forward:  x, y: (numel)             y = max(x, 0), NaN propagates
//   backward: dy, y, dx: (numel)        dx = (y <= 0) ? 0 : dy, y the forward output
#include "cudnn_utils.h"
#include "kernels.cuh"
#include "ops.h"

namespace crb_cuda {
namespace {

constexpr int64_t kChunk = int64_t(1) << 30;

// Both kernels are memory-bound: 16-byte vectors through `vector_loop` (Note [vector loads] in
// kernels.cuh), the tail and misaligned pointers element by element, same per-element math.
template <typename T>
__device__ __forceinline__ T relu_one(T x) {
  const float v = load(&x, 0);
  T r;
  store(&r, 0, v > 0.0f || v != v ? v : 0.0f);
  return r;
}

template <typename T>
__global__ void relu_forward_kernel(T* y, const T* x, int64_t numel, bool vec) {
  constexpr int N = pack_of<T>();
  vector_loop<N>(
      numel, vec,
      [&](int64_t vi) {
        Vec<T, N> v = load_vec<T, N>(x, vi);
#pragma unroll
        for (int k = 0; k < N; k++) v[k] = relu_one(v[k]);
        store_vec<T, N>(y, vi, v);
      },
      [&](int64_t i) { y[i] = relu_one(x[i]); });
}

template <typename T>
__device__ __forceinline__ T relu_grad_one(T dy, T y) {
  using A = acc_t<T>;
  T r;
  store(&r, 0, load(&y, 0) <= A(0) ? A(0) : load(&dy, 0));
  return r;
}

template <typename T>
__global__ void relu_backward_kernel(T* dx, const T* dy, const T* y, int64_t numel, bool vec) {
  constexpr int N = pack_of<T>();
  vector_loop<N>(
      numel, vec,
      [&](int64_t vi) {
        const Vec<T, N> g = load_vec<T, N>(dy, vi), out = load_vec<T, N>(y, vi);
        Vec<T, N> r;
#pragma unroll
        for (int k = 0; k < N; k++) r[k] = relu_grad_one(g[k], out[k]);
        store_vec<T, N>(dx, vi, r);
      },
      [&](int64_t i) { dx[i] = relu_grad_one(dy[i], y[i]); });
}


crb_status relu_cudnn_forward(const OpScope& scope, crb_dtype dtype, int64_t numel, void* out, const void* in) {
  CudnnLease lease(scope);
  ActivationDescriptor act;
  CRB_TRY(act.create(scope));
  CRB_CUDNN_CHECK(scope, cudnnSetActivationDescriptor(act.get(), CUDNN_ACTIVATION_RELU, CUDNN_PROPAGATE_NAN, 0.0));
  const size_t elem = crb_dtype_size(dtype);
  for (int64_t off = 0; off < numel; off += kChunk) {
    const int64_t n = numel - off < kChunk ? numel - off : kChunk;
    TensorDescriptor desc;
    CRB_TRY(set_tensor_4d(desc, dtype, CRB_NCHW, n, 1, 1, 1, scope));
    char* o = static_cast<char*>(out) + off * elem;
    const char* i = static_cast<const char*>(in) + off * elem;
    CRB_CUDNN_CHECK(scope, cudnnActivationForward(lease.handle(), act.get(), kOne.for_dtype(dtype), desc.get(), i,
                                                  kZero.for_dtype(dtype), desc.get(), o));
  }
  return CRB_OK;
}

}  // namespace

crb_status relu_forward(void* y, const void* x, int64_t numel, crb_dtype dtype) {
  OpScope scope("relu_forward", "x (%lld) %s", (long long)numel, crb_dtype_name(dtype));
  CRB_TRY(ensure_init(scope));
  if (numel < 0) return invalid(scope, "numel must be >= 0, got %lld", (long long)numel);
  if (numel == 0) return CRB_OK;
  if (!y || !x) return invalid(scope, "y and x must not be null");
  if (!is_float_dtype(dtype)) return unsupported(scope, "relu takes float tensors, got %s", crb_dtype_name(dtype));
  if (dtype == CRB_BF16) {
    using T = __nv_bfloat16;
    const bool vec = vector_ok(16, y, x);
    relu_forward_kernel<T><<<vec_grid(numel, pack_of<T>(), vec), kThreads, 0, stream()>>>(
        static_cast<T*>(y), static_cast<const T*>(x), numel, vec);
    CRB_CUDA_CHECK_LAUNCH(scope);
    return CRB_OK;
  }
  return relu_cudnn_forward(scope, dtype, numel, y, x);
}

crb_status relu_backward(void* dx, const void* dy, const void* y, int64_t numel, crb_dtype dtype) {
  OpScope scope("relu_backward", "dy (%lld) %s", (long long)numel, crb_dtype_name(dtype));
  CRB_TRY(ensure_init(scope));
  if (numel < 0) return invalid(scope, "numel must be >= 0, got %lld", (long long)numel);
  if (numel == 0) return CRB_OK;
  if (!dx || !dy || !y) return invalid(scope, "dx, dy and y must not be null");
  if (!is_float_dtype(dtype)) return unsupported(scope, "relu takes float tensors, got %s", crb_dtype_name(dtype));
  return dispatch_float(dtype, scope, [&](auto tag) -> crb_status {
    using T = decltype(tag);
    const bool vec = vector_ok(16, dx, dy, y);
    relu_backward_kernel<T><<<vec_grid(numel, pack_of<T>(), vec), kThreads, 0, stream()>>>(
        static_cast<T*>(dx), static_cast<const T*>(dy), static_cast<const T*>(y), numel, vec);
    CRB_CUDA_CHECK_LAUNCH(scope);
    return CRB_OK;
  });
}

}  // namespace crb_cuda
