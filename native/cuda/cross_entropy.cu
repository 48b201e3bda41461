// Softmax cross-entropy over (n, classes) logits with int32 labels, and the argmax accuracy.
//   logits, probs, dlogits: (n, classes) of dtype   labels: (n) int32   loss, dloss: (1) of dtype
//   forward:  logp = log_softmax(logits) (cuDNN, CUDNN_SOFTMAX_LOG, for float32/float64);
//             loss = -mean_i logp[i, label_i]; probs = exp(logp), kept for backward
//   backward: dlogits = dloss * (probs - onehot(labels)) / n
// float16/bfloat16 logits take a row kernel of ours that works in float32 throughout (cuDNN's
// half softmax would round the log-probabilities to half before the loss sees them).
// A label outside [0, classes) makes the loss (and its row's gradient) NaN rather than reading
// out of bounds: the device cannot report an error without a synchronization.
#include "allocator.h"
#include "cudnn_utils.h"
#include "kernels.cuh"
#include "ops.h"

namespace crb_cuda {
namespace {

// loss[0] = -(1/n) sum_i logp[i, label_i]; one block, fixed order.
template <typename T>
__global__ void nll_from_logp_kernel(T* loss, const T* logp, const int32_t* labels, int n, int classes) {
  using A = acc_t<T>;
  A acc = 0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    const int32_t label = labels[i];
    acc += (label >= 0 && label < classes) ? -load(logp, static_cast<int64_t>(i) * classes + label) : A(NAN);
  }
  acc = block_sum(acc);
  if (threadIdx.x == 0) store(loss, 0, acc / static_cast<A>(n));
}

template <typename T>
__global__ void exp_inplace_kernel(T* x, int64_t numel) {
  CRB_GRID_STRIDE(i, numel) store(x, i, exp(load(x, i)));
}

// Half-precision path, one block per row: probs[row] = softmax(logits[row]) and
// row_loss[row] = -log_softmax(logits[row])[label], all in float32.
template <typename T>
__global__ void softmax_rows_kernel(T* probs, float* row_loss, const T* logits, const int32_t* labels, int classes) {
  __shared__ float shared_max;
  const int64_t base = static_cast<int64_t>(blockIdx.x) * classes;
  float m = -INFINITY;
  for (int j = threadIdx.x; j < classes; j += blockDim.x) m = fmaxf(m, load(logits, base + j));
  // block max through the sum helper's layout: reduce with a warp shuffle max, then thread 0.
  for (int off = 16; off > 0; off >>= 1) m = fmaxf(m, __shfl_down_sync(0xffffffffu, m, off));
  __shared__ float warp_max[32];
  if ((threadIdx.x & 31) == 0) warp_max[threadIdx.x >> 5] = m;
  __syncthreads();
  if (threadIdx.x == 0) {
    float all = -INFINITY;
    for (int w = 0; w < (blockDim.x + 31) / 32; ++w) all = fmaxf(all, warp_max[w]);
    shared_max = all;
  }
  __syncthreads();
  const float row_max = shared_max;
  float s = 0;
  for (int j = threadIdx.x; j < classes; j += blockDim.x) s += expf(load(logits, base + j) - row_max);
  s = block_sum(s);
  __shared__ float shared_log_sum;
  if (threadIdx.x == 0) shared_log_sum = logf(s);
  __syncthreads();
  const float log_sum = shared_log_sum;
  for (int j = threadIdx.x; j < classes; j += blockDim.x)
    store(probs, base + j, expf(load(logits, base + j) - row_max - log_sum));
  if (threadIdx.x == 0) {
    const int32_t label = labels[blockIdx.x];
    row_loss[blockIdx.x] =
        (label >= 0 && label < classes) ? -(load(logits, base + label) - row_max - log_sum) : NAN;
  }
}

template <typename T>
__global__ void mean_rows_kernel(T* loss, const float* row_loss, int n) {
  float acc = 0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) acc += row_loss[i];
  acc = block_sum(acc);
  if (threadIdx.x == 0) store(loss, 0, acc / static_cast<float>(n));
}

// dlogits: (n, classes)
template <typename T>
__global__ void cross_entropy_backward_kernel(T* dlogits, const T* probs, const int32_t* labels, const T* dloss,
                                              int classes, int64_t numel, int n) {
  using A = acc_t<T>;
  const A scale = load(dloss, 0) / static_cast<A>(n);
  CRB_GRID_STRIDE(i, numel) {
    const int64_t row = i / classes;
    const int col = static_cast<int>(i % classes);
    const int32_t label = labels[row];
    const A onehot = col == label ? A(1) : A(0);
    const A v = (label >= 0 && label < classes) ? load(probs, i) - onehot : A(NAN);
    store(dlogits, i, scale * v);
  }
}

// correct[0] += rows whose argmax (first maximum; NaN counts as the maximum, as torch.argmax)
// equals the label. correct is zeroed first.
template <typename T>
__global__ void accuracy_kernel(int32_t* correct, const T* logits, const int32_t* labels, int n, int classes) {
  int hit = 0;
  for (int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; row < n;
       row += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const int64_t base = row * classes;
    acc_t<T> best = load(logits, base);
    int arg = 0;
    for (int j = 1; j < classes && best == best; ++j) {
      const acc_t<T> v = load(logits, base + j);
      if (v > best || v != v) {
        best = v;
        arg = j;
      }
    }
    hit += arg == labels[row];
  }
  hit = block_sum(hit);
  if (threadIdx.x == 0 && hit) atomicAdd(correct, hit);
}

