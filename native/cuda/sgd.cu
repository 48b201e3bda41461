// Fused SGD (torch.optim.SGD semantics): one kernel launch updates every parameter.
// params[i]: param, grad, momentum_buf (null when momentum == 0): (numel_i) of d->dtype each.
//   g = maximize ? -grad : grad;  g += weight_decay * p
//   momentum: buf = init ? g : momentum * buf + (1 - dampening) * g;  g = nesterov ? g + momentum * buf : buf
//   p -= lr * g
// The host builds a table of the parameters with each one's first block, copies it to the
// device once per step (through pinned memory, so the copy is asynchronous), and every block of
// the one launch finds its parameter by binary search over the table.
#include <cmath>
#include <cstring>
#include <mutex>
#include <vector>

#include "allocator.h"
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

template <typename A>
struct SgdHyper {
  A lr, momentum, dampening, weight_decay;
  int nesterov, maximize;
};

template <typename T>
__global__ void sgd_kernel(const SgdEntry* table, int count, SgdHyper<acc_t<T>> h) {
  using A = acc_t<T>;
  const int64_t block = blockIdx.x;
  int lo = 0, hi = count - 1;  // last entry whose first_block <= block
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (table[mid].first_block <= block) lo = mid;
    else hi = mid - 1;
  }
  const SgdEntry e = table[lo];
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

// The table's pinned and device homes, reused step after step.
struct SgdTable {
  std::mutex mu;
  PinnedBuffer host;
  DeviceBuffer device;
  cudaEvent_t uploaded = nullptr;  // the last copy out of `host` has finished
};
SgdTable& sgd_table() {
  static auto* t = new SgdTable();  // see Note [no teardown at exit] in context.cu
  return *t;
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
  int64_t blocks = 0;
  for (int i = 0; i < count; ++i) {
    const crb_sgd_param& p = params[i];
    if (p.numel < 0) return invalid(scope, "params[%d].numel must be >= 0, got %lld", i, (long long)p.numel);
    if (p.numel == 0) continue;
    if (!p.param || !p.grad) return invalid(scope, "params[%d].param and .grad must not be null", i);
    if (d->momentum != 0 && !p.momentum_buf)
      return invalid(scope, "params[%d].momentum_buf must not be null when momentum is %g", i, d->momentum);
    entries.push_back(SgdEntry{p.param, p.grad, p.momentum_buf, p.numel, blocks, p.init_momentum ? 1 : 0});
    blocks += (p.numel + kElemsPerBlock - 1) / kElemsPerBlock;
  }
  if (entries.empty()) return CRB_OK;
  if (blocks > 0x7fffffffLL) return unsupported(scope, "%lld blocks exceed the grid limit", (long long)blocks);

  SgdTable& t = sgd_table();
  std::lock_guard<std::mutex> lock(t.mu);
  const size_t bytes = entries.size() * sizeof(SgdEntry);
  if (!t.uploaded) CRB_CUDA_CHECK(scope, cudaEventCreateWithFlags(&t.uploaded, cudaEventDisableTiming));
  CRB_CUDA_CHECK(scope, cudaEventSynchronize(t.uploaded));  // the previous step's copy is done with `host`
  if (t.host.size() < bytes) CRB_TRY(t.host.allocate(bytes, scope));
  if (t.device.size() < bytes) CRB_TRY(t.device.allocate(bytes, scope));
  std::memcpy(t.host.get(), entries.data(), bytes);
  CRB_CUDA_CHECK(scope, cudaMemcpyAsync(t.device.get(), t.host.get(), bytes, cudaMemcpyHostToDevice, stream()));
  CRB_CUDA_CHECK(scope, cudaEventRecord(t.uploaded, stream()));

  const int n = static_cast<int>(entries.size());
  return dispatch_float(d->dtype, scope, [&](auto tag) -> crb_status {
    using T = decltype(tag);
    using A = acc_t<T>;
    SgdHyper<A> h{static_cast<A>(d->lr), static_cast<A>(d->momentum), static_cast<A>(d->dampening),
                  static_cast<A>(d->weight_decay), d->nesterov ? 1 : 0, d->maximize ? 1 : 0};
    sgd_kernel<T><<<static_cast<unsigned int>(blocks), kSgdThreads, 0, stream()>>>(t.device.as<SgdEntry>(), n, h);
    CRB_CUDA_CHECK_LAUNCH(scope);
    return CRB_OK;
  });
}

}  // namespace crb_cuda
