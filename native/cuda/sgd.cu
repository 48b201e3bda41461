// Fused SGD (torch.optim.SGD semantics): one kernel launch updates every parameter.
// params[i]: param, grad, momentum_buf (null when momentum == 0): (numel_i) of d->dtype each.
//   g = maximize ? -grad : grad;  g += weight_decay * p
//   momentum: buf = init ? g : momentum * buf + (1 - dampening) * g;  g = nesterov ? g + momentum * buf : buf
//   p -= lr * g
// The host builds a table of the parameters with each one's first block and passes it by value
// as the kernel's parameter (Note [sgd table as kernel parameter]); every block of the one launch
// finds its parameter by binary search over the table.
//
// Note [sgd table as kernel parameter]
// The table used to be copied to the device each step from one pinned buffer, and before
// refilling that buffer the host waited for the previous step's copy, which sits on the stream
// behind that whole step's kernels: a per-step host wait on the GPU. Since CUDA 12.1 a kernel
// on Volta or newer (every architecture this build targets, sm_75 and up) takes up to 32764
// bytes of parameters, so the table travels in the launch itself: no upload, no buffer, no
// event, no wait. It is a __grid_constant__ parameter so that indexing it reads parameter
// memory directly instead of copying the struct into each thread's local memory. A model with
// more than kSgdTableCapacity parameters (ResNet-50 has 161) takes one launch per
// kSgdTableCapacity of them.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels.cuh"
#include "ops.h"

namespace crb_cuda {
namespace {

constexpr int kSgdThreads = 256;
constexpr int64_t kElemsPerBlock = kSgdThreads * 8;

struct SgdEntry {
  void* param;
  const void* grad;
  void* buf;
  int64_t numel;
  int64_t first_block;
  int64_t init_momentum;
};

// 640 entries * 48 bytes + the count and SgdHyper stay under the 32764-byte parameter limit.
constexpr int kSgdTableCapacity = 640;
struct SgdTable {
  int count;
  SgdEntry entries[kSgdTableCapacity];
};

template <typename A>
struct SgdHyper {
  A lr, momentum, dampening, weight_decay;
  int nesterov, maximize;
};

template <typename T>
__global__ void sgd_kernel(const __grid_constant__ SgdTable table, const SgdHyper<acc_t<T>> h) {
  using A = acc_t<T>;
  const int64_t block = blockIdx.x;
  int lo = 0, hi = table.count - 1;  // last entry whose first_block <= block
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (table.entries[mid].first_block <= block) lo = mid;
    else hi = mid - 1;
  }
  const SgdEntry e = table.entries[lo];
  T* p = static_cast<T*>(e.param);
  const T* grad = static_cast<const T*>(e.grad);
  T* buf = static_cast<T*>(e.buf);
  const int64_t begin = (block - e.first_block) * kElemsPerBlock;
  const int64_t end = min(begin + kElemsPerBlock, e.numel);
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    A g = load(grad, i);
    if (h.maximize) g = -g;
    const A pv = load(p, i);
    if (h.weight_decay != A(0)) g += h.weight_decay * pv;
    if (h.momentum != A(0)) {
      const A b = e.init_momentum ? g : h.momentum * load(buf, i) + (A(1) - h.dampening) * g;
      store(buf, i, b);
      g = h.nesterov ? g + h.momentum * b : b;
    }
    store(p, i, pv - h.lr * g);
  }
}

}  // namespace

crb_status sgd_step(const crb_sgd_desc* d, const crb_sgd_param* params, int count) {
  OpScope scope("sgd_step", "%d params, %s, lr %g, momentum %g, dampening %g, weight_decay %g, nesterov %d",
                count, d ? crb_dtype_name(d->dtype) : "", d ? d->lr : 0.0, d ? d->momentum : 0.0,
                d ? d->dampening : 0.0, d ? d->weight_decay : 0.0, d ? d->nesterov : 0);
  CRB_TRY(ensure_init(scope));
  if (!d) return invalid(scope, "desc must not be null");
  if (count < 0 || (count > 0 && !params)) return invalid(scope, "params must hold count (%d) entries", count);
  if (!is_float_dtype(d->dtype)) return unsupported(scope, "sgd takes float parameters, got %s", crb_dtype_name(d->dtype));
  if (!std::isfinite(d->lr) || !std::isfinite(d->momentum) || !std::isfinite(d->dampening) ||
      !std::isfinite(d->weight_decay))
    return invalid(scope, "lr, momentum, dampening and weight_decay must be finite");
  if (d->nesterov && (d->momentum <= 0 || d->dampening != 0))
    return invalid(scope, "nesterov needs momentum > 0 and dampening 0");

  std::vector<SgdEntry> entries;
  entries.reserve(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    const crb_sgd_param& p = params[i];
    if (p.numel < 0) return invalid(scope, "params[%d].numel must be >= 0, got %lld", i, (long long)p.numel);
    if (p.numel == 0) continue;
    if (!p.param || !p.grad) return invalid(scope, "params[%d].param and .grad must not be null", i);
    if (d->momentum != 0 && !p.momentum_buf)
      return invalid(scope, "params[%d].momentum_buf must not be null when momentum is %g", i, d->momentum);
    entries.push_back(SgdEntry{p.param, p.grad, p.momentum_buf, p.numel, 0, p.init_momentum ? 1 : 0});
  }

  return dispatch_float(d->dtype, scope, [&](auto tag) -> crb_status {
    using T = decltype(tag);
    using A = acc_t<T>;
    const SgdHyper<A> h{static_cast<A>(d->lr), static_cast<A>(d->momentum), static_cast<A>(d->dampening),
                        static_cast<A>(d->weight_decay), d->nesterov ? 1 : 0, d->maximize ? 1 : 0};
    static_assert(sizeof(SgdTable) + sizeof(SgdHyper<double>) <= 32764, "kernel parameters over the CUDA limit");
    SgdTable table;  // one launch per kSgdTableCapacity parameters
    for (size_t first = 0; first < entries.size(); first += kSgdTableCapacity) {
      table.count = static_cast<int>(std::min<size_t>(kSgdTableCapacity, entries.size() - first));
      int64_t blocks = 0;
      for (int j = 0; j < table.count; ++j) {
        table.entries[j] = entries[first + j];
        table.entries[j].first_block = blocks;
        blocks += (table.entries[j].numel + kElemsPerBlock - 1) / kElemsPerBlock;
      }
      if (blocks > 0x7fffffffLL) return unsupported(scope, "%lld blocks exceed the grid limit", (long long)blocks);
      sgd_kernel<T><<<static_cast<unsigned int>(blocks), kSgdThreads, 0, stream()>>>(table, h);
      CRB_CUDA_CHECK_LAUNCH(scope);
    }
    return CRB_OK;
  });
}

}  // namespace crb_cuda
