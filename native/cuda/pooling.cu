// Max pooling and adaptive average pooling, all kernels of ours (no cuDNN).
//   x, dx: (n, c, h, w)   y, dy, indices: (n, c, out_h, out_w), all in d->layout
//   indices (int32, optional): flat h * w offset of each window's max within its plane, the
//   CPU backend's convention (Note [max-pool indices] in native/binding/ops_pooling.cc)
//
// Note [max pool ties]
// After a ReLU many windows hold several equal maxima (all zeros). PyTorch sends the gradient
// to the first maximum in row-major window order, and a NaN wins (each NaN met replaces the
// best so far, as in PyTorch's `val > maxval || isnan(val)`); cuDNN documents neither and
// returns no indices. So the forward is a kernel of ours that writes y and the argmax with
// PyTorch's rule (the CPU backend's loop, native/cpu/pooling.cc), and the backward is a gather
// kernel: each input element sums dy over the windows whose argmax it is, read from indices
// (or recomputed from x when none are given), in a fixed order, so it is deterministic and
// needs no atomics.
#include "cudnn_utils.h"
#include "kernels.cuh"
#include "ops.h"

namespace crb_cuda {
namespace {

struct PoolGeom {
  int64_t n, c, h, w, out_h, out_w;
  int kh, kw, sh, sw, ph, pw;
  bool nhwc;
};

template <typename T>
struct WindowMax {
  acc_t<T> value;
  int32_t index;  // flat ih * w + iw
};

// Maximum and argmax of window (oh, ow) of plane (img, ch), PyTorch's rule (Note [max pool ties]).
template <typename T>
__device__ __forceinline__ WindowMax<T> window_max(const T* x, const PoolGeom& g, int64_t img, int64_t ch, int64_t oh,
                                                   int64_t ow) {
  const int64_t h0 = oh * g.sh - g.ph, w0 = ow * g.sw - g.pw;
  const int64_t h1 = min(h0 + g.kh, g.h), w1 = min(w0 + g.kw, g.w);
  const int64_t hs = max(h0, int64_t(0)), ws = max(w0, int64_t(0));
  acc_t<T> best = -INFINITY;
  int64_t best_idx = hs * g.w + ws;
  for (int64_t ih = hs; ih < h1; ++ih)
    for (int64_t iw = ws; iw < w1; ++iw) {
      const acc_t<T> v = load(x, nchw_index(g.nhwc, img, ch, ih * g.w + iw, g.c, g.h * g.w));
      if (v > best || v != v) {
        best = v;
        best_idx = ih * g.w + iw;
      }
    }
  return WindowMax<T>{best, static_cast<int32_t>(best_idx)};
}

// The (image, channel, position) of flat element i of an (n, c, plane) tensor stored NCHW or
// NHWC: the inverse of nchw_index.
struct Nchw {
  int64_t img, ch, pos;
};
__device__ __forceinline__ Nchw nchw_split(bool nhwc, int64_t i, int64_t c, int64_t plane) {
  if (nhwc) return Nchw{i / (c * plane), i % c, (i / c) % plane};
  return Nchw{i / (c * plane), (i / plane) % c, i % plane};
}

// y, indices (optional): (n, c, out_h, out_w) in layout
template <typename T>
__global__ void maxpool_forward_kernel(T* y, int32_t* indices, const T* x, PoolGeom g) {
  const int64_t ohw = g.out_h * g.out_w, total = g.n * g.c * ohw;
  CRB_GRID_STRIDE(i, total) {
    const Nchw at = nchw_split(g.nhwc, i, g.c, ohw);
    const WindowMax<T> m = window_max(x, g, at.img, at.ch, at.pos / g.out_w, at.pos % g.out_w);
    store(y, i, m.value);
    if (indices) indices[i] = m.index;
  }
}

// dx: (n, c, h, w); see Note [max pool ties].
template <typename T>
__global__ void maxpool_backward_kernel(T* dx, const T* x, const T* dy, const int32_t* indices, PoolGeom g) {
  const int64_t hw = g.h * g.w, ohw = g.out_h * g.out_w, total = g.n * g.c * hw;
  CRB_GRID_STRIDE(i, total) {
    const Nchw at = nchw_split(g.nhwc, i, g.c, hw);
    const int64_t img = at.img, ch = at.ch, pos = at.pos;
    const int64_t ih = pos / g.w, iw = pos % g.w;
    // Windows containing ih: oh * sh - ph <= ih <= oh * sh - ph + kh - 1.
    const int64_t oh0 = max(int64_t(0), (ih + g.ph - g.kh + g.sh) / g.sh);
    const int64_t oh1 = min(g.out_h - 1, (ih + g.ph) / g.sh);
    const int64_t ow0 = max(int64_t(0), (iw + g.pw - g.kw + g.sw) / g.sw);
    const int64_t ow1 = min(g.out_w - 1, (iw + g.pw) / g.sw);
    acc_t<T> acc = 0;
    for (int64_t oh = oh0; oh <= oh1; ++oh)
      for (int64_t ow = ow0; ow <= ow1; ++ow) {
        const int64_t out_idx = nchw_index(g.nhwc, img, ch, oh * g.out_w + ow, g.c, ohw);
        const int32_t arg = indices ? indices[out_idx] : window_max(x, g, img, ch, oh, ow).index;
        if (arg == pos) acc += load(dy, out_idx);
      }
    store(dx, i, acc);
  }
}

// PyTorch's adaptive windows: [floor(o * in / out), ceil((o + 1) * in / out)).
__device__ __forceinline__ int64_t adaptive_start(int64_t o, int64_t in, int64_t out) { return (o * in) / out; }
__device__ __forceinline__ int64_t adaptive_end(int64_t o, int64_t in, int64_t out) {
  return ((o + 1) * in + out - 1) / out;
}

// y: (n, c, out_h, out_w) = mean of each adaptive window of x: (n, c, h, w)
template <typename T>
__global__ void adaptive_avgpool_forward_kernel(T* y, const T* x, PoolGeom g) {
  const int64_t hw = g.h * g.w, ohw = g.out_h * g.out_w, total = g.n * g.c * ohw;
  CRB_GRID_STRIDE(i, total) {
    const Nchw at = nchw_split(g.nhwc, i, g.c, ohw);
    const int64_t img = at.img, ch = at.ch, pos = at.pos;
    const int64_t oh = pos / g.out_w, ow = pos % g.out_w;
    const int64_t h0 = adaptive_start(oh, g.h, g.out_h), h1 = adaptive_end(oh, g.h, g.out_h);
    const int64_t w0 = adaptive_start(ow, g.w, g.out_w), w1 = adaptive_end(ow, g.w, g.out_w);
    acc_t<T> acc = 0;
    for (int64_t ih = h0; ih < h1; ++ih)
      for (int64_t iw = w0; iw < w1; ++iw) acc += load(x, nchw_index(g.nhwc, img, ch, ih * g.w + iw, g.c, hw));
    store(y, i, acc / static_cast<acc_t<T>>((h1 - h0) * (w1 - w0)));
  }
}

// dx: (n, c, h, w): each element gathers dy / window area from every window containing it.
template <typename T>
__global__ void adaptive_avgpool_backward_kernel(T* dx, const T* dy, PoolGeom g) {
  const int64_t hw = g.h * g.w, ohw = g.out_h * g.out_w, total = g.n * g.c * hw;
  CRB_GRID_STRIDE(i, total) {
    const Nchw at = nchw_split(g.nhwc, i, g.c, hw);
    const int64_t img = at.img, ch = at.ch, pos = at.pos;
    const int64_t ih = pos / g.w, iw = pos % g.w;
    // Candidates: oh in [floor(ih * out / in), ceil((ih + 1) * out / in)); membership rechecked.
    const int64_t oh0 = (ih * g.out_h) / g.h, oh1 = min(g.out_h, ((ih + 1) * g.out_h + g.h - 1) / g.h);
    const int64_t ow0 = (iw * g.out_w) / g.w, ow1 = min(g.out_w, ((iw + 1) * g.out_w + g.w - 1) / g.w);
    acc_t<T> acc = 0;
    for (int64_t oh = oh0; oh < oh1; ++oh) {
      const int64_t h0 = adaptive_start(oh, g.h, g.out_h), h1 = adaptive_end(oh, g.h, g.out_h);
      if (ih < h0 || ih >= h1) continue;
      for (int64_t ow = ow0; ow < ow1; ++ow) {
        const int64_t w0 = adaptive_start(ow, g.w, g.out_w), w1 = adaptive_end(ow, g.w, g.out_w);
        if (iw < w0 || iw >= w1) continue;
        acc += load(dy, nchw_index(g.nhwc, img, ch, oh * g.out_w + ow, g.c, ohw)) /
               static_cast<acc_t<T>>((h1 - h0) * (w1 - w0));
      }
    }
    store(dx, i, acc);
  }
}

PoolGeom geometry(const crb_pool_desc& d) {
  return PoolGeom{d.n, d.c, d.h, d.w, d.out_h, d.out_w, d.kernel_h, d.kernel_w, d.stride_h, d.stride_w,
                  d.pad_h, d.pad_w, d.layout == CRB_NHWC};
}

// Runs `launch(T{}, grid)` (one kernel over `total` elements of d's dtype) and checks the launch.
template <typename Launch>
crb_status launch_pool(const crb_pool_desc& d, int64_t total, const OpScope& scope, Launch&& launch) {
  return dispatch_float(d.dtype, scope, [&](auto tag) -> crb_status {
    launch(tag, grid_for(total, kThreads));
    CRB_CUDA_CHECK_LAUNCH(scope);
    return CRB_OK;
  });
}

#define POOL_SCOPE(name)                                                                                            \
  OpScope scope(name, "x (%d, %d, %d, %d), y (%d, %d, %d, %d), kernel (%d, %d), stride (%d, %d), pad (%d, %d), %s %s", \
                d ? d->n : 0, d ? d->c : 0, d ? d->h : 0, d ? d->w : 0, d ? d->n : 0, d ? d->c : 0,               \
                d ? d->out_h : 0, d ? d->out_w : 0, d ? d->kernel_h : 0, d ? d->kernel_w : 0, d ? d->stride_h : 0,  \
                d ? d->stride_w : 0, d ? d->pad_h : 0, d ? d->pad_w : 0, d ? crb_dtype_name(d->dtype) : "",            \
                d ? crb_layout_name(d->layout) : "")

crb_status validate_pool(const crb_pool_desc* d, bool max_pool, const OpScope& scope) {
  crb_geom_error e;
  CRB_TRY(check(crb_pool_check(d, max_pool, &e), e, scope));
  if (!is_float_dtype(d->dtype)) return unsupported(scope, "pooling takes float tensors, got %s", crb_dtype_name(d->dtype));
  if (d->layout != CRB_NCHW && d->layout != CRB_NHWC) return invalid(scope, "unknown layout %d", (int)d->layout);
  return CRB_OK;
}

}  // namespace

crb_status maxpool2d_forward(const crb_pool_desc* d, const void* x, void* y, int32_t* indices) {
  POOL_SCOPE("maxpool2d_forward");
  CRB_TRY(ensure_init(scope));
  CRB_TRY(validate_pool(d, true, scope));
  if (!x || !y) return invalid(scope, "x and y must not be null");
  const PoolGeom g = geometry(*d);
  return launch_pool(*d, g.n * g.c * g.out_h * g.out_w, scope, [&](auto tag, unsigned grid) {
    using T = decltype(tag);
    maxpool_forward_kernel<T><<<grid, kThreads, 0, stream()>>>(static_cast<T*>(y), indices, static_cast<const T*>(x), g);
  });
}

crb_status maxpool2d_backward(const crb_pool_desc* d, const void* x, const void* y, const void* dy,
                              const int32_t* indices, void* dx) {
  POOL_SCOPE("maxpool2d_backward");
  CRB_TRY(ensure_init(scope));
  CRB_TRY(validate_pool(d, true, scope));
  if (!dy || !dx || (!x && !indices)) return invalid(scope, "dy, dx and x (or indices) must not be null");
  const PoolGeom g = geometry(*d);
  return launch_pool(*d, g.n * g.c * g.h * g.w, scope, [&](auto tag, unsigned grid) {
    using T = decltype(tag);
    maxpool_backward_kernel<T><<<grid, kThreads, 0, stream()>>>(
        static_cast<T*>(dx), static_cast<const T*>(x), static_cast<const T*>(dy), indices, g);
  });
}

crb_status adaptive_avgpool2d_forward(const crb_pool_desc* d, const void* x, void* y) {
  POOL_SCOPE("adaptive_avgpool2d_forward");
  CRB_TRY(ensure_init(scope));
  CRB_TRY(validate_pool(d, false, scope));
  if (!x || !y) return invalid(scope, "x and y must not be null");
  const PoolGeom g = geometry(*d);
  return launch_pool(*d, g.n * g.c * g.out_h * g.out_w, scope, [&](auto tag, unsigned grid) {
    using T = decltype(tag);
    adaptive_avgpool_forward_kernel<T><<<grid, kThreads, 0, stream()>>>(
        static_cast<T*>(y), static_cast<const T*>(x), g);
  });
}

crb_status adaptive_avgpool2d_backward(const crb_pool_desc* d, const void* dy, void* dx) {
  POOL_SCOPE("adaptive_avgpool2d_backward");
  CRB_TRY(ensure_init(scope));
  CRB_TRY(validate_pool(d, false, scope));
  if (!dy || !dx) return invalid(scope, "dy and dx must not be null");
  const PoolGeom g = geometry(*d);
  return launch_pool(*d, g.n * g.c * g.h * g.w, scope, [&](auto tag, unsigned grid) {
    using T = decltype(tag);
    adaptive_avgpool_backward_kernel<T><<<grid, kThreads, 0, stream()>>>(
        static_cast<T*>(dx), static_cast<const T*>(dy), g);
  });
}

}  // namespace crb_cuda
