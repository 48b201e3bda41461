// 2-D convolution through cuDNN's legacy API, PyTorch semantics (cross-correlation).
//   x: (n, c, h, w)   w: (k, c/groups, r, s)   b: (k)   y: (n, k, out_h, out_w)
// All stored in d->layout (NHWC: the filter too, as (k, r, s, c/groups) in memory).
// Forward, backward data and backward filter run cuDNN with an algorithm chosen once per shape
// (see Note [algorithm cache]); the bias forward/backward are small kernels of our own, which
// work the same for both layouts and every dtype.
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "allocator.h"
#include "conv2d.h"
#include "cudnn_utils.h"
#include "kernels.cuh"
#include "ops.h"

namespace crb_cuda {
namespace {

// --- bias kernels

// y: (n, k, out_h, out_w) in layout, b: (k). y += b[channel].
template <typename T>
__global__ void add_bias_kernel(T* y, const T* b, int64_t numel, int64_t k, int64_t hw, bool nhwc) {
  CRB_GRID_STRIDE(i, numel) {
    const int64_t ch = nhwc ? i % k : (i / hw) % k;
    store(y, i, load(y, i) + load(b, ch));
  }
}

// dy: (n, k, out_h, out_w) in layout, db: (k). One block per channel, fixed order.
template <typename T>
__global__ void bias_grad_kernel(T* db, const T* dy, int64_t n, int64_t k, int64_t hw, bool nhwc) {
  const int64_t ch = blockIdx.x;
  const int64_t count = n * hw;
  acc_t<T> acc = 0;
  for (int64_t j = threadIdx.x; j < count; j += blockDim.x) {
    const int64_t img = j / hw, pos = j % hw;
    acc += load(dy, nchw_index(nhwc, img, ch, pos, k, hw));
  }
  acc = block_sum(acc);
  if (threadIdx.x == 0) store(db, ch, acc);
}

// --- descriptors

cudnnMathType_t default_math(crb_dtype dtype, bool tf32) {
  if (dtype == CRB_F16 || dtype == CRB_BF16) return CUDNN_TENSOR_OP_MATH;
  if (dtype == CRB_F32) return tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
  return CUDNN_DEFAULT_MATH;
}

// Float32 with TF32 off must never run on tensor cores (PyTorch asserts the same): only FMA
// math. CUDNN_DEFAULT_MATH permits TF32 on Ampere and newer, so a candidate reported with it is
// pinned to FMA; one that needs tensor cores is skipped.
bool math_allowed(crb_dtype dtype, bool tf32, cudnnMathType_t* math) {
  if (dtype != CRB_F32 || tf32) return true;
  if (*math == CUDNN_TENSOR_OP_MATH || *math == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) return false;
  *math = CUDNN_FMA_MATH;
  return true;
}

struct ConvSetup {
  TensorDescriptor x, y;
  FilterDescriptor w;
  ConvolutionDescriptor conv;
};

crb_status make_setup(const crb_conv2d_desc& d, bool tf32, ConvSetup& s, const OpScope& scope) {
  CRB_TRY(set_tensor_4d(s.x, d.dtype, d.layout, d.n, d.c, d.h, d.w, scope));
  CRB_TRY(set_tensor_4d(s.y, d.dtype, d.layout, d.n, d.k, d.out_h, d.out_w, scope));
  cudnnDataType_t dt;
  cudnn_data_type(d.dtype, &dt);
  CRB_TRY(s.w.create(scope));
  CRB_CUDNN_CHECK(scope, cudnnSetFilter4dDescriptor(s.w.get(), dt, cudnn_format(d.layout), d.k, d.c / d.groups, d.r, d.s));
  CRB_TRY(s.conv.create(scope));
  CRB_CUDNN_CHECK(scope, cudnnSetConvolution2dDescriptor(s.conv.get(), d.pad_h, d.pad_w, d.stride_h, d.stride_w, d.dil_h,
                                                         d.dil_w, CUDNN_CROSS_CORRELATION, cudnn_compute_type(d.dtype)));
  CRB_CUDNN_CHECK(scope, cudnnSetConvolutionGroupCount(s.conv.get(), d.groups));
  CRB_CUDNN_CHECK(scope, cudnnSetConvolutionMathType(s.conv.get(), default_math(d.dtype, tf32)));
  return CRB_OK;
}

// --- Note [algorithm cache]
// Choosing an algorithm costs a heuristics query (default) or a measured run of every
// algorithm (CRB_OPT_CUDNN_BENCHMARK, cudnnFind*Ex), so the choice is made once per problem
// and kept in a map keyed by a plain struct of everything that can change the answer. The
// choice records the math type (tensor cores or not) and the workspace size with the algorithm,
// as cuDNN needs both to run it. Candidates are tried best first; one whose workspace cannot be
// allocated is skipped for the next (PyTorch does the same).

enum Direction { kForward = 0, kBackwardData = 1, kBackwardFilter = 2 };

struct ConvKey {
  crb_conv2d_desc desc;
  int direction, tf32, deterministic, benchmark;
};

struct ConvKeyHash {
  size_t operator()(const ConvKey& k) const {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(&k);
    uint64_t h = 1469598103934665603ull;  // FNV-1a over the bytes (the key is zero-filled first)
    for (size_t i = 0; i < sizeof k; ++i) h = (h ^ p[i]) * 1099511628211ull;
    return static_cast<size_t>(h);
  }
};
struct ConvKeyEq {
  bool operator()(const ConvKey& a, const ConvKey& b) const { return std::memcmp(&a, &b, sizeof a) == 0; }
};

struct AlgoChoice {
  int algo;
  cudnnMathType_t math;
  size_t workspace;
};

struct AlgoCache {
  std::mutex mu;
  std::unordered_map<ConvKey, AlgoChoice, ConvKeyHash, ConvKeyEq> map;
};
AlgoCache& algo_cache() {
  static auto* c = new AlgoCache();
  return *c;
}

ConvKey make_key(const crb_conv2d_desc& d, Direction dir) {
  ConvKey key;
  std::memset(&key, 0, sizeof key);
  key.desc = d;
  key.direction = dir;
  Options& o = options();
  key.tf32 = conv_allow_tf32();  // Note [TF32 for convolutions and matmuls]
  key.deterministic = o.deterministic.load();
  key.benchmark = o.cudnn_benchmark.load();
  return key;
}

// Device pointers of one call, for the measured search (which writes the output).
struct ConvPtrs {
  const void* x;
  const void* w;
  const void* y;
  void* out;
};

struct FwdOps {
  using Perf = cudnnConvolutionFwdAlgoPerf_t;
  using Algo = cudnnConvolutionFwdAlgo_t;
  static constexpr int kAlgoCount = CUDNN_CONVOLUTION_FWD_ALGO_COUNT;
  static cudnnStatus_t max_count(cudnnHandle_t h, int* n) { return cudnnGetConvolutionForwardAlgorithmMaxCount(h, n); }
  static cudnnStatus_t heuristics(cudnnHandle_t h, const ConvSetup& s, int req, int* got, Perf* p) {
    return cudnnGetConvolutionForwardAlgorithm_v7(h, s.x.get(), s.w.get(), s.conv.get(), s.y.get(), req, got, p);
  }
  static cudnnStatus_t find(cudnnHandle_t h, const ConvSetup& s, const ConvPtrs& a, int req, int* got, Perf* p,
                            void* ws, size_t ws_bytes) {
    return cudnnFindConvolutionForwardAlgorithmEx(h, s.x.get(), a.x, s.w.get(), a.w, s.conv.get(), s.y.get(), a.out,
                                                  req, got, p, ws, ws_bytes);
  }
  static cudnnStatus_t workspace(cudnnHandle_t h, const ConvSetup& s, Algo algo, size_t* bytes) {
    return cudnnGetConvolutionForwardWorkspaceSize(h, s.x.get(), s.w.get(), s.conv.get(), s.y.get(), algo, bytes);
  }
  static crb_status run(cudnnHandle_t h, const ConvSetup& s, const ConvPtrs& a, Algo algo, void* ws, size_t ws_bytes,
                        const void* one, const void* zero, const OpScope& scope) {
    CRB_CUDNN_CHECK(scope, cudnnConvolutionForward(h, one, s.x.get(), a.x, s.w.get(), a.w, s.conv.get(), algo, ws,
                                                   ws_bytes, zero, s.y.get(), a.out));
    return CRB_OK;
  }
};

struct BwdDataOps {
  using Perf = cudnnConvolutionBwdDataAlgoPerf_t;
  using Algo = cudnnConvolutionBwdDataAlgo_t;
  static constexpr int kAlgoCount = CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT;
  static cudnnStatus_t max_count(cudnnHandle_t h, int* n) {
    return cudnnGetConvolutionBackwardDataAlgorithmMaxCount(h, n);
  }
  static cudnnStatus_t heuristics(cudnnHandle_t h, const ConvSetup& s, int req, int* got, Perf* p) {
    return cudnnGetConvolutionBackwardDataAlgorithm_v7(h, s.w.get(), s.y.get(), s.conv.get(), s.x.get(), req, got, p);
  }
  static cudnnStatus_t find(cudnnHandle_t h, const ConvSetup& s, const ConvPtrs& a, int req, int* got, Perf* p,
                            void* ws, size_t ws_bytes) {
    return cudnnFindConvolutionBackwardDataAlgorithmEx(h, s.w.get(), a.w, s.y.get(), a.y, s.conv.get(), s.x.get(),
                                                       a.out, req, got, p, ws, ws_bytes);
  }
  static cudnnStatus_t workspace(cudnnHandle_t h, const ConvSetup& s, Algo algo, size_t* bytes) {
    return cudnnGetConvolutionBackwardDataWorkspaceSize(h, s.w.get(), s.y.get(), s.conv.get(), s.x.get(), algo, bytes);
  }
  static crb_status run(cudnnHandle_t h, const ConvSetup& s, const ConvPtrs& a, Algo algo, void* ws, size_t ws_bytes,
                        const void* one, const void* zero, const OpScope& scope) {
    CRB_CUDNN_CHECK(scope, cudnnConvolutionBackwardData(h, one, s.w.get(), a.w, s.y.get(), a.y, s.conv.get(), algo, ws,
                                                        ws_bytes, zero, s.x.get(), a.out));
    return CRB_OK;
  }
};

struct BwdFilterOps {
  using Perf = cudnnConvolutionBwdFilterAlgoPerf_t;
  using Algo = cudnnConvolutionBwdFilterAlgo_t;
  static constexpr int kAlgoCount = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT;
  static cudnnStatus_t max_count(cudnnHandle_t h, int* n) {
    return cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(h, n);
  }
  static cudnnStatus_t heuristics(cudnnHandle_t h, const ConvSetup& s, int req, int* got, Perf* p) {
    return cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, s.x.get(), s.y.get(), s.conv.get(), s.w.get(), req, got, p);
  }
  static cudnnStatus_t find(cudnnHandle_t h, const ConvSetup& s, const ConvPtrs& a, int req, int* got, Perf* p,
                            void* ws, size_t ws_bytes) {
    return cudnnFindConvolutionBackwardFilterAlgorithmEx(h, s.x.get(), a.x, s.y.get(), a.y, s.conv.get(), s.w.get(),
                                                         a.out, req, got, p, ws, ws_bytes);
  }
  static cudnnStatus_t workspace(cudnnHandle_t h, const ConvSetup& s, Algo algo, size_t* bytes) {
    return cudnnGetConvolutionBackwardFilterWorkspaceSize(h, s.x.get(), s.y.get(), s.conv.get(), s.w.get(), algo, bytes);
  }
  static crb_status run(cudnnHandle_t h, const ConvSetup& s, const ConvPtrs& a, Algo algo, void* ws, size_t ws_bytes,
                        const void* one, const void* zero, const OpScope& scope) {
    CRB_CUDNN_CHECK(scope, cudnnConvolutionBackwardFilter(h, one, s.x.get(), a.x, s.y.get(), a.y, s.conv.get(), algo,
                                                          ws, ws_bytes, zero, s.w.get(), a.out));
    return CRB_OK;
  }
};

// Picks (or recalls) the algorithm for this problem, sets its math type on the convolution
// descriptor and makes sure the workspace is big enough. Needs the lease held.
template <typename Ops>
crb_status choose_algorithm(const crb_conv2d_desc& d, Direction dir, CudnnLease& lease, ConvSetup& s,
                            const ConvPtrs& ptrs, AlgoChoice* out, const OpScope& scope) {
  const ConvKey key = make_key(d, dir);
  AlgoCache& cache = algo_cache();
  bool cached = false;
  {
    std::lock_guard<std::mutex> lock(cache.mu);
    auto it = cache.map.find(key);
    if (it != cache.map.end()) {
      *out = it->second;
      cached = true;
    }
  }
  cudnnHandle_t h = lease.handle();
  void* ws = nullptr;
  if (cached) {
    CRB_CUDNN_CHECK(scope, cudnnSetConvolutionMathType(s.conv.get(), out->math));
    return lease.workspace(out->workspace, &ws, scope);
  }

  int max_count = 0;
  CRB_CUDNN_CHECK(scope, Ops::max_count(h, &max_count));
  if (max_count < 1) max_count = Ops::kAlgoCount;
  std::vector<typename Ops::Perf> perf(static_cast<size_t>(max_count));
  int got = 0;
  if (key.benchmark) {
    // Measure with as much scratch as the hungriest algorithm wants (at most half the free
    // memory), in a buffer of its own: the shared workspace only grows, and must not keep a
    // measurement-sized block for good.
    size_t want = 0;
    for (int a = 0; a < Ops::kAlgoCount; ++a) {
      size_t bytes = 0;
      if (Ops::workspace(h, s, static_cast<typename Ops::Algo>(a), &bytes) == CUDNN_STATUS_SUCCESS && bytes > want)
        want = bytes;
    }
    size_t free_bytes = 0, total_bytes = 0;
    if (cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess && want > free_bytes / 2) want = free_bytes / 2;
    (void)cudaGetLastError();
    DeviceBuffer scratch;
    while (want > lease.workspace_size() && scratch.allocate(want, scope) != CRB_OK) {
      clear_error();
      want /= 4;
    }
    void* find_ws = scratch.get();
    size_t find_bytes = scratch.size();
    if (!find_ws) {  // the shared workspace is as large as anything affordable
      CRB_TRY(lease.workspace(0, &find_ws, scope));
      find_bytes = lease.workspace_size();
    }
    CRB_CUDNN_CHECK(scope, Ops::find(h, s, ptrs, max_count, &got, perf.data(), find_ws, find_bytes));
  } else {
    CRB_CUDNN_CHECK(scope, Ops::heuristics(h, s, max_count, &got, perf.data()));
  }

  const bool tf32 = key.tf32 != 0;
  bool skipped_for_memory = false;
  for (int i = 0; i < got; ++i) {
    const auto& p = perf[static_cast<size_t>(i)];
    if (p.status != CUDNN_STATUS_SUCCESS) continue;
    if (key.deterministic && p.determinism != CUDNN_DETERMINISTIC) continue;
    cudnnMathType_t math = p.mathType;
    if (!math_allowed(d.dtype, tf32, &math)) continue;
    if (cudnnSetConvolutionMathType(s.conv.get(), math) != CUDNN_STATUS_SUCCESS) continue;
    size_t bytes = 0;
    if (Ops::workspace(h, s, p.algo, &bytes) != CUDNN_STATUS_SUCCESS) continue;
    crb_status st = lease.workspace(bytes, &ws, scope);
    if (st == CRB_ERR_OOM) {
      skipped_for_memory = true;
      clear_error();
      continue;
    }
    CRB_TRY(st);
    *out = AlgoChoice{static_cast<int>(p.algo), math, bytes};
    std::lock_guard<std::mutex> lock(cache.mu);
    cache.map[key] = *out;
    return CRB_OK;
  }
  if (skipped_for_memory)
    return fail(CRB_ERR_OOM, scope, "cudaErrorMemoryAllocation",
                "out of memory: no convolution algorithm's workspace could be allocated");
  return fail(CRB_ERR_CUDNN, scope, "CUDNN_STATUS_NOT_SUPPORTED",
              "cuDNN offers no usable convolution algorithm for this problem (%d candidates%s%s)", got,
              key.deterministic ? ", deterministic only" : "", (d.dtype == CRB_F32 && !tf32) ? ", TF32 off" : "");
}

// One cuDNN convolution in the direction of Ops: descriptors, the algorithm (Note [algorithm
// cache]), its workspace, then the call, out = conv(inputs) with the lease held throughout.
template <typename Ops>
crb_status run_conv(const crb_conv2d_desc& d, Direction dir, const ConvPtrs& ptrs, const OpScope& scope) {
  CudnnLease lease(scope);
  ConvSetup s;
  CRB_TRY(make_setup(d, conv_allow_tf32(), s, scope));
  AlgoChoice choice;
  CRB_TRY(choose_algorithm<Ops>(d, dir, lease, s, ptrs, &choice, scope));
  void* ws = nullptr;
  CRB_TRY(lease.workspace(choice.workspace, &ws, scope));
  return Ops::run(lease.handle(), s, ptrs, static_cast<typename Ops::Algo>(choice.algo), ws, choice.workspace,
                  kOne.for_dtype(d.dtype), kZero.for_dtype(d.dtype), scope);
}

}  // namespace