#define CE_SCOPE(name) \
  OpScope scope(name, "logits (%d, %d) %s, labels (%d) int32", n, classes, crb_dtype_name(dtype), n)

crb_status validate_ce(int n, int classes, crb_dtype dtype, const OpScope& scope) {
  crb_geom_error e;
  CRB_TRY(check(crb_cross_entropy_check(n, classes, &e), e, scope));
  if (!is_float_dtype(dtype)) return unsupported(scope, "cross entropy takes float logits, got %s", crb_dtype_name(dtype));
  return CRB_OK;
}

}  // namespace

crb_status cross_entropy_forward(int n, int classes, crb_dtype dtype, const void* logits, const int32_t* labels,
                                 void* loss_out, void* probs) {
  CE_SCOPE("cross_entropy_forward");
  CRB_TRY(ensure_init(scope));
  CRB_TRY(validate_ce(n, classes, dtype, scope));
  if (!logits || !labels || !loss_out || !probs) return invalid(scope, "logits, labels, loss and probs must not be null");
  const int64_t numel = static_cast<int64_t>(n) * classes;

  if (dtype == CRB_F16 || dtype == CRB_BF16) {
    DeviceBuffer row_loss;
    CRB_TRY(row_loss.allocate(static_cast<size_t>(n) * sizeof(float), scope));
    return dispatch_float(dtype, scope, [&](auto tag) -> crb_status {
      using T = decltype(tag);
      const int threads = classes >= 1024 ? 1024 : (classes + 31) / 32 * 32;
      softmax_rows_kernel<T><<<static_cast<unsigned int>(n), threads, 0, stream()>>>(
          static_cast<T*>(probs), row_loss.as<float>(), static_cast<const T*>(logits), labels, classes);
      CRB_CUDA_CHECK_LAUNCH(scope);
      mean_rows_kernel<T><<<1, 1024, 0, stream()>>>(static_cast<T*>(loss_out), row_loss.as<float>(), n);
      CRB_CUDA_CHECK_LAUNCH(scope);
      return CRB_OK;
    });
  }

  {
    CudnnLease lease(scope);
    TensorDescriptor desc;
    CRB_TRY(set_tensor_4d(desc, dtype, CRB_NCHW, n, classes, 1, 1, scope));
    CRB_CUDNN_CHECK(scope, cudnnSoftmaxForward(lease.handle(), CUDNN_SOFTMAX_LOG, CUDNN_SOFTMAX_MODE_INSTANCE,
                                               kOne.for_dtype(dtype), desc.get(), logits, kZero.for_dtype(dtype),
                                               desc.get(), probs));
  }
  return dispatch_float(dtype, scope, [&](auto tag) -> crb_status {
    using T = decltype(tag);
    nll_from_logp_kernel<T><<<1, 1024, 0, stream()>>>(static_cast<T*>(loss_out), static_cast<const T*>(probs), labels,
                                                      n, classes);
    CRB_CUDA_CHECK_LAUNCH(scope);
    exp_inplace_kernel<T><<<grid_for(numel, kThreads), kThreads, 0, stream()>>>(static_cast<T*>(probs), numel);
    CRB_CUDA_CHECK_LAUNCH(scope);
    return CRB_OK;
  });
}

crb_status cross_entropy_backward(int n, int classes, crb_dtype dtype, const void* probs, const int32_t* labels,
                                  const void* dloss, void* dlogits) {
  CE_SCOPE("cross_entropy_backward");
  CRB_TRY(ensure_init(scope));
  CRB_TRY(validate_ce(n, classes, dtype, scope));
  if (!probs || !labels || !dloss || !dlogits)
    return invalid(scope, "probs, labels, dloss and dlogits must not be null");
  const int64_t numel = static_cast<int64_t>(n) * classes;
  return dispatch_float(dtype, scope, [&](auto tag) -> crb_status {
    using T = decltype(tag);
    cross_entropy_backward_kernel<T><<<grid_for(numel, kThreads), kThreads, 0, stream()>>>(
        static_cast<T*>(dlogits), static_cast<const T*>(probs), labels, static_cast<const T*>(dloss), classes, numel,
        n);
    CRB_CUDA_CHECK_LAUNCH(scope);
    return CRB_OK;
  });
}

crb_status accuracy_count(int n, int classes, crb_dtype dtype, const void* logits, const int32_t* labels,
                          int32_t* correct) {
  CE_SCOPE("accuracy_count");
  CRB_TRY(ensure_init(scope));
  CRB_TRY(validate_ce(n, classes, dtype, scope));
  if (!logits || !labels || !correct) return invalid(scope, "logits, labels and correct must not be null");
  CRB_CUDA_CHECK(scope, cudaMemsetAsync(correct, 0, sizeof(int32_t), stream()));
  return dispatch_float(dtype, scope, [&](auto tag) -> crb_status {
    using T = decltype(tag);
    accuracy_kernel<T><<<grid_for(n, kThreads), kThreads, 0, stream()>>>(correct, static_cast<const T*>(logits), labels,
                                                                         n, classes);
    CRB_CUDA_CHECK_LAUNCH(scope);
    return CRB_OK;
  });
}

}  // namespace crb_cuda
