// Element-wise ops and the full sum, own kernels. Every argument is a flat run of `numel`
// elements (layout does not matter); float16/bfloat16 compute in float32, float64 in float64.
#include "allocator.h"
#include "kernels.cuh"
#include "ops.h"

namespace crb_cuda {
namespace {

// dst: (numel) of T
template <typename T>
__global__ void fill_kernel(T* dst, int64_t numel, T value) {
  CRB_GRID_STRIDE(i, numel) dst[i] = value;
}


// dst: (numel) of D, src: (numel) of S. Integer <-> integer stays exact (through int64);
// anything involving a float goes through double, which holds every value of every type here
// except int64 beyond 2^53.
template <typename D, typename S>
__global__ void cast_kernel(D* dst, const S* src, int64_t numel) {
  CRB_GRID_STRIDE(i, numel) {
    if constexpr (std::is_integral<D>::value && std::is_integral<S>::value)
      dst[i] = static_cast<D>(static_cast<int64_t>(src[i]));
    else
      dst[i] = from_double<D>(to_double(src[i]));
  }
}

// out, a, b: (numel)
template <typename T>
__global__ void add_kernel(T* out, const T* a, const T* b, int64_t numel) {
  CRB_GRID_STRIDE(i, numel) {
    if constexpr (std::is_integral<T>::value)
      out[i] = a[i] + b[i];
    else
      store(out, i, load(a, i) + load(b, i));
  }
}

// y, x: (numel). beta == 0 does not read y (BLAS convention), so y may start as garbage.
template <typename T>
__global__ void axpby_kernel(T* y, const T* x, acc_t<T> alpha, acc_t<T> beta, int64_t numel) {
  CRB_GRID_STRIDE(i, numel) {
    acc_t<T> v = alpha * load(x, i);
    if (beta != acc_t<T>(0)) v += beta * load(y, i);
    store(y, i, v);
  }
}

// Two passes, fixed order (deterministic): partial[block] then out[0] = sum(partial).
// Floats accumulate in double: the sum is memory-bound, so precision is free.
template <typename T, typename A>
__global__ void sum_partial_kernel(A* partial, const T* x, int64_t numel) {
  A acc = 0;
  CRB_GRID_STRIDE(i, numel) {
    if constexpr (std::is_integral<T>::value)
      acc += static_cast<A>(x[i]);
    else
      acc += static_cast<A>(to_double(x[i]));
  }
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
    fill_kernel<T><<<grid_for(numel, kThreads), kThreads, 0, stream()>>>(static_cast<T*>(dst), numel, v);
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
      cast_kernel<D, S><<<grid_for(numel, kThreads), kThreads, 0, stream()>>>(static_cast<D*>(dst),
                                                                               static_cast<const S*>(src), numel);
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
      add_kernel<T><<<grid_for(numel, kThreads), kThreads, 0, stream()>>>(
          static_cast<T*>(out), static_cast<const T*>(a), static_cast<const T*>(b), numel);
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
    axpby_kernel<T><<<grid_for(numel, kThreads), kThreads, 0, stream()>>>(
        static_cast<T*>(y), static_cast<const T*>(x), static_cast<A>(alpha), static_cast<A>(beta), numel);
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
      unsigned int blocks = grid_for(numel, kSumThreads);
      if (blocks > 1024) blocks = 1024;
      DeviceBuffer partial;
      CRB_TRY(partial.allocate(blocks * sizeof(A), scope));
      sum_partial_kernel<T, A><<<blocks, kSumThreads, 0, stream()>>>(partial.as<A>(), static_cast<const T*>(x), numel);
      CRB_CUDA_CHECK_LAUNCH(scope);
      sum_final_kernel<T, A><<<1, 1024, 0, stream()>>>(static_cast<T*>(out), partial.as<A>(), static_cast<int>(blocks));
      CRB_CUDA_CHECK_LAUNCH(scope);
      return CRB_OK;
    }
  });
}

}  // namespace crb_cuda