crb_status validate_conv(const crb_conv2d_desc* d, const OpScope& scope) {
  crb_geom_error e;
  CRB_TRY(check(crb_conv2d_check(d, &e), e, scope));
  if (!is_float_dtype(d->dtype)) return unsupported(scope, "conv2d takes float tensors, got %s", crb_dtype_name(d->dtype));
  if (d->layout != CRB_NCHW && d->layout != CRB_NHWC) return invalid(scope, "unknown layout %d", (int)d->layout);
  return CRB_OK;
}

#define CONV_SCOPE(name)                                                                                      \
  OpScope scope(op_name ? op_name : name,                                                               \
                "x (%d, %d, %d, %d), w (%d, %d, %d, %d), y (%d, %d, %d, %d), stride (%d, %d), pad (%d, %d), " \
                "dilation (%d, %d), groups %d, %s %s",                                                        \
                d ? d->n : 0, d ? d->c : 0, d ? d->h : 0, d ? d->w : 0, d ? d->k : 0,                         \
                d ? d->c / (d->groups > 0 ? d->groups : 1) : 0, d ? d->r : 0, d ? d->s : 0, d ? d->n : 0,    \
                d ? d->k : 0, d ? d->out_h : 0, d ? d->out_w : 0, d ? d->stride_h : 0, d ? d->stride_w : 0,   \
                d ? d->pad_h : 0, d ? d->pad_w : 0, d ? d->dil_h : 0, d ? d->dil_w : 0, d ? d->groups : 0,    \
                d ? crb_dtype_name(d->dtype) : "", d ? crb_layout_name(d->layout) : "")

