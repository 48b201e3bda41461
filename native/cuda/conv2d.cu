// 2-D convolution through cuDNN's legacy API, PyTorch semantics (cross-correlation).
//   x: (n, c, h, w)   w: (k, c/groups, r, s)   b: (k)   y: (n, k, out_h, out_w)
// All stored in d->layout (NHWC: the filter too, as (k, r, s, c/groups) in memory).
// Forward, backward data and backward filter run cuDNN with an algorithm chosen once per shape
// (see Note [algorithm cache]); the bias forward/backward are small kernels of our own, which
// work the same for both layouts and every dtype.
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <string>
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

// dy: (n, k, out_h, out_w) in layout, db: (k). One block per channel, fixed order; used for NCHW,
// where each image's plane of a channel is contiguous (NHWC: Note [NHWC bias gradient]).
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

// Note [NHWC bias gradient]
// Channels-last dy is (rows = n * out_h * out_w, k) row-major, so one block per channel would
// read with a stride of k. Instead, threads along x take consecutive channels (coalesced reads)
// and threads along y take rows; each block sums its share of rows per channel into one row of
// `partial` (blocks along y), and a second kernel adds those rows up. Both orders are fixed, so
// the result is the same from run to run.
constexpr int kBiasCh = 32, kBiasRows = 8;

template <typename T>
__global__ void bias_grad_nhwc_partial_kernel(acc_t<T>* partial, const T* dy, int64_t rows, int64_t k) {
  __shared__ acc_t<T> sums[kBiasRows][kBiasCh];
  const int64_t ch = static_cast<int64_t>(blockIdx.x) * kBiasCh + threadIdx.x;
  acc_t<T> acc = 0;
  if (ch < k)
    for (int64_t r = static_cast<int64_t>(blockIdx.y) * kBiasRows + threadIdx.y; r < rows;
         r += static_cast<int64_t>(gridDim.y) * kBiasRows)
      acc += load(dy, r * k + ch);
  sums[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && ch < k) {
    for (int j = 1; j < kBiasRows; ++j) acc += sums[j][threadIdx.x];
    partial[static_cast<int64_t>(blockIdx.y) * k + ch] = acc;
  }
}

