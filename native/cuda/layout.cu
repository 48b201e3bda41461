// NCHW <-> NHWC copies, for tensors moved to or from channels-last memory.
//   src: (n, c, h, w) in src_layout order   dst: the same tensor in dst_layout order
// Elements are moved as raw bits of their size, so every dtype shares one kernel per size.
#include <cstdint>

#include "kernels.cuh"
#include "ops.h"

namespace crb_cuda {
namespace {

// One thread per destination element; consecutive threads write consecutive addresses.
template <typename E>
__global__ void nchw_to_nhwc_kernel(E* dst, const E* src, int64_t n, int c, int64_t hw) {
  CRB_GRID_STRIDE(i, n * c * hw) {
    const int ch = static_cast<int>(i % c);
    const int64_t pixel = (i / c) % hw, image = i / (c * hw);
    dst[i] = src[(image * c + ch) * hw + pixel];
  }
}

template <typename E>
__global__ void nhwc_to_nchw_kernel(E* dst, const E* src, int64_t n, int c, int64_t hw) {
  CRB_GRID_STRIDE(i, n * c * hw) {
    const int64_t pixel = i % hw;
    const int ch = static_cast<int>((i / hw) % c);
    const int64_t image = i / (c * hw);
    dst[i] = src[(image * hw + pixel) * c + ch];
  }
}

template <typename E>
crb_status launch(void* dst, crb_layout dst_layout, const void* src, int64_t n, int c, int64_t hw, const OpScope& scope) {
  const int64_t total = n * c * hw;
  if (dst_layout == CRB_NHWC)
    nchw_to_nhwc_kernel<E><<<grid_for(total, kThreads), kThreads, 0, stream()>>>(static_cast<E*>(dst), static_cast<const E*>(src), n, c, hw);
  else
    nhwc_to_nchw_kernel<E><<<grid_for(total, kThreads), kThreads, 0, stream()>>>(static_cast<E*>(dst), static_cast<const E*>(src), n, c, hw);
  CRB_CUDA_CHECK_LAUNCH(scope);
  return CRB_OK;
}

}  // namespace

crb_status convert_layout(void* dst, crb_layout dst_layout, const void* src, crb_layout src_layout, int n, int c, int h,
                          int w, crb_dtype dtype) {
  OpScope scope("convert_layout", "(%d, %d, %d, %d) %s, %s -> %s", n, c, h, w, crb_dtype_name(dtype),
                src_layout == CRB_NHWC ? "NHWC" : "NCHW", dst_layout == CRB_NHWC ? "NHWC" : "NCHW");
  CRB_TRY(ensure_init(scope));
  crb_geom_error e;
  CRB_TRY(check(crb_layout_check(dst_layout, src_layout, n, c, h, w, &e), e, scope));
  const int64_t hw = static_cast<int64_t>(h) * w, total = static_cast<int64_t>(n) * c * hw;
  if (total == 0) return CRB_OK;
  if (!dst || !src) return invalid(scope, "dst and src must not be null");
  const size_t size = crb_dtype_size(dtype);
  if (src_layout == dst_layout || c == 1 || hw == 1) return copy_device(dst, src, static_cast<size_t>(total) * size);
  switch (size) {
    case 1: return launch<uint8_t>(dst, dst_layout, src, n, c, hw, scope);
    case 2: return launch<uint16_t>(dst, dst_layout, src, n, c, hw, scope);
    case 4: return launch<uint32_t>(dst, dst_layout, src, n, c, hw, scope);
    case 8: return launch<uint64_t>(dst, dst_layout, src, n, c, hw, scope);
    default: return invalid(scope, "unknown dtype");
  }
}

}  // namespace crb_cuda
