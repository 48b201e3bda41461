// Max pooling (with int32 argmax indices) and adaptive average pooling, NCHW or NHWC, PyTorch
// semantics. NHWC walks the windows once per output pixel with the c channels side by side
// (vectorised across them); each image is one task, so backward's scatter never collides.
//   x, dx: (n, c, h, w)   y, dy, indices: (n, c, out_h, out_w)
// Max pool: padding acts as -inf; the index is the flat ih*w + iw offset within the plane; the
// first maximum wins, and a NaN wins over any number (as in PyTorch's CPU kernel).
// Adaptive avg pool: window [floor(i*H/oh), ceil((i+1)*H/oh)).
#include <cmath>
#include <cstring>
#include <limits>

#include "dtype.h"
#include "ops.h"
#include "threadpool.h"

namespace crb_cpu {

namespace {

crb_status check_desc(const crb_pool_desc* d, const char* op, bool adaptive) {
  crb_geom_error e;
  return check(crb_pool_check(d, !adaptive, &e), e, op);
}

template <class Fn>
void for_each_plane(int64_t planes, Fn&& fn) {
  parallel_for(planes, 1, [&](int64_t p0, int64_t p1, int) {
    for (int64_t p = p0; p < p1; ++p) fn(p);
  });
}

// Window of output row/col o along one axis: [start, end) clipped to [0, size).
inline void max_window(int64_t o, int64_t stride, int64_t pad, int64_t kernel, int64_t size, int64_t* start,
                       int64_t* end) {
  int64_t s = o * stride - pad, e = s + kernel;
  if (e > size) e = size;
  if (s < 0) s = 0;
  *start = s;
  *end = e;
}

template <class T>
void max_forward(const crb_pool_desc* d, const T* x, T* y, int32_t* indices) {
  const int64_t h = d->h, w = d->w, oh = d->out_h, ow = d->out_w;
  for_each_plane(int64_t(d->n) * d->c, [&](int64_t plane) {
    const T* in = x + plane * h * w;
    T* out = y + plane * oh * ow;
    int32_t* idx = indices ? indices + plane * oh * ow : nullptr;
    for (int64_t i = 0; i < oh; ++i) {
      int64_t h0, h1;
      max_window(i, d->stride_h, d->pad_h, d->kernel_h, h, &h0, &h1);
      for (int64_t j = 0; j < ow; ++j) {
        int64_t w0, w1;
        max_window(j, d->stride_w, d->pad_w, d->kernel_w, w, &w0, &w1);
        T best = -std::numeric_limits<T>::infinity();
        int64_t best_at = h0 * w + w0;
        for (int64_t a = h0; a < h1; ++a)
          for (int64_t b = w0; b < w1; ++b) {
            const T v = in[a * w + b];
            if (v > best || std::isnan(v)) {
              best = v;
              best_at = a * w + b;
            }
          }
        out[i * ow + j] = best;
        if (idx) idx[i * ow + j] = int32_t(best_at);
      }
    }
  });
}

// The CPU backend always keeps the argmax (Note [max-pool indices], binding/ops_pooling.cc).
template <class T>
void max_backward(const crb_pool_desc* d, const T* dy, const int32_t* indices, T* dx) {
  const int64_t h = d->h, w = d->w, oh = d->out_h, ow = d->out_w;
  for_each_plane(int64_t(d->n) * d->c, [&](int64_t plane) {
    T* g = dx + plane * h * w;
    std::memset(g, 0, sizeof(T) * h * w);
    const T* gy = dy + plane * oh * ow;
    const int32_t* idx = indices + plane * oh * ow;
    for (int64_t k = 0; k < oh * ow; ++k) {
      const int64_t at = idx[k];
      if (at >= 0 && at < h * w) g[at] += gy[k];
    }
  });
}

inline int64_t adaptive_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
inline int64_t adaptive_end(int64_t i, int64_t in, int64_t out) { return ((i + 1) * in + out - 1) / out; }

template <class T>
void avg_forward(const crb_pool_desc* d, const T* x, T* y) {
  const int64_t h = d->h, w = d->w, oh = d->out_h, ow = d->out_w;
  for_each_plane(int64_t(d->n) * d->c, [&](int64_t plane) {
    const T* in = x + plane * h * w;
    T* out = y + plane * oh * ow;
    for (int64_t i = 0; i < oh; ++i) {
      const int64_t h0 = adaptive_start(i, h, oh), h1 = adaptive_end(i, h, oh);
      for (int64_t j = 0; j < ow; ++j) {
        const int64_t w0 = adaptive_start(j, w, ow), w1 = adaptive_end(j, w, ow);
        T total = 0;
        for (int64_t a = h0; a < h1; ++a)
          for (int64_t b = w0; b < w1; ++b) total += in[a * w + b];
        out[i * ow + j] = total / T((h1 - h0) * (w1 - w0));
      }
    }
  });
}

template <class T>
void avg_backward(const crb_pool_desc* d, const T* dy, T* dx) {
  const int64_t h = d->h, w = d->w, oh = d->out_h, ow = d->out_w;
  for_each_plane(int64_t(d->n) * d->c, [&](int64_t plane) {
    T* g = dx + plane * h * w;
    std::memset(g, 0, sizeof(T) * h * w);
    const T* gy = dy + plane * oh * ow;
    for (int64_t i = 0; i < oh; ++i) {
      const int64_t h0 = adaptive_start(i, h, oh), h1 = adaptive_end(i, h, oh);
      for (int64_t j = 0; j < ow; ++j) {
        const int64_t w0 = adaptive_start(j, w, ow), w1 = adaptive_end(j, w, ow);
        const T share = gy[i * ow + j] / T((h1 - h0) * (w1 - w0));
        for (int64_t a = h0; a < h1; ++a)
          for (int64_t b = w0; b < w1; ++b) g[a * w + b] += share;
      }
    }
  });
}

template <class Fn>
void for_each_image(int64_t n, Fn&& fn) {
  parallel_for_dynamic(n, 1, [&](int64_t i0, int64_t i1, int) {
    for (int64_t i = i0; i < i1; ++i) fn(i);
  });
}

template <class T>
void max_forward_nhwc(const crb_pool_desc* d, const T* x, T* y, int32_t* indices) {
  const int64_t h = d->h, w = d->w, oh = d->out_h, ow = d->out_w, c = d->c;
  for_each_image(d->n, [&](int64_t img) {
    const T* in = x + img * h * w * c;
    for (int64_t i = 0; i < oh; ++i) {
      int64_t h0, h1;
      max_window(i, d->stride_h, d->pad_h, d->kernel_h, h, &h0, &h1);
      for (int64_t j = 0; j < ow; ++j) {
        int64_t w0, w1;
        max_window(j, d->stride_w, d->pad_w, d->kernel_w, w, &w0, &w1);
        T* out = y + ((img * oh + i) * ow + j) * c;
        int32_t* idx = indices ? indices + ((img * oh + i) * ow + j) * c : nullptr;
        for (int64_t ch = 0; ch < c; ++ch) out[ch] = -std::numeric_limits<T>::infinity();
        if (idx)
          for (int64_t ch = 0; ch < c; ++ch) idx[ch] = int32_t(h0 * w + w0);
        for (int64_t a = h0; a < h1; ++a)
          for (int64_t b = w0; b < w1; ++b) {
            const T* v = in + (a * w + b) * c;
            const int32_t at = int32_t(a * w + b);
            for (int64_t ch = 0; ch < c; ++ch)
              if (v[ch] > out[ch] || std::isnan(v[ch])) {
                out[ch] = v[ch];
                if (idx) idx[ch] = at;
              }
          }
      }
    }
  });
}

template <class T>
void max_backward_nhwc(const crb_pool_desc* d, const T* dy, const int32_t* indices, T* dx) {
  const int64_t h = d->h, w = d->w, ohw = int64_t(d->out_h) * d->out_w, c = d->c;
  for_each_image(d->n, [&](int64_t img) {
    T* g = dx + img * h * w * c;
    std::memset(g, 0, sizeof(T) * h * w * c);
    const T* gy = dy + img * ohw * c;
    const int32_t* idx = indices + img * ohw * c;
    for (int64_t k = 0; k < ohw * c; k += c)
      for (int64_t ch = 0; ch < c; ++ch) {
        const int64_t at = idx[k + ch];
        if (at >= 0 && at < h * w) g[at * c + ch] += gy[k + ch];
      }
  });
}

template <class T>
void avg_forward_nhwc(const crb_pool_desc* d, const T* x, T* y) {
  const int64_t h = d->h, w = d->w, oh = d->out_h, ow = d->out_w, c = d->c;
  for_each_image(d->n, [&](int64_t img) {
    const T* in = x + img * h * w * c;
    for (int64_t i = 0; i < oh; ++i) {
      const int64_t h0 = adaptive_start(i, h, oh), h1 = adaptive_end(i, h, oh);
      for (int64_t j = 0; j < ow; ++j) {
        const int64_t w0 = adaptive_start(j, w, ow), w1 = adaptive_end(j, w, ow);
        T* out = y + ((img * oh + i) * ow + j) * c;
        for (int64_t ch = 0; ch < c; ++ch) out[ch] = T(0);
        for (int64_t a = h0; a < h1; ++a)
          for (int64_t b = w0; b < w1; ++b) {
            const T* v = in + (a * w + b) * c;
            for (int64_t ch = 0; ch < c; ++ch) out[ch] += v[ch];
          }
        const T count = T((h1 - h0) * (w1 - w0));
        for (int64_t ch = 0; ch < c; ++ch) out[ch] /= count;
      }
    }
  });
}

template <class T>
void avg_backward_nhwc(const crb_pool_desc* d, const T* dy, T* dx) {
  const int64_t h = d->h, w = d->w, oh = d->out_h, ow = d->out_w, c = d->c;
  for_each_image(d->n, [&](int64_t img) {
    T* g = dx + img * h * w * c;
    std::memset(g, 0, sizeof(T) * h * w * c);
    for (int64_t i = 0; i < oh; ++i) {
      const int64_t h0 = adaptive_start(i, h, oh), h1 = adaptive_end(i, h, oh);
      for (int64_t j = 0; j < ow; ++j) {
        const int64_t w0 = adaptive_start(j, w, ow), w1 = adaptive_end(j, w, ow);
        const T* gy = dy + ((img * oh + i) * ow + j) * c;
        const T count = T((h1 - h0) * (w1 - w0));
        for (int64_t a = h0; a < h1; ++a)
          for (int64_t b = w0; b < w1; ++b) {
            T* q = g + (a * w + b) * c;
            for (int64_t ch = 0; ch < c; ++ch) q[ch] += gy[ch] / count;
          }
      }
    }
  });
}

}  // namespace

crb_status maxpool2d_forward(const crb_pool_desc* d, const void* x, void* y, int32_t* indices) {
  if (crb_status st = check_desc(d, "maxpool2d_forward", false)) return st;
  return dispatch_float(d->dtype, "maxpool2d_forward", [&](auto zero) {
    using T = decltype(zero);
    if (d->layout == CRB_NHWC)
      max_forward_nhwc<T>(d, static_cast<const T*>(x), static_cast<T*>(y), indices);
    else
      max_forward<T>(d, static_cast<const T*>(x), static_cast<T*>(y), indices);
    return CRB_OK;
  });
}

crb_status maxpool2d_backward(const crb_pool_desc* d, const void* x, const void* y, const void* dy,
                              const int32_t* indices, void* dx) {
  (void)x;
  (void)y;  // the argmax comes from indices
  if (crb_status st = check_desc(d, "maxpool2d_backward", false)) return st;
  if (!indices)
    return fail(CRB_ERR_INVALID, "maxpool2d_backward", "indices must not be null (the CPU backend keeps them)");
  return dispatch_float(d->dtype, "maxpool2d_backward", [&](auto zero) {
    using T = decltype(zero);
    if (d->layout == CRB_NHWC)
      max_backward_nhwc<T>(d, static_cast<const T*>(dy), indices, static_cast<T*>(dx));
    else
      max_backward<T>(d, static_cast<const T*>(dy), indices, static_cast<T*>(dx));
    return CRB_OK;
  });
}

crb_status adaptive_avgpool2d_forward(const crb_pool_desc* d, const void* x, void* y) {
  if (crb_status st = check_desc(d, "adaptive_avgpool2d_forward", true)) return st;
  return dispatch_float(d->dtype, "adaptive_avgpool2d_forward", [&](auto zero) {
    using T = decltype(zero);
    if (d->layout == CRB_NHWC)
      avg_forward_nhwc<T>(d, static_cast<const T*>(x), static_cast<T*>(y));
    else
      avg_forward<T>(d, static_cast<const T*>(x), static_cast<T*>(y));
    return CRB_OK;
  });
}

crb_status adaptive_avgpool2d_backward(const crb_pool_desc* d, const void* dy, void* dx) {
  if (crb_status st = check_desc(d, "adaptive_avgpool2d_backward", true)) return st;
  return dispatch_float(d->dtype, "adaptive_avgpool2d_backward", [&](auto zero) {
    using T = decltype(zero);
    if (d->layout == CRB_NHWC)
      avg_backward_nhwc<T>(d, static_cast<const T*>(dy), static_cast<T*>(dx));
    else
      avg_backward<T>(d, static_cast<const T*>(dy), static_cast<T*>(dx));
    return CRB_OK;
  });
}

}  // namespace crb_cpu
