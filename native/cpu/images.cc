// uint8 images -> normalized float batch: bilinear resize exactly like
// torch.nn.functional.interpolate(x.float(), mode='bilinear', align_corners=False, antialias=False)
// (source index (i + 0.5) * in/out - 0.5 clamped at 0, computed in the output's precision), then
// (v / 255 - mean) / std.
//   src: (n, c, h, w) uint8   dst: (n, c, out_h, out_w) float32 or float64
#include <vector>

#include "dtype.h"
#include "ops.h"
#include "threadpool.h"

namespace crb_cpu {

namespace {

// For each output index along one axis: the two source taps and their weights.
template <class T>
struct Taps {
  std::vector<int64_t> i0, i1;
  std::vector<T> w0, w1;
  Taps(int64_t in, int64_t out) : i0(out), i1(out), w0(out), w1(out) {
    const T scale = T(in) / T(out);
    for (int64_t o = 0; o < out; ++o) {
      T src = scale * (T(o) + T(0.5)) - T(0.5);
      if (src < T(0)) src = T(0);
      int64_t lo = int64_t(src);
      if (lo > in - 1) lo = in - 1;
      const int64_t hi = lo + (lo < in - 1 ? 1 : 0);
      const T l1 = src - T(lo);
      i0[o] = lo;
      i1[o] = hi;
      w0[o] = T(1) - l1;
      w1[o] = l1;
    }
  }
};

template <class T>
void convert(const crb_image_desc* d, const uint8_t* src, T* dst) {
  const int64_t h = d->h, w = d->w, oh = d->out_h, ow = d->out_w;
  const Taps<T> ty(h, oh), tx(w, ow);
  const T mean = T(d->mean), stdev = T(d->std);
  const bool identity = h == oh && w == ow;
  parallel_for(int64_t(d->n) * d->c, 1, [&](int64_t p0, int64_t p1, int) {
    for (int64_t plane = p0; plane < p1; ++plane) {
      const uint8_t* in = src + plane * h * w;
      T* out = dst + plane * oh * ow;
      for (int64_t i = 0; i < oh; ++i) {
        const uint8_t* r0 = in + ty.i0[i] * w;
        const uint8_t* r1 = in + ty.i1[i] * w;
        const T a0 = ty.w0[i], a1 = ty.w1[i];
        for (int64_t j = 0; j < ow; ++j) {
          T v;
          if (identity) {
            v = T(r0[j]);
          } else {
            const int64_t c0 = tx.i0[j], c1 = tx.i1[j];
            const T b0 = tx.w0[j], b1 = tx.w1[j];
            v = a0 * (b0 * T(r0[c0]) + b1 * T(r0[c1])) + a1 * (b0 * T(r1[c0]) + b1 * T(r1[c1]));
          }
          out[i * ow + j] = (v / T(255) - mean) / stdev;
        }
      }
    }
  });
}

}  // namespace

crb_status images_u8_to_float(const crb_image_desc* d, const uint8_t* src, void* dst) {
  crb_geom_error e;
  if (crb_status st = check(crb_images_check(d, &e), e, "images_u8_to_float")) return st;
  return dispatch_float(d->dtype, "images_u8_to_float", [&](auto zero) {
    using T = decltype(zero);
    try {
      convert<T>(d, src, static_cast<T*>(dst));
    } catch (const std::bad_alloc&) {
      return fail(CRB_ERR_OOM, "images_u8_to_float", "could not allocate interpolation tables");
    }
    return CRB_OK;
  });
}

}  // namespace crb_cpu
