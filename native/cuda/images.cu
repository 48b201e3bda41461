// uint8 image batch -> normalized float batch, as torch.nn.functional.interpolate(mode='bilinear',
// align_corners=False, antialias=False) on the float image followed by (v / 255 - mean) / std.
//   src: (n, c, h, w) uint8   dst: (n, c, out_h, out_w) of d->dtype, both contiguous NCHW
// Source coordinates follow PyTorch's area_pixel_compute_source_index: scale = in / out,
// src = scale * (dst + 0.5) - 0.5 clamped at 0, neighbours clamped at the last row/column.
#include <cmath>

#include "kernels.cuh"
#include "ops.h"

namespace crb_cuda {
namespace {

template <typename T>
__global__ void images_u8_to_float_kernel(T* dst, const uint8_t* src, int64_t planes, int h, int w, int out_h,
                                          int out_w, acc_t<T> mean, acc_t<T> std) {
  using A = acc_t<T>;
  const A scale_h = static_cast<A>(h) / static_cast<A>(out_h);
  const A scale_w = static_cast<A>(w) / static_cast<A>(out_w);
  const int64_t per_plane = static_cast<int64_t>(out_h) * out_w;
  CRB_GRID_STRIDE(i, planes * per_plane) {
    const int64_t plane = i / per_plane;
    const int oy = static_cast<int>((i % per_plane) / out_w), ox = static_cast<int>(i % out_w);
    A sy = scale_h * (static_cast<A>(oy) + A(0.5)) - A(0.5);
    A sx = scale_w * (static_cast<A>(ox) + A(0.5)) - A(0.5);
    if (sy < A(0)) sy = A(0);
    if (sx < A(0)) sx = A(0);
    const int y0 = static_cast<int>(sy), x0 = static_cast<int>(sx);
    const int y1 = y0 + (y0 < h - 1 ? 1 : 0), x1 = x0 + (x0 < w - 1 ? 1 : 0);
    const A ly1 = sy - static_cast<A>(y0), lx1 = sx - static_cast<A>(x0);
    const A ly0 = A(1) - ly1, lx0 = A(1) - lx1;
    const uint8_t* p = src + plane * h * w;
    const A v = ly0 * (lx0 * static_cast<A>(p[y0 * w + x0]) + lx1 * static_cast<A>(p[y0 * w + x1])) +
                ly1 * (lx0 * static_cast<A>(p[y1 * w + x0]) + lx1 * static_cast<A>(p[y1 * w + x1]));
    store(dst, i, (v / A(255) - mean) / std);
  }
}

}  // namespace

crb_status images_u8_to_float(const crb_image_desc* d, const uint8_t* src, void* dst) {
  OpScope scope("images_u8_to_float", "src (%d, %d, %d, %d) uint8 -> (%d, %d, %d, %d) %s, mean %g, std %g",
                d ? d->n : 0, d ? d->c : 0, d ? d->h : 0, d ? d->w : 0, d ? d->n : 0, d ? d->c : 0, d ? d->out_h : 0,
                d ? d->out_w : 0, d ? crb_dtype_name(d->dtype) : "", d ? d->mean : 0.0, d ? d->std : 0.0);
  CRB_TRY(ensure_init(scope));
  crb_geom_error e;
  CRB_TRY(check(crb_images_check(d, &e), e, scope));
  if (!src || !dst) return invalid(scope, "src and dst must not be null");
  const int64_t planes = static_cast<int64_t>(d->n) * d->c;
  const int64_t total = planes * d->out_h * d->out_w;
  return dispatch_float(d->dtype, scope, [&](auto tag) -> crb_status {
    using T = decltype(tag);
    using A = acc_t<T>;
    images_u8_to_float_kernel<T><<<grid_for(total, kThreads), kThreads, 0, stream()>>>(
        static_cast<T*>(dst), src, planes, d->h, d->w, d->out_h, d->out_w, static_cast<A>(d->mean),
        static_cast<A>(d->std));
    CRB_CUDA_CHECK_LAUNCH(scope);
    return CRB_OK;
  });
}

}  // namespace crb_cuda