crb_status conv2d_forward_as(const char* op_name, const crb_conv2d_desc* d, const void* x, const void* w,
                             const void* b, void* y) {
  CONV_SCOPE("conv2d_forward");
  CRB_TRY(ensure_init(scope));
  CRB_TRY(validate_conv(d, scope));
  if (!x || !w || !y) return invalid(scope, "x, w and y must not be null");
  CRB_TRY(run_conv<FwdOps>(*d, kForward, ConvPtrs{x, w, nullptr, y}, scope));
  if (!b) return CRB_OK;
  const int64_t hw = static_cast<int64_t>(d->out_h) * d->out_w;
  const int64_t numel = static_cast<int64_t>(d->n) * d->k * hw;
  return dispatch_float(d->dtype, scope, [&](auto tag) -> crb_status {
    using T = decltype(tag);
    add_bias_kernel<T><<<grid_for(numel, kThreads), kThreads, 0, stream()>>>(
        static_cast<T*>(y), static_cast<const T*>(b), numel, d->k, hw, d->layout == CRB_NHWC);
    CRB_CUDA_CHECK_LAUNCH(scope);
    return CRB_OK;
  });
}

crb_status conv2d_backward_data_as(const char* op_name, const crb_conv2d_desc* d, const void* dy, const void* w,
                                   void* dx) {
  CONV_SCOPE("conv2d_backward_data");
  CRB_TRY(ensure_init(scope));
  CRB_TRY(validate_conv(d, scope));
  if (!dy || !w || !dx) return invalid(scope, "dy, w and dx must not be null");
  return run_conv<BwdDataOps>(*d, kBackwardData, ConvPtrs{nullptr, w, dy, dx}, scope);
}

