// Element-wise ops and the full sum, own kernels. Every argument is a flat run of `numel`
// elements (layout does not matter); float16/bfloat16 compute in float32, float64 in float64.
#include "allocator.h"
#include "kernels.cuh"
#include "ops.h"

namespace crb_cuda {
namespace {

// Note [vector loads] in kernels.cuh: each kernel moves 16-byte vectors through `vector_loop`
// (the host checks alignment; the tail and misaligned pointers go element by element), since
// these ops are purely memory-bound and one 128-bit access per thread beats N narrow ones.

// dst: (numel) of T
template <typename T>
__global__ void fill_kernel(T* dst, int64_t numel, T value, bool vec) {
  constexpr int N = pack_of<T>();
  Vec<T, N> pack;
#pragma unroll
  for (int k = 0; k < N; k++) pack[k] = value;
  vector_loop<N>(numel, vec, [&](int64_t vi) { store_vec<T, N>(dst, vi, pack); }, [&](int64_t i) { dst[i] = value; });
}

// dst: (numel) of D, src: (numel) of S. Integer <-> integer stays exact (through int64);
// anything involving a float goes through double, which holds every value of every type here
// except int64 beyond 2^53.
template <typename D, typename S>
__device__ __forceinline__ D cast_one(S v) {
  if constexpr (std::is_integral<D>::value && std::is_integral<S>::value)
    return static_cast<D>(static_cast<int64_t>(v));
  else
    return from_double<D>(to_double(v));
}

// Vectors of N = 16 / max(sizeof(D), sizeof(S)) elements: the wider side moves 16 bytes, the
// narrower one 16 * min / max (e.g. float32 -> bfloat16: 4 floats in, 4 bfloat16 = 8 bytes out).
template <typename D, typename S>
__host__ __device__ constexpr int cast_pack() { return static_cast<int>(16 / (sizeof(D) > sizeof(S) ? sizeof(D) : sizeof(S))); }

template <typename D, typename S>
__global__ void cast_kernel(D* dst, const S* src, int64_t numel, bool vec) {
  constexpr int N = cast_pack<D, S>();
  vector_loop<N>(
      numel, vec,
      [&](int64_t vi) {
        const Vec<S, N> in = load_vec<S, N>(src, vi);
        Vec<D, N> out;
#pragma unroll
        for (int k = 0; k < N; k++) out[k] = cast_one<D, S>(in[k]);
        store_vec<D, N>(dst, vi, out);
      },
      [&](int64_t i) { dst[i] = cast_one<D, S>(src[i]); });
}

// out, a, b: (numel)
template <typename T>
__device__ __forceinline__ T add_one(T a, T b) {
  if constexpr (std::is_integral<T>::value)
    return a + b;
  else
    return from_float<T>(to_float(a) + to_float(b));
}
template <> __device__ __forceinline__ double add_one<double>(double a, double b) { return a + b; }

template <typename T>
__global__ void add_kernel(T* out, const T* a, const T* b, int64_t numel, bool vec) {
  constexpr int N = pack_of<T>();
  vector_loop<N>(
      numel, vec,
      [&](int64_t vi) {
        const Vec<T, N> va = load_vec<T, N>(a, vi), vb = load_vec<T, N>(b, vi);
        Vec<T, N> r;
#pragma unroll
        for (int k = 0; k < N; k++) r[k] = add_one(va[k], vb[k]);
        store_vec<T, N>(out, vi, r);
      },
      [&](int64_t i) { out[i] = add_one(a[i], b[i]); });
}

// y, x: (numel). beta == 0 does not read y (BLAS convention), so y may start as garbage.
template <typename T>
__device__ __forceinline__ T axpby_one(T x, T y, acc_t<T> alpha, acc_t<T> beta) {
  using A = acc_t<T>;
  A v = alpha * static_cast<A>(to_double(x));
  if (beta != A(0)) v += beta * static_cast<A>(to_double(y));
  if constexpr (std::is_same<T, double>::value) return v;
  else return from_float<T>(v);
}

template <typename T>
__global__ void axpby_kernel(T* y, const T* x, acc_t<T> alpha, acc_t<T> beta, int64_t numel, bool vec) {
  constexpr int N = pack_of<T>();
  vector_loop<N>(
      numel, vec,
      [&](int64_t vi) {
        const Vec<T, N> vx = load_vec<T, N>(x, vi);
        Vec<T, N> vy = beta != acc_t<T>(0) ? load_vec<T, N>(y, vi) : vx;  // y unread when beta == 0
#pragma unroll
        for (int k = 0; k < N; k++) vy[k] = axpby_one(vx[k], vy[k], alpha, beta);
        store_vec<T, N>(y, vi, vy);
      },
      [&](int64_t i) { y[i] = axpby_one(x[i], beta != acc_t<T>(0) ? y[i] : T(x[i]), alpha, beta); });
}

// Two passes, fixed order (deterministic): partial[block] then out[0] = sum(partial).
// Floats accumulate in double: the sum is memory-bound, so precision is free. Each thread adds
// its 16-byte vectors in element order, then its share of the tail; the order differs from a
// scalar grid-stride loop's but is fixed for a given numel, alignment and GPU.
template <typename T, typename A>
__device__ __forceinline__ A sum_term(T v) {
  if constexpr (std::is_integral<T>::value)
    return static_cast<A>(v);
  else
    return static_cast<A>(to_double(v));
}

template <typename T, typename A>
__global__ void sum_partial_kernel(A* partial, const T* x, int64_t numel, bool vec) {
  constexpr int N = pack_of<T>();
  A acc = 0;
  vector_loop<N>(
      numel, vec,
      [&](int64_t vi) {
        const Vec<T, N> v = load_vec<T, N>(x, vi);
#pragma unroll
        for (int k = 0; k < N; k++) acc += sum_term<T, A>(v[k]);
      },
      [&](int64_t i) { acc += sum_term<T, A>(x[i]); });
  acc = block_sum(acc);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

template <typename T, typename A>
__global__ void sum_final_kernel(T* out, const A* partial, int count) {
  A acc = 0;
  for (int i = threadIdx.x; i < count; i += blockDim.x) acc += partial[i];
  acc = block_sum(acc);
  if (threadIdx.x == 0) {
    if constexpr (std::is_integral<T>::value)
      out[0] = static_cast<T>(acc);
    else
      out[0] = from_double<T>(static_cast<double>(acc));
  }
}


crb_status check_numel(const OpScope& scope, int64_t numel) {
  if (numel < 0) return invalid(scope, "numel must be >= 0, got %lld", (long long)numel);
  return CRB_OK;
}

}  // namespace

crb_status fill(void* dst, int64_t numel, crb_dtype dtype, double value) {
  OpScope scope("fill", "dst (%lld) %s, value %g", (long long)numel, crb_dtype_name(dtype), value);
  CRB_TRY(ensure_init(scope));
  CRB_TRY(check_numel(scope, numel));
  if (numel == 0) return CRB_OK;
  if (!dst) return invalid(scope, "dst must not be null");
  return dispatch_all(dtype, scope, [&](auto tag) -> crb_status {
    using T = decltype(tag);
    T v;
    if constexpr (std::is_same<T, __half>::value) v = __double2half(value);
    else if constexpr (std::is_same<T, __nv_bfloat16>::value) v = __double2bfloat16(value);
    else if constexpr (std::is_same<T, uint8_t>::value) v = static_cast<uint8_t>(static_cast<int64_t>(value));
    else v = static_cast<T>(value);
    const bool vec = vector_ok(16, dst);
    fill_kernel<T><<<vec_grid(numel, pack_of<T>(), vec), kThreads, 0, stream()>>>(static_cast<T*>(dst),
                                                                                           numel, v, vec);
    CRB_CUDA_CHECK_LAUNCH(scope);
    return CRB_OK;
  });
}

crb_status cast(void* dst, crb_dtype dst_dtype, const void* src, crb_dtype src_dtype, int64_t numel) {
  OpScope scope("cast", "(%lld) %s -> %s", (long long)numel, crb_dtype_name(src_dtype), crb_dtype_name(dst_dtype));
  CRB_TRY(ensure_init(scope));
  CRB_TRY(check_numel(scope, numel));
  if (numel == 0) return CRB_OK;
  if (!dst || !src) return invalid(scope, "dst and src must not be null");
  if (dst_dtype == src_dtype) {
    CRB_CUDA_CHECK(scope, cudaMemcpyAsync(dst, src, numel * crb_dtype_size(src_dtype), cudaMemcpyDeviceToDevice, stream()));
    return CRB_OK;
  }
  return dispatch_all(dst_dtype, scope, [&](auto dtag) -> crb_status {
    using D = decltype(dtag);
    return dispatch_all(src_dtype, scope, [&](auto stag) -> crb_status {
      using S = decltype(stag);
      constexpr int N = cast_pack<D, S>();
      const bool vec = vector_ok(N * sizeof(D), dst) && vector_ok(N * sizeof(S), src);
      cast_kernel<D, S><<<vec_grid(numel, N, vec), kThreads, 0, stream()>>>(
          static_cast<D*>(dst), static_cast<const S*>(src), numel, vec);
      CRB_CUDA_CHECK_LAUNCH(scope);
      return CRB_OK;
    });
  });
}

crb_status add(void* out, const void* a, const void* b, int64_t numel, crb_dtype dtype) {
  OpScope scope("add", "(%lld) %s", (long long)numel, crb_dtype_name(dtype));
  CRB_TRY(ensure_init(scope));
  CRB_TRY(check_numel(scope, numel));
  if (numel == 0) return CRB_OK;
  if (!out || !a || !b) return invalid(scope, "out, a and b must not be null");
  return dispatch_all(dtype, scope, [&](auto tag) -> crb_status {
    using T = decltype(tag);
    if constexpr (std::is_same<T, uint8_t>::value) {
      return unsupported(scope, "add takes float, int32 or int64 tensors, got uint8");
    } else {
      const bool vec = vector_ok(16, out, a, b);
      add_kernel<T><<<vec_grid(numel, pack_of<T>(), vec), kThreads, 0, stream()>>>(
          static_cast<T*>(out), static_cast<const T*>(a), static_cast<const T*>(b), numel, vec);
      CRB_CUDA_CHECK_LAUNCH(scope);
      return CRB_OK;
    }
  });
}

crb_status axpby(void* y, const void* x, double alpha, double beta, int64_t numel, crb_dtype dtype) {
  OpScope scope("axpby", "(%lld) %s, alpha %g, beta %g", (long long)numel, crb_dtype_name(dtype), alpha, beta);
  CRB_TRY(ensure_init(scope));
  CRB_TRY(check_numel(scope, numel));
  if (numel == 0) return CRB_OK;
  if (!y || !x) return invalid(scope, "y and x must not be null");
  return dispatch_float(dtype, scope, [&](auto tag) -> crb_status {
    using T = decltype(tag);
    using A = acc_t<T>;
    const bool vec = vector_ok(16, y, x);
    axpby_kernel<T><<<vec_grid(numel, pack_of<T>(), vec), kThreads, 0, stream()>>>(
        static_cast<T*>(y), static_cast<const T*>(x), static_cast<A>(alpha), static_cast<A>(beta), numel, vec);
    CRB_CUDA_CHECK_LAUNCH(scope);
    return CRB_OK;
  });
}

crb_status sum(void* out, const void* x, int64_t numel, crb_dtype dtype) {
  OpScope scope("sum", "x (%lld) %s", (long long)numel, crb_dtype_name(dtype));
  CRB_TRY(ensure_init(scope));
  CRB_TRY(check_numel(scope, numel));
  if (!out || (numel > 0 && !x)) return invalid(scope, "out and x must not be null");
  return dispatch_all(dtype, scope, [&](auto tag) -> crb_status {
    using T = decltype(tag);
    if constexpr (std::is_same<T, uint8_t>::value) {
      return unsupported(scope, "sum takes float, int32 or int64 tensors, got uint8");
    } else {
      using A = typename std::conditional<std::is_integral<T>::value, int64_t, double>::type;
      constexpr int kSumThreads = 512;
      const bool vec = vector_ok(16, x);
      unsigned int blocks = vec_grid(numel, pack_of<T>(), vec, kSumThreads);
      if (blocks > 1024) blocks = 1024;
      DeviceBuffer partial;
      CRB_TRY(partial.allocate(blocks * sizeof(A), scope));
      sum_partial_kernel<T, A><<<blocks, kSumThreads, 0, stream()>>>(partial.as<A>(), static_cast<const T*>(x), numel,
                                                                      vec);
      CRB_CUDA_CHECK_LAUNCH(scope);
      sum_final_kernel<T, A><<<1, 1024, 0, stream()>>>(static_cast<T*>(out), partial.as<A>(), static_cast<int>(blocks));
      CRB_CUDA_CHECK_LAUNCH(scope);
      return CRB_OK;
    }
  });
}

}  // namespace crb_cuda