template <typename T>
__global__ void bias_grad_nhwc_final_kernel(T* db, const acc_t<T>* partial, int64_t parts, int64_t k) {
  CRB_GRID_STRIDE(ch, k) {
    acc_t<T> acc = 0;
    for (int64_t p = 0; p < parts; ++p) acc += partial[p * k + ch];
    store(db, ch, acc);
  }
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
// as cuDNN needs both to run it. Candidates are tried best first, and only one that has run
// is cached (Note [try every candidate]).

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

const char* direction_name(Direction dir) {
  return dir == kForward ? "forward" : dir == kBackwardData ? "backward data" : "backward filter";
}

// CRB_CUDA_LOG_CONV=1 (context.h): one line per step of the search, on stderr.
void conv_log(Direction dir, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void conv_log(Direction dir, const char* fmt, ...) {
  if (!options().log_conv.load()) return;
  char line[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  fprintf(stderr, "crb_cuda conv %s: %s\n", direction_name(dir), line);
}

bool cache_find(const ConvKey& key, AlgoChoice* out) {
  AlgoCache& cache = algo_cache();
  std::lock_guard<std::mutex> lock(cache.mu);
  auto it = cache.map.find(key);
  if (it == cache.map.end()) return false;
  *out = it->second;
  return true;
}
void cache_insert(const ConvKey& key, const AlgoChoice& choice) {
  AlgoCache& cache = algo_cache();
  std::lock_guard<std::mutex> lock(cache.mu);
  cache.map[key] = choice;
}
void cache_erase(const ConvKey& key) {
  AlgoCache& cache = algo_cache();
  std::lock_guard<std::mutex> lock(cache.mu);
  cache.map.erase(key);
}

// Note [find scratch]
// The measured search (cudnnFind*Ex) runs every algorithm, so it gets as much scratch as the
// hungriest one wants, at most half the free memory. That buffer is returned to the driver as
// soon as Find is done: kept in the cache it would stay reserved, and while it was held the
// winner's own workspace could not be allocated, so a slower algorithm would be chosen (and
// cached for good) for want of memory that was only the search's.
template <typename Ops>
crb_status find_scratch(cudnnHandle_t h, const ConvSetup& s, Direction dir, DeviceBuffer& scratch,
                        const OpScope& scope) {
  size_t want = 0;
  for (int a = 0; a < Ops::kAlgoCount; ++a) {
    size_t bytes = 0;
    if (Ops::workspace(h, s, static_cast<typename Ops::Algo>(a), &bytes) == CUDNN_STATUS_SUCCESS && bytes > want)
      want = bytes;
  }
  size_t free_bytes = 0, total_bytes = 0;
  if (cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess && want > free_bytes / 2) want = free_bytes / 2;
  (void)cudaGetLastError();
  if (want == 0) want = 1;  // a real pointer even when no algorithm wants scratch
  while (scratch.allocate(want, scope) != CRB_OK) {
    clear_error();
    if (want == 1) return fail(CRB_ERR_OOM, scope, "cudaErrorMemoryAllocation",
                               "out of memory: no scratch at all for the convolution algorithm search");
    want = want / 4 > 0 ? want / 4 : 1;
  }
  conv_log(dir, "find with %zu bytes of scratch", scratch.size());
  return CRB_OK;
}

// The usable candidates for this problem, best first: measured (benchmark) or cuDNN's
// heuristics, less those that break the options (status, determinism, TF32), each with its
// math type and workspace size.
template <typename Ops>
crb_status list_candidates(const ConvKey& key, const crb_conv2d_desc& d, Direction dir, CudnnLease& lease,
                           ConvSetup& s, const ConvPtrs& ptrs, std::vector<AlgoChoice>* out, int* reported,
                           const OpScope& scope) {
  cudnnHandle_t h = lease.handle();
  int max_count = 0;
  CRB_CUDNN_CHECK(scope, Ops::max_count(h, &max_count));
  if (max_count < 1) max_count = Ops::kAlgoCount;
  std::vector<typename Ops::Perf> perf(static_cast<size_t>(max_count));
  int got = 0;
  if (key.benchmark) {
    DeviceBuffer scratch;  // Note [find scratch]
    CRB_TRY(find_scratch<Ops>(h, s, dir, scratch, scope));
    const cudnnStatus_t st = Ops::find(h, s, ptrs, max_count, &got, perf.data(), scratch.get(), scratch.size());
    CRB_TRY(scratch.release_to_driver(scope));
    if (st != CUDNN_STATUS_SUCCESS) return cudnn_failure(scope, st, "cudnnFindConvolution*AlgorithmEx", __FILE__, __LINE__);
  } else {
    CRB_CUDNN_CHECK(scope, Ops::heuristics(h, s, max_count, &got, perf.data()));
  }
  *reported = got;
  const bool tf32 = key.tf32 != 0;
  for (int i = 0; i < got; ++i) {
    const auto& p = perf[static_cast<size_t>(i)];
    if (p.status != CUDNN_STATUS_SUCCESS) continue;
    if (key.deterministic && p.determinism != CUDNN_DETERMINISTIC) continue;
    cudnnMathType_t math = p.mathType;
    if (!math_allowed(d.dtype, tf32, &math)) continue;
    if (cudnnSetConvolutionMathType(s.conv.get(), math) != CUDNN_STATUS_SUCCESS) continue;
    size_t bytes = 0;
    if (Ops::workspace(h, s, p.algo, &bytes) != CUDNN_STATUS_SUCCESS) continue;
    bool seen = false;  // heuristics may list an algorithm twice (with two math types)
    for (const AlgoChoice& c : *out) seen = seen || (c.algo == static_cast<int>(p.algo) && c.math == math);
    if (!seen) out->push_back(AlgoChoice{static_cast<int>(p.algo), math, bytes});
  }
  return CRB_OK;
}

// One attempt with one algorithm: its math type, its workspace, the call.
template <typename Ops>
crb_status try_algorithm(const crb_conv2d_desc& d, CudnnLease& lease, ConvSetup& s, const ConvPtrs& ptrs,
                         const AlgoChoice& c, const OpScope& scope) {
  CRB_CUDNN_CHECK(scope, cudnnSetConvolutionMathType(s.conv.get(), c.math));
  void* ws = nullptr;
  CRB_TRY(lease.workspace(c.workspace, &ws, scope));
  return Ops::run(lease.handle(), s, ptrs, static_cast<typename Ops::Algo>(c.algo), ws, c.workspace,
                  kOne.for_dtype(d.dtype), kZero.for_dtype(d.dtype), scope);
}

// Note [try every candidate]
// As PyTorch's AlgoIterator::try_all: an algorithm enters the cache only after a call with it
// has succeeded. A cached algorithm that now hits out-of-memory (its workspace no longer fits)
// is dropped and the search runs again. During the search each candidate is tried in order; a
// cuDNN error or out-of-memory moves on to the next, anything else (a CUDA error) is returned.
// Only when every candidate has failed does the op fail, with the last failure's message.
template <typename Ops>
crb_status run_conv(const crb_conv2d_desc& d, Direction dir, const ConvPtrs& ptrs, const OpScope& scope) {
  CudnnLease lease(scope);
  ConvSetup s;
  CRB_TRY(make_setup(d, conv_allow_tf32(), s, scope));
  const ConvKey key = make_key(d, dir);

  AlgoChoice cached;
  if (cache_find(key, &cached)) {
    const crb_status st = try_algorithm<Ops>(d, lease, s, ptrs, cached, scope);
    if (st != CRB_ERR_OOM) return st;
    conv_log(dir, "cached algo %d hit out-of-memory (workspace %zu bytes): searching again", cached.algo,
             cached.workspace);
    clear_error();
    lease.release_workspace();
    cache_erase(key);
  }

  std::vector<AlgoChoice> candidates;
  int reported = 0;
  CRB_TRY(list_candidates<Ops>(key, d, dir, lease, s, ptrs, &candidates, &reported, scope));
  if (options().log_conv.load()) {
    std::string list;
    for (const AlgoChoice& c : candidates) list += (list.empty() ? "" : ",") + std::to_string(c.algo);
    conv_log(dir, "candidates %s", list.c_str());
  }
  crb_error last = {};
  bool any_failure = false, only_oom = true;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const AlgoChoice& c = candidates[i];
    crb_status st;
    if (i == 0 && options().test_fail_first_conv_algo.load())
      st = fail(CRB_ERR_CUDNN, scope, "CUDNN_STATUS_EXECUTION_FAILED",
                "algorithm %d failed (test hook CRB_TEST_FAIL_FIRST_CONV_ALGO)", c.algo);
    else
      st = try_algorithm<Ops>(d, lease, s, ptrs, c, scope);
    if (st == CRB_OK) {
      cache_insert(key, c);
      conv_log(dir, "cached algo %d (math %d, workspace %zu bytes)", c.algo, static_cast<int>(c.math), c.workspace);
      return CRB_OK;
    }
    if (st != CRB_ERR_OOM && st != CRB_ERR_CUDNN) return st;
    last = *last_error();
    any_failure = true;
    only_oom = only_oom && st == CRB_ERR_OOM;
    conv_log(dir, "algo %d failed: %s", c.algo, last.message);
    clear_error();
    (void)cudaGetLastError();
    lease.release_workspace();  // the next candidate may need the memory
  }
  if (any_failure)
    return fail(only_oom ? CRB_ERR_OOM : CRB_ERR_CUDNN, scope, last.status,
                "%sno convolution algorithm could run (%zu candidates tried); the last failure: %s",
                only_oom ? "out of memory: " : "", candidates.size(), last.message);
  return fail(CRB_ERR_CUDNN, scope, "CUDNN_STATUS_NOT_SUPPORTED",
              "cuDNN offers no usable convolution algorithm for this problem (%d candidates%s%s)", reported,
              key.deterministic ? ", deterministic only" : "", (d.dtype == CRB_F32 && !key.tf32) ? ", TF32 off" : "");
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
  if (d->layout == CRB_NHWC) {  // Note [NHWC bias gradient]
    const int64_t rows = static_cast<int64_t>(d->n) * hw;
    int64_t parts = (rows + 16 * kBiasRows - 1) / (16 * kBiasRows);  // >= 16 rows per thread
    if (parts > 256) parts = 256;
    if (parts < 1) parts = 1;
    const unsigned int ch_blocks = static_cast<unsigned int>((d->k + kBiasCh - 1) / kBiasCh);
    return dispatch_float(d->dtype, scope, [&](auto tag) -> crb_status {
      using T = decltype(tag);
      DeviceBuffer partial;  // stream-ordered: back in the cache once queued (allocator.h)
      CRB_TRY(partial.allocate(static_cast<size_t>(parts * d->k) * sizeof(acc_t<T>), scope));
      bias_grad_nhwc_partial_kernel<T><<<dim3(ch_blocks, static_cast<unsigned int>(parts)), dim3(kBiasCh, kBiasRows), 0,
                                         stream()>>>(partial.as<acc_t<T>>(), static_cast<const T*>(dy), rows, d->k);
      CRB_CUDA_CHECK_LAUNCH(scope);
      bias_grad_nhwc_final_kernel<T><<<grid_for(d->k, kThreads), kThreads, 0, stream()>>>(
          static_cast<T*>(db), partial.as<acc_t<T>>(), parts, d->k);
      CRB_CUDA_CHECK_LAUNCH(scope);
      return CRB_OK;
    });
  }
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
