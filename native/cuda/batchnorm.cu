// Batch normalization over (n, h, w) per channel, through cuDNN (training forward/backward and
// inference forward) where PyTorch would use cuDNN, and through kernels of our own otherwise
// (Note [which batch norms go to cuDNN]) and for the inference-mode backward, which cuDNN lacks.
//   x, y, dy, dx: (n, c, h, w) in d->layout, dtype d->dtype
//   gamma, beta, running_mean, running_var, save_mean, save_invstd, dgamma, dbeta: (c), float32
//   (float64 when d->dtype is float64): cuDNN's "derived" BN parameter type.
//
// Note [cuDNN BN semantics = PyTorch's]
// cuDNN's exponentialAverageFactor is PyTorch's momentum (running = (1 - f) * running + f * stat),
// and it updates running_var with the unbiased batch variance, as PyTorch does. Its
// resultSaveMean / resultSaveInvVariance are the batch mean and 1/sqrt(biased var + eps): the
// ABI's save_mean / save_invstd, which backward then reads. cuDNN takes both running pointers
// or neither, so a lone one gets a scratch partner.
//
// Note [BN Ex calls and reserve space]
// The *Ex calls may want a "reserve space" written by forward and read by backward; the ABI
// has no tensor to carry it. When cuDNN reports a reserve size of zero (plain BN, no fused
// activation) the Ex calls are used; otherwise the classic calls, which need none.
//
// Note [which batch norms go to cuDNN]
// PyTorch (Normalization.cpp, _select_batch_norm_backend) sends BN to cuDNN only when the input
// is not bfloat16, N <= 880801 in training or N <= 65535 in inference, numel < 2^31 - 1 (some
// cuDNN kernels index with 32 bits) and eps >= CUDNN_BN_MIN_EPSILON; everything else runs its
// native kernels. The same rule here, with our kernels below (fixed-order reductions in float,
// double for float64) as the native path. bfloat16 stays off cuDNN until a GPU run shows
// cuDNN's bfloat16 BN accurate (test/63.cuda-numerics.test.mjs compares it with the CPU).
// Channels-last training uses CUDNN_BATCHNORM_SPATIAL_PERSISTENT, as PyTorch's
// getCudnnBatchNormMode does (the plain NHWC kernels are very slow); with the deterministic
// option it takes our kernels instead (fixed order, never atomics). Forward and backward apply
// the same rule to the same descriptor, and both paths save the same mean and 1/sqrt(var + eps),
// so a backward always matches its forward.
#include <climits>
#include <cmath>

#include "allocator.h"
#include "cudnn_utils.h"
#include "kernels.cuh"
#include "ops.h"