crb_status conv2d_backward_filter_as(const char* op_name, const crb_conv2d_desc* d, const void* x, const void* dy,
                                     void* dw) {
  CONV_SCOPE("conv2d_backward_filter");
  CRB_TRY(ensure_init(scope));
  CRB_TRY(validate_conv(d, scope));
  if (!x || !dy || !dw) return invalid(scope, "x, dy and dw must not be null");
  return run_conv<BwdFilterOps>(*d, kBackwardFilter, ConvPtrs{x, nullptr, dy, dw}, scope);
}

crb_status conv2d_backward_bias_as(const char* op_name, const crb_conv2d_desc* d, const void* dy,
                                   void* db) {
  CONV_SCOPE("conv2d_backward_bias");
  CRB_TRY(ensure_init(scope));
  CRB_TRY(validate_conv(d, scope));
  if (!dy || !db) return invalid(scope, "dy and db must not be null");
  const int64_t hw = static_cast<int64_t>(d->out_h) * d->out_w;
  return dispatch_float(d->dtype, scope, [&](auto tag) -> crb_status {
    using T = decltype(tag);
    bias_grad_kernel<T><<<static_cast<unsigned int>(d->k), 512, 0, stream()>>>(
        static_cast<T*>(db), static_cast<const T*>(dy), d->n, d->k, hw, d->layout == CRB_NHWC);
    CRB_CUDA_CHECK_LAUNCH(scope);
    return CRB_OK;
  });
}

crb_status conv2d_forward(const crb_conv2d_desc* d, const void* x, const void* w, const void* b, void* y) {
  return conv2d_forward_as(nullptr, d, x, w, b, y);
}

crb_status conv2d_backward_data(const crb_conv2d_desc* d, const void* dy, const void* w, void* dx) {
  return conv2d_backward_data_as(nullptr, d, dy, w, dx);
}

crb_status conv2d_backward_filter(const crb_conv2d_desc* d, const void* x, const void* dy, void* dw) {
  return conv2d_backward_filter_as(nullptr, d, x, dy, dw);
}

crb_status conv2d_backward_bias(const crb_conv2d_desc* d, const void* dy, void* db) {
  return conv2d_backward_bias_as(nullptr, d, dy, db);
}

}  // namespace crb_cuda
