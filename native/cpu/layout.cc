// NCHW <-> NHWC copies: Tensor.to({ memoryFormat }) on the CPU.
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "../backend/names.h"
#include "errors.h"
#include "ops.h"
#include "threadpool.h"

namespace crb_cpu {

namespace {

// Per image, the (c x hw) <-> (hw x c) transpose in 32 x 32 blocks, so both the reads and the
// writes stay within a few cache lines at a time; images and position blocks over the pool.
template <typename E>
void transpose(E* dst, crb_layout dst_layout, const E* src, int64_t n, int64_t c, int64_t hw) {
  constexpr int64_t kB = 32;
  const int64_t pblocks = (hw + kB - 1) / kB;
  parallel_for(n * pblocks, std::max<int64_t>(1, 4096 / (kB * c)), [&](int64_t q0, int64_t q1, int) {
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t image = q / pblocks, p0 = q % pblocks * kB, p1 = std::min(hw, p0 + kB);
      const E* s = src + image * c * hw;
      E* d = dst + image * c * hw;
      for (int64_t c0 = 0; c0 < c; c0 += kB) {
        const int64_t c1 = std::min(c, c0 + kB);
        if (dst_layout == CRB_NHWC) {
          for (int64_t p = p0; p < p1; ++p)
            for (int64_t ch = c0; ch < c1; ++ch) d[p * c + ch] = s[ch * hw + p];
        } else {
          for (int64_t ch = c0; ch < c1; ++ch)
            for (int64_t p = p0; p < p1; ++p) d[ch * hw + p] = s[p * c + ch];
        }
      }
    }
  });
}

}  // namespace

crb_status convert_layout(void* dst, crb_layout dst_layout, const void* src, crb_layout src_layout, int n, int c, int h,
                          int w, crb_dtype dtype) {
  const size_t size = crb_dtype_size(dtype);
  if (size == 0) return fail(CRB_ERR_INVALID, "convert_layout", "unknown dtype %d", int(dtype));
  crb_geom_error e;
  if (crb_status st = check(crb_layout_check(dst_layout, src_layout, n, c, h, w, &e), e, "convert_layout")) return st;
  const int64_t hw = int64_t(h) * w, total = int64_t(n) * c * hw;
  if (total == 0) return CRB_OK;
  if (src_layout == dst_layout || c == 1 || hw == 1) {
    std::memmove(dst, src, size_t(total) * size);
    return CRB_OK;
  }
  switch (size) {
    case 1: transpose(static_cast<uint8_t*>(dst), dst_layout, static_cast<const uint8_t*>(src), n, c, hw); break;
    case 2: transpose(static_cast<uint16_t*>(dst), dst_layout, static_cast<const uint16_t*>(src), n, c, hw); break;
    case 4: transpose(static_cast<uint32_t*>(dst), dst_layout, static_cast<const uint32_t*>(src), n, c, hw); break;
    default: transpose(static_cast<uint64_t*>(dst), dst_layout, static_cast<const uint64_t*>(src), n, c, hw); break;
  }
  return CRB_OK;
}

}  // namespace crb_cpu
