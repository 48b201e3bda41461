// NCHW <-> NHWC copies, for tensors moved to or from channels-last memory.
//   src: (n, c, h, w) in src_layout order   dst: the same tensor in dst_layout order
// Elements are moved as raw bits of their size, so every dtype shares one kernel per size.
#include <climits>
#include <cstdint>

#include "kernels.cuh"
#include "ops.h"

namespace crb_cuda {
namespace {

// Both directions are a batch of 2-D transposes: NCHW -> NHWC turns each image's (C, HW) matrix
// into (HW, C), NHWC -> NCHW the reverse. Tiled through shared memory (the classic transpose):
// a (32, 8) block reads a 32 x 32 tile with consecutive threads on consecutive source addresses
// and writes it transposed with consecutive threads on consecutive destination addresses, so
// both sides coalesce; the extra column keeps the transposed shared-memory reads free of bank
// conflicts. Every index comes from block and thread ids (grid x: column tiles, y: row tiles,
// z: images, each grid-stride for shapes past the grid limits): no division per element.
constexpr int kTile = 32, kTileRows = 8;

// src: (batch, rows, cols), dst: (batch, cols, rows), elements as raw bits of their size.
template <typename E>
__global__ void transpose_kernel(E* dst, const E* src, int64_t batch, int64_t rows, int64_t cols) {
  __shared__ E tile[kTile][kTile + 1];
  const int64_t plane = rows * cols;
  for (int64_t b = blockIdx.z; b < batch; b += gridDim.z) {
    const E* s = src + b * plane;
    E* d = dst + b * plane;
    for (int64_t r0 = static_cast<int64_t>(blockIdx.y) * kTile; r0 < rows; r0 += static_cast<int64_t>(gridDim.y) * kTile) {
      for (int64_t c0 = static_cast<int64_t>(blockIdx.x) * kTile; c0 < cols;
           c0 += static_cast<int64_t>(gridDim.x) * kTile) {
        // The loop bounds depend only on block ids, so every thread reaches both barriers.
        for (int k = threadIdx.y; k < kTile; k += kTileRows) {
          const int64_t r = r0 + k, col = c0 + threadIdx.x;
          if (r < rows && col < cols) tile[k][threadIdx.x] = s[r * cols + col];
        }
        __syncthreads();
        for (int k = threadIdx.y; k < kTile; k += kTileRows) {
          const int64_t col = c0 + k, r = r0 + threadIdx.x;
          if (r < rows && col < cols) d[col * rows + r] = tile[threadIdx.x][k];
        }
        __syncthreads();  // the tile is refilled by the next iteration
      }
    }
  }
}

template <typename E>
crb_status launch(void* dst, crb_layout dst_layout, const void* src, int64_t n, int c, int64_t hw, const OpScope& scope) {
  // NCHW -> NHWC: each image is (c, hw) -> (hw, c); NHWC -> NCHW: (hw, c) -> (c, hw).
  const int64_t rows = dst_layout == CRB_NHWC ? c : hw, cols = dst_layout == CRB_NHWC ? hw : c;
  auto clamp = [](int64_t v, int64_t cap) { return static_cast<unsigned int>(v < 1 ? 1 : v > cap ? cap : v); };
  const dim3 grid(clamp((cols + kTile - 1) / kTile, INT32_MAX), clamp((rows + kTile - 1) / kTile, 65535),
                  clamp(n, 65535));
  transpose_kernel<E><<<grid, dim3(kTile, kTileRows), 0, stream()>>>(static_cast<E*>(dst), static_cast<const E*>(src),
                                                                     n, rows, cols);
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
