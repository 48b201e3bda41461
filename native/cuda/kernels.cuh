// Device-side helpers shared by the kernel files: element types, loads and stores that widen to
// the accumulation type (float for float32/float16/bfloat16, double for float64), launch sizes,
// block reductions, and the host-side dtype dispatch.
#ifndef CRB_CUDA_KERNELS_CUH
#define CRB_CUDA_KERNELS_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "common.h"
#include "context.h"

namespace crb_cuda {

constexpr int kThreads = 256;

template <typename T> struct AccOf { using type = float; };
template <> struct AccOf<double> { using type = double; };
template <typename T> using acc_t = typename AccOf<T>::type;

// --- conversions; every path rounds once (to the destination type)
__device__ __forceinline__ double to_double(float v) { return v; }
__device__ __forceinline__ double to_double(double v) { return v; }
__device__ __forceinline__ double to_double(__half v) { return __half2float(v); }
__device__ __forceinline__ double to_double(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ double to_double(int32_t v) { return v; }
__device__ __forceinline__ double to_double(int64_t v) { return static_cast<double>(v); }
__device__ __forceinline__ double to_double(uint8_t v) { return v; }

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(double v) { return static_cast<float>(v); }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T> __device__ __forceinline__ acc_t<T> load(const T* p, int64_t i);
template <> __device__ __forceinline__ float load<float>(const float* p, int64_t i) { return p[i]; }
template <> __device__ __forceinline__ double load<double>(const double* p, int64_t i) { return p[i]; }
template <> __device__ __forceinline__ float load<__half>(const __half* p, int64_t i) { return __half2float(p[i]); }
template <> __device__ __forceinline__ float load<__nv_bfloat16>(const __nv_bfloat16* p, int64_t i) {
  return __bfloat162float(p[i]);
}

template <typename T> __device__ __forceinline__ T from_float(float v);
template <> __device__ __forceinline__ float from_float<float>(float v) { return v; }
template <> __device__ __forceinline__ double from_float<double>(float v) { return v; }
template <> __device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

template <typename T> __device__ __forceinline__ T from_double(double v);
template <> __device__ __forceinline__ float from_double<float>(double v) { return static_cast<float>(v); }
template <> __device__ __forceinline__ double from_double<double>(double v) { return v; }
template <> __device__ __forceinline__ __half from_double<__half>(double v) { return __double2half(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_double<__nv_bfloat16>(double v) { return __double2bfloat16(v); }
template <> __device__ __forceinline__ int32_t from_double<int32_t>(double v) {
  return static_cast<int32_t>(static_cast<int64_t>(v));
}
template <> __device__ __forceinline__ int64_t from_double<int64_t>(double v) { return static_cast<int64_t>(v); }
// Out-of-range values wrap modulo 256 through int64, as PyTorch's float -> uint8 cast does.
template <> __device__ __forceinline__ uint8_t from_double<uint8_t>(double v) {
  return static_cast<uint8_t>(static_cast<int64_t>(v));
}

template <typename T> __device__ __forceinline__ void store(T* p, int64_t i, acc_t<T> v);
template <> __device__ __forceinline__ void store<float>(float* p, int64_t i, float v) { p[i] = v; }
template <> __device__ __forceinline__ void store<double>(double* p, int64_t i, double v) { p[i] = v; }
template <> __device__ __forceinline__ void store<__half>(__half* p, int64_t i, float v) { p[i] = __float2half_rn(v); }
template <> __device__ __forceinline__ void store<__nv_bfloat16>(__nv_bfloat16* p, int64_t i, float v) {
  p[i] = __float2bfloat16_rn(v);
}

#define CRB_GRID_STRIDE(i, n)                                                         \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)

// Sum of `v` over the block (blockDim.x a multiple of 32, at most 1024); the result is valid
// in thread 0. Fixed order, so results are deterministic run to run.
template <typename A>
__device__ __forceinline__ A block_sum(A v) {
  __shared__ A warp_sums[32];
  for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();  // warp_sums may still be read by a previous call
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  const int warps = (blockDim.x + 31) >> 5;
  v = threadIdx.x < warps ? warp_sums[threadIdx.x] : A(0);
  if (warp == 0)
    for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
  return v;
}

// --- Note [vector loads]
// Memory-bound element-wise kernels move 16 bytes per load/store (llm.c's Packed128): a
// `Vec<T, N>` of N elements, aligned to its size, read and written through one integer of that
// size so nvcc emits a single ld/st.global.v4 (or .v2, for smaller vectors). The host checks at
// run time that every pointer is aligned to the vector size (`aligned_to`); otherwise, and for
// the numel % N elements after the vector body, the kernels take their scalar path. Each
// element still goes through exactly the scalar operations, so results are bit-identical.
template <int Bytes> struct BitsOf;
template <> struct BitsOf<1> { using type = uint8_t; };
template <> struct BitsOf<2> { using type = uint16_t; };
template <> struct BitsOf<4> { using type = uint32_t; };
template <> struct BitsOf<8> { using type = uint2; };
template <> struct BitsOf<16> { using type = uint4; };

template <typename T, int N>
struct alignas(sizeof(T) * N) Vec {
  static_assert(sizeof(T) * N <= 16, "a vector is at most 16 bytes");
  using bits = typename BitsOf<static_cast<int>(sizeof(T)) * N>::type;
  T v[N];
  __device__ __forceinline__ T& operator[](int k) { return v[k]; }
  __device__ __forceinline__ const T& operator[](int k) const { return v[k]; }
};

// Elements per 16-byte vector of T.
template <typename T> __host__ __device__ constexpr int pack_of() { return static_cast<int>(16 / sizeof(T)); }
template <typename T> using Packed = Vec<T, pack_of<T>()>;

// Vector `vi` of `p` (elements vi * N .. vi * N + N - 1); p aligned to sizeof(Vec<T, N>).
template <typename T, int N>
__device__ __forceinline__ Vec<T, N> load_vec(const T* p, int64_t vi) {
  using B = typename Vec<T, N>::bits;
  Vec<T, N> r;
  *reinterpret_cast<B*>(&r) = reinterpret_cast<const B*>(p)[vi];
  return r;
}
template <typename T, int N>
__device__ __forceinline__ void store_vec(T* p, int64_t vi, const Vec<T, N>& r) {
  using B = typename Vec<T, N>::bits;
  reinterpret_cast<B*>(p)[vi] = *reinterpret_cast<const B*>(&r);
}

// Host side: whether every pointer is aligned to `bytes` (null pointers count as aligned).
inline bool aligned_to(size_t bytes) { return bytes > 0; }
template <typename... Ps>
inline bool aligned_to(size_t bytes, const void* p, Ps... rest) {
  return reinterpret_cast<uintptr_t>(p) % bytes == 0 && aligned_to(bytes, rest...);
}

// Whether a kernel may take its vector path: every pointer aligned to `bytes`, and the test hook
// CRB_TEST_SCALAR_KERNELS (read at init) off; with it on, every kernel runs its scalar path,
// which is what a misaligned pointer gets (tensors from the allocator are always aligned).
template <typename... Ps>
inline bool vector_ok(size_t bytes, Ps... ptrs) {
  return !options().test_scalar_kernels.load(std::memory_order_relaxed) && aligned_to(bytes, ptrs...);
}

// Grid-stride loop over `numel` elements in vectors of N: `vec_fn(vi)` for each whole vector
// when `vec` (the host's alignment check), then `scalar_fn(i)` for the remaining elements (all
// of them when !vec). Launch with grid_for(vec ? numel / N : numel, threads).
template <int N, typename VecFn, typename ScalarFn>
__device__ __forceinline__ void vector_loop(int64_t numel, bool vec, VecFn&& vec_fn, ScalarFn&& scalar_fn) {
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  int64_t body = 0;
  if (vec) {
    const int64_t nv = numel / N;
    for (int64_t vi = tid; vi < nv; vi += stride) vec_fn(vi);
    body = nv * N;
  }
  for (int64_t i = body + tid; i < numel; i += stride) scalar_fn(i);
}

// Blocks for a `vector_loop` over `numel` elements in vectors of n (when `vec`).
inline unsigned int vec_grid(int64_t numel, int n, bool vec, int threads = kThreads) {
  return grid_for(vec && numel >= n ? numel / n : numel, threads);
}

// Channel of flat element i of an (N, C, HW) tensor, ch = (i / inner) % C with inner = HW
// (NCHW) or 1 (NHWC), kept up to date as i advances, so a grid-stride loop divides once per
// thread instead of twice (int64) per element.
struct ChannelCursor {
  int64_t inner, c, pos, ch;    // pos = i % inner
  int64_t step_r, step_qc;      // step % inner, (step / inner) % c
  __device__ __forceinline__ ChannelCursor(int64_t i, int64_t step, int64_t c_, int64_t hw, bool nhwc)
      : inner(nhwc ? 1 : hw), c(c_) {
    pos = i % inner;
    ch = (i / inner) % c;
    step_r = step % inner;
    step_qc = (step / inner) % c;
  }
  // i += 1
  __device__ __forceinline__ void next() {
    if (++pos == inner) {
      pos = 0;
      if (++ch == c) ch = 0;
    }
  }
  // i += step
  __device__ __forceinline__ void advance() {
    pos += step_r;
    int64_t carry = 0;
    if (pos >= inner) { pos -= inner; carry = 1; }
    ch += step_qc + carry;
    if (ch >= c) ch -= c;
  }
};

// Host-side dispatch on a floating dtype: `fn(T{})` with T the element type. Returns the
// function's crb_status, or CRB_ERR_UNSUPPORTED naming the dtype.
template <typename Fn>
crb_status dispatch_float(crb_dtype dtype, const OpScope& scope, Fn&& fn) {
  switch (dtype) {
    case CRB_F32: return fn(float{});
    case CRB_F64: return fn(double{});
    case CRB_F16: return fn(__half{});
    case CRB_BF16: return fn(__nv_bfloat16{});
    default: return unsupported(scope, "dtype must be a floating type, got %s", crb_dtype_name(dtype));
  }
}

// Same over every dtype of the ABI.
template <typename Fn>
crb_status dispatch_all(crb_dtype dtype, const OpScope& scope, Fn&& fn) {
  switch (dtype) {
    case CRB_F32: return fn(float{});
    case CRB_F64: return fn(double{});
    case CRB_F16: return fn(__half{});
    case CRB_BF16: return fn(__nv_bfloat16{});
    case CRB_I32: return fn(int32_t{});
    case CRB_I64: return fn(int64_t{});
    case CRB_U8: return fn(uint8_t{});
  }
  return invalid(scope, "unknown dtype %d", static_cast<int>(dtype));
}

// Index of element (n, c, hw) of an (N, C, HW) tensor stored in `layout`.
__device__ __forceinline__ int64_t nchw_index(bool nhwc, int64_t n, int64_t c, int64_t hw, int64_t C, int64_t HW) {
  return nhwc ? (n * HW + hw) * C + c : (n * C + c) * HW + hw;
}

}  // namespace crb_cuda

#endif  // CRB_CUDA_KERNELS_CUH