namespace crb_cuda {
namespace {

template <typename T> struct ParamOf { using type = float; };
template <> struct ParamOf<double> { using type = double; };

// Inference-mode backward, with invstd = 1/sqrt(running_var + eps):
//   dbeta[c] = sum dy,  dgamma[c] = invstd[c] * sum dy * (x - running_mean[c])   (one block per c)
// Each thread walks j = threadIdx.x, + blockDim.x, ... over the channel's n * hw elements as
// before (same order, same sums); (image, pixel) = (j / hw, j % hw) is kept up to date by adding
// blockDim.x's quotient and remainder instead of two int64 divisions per element.
template <typename T, typename P>
__global__ void bn_eval_param_grad_kernel(P* dgamma, P* dbeta, const T* x, const T* dy, const P* running_mean,
                                          const P* running_var, double eps, int64_t n, int64_t c, int64_t hw,
                                          bool nhwc) {
  using A = acc_t<T>;
  const int64_t ch = blockIdx.x;
  const A mean = static_cast<A>(running_mean[ch]);
  A sum_dy = 0, sum_dy_xc = 0;
  const int64_t step_q = hw > 0 ? blockDim.x / hw : 0, step_r = hw > 0 ? blockDim.x % hw : 0;
  int64_t image = hw > 0 ? threadIdx.x / hw : 0, pixel = hw > 0 ? threadIdx.x % hw : 0;
  for (int64_t j = threadIdx.x; j < n * hw; j += blockDim.x) {
    const int64_t idx = nchw_index(nhwc, image, ch, pixel, c, hw);
    const A g = load(dy, idx);
    sum_dy += g;
    sum_dy_xc += g * (load(x, idx) - mean);
    image += step_q;
    pixel += step_r;
    if (pixel >= hw) { pixel -= hw; image += 1; }
  }
  sum_dy = block_sum(sum_dy);
  sum_dy_xc = block_sum(sum_dy_xc);
  if (threadIdx.x == 0) {
    const A invstd = A(1) / sqrt(static_cast<A>(running_var[ch]) + static_cast<A>(eps));
    if (dbeta) dbeta[ch] = static_cast<P>(sum_dy);
    if (dgamma) dgamma[ch] = static_cast<P>(sum_dy_xc * invstd);
  }
}

// Per-channel element-wise kernels (inference forward, inference input gradient): memory-bound,
// so 16-byte vectors of x/dy and y/dx (Note [vector loads] in kernels.cuh), and the channel of
// each element from a ChannelCursor (one division per thread, not two int64 ones per element).
// `fn(v, ch)` maps one element's value in A to its result; the per-channel parameters are read
// (from cache) per element, exactly as the scalar kernels did.
template <typename T, typename Fn>
__device__ __forceinline__ void bn_channel_map(T* out, const T* in, int64_t numel, int64_t c, int64_t hw, bool nhwc,
                                               bool vec, Fn&& fn) {
  constexpr int N = pack_of<T>();
  if (numel <= 0) return;  // then c or hw may be 0: no cursor
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  int64_t body = 0;
  if (vec) {
    const int64_t nv = numel / N;
    ChannelCursor cur(tid * N, stride * N, c, hw, nhwc);
    for (int64_t vi = tid; vi < nv; vi += stride, cur.advance()) {
      const Vec<T, N> v = load_vec<T, N>(in, vi);
      Vec<T, N> r;
      ChannelCursor e = cur;
#pragma unroll
      for (int k = 0; k < N; k++, e.next()) store(&r[k], 0, fn(load(&v[k], 0), e.ch));
      store_vec<T, N>(out, vi, r);
    }
    body = nv * N;
  }
  if (body + tid < numel) {
    ChannelCursor cur(body + tid, stride, c, hw, nhwc);
    for (int64_t i = body + tid; i < numel; i += stride, cur.advance()) store(out, i, fn(load(in, i), cur.ch));
  }
}

//   dx = dy * gamma[c] / sqrt(running_var[c] + eps)
template <typename T, typename P>
__global__ void bn_eval_input_grad_kernel(T* dx, const T* dy, const P* gamma, const P* running_var, double eps,
                                          int64_t numel, int64_t c, int64_t hw, bool nhwc, bool vec) {
  using A = acc_t<T>;
  bn_channel_map(dx, dy, numel, c, hw, nhwc, vec, [&](A g, int64_t ch) -> A {
    const A scale = static_cast<A>(gamma[ch]) / sqrt(static_cast<A>(running_var[ch]) + static_cast<A>(eps));
    return g * scale;
  });
}

#define BN_SCOPE(name)                                                                                         \
  OpScope scope(name, "x (%d, %d, %d, %d) %s %s, eps %g, momentum %g", d ? d->n : 0, d ? d->c : 0, d ? d->h : 0, \
                d ? d->w : 0, d ? crb_dtype_name(d->dtype) : "", d ? crb_layout_name(d->layout) : "", d ? d->eps : 0.0,  \
                d ? d->momentum : 0.0)

// `train_forward`: the statistics come from the batch (crb_geom_batchnorm).
crb_status validate_bn(const crb_bn_desc* d, const OpScope& scope, bool train_forward = false) {
  crb_geom_error e;
  CRB_TRY(check(crb_bn_check(d, train_forward, &e), e, scope));
  if (!is_float_dtype(d->dtype)) return unsupported(scope, "batch norm takes float tensors, got %s", crb_dtype_name(d->dtype));
  return CRB_OK;
}

// Note [which batch norms go to cuDNN]
bool bn_uses_cudnn(const crb_bn_desc& d, bool training) {
  if (d.dtype == CRB_BF16) return false;
  const int64_t numel = static_cast<int64_t>(d.n) * d.c * d.h * d.w;
  if (numel >= INT32_MAX) return false;
  if (d.n > (training ? 880801 : 65535)) return false;
  if (!(d.eps >= CUDNN_BN_MIN_EPSILON)) return false;
  if (training && d.layout == CRB_NHWC && options().deterministic.load()) return false;
  return true;
}

cudnnBatchNormMode_t bn_mode(const crb_bn_desc& d, bool training) {
  if (training && d.layout == CRB_NHWC) return CUDNN_BATCHNORM_SPATIAL_PERSISTENT;
  return CUDNN_BATCHNORM_SPATIAL;
}

// --- our batch norm kernels, one block per channel for the reductions (kBnThreads threads)
constexpr int kBnThreads = 512;

// Training forward: batch mean, biased variance (two passes), save_mean, save_invstd =
// 1/sqrt(var + eps), the running statistics (unbiased variance; either may be null), then
// y = (x - mean) * invstd * gamma + beta.
template <typename T, typename P>
__global__ void bn_train_forward_kernel(T* y, P* save_mean, P* save_invstd, P* running_mean, P* running_var,
                                        const T* x, const P* gamma, const P* beta, double eps, double momentum,
                                        int64_t n, int64_t c, int64_t hw, bool nhwc) {
  using A = acc_t<T>;
  __shared__ A stats[2];
  const int64_t ch = blockIdx.x;
  const int64_t count = n * hw;
  A sum = 0;
  for (int64_t j = threadIdx.x; j < count; j += blockDim.x) sum += load(x, nchw_index(nhwc, j / hw, ch, j % hw, c, hw));
  sum = block_sum(sum);
  if (threadIdx.x == 0) stats[0] = sum / static_cast<A>(count);
  __syncthreads();
  const A mean = stats[0];
  A sq = 0;
  for (int64_t j = threadIdx.x; j < count; j += blockDim.x) {
    const A dev = load(x, nchw_index(nhwc, j / hw, ch, j % hw, c, hw)) - mean;
    sq += dev * dev;
  }
  sq = block_sum(sq);
  if (threadIdx.x == 0) {
    const A invstd = A(1) / sqrt(sq / static_cast<A>(count) + static_cast<A>(eps));
    stats[1] = invstd;
    save_mean[ch] = static_cast<P>(mean);
    save_invstd[ch] = static_cast<P>(invstd);
    const A m = static_cast<A>(momentum);
    if (running_mean) running_mean[ch] = static_cast<P>((A(1) - m) * static_cast<A>(running_mean[ch]) + m * mean);
    if (running_var) {
      const A unbiased = sq / static_cast<A>(count - 1);  // count > 1: crb_bn_check (train_forward)
      running_var[ch] = static_cast<P>((A(1) - m) * static_cast<A>(running_var[ch]) + m * unbiased);
    }
  }
  __syncthreads();
  const A scale = stats[1] * static_cast<A>(gamma[ch]);
  const A shift = static_cast<A>(beta[ch]);
  for (int64_t j = threadIdx.x; j < count; j += blockDim.x) {
    const int64_t idx = nchw_index(nhwc, j / hw, ch, j % hw, c, hw);
    store(y, idx, (load(x, idx) - mean) * scale + shift);
  }
}

// Inference forward: y = (x - running_mean) / sqrt(running_var + eps) * gamma + beta
// (bn_channel_map above: vector loads, channel from a cursor).
template <typename T, typename P>
__global__ void bn_eval_forward_kernel(T* y, const T* x, const P* gamma, const P* beta, const P* running_mean,
                                       const P* running_var, double eps, int64_t numel, int64_t c, int64_t hw,
                                       bool nhwc, bool vec) {
  using A = acc_t<T>;
  bn_channel_map(y, x, numel, c, hw, nhwc, vec, [&](A v, int64_t ch) -> A {
    const A invstd = A(1) / sqrt(static_cast<A>(running_var[ch]) + static_cast<A>(eps));
    return (v - static_cast<A>(running_mean[ch])) * invstd * static_cast<A>(gamma[ch]) + static_cast<A>(beta[ch]);
  });
}

// Training backward, with xhat = (x - save_mean) * save_invstd and M = n * h * w:
//   dbeta = sum dy,  dgamma = sum dy * xhat,
//   dx = gamma * invstd * (dy - dbeta / M - xhat * dgamma / M)
template <typename T, typename P>
__global__ void bn_train_backward_kernel(T* dx, P* dgamma, P* dbeta, const T* x, const T* dy, const P* gamma,
                                         const P* save_mean, const P* save_invstd, int64_t n, int64_t c, int64_t hw,
                                         bool nhwc) {
  using A = acc_t<T>;
  __shared__ A sums[2];
  const int64_t ch = blockIdx.x;
  const int64_t count = n * hw;
  const A mean = static_cast<A>(save_mean[ch]);
  const A invstd = static_cast<A>(save_invstd[ch]);
  A sum_dy = 0, sum_dy_xhat = 0;
  for (int64_t j = threadIdx.x; j < count; j += blockDim.x) {
    const int64_t idx = nchw_index(nhwc, j / hw, ch, j % hw, c, hw);
    const A g = load(dy, idx);
    sum_dy += g;
    sum_dy_xhat += g * (load(x, idx) - mean) * invstd;
  }
  sum_dy = block_sum(sum_dy);
  sum_dy_xhat = block_sum(sum_dy_xhat);
  if (threadIdx.x == 0) {
    sums[0] = sum_dy;
    sums[1] = sum_dy_xhat;
    if (dbeta) dbeta[ch] = static_cast<P>(sum_dy);
    if (dgamma) dgamma[ch] = static_cast<P>(sum_dy_xhat);
  }
  __syncthreads();
  const A mean_dy = sums[0] / static_cast<A>(count);
  const A mean_dy_xhat = sums[1] / static_cast<A>(count);
  const A scale = static_cast<A>(gamma[ch]) * invstd;
  for (int64_t j = threadIdx.x; j < count; j += blockDim.x) {
    const int64_t idx = nchw_index(nhwc, j / hw, ch, j % hw, c, hw);
    const A xhat = (load(x, idx) - mean) * invstd;
    store(dx, idx, scale * (load(dy, idx) - mean_dy - xhat * mean_dy_xhat));
  }
}

struct BnSetup {
  TensorDescriptor x;
  TensorDescriptor param;  // (1, c, 1, 1) of the derived parameter type
};

crb_status make_bn_setup(const crb_bn_desc& d, cudnnBatchNormMode_t mode, BnSetup& s, const OpScope& scope) {
  CRB_TRY(set_tensor_4d(s.x, d.dtype, d.layout, d.n, d.c, d.h, d.w, scope));
  CRB_TRY(s.param.create(scope));
  CRB_CUDNN_CHECK(scope, cudnnDeriveBNTensorDescriptor(s.param.get(), s.x.get(), mode));
  return CRB_OK;
}

size_t param_bytes(const crb_bn_desc& d) { return static_cast<size_t>(d.c) * (d.dtype == CRB_F64 ? 8 : 4); }

// cuDNN always writes both parameter gradients: points the ones not wanted (null) into scratch.
crb_status param_grad_scratch(const crb_bn_desc& d, DeviceBuffer& scratch, void** dgamma, void** dbeta,
                              const OpScope& scope) {
  if (*dgamma && *dbeta) return CRB_OK;
  CRB_TRY(scratch.allocate(2 * param_bytes(d), scope));
  if (!*dgamma) *dgamma = scratch.get();
  if (!*dbeta) *dbeta = static_cast<char*>(scratch.get()) + param_bytes(d);
  return CRB_OK;
}

// Note [BN Ex calls and reserve space]: the *Ex calls when this cuDNN reports that plain BN
// needs no reserve space; an unknown answer takes the classic calls.
bool use_ex_calls(CudnnLease& lease, cudnnBatchNormMode_t mode, const BnSetup& s) {
  size_t reserve = 1;
  if (cudnnGetBatchNormalizationTrainingExReserveSpaceSize(lease.handle(), mode, CUDNN_BATCHNORM_OPS_BN, nullptr,
                                                           s.x.get(), &reserve) != CUDNN_STATUS_SUCCESS)
    return false;
  return reserve == 0;
}

}  // namespace

crb_status batchnorm_forward_train(const crb_bn_desc* d, const void* x, const void* gamma, const void* beta, void* y,
                                   void* running_mean, void* running_var, void* save_mean, void* save_invstd) {
  BN_SCOPE("batchnorm_forward_train");
  CRB_TRY(ensure_init(scope));
  CRB_TRY(validate_bn(d, scope, true));
  if (!x || !gamma || !beta || !y || !save_mean || !save_invstd)
    return invalid(scope, "x, gamma, beta, y, save_mean and save_invstd must not be null");

  if (!bn_uses_cudnn(*d, true)) {  // Note [which batch norms go to cuDNN]
    const int64_t hw = static_cast<int64_t>(d->h) * d->w;
    return dispatch_float(d->dtype, scope, [&](auto tag) -> crb_status {
      using T = decltype(tag);
      using P = typename ParamOf<T>::type;
      bn_train_forward_kernel<T, P><<<static_cast<unsigned int>(d->c), kBnThreads, 0, stream()>>>(
          static_cast<T*>(y), static_cast<P*>(save_mean), static_cast<P*>(save_invstd), static_cast<P*>(running_mean),
          static_cast<P*>(running_var), static_cast<const T*>(x), static_cast<const P*>(gamma),
          static_cast<const P*>(beta), d->eps, d->momentum, d->n, d->c, hw, d->layout == CRB_NHWC);
      CRB_CUDA_CHECK_LAUNCH(scope);
      return CRB_OK;
    });
  }

  // See Note [cuDNN BN semantics = PyTorch's].
  DeviceBuffer scratch;
  if ((running_mean == nullptr) != (running_var == nullptr)) {
    CRB_TRY(scratch.allocate(param_bytes(*d), scope));
    CRB_CUDA_CHECK(scope, cudaMemsetAsync(scratch.get(), 0, scratch.size(), stream()));
    if (!running_mean) running_mean = scratch.get();
    if (!running_var) running_var = scratch.get();
  }

  const cudnnBatchNormMode_t mode = bn_mode(*d, true);
  CudnnLease lease(scope);
  BnSetup s;
  CRB_TRY(make_bn_setup(*d, mode, s, scope));
  const void* one = kOne.for_dtype(d->dtype);
  const void* zero = kZero.for_dtype(d->dtype);

  if (use_ex_calls(lease, mode, s)) {  // Note [BN Ex calls and reserve space]
    size_t ws_bytes = 0;
    CRB_CUDNN_CHECK(scope, cudnnGetBatchNormalizationForwardTrainingExWorkspaceSize(
                               lease.handle(), mode, CUDNN_BATCHNORM_OPS_BN, s.x.get(), nullptr, s.x.get(),
                               s.param.get(), nullptr, &ws_bytes));
    void* ws = nullptr;
    CRB_TRY(lease.workspace(ws_bytes, &ws, scope));
    CRB_CUDNN_CHECK(scope, cudnnBatchNormalizationForwardTrainingEx(
                               lease.handle(), mode, CUDNN_BATCHNORM_OPS_BN, one, zero, s.x.get(), x, nullptr,
                               nullptr, s.x.get(), y, s.param.get(), gamma, beta, d->momentum, running_mean,
                               running_var, d->eps, save_mean, save_invstd, nullptr, ws, ws_bytes, nullptr, 0));
  } else {
    CRB_CUDNN_CHECK(scope, cudnnBatchNormalizationForwardTraining(
                               lease.handle(), mode, one, zero, s.x.get(), x, s.x.get(), y, s.param.get(), gamma,
                               beta, d->momentum, running_mean, running_var, d->eps, save_mean, save_invstd));
  }
  return CRB_OK;
}

crb_status batchnorm_forward_eval(const crb_bn_desc* d, const void* x, const void* gamma, const void* beta,
                                  const void* running_mean, const void* running_var, void* y) {
  BN_SCOPE("batchnorm_forward_eval");
  CRB_TRY(ensure_init(scope));
  CRB_TRY(validate_bn(d, scope));
  if (!x || !gamma || !beta || !running_mean || !running_var || !y)
    return invalid(scope, "x, gamma, beta, running_mean, running_var and y must not be null");
  if (!bn_uses_cudnn(*d, false)) {  // Note [which batch norms go to cuDNN]
    const int64_t hw = static_cast<int64_t>(d->h) * d->w;
    const int64_t numel = static_cast<int64_t>(d->n) * d->c * hw;
    return dispatch_float(d->dtype, scope, [&](auto tag) -> crb_status {
      using T = decltype(tag);
      using P = typename ParamOf<T>::type;
      const bool vec = vector_ok(16, y, x);
      bn_eval_forward_kernel<T, P><<<vec_grid(numel, pack_of<T>(), vec), kThreads, 0, stream()>>>(
          static_cast<T*>(y), static_cast<const T*>(x), static_cast<const P*>(gamma), static_cast<const P*>(beta),
          static_cast<const P*>(running_mean), static_cast<const P*>(running_var), d->eps, numel, d->c, hw,
          d->layout == CRB_NHWC, vec);
      CRB_CUDA_CHECK_LAUNCH(scope);
      return CRB_OK;
    });
  }
  const cudnnBatchNormMode_t mode = bn_mode(*d, false);
  CudnnLease lease(scope);
  BnSetup s;
  CRB_TRY(make_bn_setup(*d, mode, s, scope));
  CRB_CUDNN_CHECK(scope, cudnnBatchNormalizationForwardInference(
                             lease.handle(), mode, kOne.for_dtype(d->dtype), kZero.for_dtype(d->dtype), s.x.get(), x,
                             s.x.get(), y, s.param.get(), gamma, beta, running_mean, running_var, d->eps));
  return CRB_OK;
}

crb_status batchnorm_backward_train(const crb_bn_desc* d, const void* x, const void* dy, const void* gamma,
                                    const void* save_mean, const void* save_invstd, void* dx, void* dgamma,
                                    void* dbeta) {
  BN_SCOPE("batchnorm_backward_train");
  CRB_TRY(ensure_init(scope));
  CRB_TRY(validate_bn(d, scope));
  if (!x || !dy || !gamma || !save_mean || !save_invstd || !dx)
    return invalid(scope, "x, dy, gamma, save_mean, save_invstd and dx must not be null");
  if (!bn_uses_cudnn(*d, true)) {  // Note [which batch norms go to cuDNN]: the forward's choice
    const int64_t hw = static_cast<int64_t>(d->h) * d->w;
    return dispatch_float(d->dtype, scope, [&](auto tag) -> crb_status {
      using T = decltype(tag);
      using P = typename ParamOf<T>::type;
      bn_train_backward_kernel<T, P><<<static_cast<unsigned int>(d->c), kBnThreads, 0, stream()>>>(
          static_cast<T*>(dx), static_cast<P*>(dgamma), static_cast<P*>(dbeta), static_cast<const T*>(x),
          static_cast<const T*>(dy), static_cast<const P*>(gamma), static_cast<const P*>(save_mean),
          static_cast<const P*>(save_invstd), d->n, d->c, hw, d->layout == CRB_NHWC);
      CRB_CUDA_CHECK_LAUNCH(scope);
      return CRB_OK;
    });
  }
  DeviceBuffer scratch;
  CRB_TRY(param_grad_scratch(*d, scratch, &dgamma, &dbeta, scope));
  const cudnnBatchNormMode_t mode = bn_mode(*d, true);
  CudnnLease lease(scope);
  BnSetup s;
  CRB_TRY(make_bn_setup(*d, mode, s, scope));
  const void* one = kOne.for_dtype(d->dtype);
  const void* zero = kZero.for_dtype(d->dtype);

  if (use_ex_calls(lease, mode, s)) {  // Note [BN Ex calls and reserve space]: same choice as forward
    size_t ws_bytes = 0;
    CRB_CUDNN_CHECK(scope, cudnnGetBatchNormalizationBackwardExWorkspaceSize(
                               lease.handle(), mode, CUDNN_BATCHNORM_OPS_BN, s.x.get(), s.x.get(), s.x.get(), nullptr,
                               s.x.get(), s.param.get(), nullptr, &ws_bytes));
    void* ws = nullptr;
    CRB_TRY(lease.workspace(ws_bytes, &ws, scope));
    CRB_CUDNN_CHECK(scope, cudnnBatchNormalizationBackwardEx(
                               lease.handle(), mode, CUDNN_BATCHNORM_OPS_BN, one, zero, one, zero, s.x.get(), x,
                               nullptr, nullptr, s.x.get(), dy, nullptr, nullptr, s.x.get(), dx, s.param.get(), gamma,
                               nullptr, dgamma, dbeta, d->eps, save_mean, save_invstd, nullptr, ws, ws_bytes,
                               nullptr, 0));
  } else {
    CRB_CUDNN_CHECK(scope, cudnnBatchNormalizationBackward(lease.handle(), mode, one, zero, one, zero, s.x.get(), x,
                                                           s.x.get(), dy, s.x.get(), dx, s.param.get(), gamma, dgamma,
                                                           dbeta, d->eps, save_mean, save_invstd));
  }
  return CRB_OK;
}

crb_status batchnorm_backward_eval(const crb_bn_desc* d, const void* x, const void* dy, const void* gamma,
                                   const void* running_mean, const void* running_var, void* dx, void* dgamma,
                                   void* dbeta) {
  BN_SCOPE("batchnorm_backward_eval");
  CRB_TRY(ensure_init(scope));
  CRB_TRY(validate_bn(d, scope));
  if (!x || !dy || !gamma || !running_mean || !running_var || !dx)
    return invalid(scope, "x, dy, gamma, running_mean, running_var and dx must not be null");
  const int64_t hw = static_cast<int64_t>(d->h) * d->w;
  const int64_t numel = static_cast<int64_t>(d->n) * d->c * hw;
  const bool nhwc = d->layout == CRB_NHWC;
  return dispatch_float(d->dtype, scope, [&](auto tag) -> crb_status {
    using T = decltype(tag);
    using P = typename ParamOf<T>::type;
    if (dgamma || dbeta) {
      bn_eval_param_grad_kernel<T, P><<<static_cast<unsigned int>(d->c), 512, 0, stream()>>>(
          static_cast<P*>(dgamma), static_cast<P*>(dbeta), static_cast<const T*>(x), static_cast<const T*>(dy),
          static_cast<const P*>(running_mean), static_cast<const P*>(running_var), d->eps, d->n, d->c, hw, nhwc);
      CRB_CUDA_CHECK_LAUNCH(scope);
    }
    const bool vec = vector_ok(16, dx, dy);
    bn_eval_input_grad_kernel<T, P><<<vec_grid(numel, pack_of<T>(), vec), kThreads, 0, stream()>>>(
        static_cast<T*>(dx), static_cast<const T*>(dy), static_cast<const P*>(gamma),
        static_cast<const P*>(running_var), d->eps, numel, d->c, hw, nhwc, vec);
    CRB_CUDA_CHECK_LAUNCH(scope);
    return CRB_OK;
  });
}


// Note [fused BN + add + ReLU]
// The tail of a residual block, y = relu(bn(x) + z), in one cuDNN call
// (CUDNN_BATCHNORM_OPS_BN_ADD_ACTIVATION), and its backward in one more, which also yields dz.
// cuDNN fuses it only for channels-last half precision with the persistent kernels (and C a
// multiple of 4); its reserve space (the ReLU mask) goes from forward to backward through the
// caller's `reserve` buffer. Anything else reports CRB_ERR_UNSUPPORTED and runs unfused.
//
// Note [fused BN fallback]
// cuDNN can accept the reserve-size query and still refuse the call itself
// (CUDNN_STATUS_NOT_SUPPORTED, e.g. for sizes its persistent kernels cannot take). Then the
// same entry computes the result unfused, so the caller never sees the difference:
//   forward:  BN training forward into y, then y = relu(y + z) (own kernel); the reserve is
//             left unwritten and the shape is remembered, so reserve_size reports it unfusable
//             from then on and the backward of this forward runs unfused too;
//   backward: dz = dy where y > 0 (PyTorch's rule, so a NaN passes through), then BN training
//             backward of dz. It needs only y and the saved statistics, which both forward
//             paths write, so it is right whichever path the forward took.
namespace {

bool fusable(const crb_bn_desc& d) {
  return d.layout == CRB_NHWC && d.dtype == CRB_F16 && d.c % 4 == 0 && !options().deterministic.load();
}

// Shapes whose fused call cuDNN refused (Note [fused BN fallback]); eps and momentum do not matter.
struct UnfusedShapes {
  std::mutex mu;
  std::vector<crb_bn_desc> shapes;
};
UnfusedShapes& unfused_shapes() {
  static auto* u = new UnfusedShapes();  // see Note [no teardown at exit] in context.cu
  return *u;
}
bool same_shape(const crb_bn_desc& a, const crb_bn_desc& b) {
  return a.n == b.n && a.c == b.c && a.h == b.h && a.w == b.w && a.dtype == b.dtype && a.layout == b.layout;
}
bool known_unfusable(const crb_bn_desc& d) {
  UnfusedShapes& u = unfused_shapes();
  std::lock_guard<std::mutex> lock(u.mu);
  for (const crb_bn_desc& s : u.shapes)
    if (same_shape(s, d)) return true;
  return false;
}
void remember_unfusable(const crb_bn_desc& d) {
  UnfusedShapes& u = unfused_shapes();
  std::lock_guard<std::mutex> lock(u.mu);
  for (const crb_bn_desc& s : u.shapes)
    if (same_shape(s, d)) return;
  u.shapes.push_back(d);
}

// The test hook CRB_TEST_FUSED_BN_NOT_SUPPORTED (context.h) stands in for cuDNN's refusal.
bool test_refuse(bool backward) {
  const int hook = options().test_fused_bn_not_supported.load();
  return hook == 1 || (hook == 2 && backward);
}

// y = relu(y + z), elementwise, any layout (both in the same one).
template <typename T>
__global__ void add_relu_kernel(T* y, const T* z, int64_t numel) {
  CRB_GRID_STRIDE(i, numel) {
    const acc_t<T> v = load(y, i) + load(z, i);
    store(y, i, v > 0 || v != v ? v : acc_t<T>(0));
  }
}

// dz = y > 0 ? dy : 0, with PyTorch's threshold_backward rule (y <= 0 -> 0, so NaN passes).
template <typename T>
__global__ void relu_mask_kernel(T* dz, const T* dy, const T* y, int64_t numel) {
  CRB_GRID_STRIDE(i, numel) { store(dz, i, load(y, i) <= acc_t<T>(0) ? acc_t<T>(0) : load(dy, i)); }
}

int64_t bn_numel(const crb_bn_desc& d) { return static_cast<int64_t>(d.n) * d.c * d.h * d.w; }

struct FusedSetup {
  BnSetup bn;
  ActivationDescriptor relu;
};

crb_status make_fused_setup(const crb_bn_desc& d, FusedSetup& s, const OpScope& scope) {
  CRB_TRY(make_bn_setup(d, CUDNN_BATCHNORM_SPATIAL_PERSISTENT, s.bn, scope));
  CRB_TRY(s.relu.create(scope));
  CRB_CUDNN_CHECK(scope, cudnnSetActivationDescriptor(s.relu.get(), CUDNN_ACTIVATION_RELU, CUDNN_PROPAGATE_NAN, 0.0));
  return CRB_OK;
}

// The reserve cuDNN wants for this descriptor.
crb_status fused_reserve_bytes(CudnnLease& lease, FusedSetup& s, size_t* need, const OpScope& scope) {
  CRB_CUDNN_CHECK(scope, cudnnGetBatchNormalizationTrainingExReserveSpaceSize(
                             lease.handle(), CUDNN_BATCHNORM_SPATIAL_PERSISTENT, CUDNN_BATCHNORM_OPS_BN_ADD_ACTIVATION,
                             s.relu.get(), s.bn.x.get(), need));
  return CRB_OK;
}

crb_status check_reserve(const void* reserve, size_t reserve_bytes, size_t need, const OpScope& scope) {
  if (reserve_bytes < need || (need && !reserve))
    return invalid(scope, "reserve has %zu bytes, cuDNN needs %zu (reserve_size gives it)", reserve_bytes, need);
  return CRB_OK;
}

// The fused forward; *refused when cuDNN returned NOT_SUPPORTED (nothing written then).
crb_status fused_forward(const crb_bn_desc* d, const void* x, const void* z, const void* gamma, const void* beta,
                         void* y, void* running_mean, void* running_var, void* save_mean, void* save_invstd,
                         void* reserve, size_t reserve_bytes, bool* refused, const OpScope& scope) {
  CudnnLease lease(scope);
  FusedSetup s;
  CRB_TRY(make_fused_setup(*d, s, scope));
  size_t need = 0;
  CRB_TRY(fused_reserve_bytes(lease, s, &need, scope));
  CRB_TRY(check_reserve(reserve, reserve_bytes, need, scope));
  size_t ws_bytes = 0;
  CRB_CUDNN_CHECK(scope, cudnnGetBatchNormalizationForwardTrainingExWorkspaceSize(
                             lease.handle(), CUDNN_BATCHNORM_SPATIAL_PERSISTENT, CUDNN_BATCHNORM_OPS_BN_ADD_ACTIVATION,
                             s.bn.x.get(), s.bn.x.get(), s.bn.x.get(), s.bn.param.get(), s.relu.get(), &ws_bytes));
  void* ws = nullptr;
  CRB_TRY(lease.workspace(ws_bytes, &ws, scope));  // never null (cudnn_utils.h)
  const void* one = kOne.for_dtype(d->dtype);
  const void* zero = kZero.for_dtype(d->dtype);
  const cudnnStatus_t st =
      test_refuse(false) ? CUDNN_STATUS_NOT_SUPPORTED
                         : cudnnBatchNormalizationForwardTrainingEx(
                               lease.handle(), CUDNN_BATCHNORM_SPATIAL_PERSISTENT, CUDNN_BATCHNORM_OPS_BN_ADD_ACTIVATION,
                               one, zero, s.bn.x.get(), x, s.bn.x.get(), z, s.bn.x.get(), y, s.bn.param.get(), gamma,
                               beta, d->momentum, running_mean, running_var, d->eps, save_mean, save_invstd,
                               s.relu.get(), ws, ws_bytes, reserve, reserve_bytes);
  if (st == CUDNN_STATUS_NOT_SUPPORTED) {
    *refused = true;
    return CRB_OK;
  }
  if (st != CUDNN_STATUS_SUCCESS)
    return cudnn_failure(scope, st, "cudnnBatchNormalizationForwardTrainingEx(BN_ADD_ACTIVATION)", __FILE__, __LINE__);
  return CRB_OK;
}

crb_status fused_backward(const crb_bn_desc* d, const void* x, const void* y, const void* dy, const void* gamma,
                          const void* beta, const void* save_mean, const void* save_invstd, const void* reserve,
                          size_t reserve_bytes, void* dx, void* dz, void* dgamma, void* dbeta, bool* refused,
                          const OpScope& scope) {
  DeviceBuffer scratch;
  CRB_TRY(param_grad_scratch(*d, scratch, &dgamma, &dbeta, scope));
  CudnnLease lease(scope);
  FusedSetup s;
  CRB_TRY(make_fused_setup(*d, s, scope));
  size_t need = 0;
  CRB_TRY(fused_reserve_bytes(lease, s, &need, scope));
  CRB_TRY(check_reserve(reserve, reserve_bytes, need, scope));
  size_t ws_bytes = 0;
  CRB_CUDNN_CHECK(scope, cudnnGetBatchNormalizationBackwardExWorkspaceSize(
                             lease.handle(), CUDNN_BATCHNORM_SPATIAL_PERSISTENT, CUDNN_BATCHNORM_OPS_BN_ADD_ACTIVATION,
                             s.bn.x.get(), s.bn.x.get(), s.bn.x.get(), s.bn.x.get(), s.bn.x.get(), s.bn.param.get(),
                             s.relu.get(), &ws_bytes));
  void* ws = nullptr;
  CRB_TRY(lease.workspace(ws_bytes, &ws, scope));  // never null (cudnn_utils.h)
  const void* one = kOne.for_dtype(d->dtype);
  const void* zero = kZero.for_dtype(d->dtype);
  const cudnnStatus_t st =
      test_refuse(true) ? CUDNN_STATUS_NOT_SUPPORTED
                        : cudnnBatchNormalizationBackwardEx(
                              lease.handle(), CUDNN_BATCHNORM_SPATIAL_PERSISTENT, CUDNN_BATCHNORM_OPS_BN_ADD_ACTIVATION,
                              one, zero, one, zero, s.bn.x.get(), x, s.bn.x.get(), y, s.bn.x.get(), dy, s.bn.x.get(),
                              dz, s.bn.x.get(), dx, s.bn.param.get(), gamma, beta, dgamma, dbeta, d->eps, save_mean,
                              save_invstd, s.relu.get(), ws, ws_bytes, const_cast<void*>(reserve), reserve_bytes);
  if (st == CUDNN_STATUS_NOT_SUPPORTED) {
    *refused = true;
    return CRB_OK;
  }
  if (st != CUDNN_STATUS_SUCCESS)
    return cudnn_failure(scope, st, "cudnnBatchNormalizationBackwardEx(BN_ADD_ACTIVATION)", __FILE__, __LINE__);
  return CRB_OK;
}

}  // namespace

// relu(bn(x)) is not fused here (cudnnBatchNormalizationForwardTrainingEx's BN_ACTIVATION would,
// for the same channels-last float16 case as BN + add + ReLU): the caller runs BN and ReLU.
crb_status bn_relu_forward_train(const crb_bn_desc* d, const void*, const void*, const void*, void*, void*, void*,
                                 void*, void*) {
  BN_SCOPE("bn_relu_forward_train");
  return unsupported(scope, "the CUDA backend does not fuse BN + ReLU");
}

crb_status bn_relu_backward_train(const crb_bn_desc* d, const void*, const void*, const void*, const void*,
                                  const void*, const void*, void*, void*, void*) {
  BN_SCOPE("bn_relu_backward_train");
  return unsupported(scope, "the CUDA backend does not fuse BN + ReLU");
}

crb_status bn_add_relu_reserve_size(const crb_bn_desc* d, size_t* bytes) {
  BN_SCOPE("bn_add_relu_reserve_size");
  CRB_TRY(ensure_init(scope));
  CRB_TRY(validate_bn(d, scope));
  if (!bytes) return invalid(scope, "bytes must not be null");
  if (!fusable(*d))
    return unsupported(scope, "cuDNN fuses BN + add + ReLU for channels-last float16 with c %% 4 == 0 only");
  if (known_unfusable(*d))
    return unsupported(scope, "cuDNN refused to fuse BN + add + ReLU for this shape before (Note [fused BN fallback])");
  CudnnLease lease(scope);
  FusedSetup s;
  CRB_TRY(make_fused_setup(*d, s, scope));
  if (cudnnGetBatchNormalizationTrainingExReserveSpaceSize(lease.handle(), CUDNN_BATCHNORM_SPATIAL_PERSISTENT,
                                                           CUDNN_BATCHNORM_OPS_BN_ADD_ACTIVATION, s.relu.get(),
                                                           s.bn.x.get(), bytes) != CUDNN_STATUS_SUCCESS)
    return unsupported(scope, "this cuDNN does not fuse BN + add + ReLU for these shapes");
  return CRB_OK;
}

crb_status bn_add_relu_forward_train(const crb_bn_desc* d, const void* x, const void* z, const void* gamma,
                                     const void* beta, void* y, void* running_mean, void* running_var, void* save_mean,
                                     void* save_invstd, void* reserve, size_t reserve_bytes) {
  BN_SCOPE("bn_add_relu_forward_train");
  CRB_TRY(ensure_init(scope));
  CRB_TRY(validate_bn(d, scope, true));
  if (!fusable(*d)) return unsupported(scope, "not fusable (see bn_add_relu_reserve_size)");
  if (!x || !z || !gamma || !beta || !y || !save_mean || !save_invstd || !running_mean || !running_var)
    return invalid(scope, "x, z, gamma, beta, y, running stats and save_mean/save_invstd must not be null");
  bool refused = known_unfusable(*d);
  if (!refused)
    CRB_TRY(fused_forward(d, x, z, gamma, beta, y, running_mean, running_var, save_mean, save_invstd, reserve,
                          reserve_bytes, &refused, scope));
  if (!refused) return CRB_OK;
  // Note [fused BN fallback]; the lease is released (batchnorm_forward_train takes its own).
  remember_unfusable(*d);
  CRB_TRY(batchnorm_forward_train(d, x, gamma, beta, y, running_mean, running_var, save_mean, save_invstd));
  const int64_t numel = bn_numel(*d);
  return dispatch_float(d->dtype, scope, [&](auto tag) -> crb_status {
    using T = decltype(tag);
    add_relu_kernel<T><<<grid_for(numel, kThreads), kThreads, 0, stream()>>>(static_cast<T*>(y),
                                                                             static_cast<const T*>(z), numel);
    CRB_CUDA_CHECK_LAUNCH(scope);
    return CRB_OK;
  });
}

crb_status bn_add_relu_backward_train(const crb_bn_desc* d, const void* x, const void* y, const void* dy,
                                      const void* gamma, const void* beta, const void* save_mean,
                                      const void* save_invstd, const void* reserve, size_t reserve_bytes, void* dx,
                                      void* dz, void* dgamma, void* dbeta) {
  BN_SCOPE("bn_add_relu_backward_train");
  CRB_TRY(ensure_init(scope));
  CRB_TRY(validate_bn(d, scope));
  if (!fusable(*d)) return unsupported(scope, "not fusable (see bn_add_relu_reserve_size)");
  if (!x || !y || !dy || !gamma || !beta || !save_mean || !save_invstd || !dx || !dz)
    return invalid(scope, "x, y, dy, gamma, beta, save_mean, save_invstd, dx and dz must not be null");
  bool refused = known_unfusable(*d);  // the forward ran unfused: its reserve holds nothing
  if (!refused)
    CRB_TRY(fused_backward(d, x, y, dy, gamma, beta, save_mean, save_invstd, reserve, reserve_bytes, dx, dz, dgamma,
                           dbeta, &refused, scope));
  if (!refused) return CRB_OK;
  // Note [fused BN fallback]: dz = relu'(y) * dy, then BN backward of dz.
  const int64_t numel = bn_numel(*d);
  CRB_TRY(dispatch_float(d->dtype, scope, [&](auto tag) -> crb_status {
    using T = decltype(tag);
    relu_mask_kernel<T><<<grid_for(numel, kThreads), kThreads, 0, stream()>>>(
        static_cast<T*>(dz), static_cast<const T*>(dy), static_cast<const T*>(y), numel);
    CRB_CUDA_CHECK_LAUNCH(scope);
    return CRB_OK;
  }));
  return batchnorm_backward_train(d, x, dz, gamma, save_mean, save_invstd, dx, dgamma, dbeta);
}

}  // namespace crb_cuda
