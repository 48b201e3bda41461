// 2-D convolution, PyTorch semantics (any kernel, stride, padding, dilation, groups), NCHW.
//   x: (n, c, h, w)   w: (k, c/groups, r, s)   b: (k)   y: (n, k, out_h, out_w)
// Forward is a GEMM per image and group, y_g = w_g (k/g x c/g*r*s) * col_g (c/g*r*s x out_h*out_w),
// where col is im2col(x) packed straight into the GEMM's B panels (never materialised).
// Stride 1 needs no im2col at all: on the zero-padded input (hp x wp), row (c, r, s) of col is the
// padded image itself shifted by c*hp*wp + r*dh*wp + s*dw, if the output is computed on the padded
// grid (out_h x wp, the extra wp - out_w columns being discarded). Packing is then plain copies.
// Backward data: with stride 1 it is the forward conv of dy with the flipped, transposed weights
// (padding dil*(r-1) - pad); otherwise dcol = w_g^T * dy_g, then col2im scatters it into dx.
// Backward filter: dw_g = sum over images of dy_g * col_g^T; with stride 1 col_g^T is read straight
// from the padded input like in forward (dy put on the padded grid, zeros in the extra columns),
// otherwise im2col is materialised per image.
// Images are spread over the threads (each runs its own single-threaded GEMM); a batch smaller
// than the pool runs image by image with a threaded GEMM instead.
// The im2col segments are short (a few dozen elements): calls to memmove/memset for them cost
// more than the copy, so keep GCC from turning the copy loops into library calls.
#pragma GCC optimize("no-tree-loop-distribute-patterns")

#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

#include "dtype.h"
#include "gemm.h"
#include "ops.h"
#include "threadpool.h"

namespace crb_cpu {

namespace {

struct ConvGeom {
  int64_t n, c, h, w, k, r, s, sh, sw, ph, pw, dh, dw, groups, oh, ow;
  int64_t cg() const { return c / groups; }
  int64_t kg() const { return k / groups; }
  int64_t crs() const { return cg() * r * s; }  // GEMM inner size per group
  int64_t ohw() const { return oh * ow; }
  int64_t hw() const { return h * w; }
};

crb_status check_desc(const crb_conv2d_desc* d, const char* op, ConvGeom* g) {
  if (!d) return fail(CRB_ERR_INVALID, op, "desc must not be null");
  if (d->layout != CRB_NCHW)
    return fail(CRB_ERR_UNSUPPORTED, op, "the CPU backend stores tensors as NCHW only, got layout %d (NHWC)",
                (int)d->layout);
  if (d->n <= 0 || d->c <= 0 || d->h <= 0 || d->w <= 0 || d->k <= 0 || d->r <= 0 || d->s <= 0)
    return fail(CRB_ERR_INVALID, op, "sizes must be positive, got x (%d, %d, %d, %d), w (%d, ., %d, %d)", d->n, d->c,
                d->h, d->w, d->k, d->r, d->s);
  if (d->stride_h <= 0 || d->stride_w <= 0 || d->dil_h <= 0 || d->dil_w <= 0 || d->pad_h < 0 || d->pad_w < 0)
    return fail(CRB_ERR_INVALID, op, "stride and dilation must be positive and padding non-negative, got stride (%d, %d) "
                "padding (%d, %d) dilation (%d, %d)", d->stride_h, d->stride_w, d->pad_h, d->pad_w, d->dil_h, d->dil_w);
  if (d->groups <= 0 || d->c % d->groups || d->k % d->groups)
    return fail(CRB_ERR_INVALID, op, "groups %d must divide in_channels %d and out_channels %d", d->groups, d->c, d->k);
  const int64_t oh = (int64_t(d->h) + 2 * d->pad_h - int64_t(d->dil_h) * (d->r - 1) - 1) / d->stride_h + 1;
  const int64_t ow = (int64_t(d->w) + 2 * d->pad_w - int64_t(d->dil_w) * (d->s - 1) - 1) / d->stride_w + 1;
  if (oh <= 0 || ow <= 0 || oh != d->out_h || ow != d->out_w)
    return fail(CRB_ERR_INVALID, op, "out_h, out_w must be (%lld, %lld) for input %dx%d, kernel %dx%d, stride (%d, %d), "
                "padding (%d, %d), dilation (%d, %d); got (%d, %d)", (long long)oh, (long long)ow, d->h, d->w, d->r,
                d->s, d->stride_h, d->stride_w, d->pad_h, d->pad_w, d->dil_h, d->dil_w, d->out_h, d->out_w);
  *g = {d->n, d->c, d->h, d->w, d->k, d->r, d->s, d->stride_h, d->stride_w, d->pad_h, d->pad_w,
        d->dil_h, d->dil_w, d->groups, oh, ow};
  return CRB_OK;
}

// One output row segment of a B panel: output positions (oh, ow0 .. ow0+len) land at column joff.
struct Segment {
  int64_t oh, ow0, len, joff;
};

// Copies input row `row` (length w) sampled at iw = iw0 + t*sw for t in [0, len) into dst,
// with zeros where iw falls into the padding.
template <class T>
inline void gather_row(const T* row, int64_t w, int64_t iw0, int64_t sw, int64_t len, T* __restrict dst) {
  if (sw == 1) {
    const int64_t lo = std::min(len, std::max<int64_t>(0, -iw0));
    const int64_t hi = std::max(lo, std::min(len, w - iw0));
    for (int64_t t = 0; t < lo; ++t) dst[t] = T(0);
    const T* src = row + iw0;
    for (int64_t t = lo; t < hi; ++t) dst[t] = src[t];
    for (int64_t t = hi; t < len; ++t) dst[t] = T(0);
    return;
  }
  for (int64_t t = 0; t < len; ++t) {
    const int64_t iw = iw0 + t * sw;
    dst[t] = (iw >= 0 && iw < w) ? row[iw] : T(0);
  }
}

// B = im2col of one image and group (crs x ohw), packed panel by panel on demand.
template <class T>
struct Im2colPackB final : PackB<T> {
  const ConvGeom& g;
  const T* x;  // first channel of the group in this image
  Im2colPackB(const ConvGeom& geom, const T* x_group) : g(geom), x(x_group) {}

  void pack(int64_t p0, int64_t kc, int64_t j0, int64_t nc, int nr, T* __restrict bp) const override {
    Segment segs[130];
    for (int64_t jr = 0; jr < nc; jr += nr) {
      const int64_t cols = std::min<int64_t>(nr, nc - jr);
      int nseg = 0;
      for (int64_t j = 0; j < cols;) {
        const int64_t pos = j0 + jr + j, oh = pos / g.ow, ow0 = pos % g.ow;
        const int64_t len = std::min(cols - j, g.ow - ow0);
        segs[nseg++] = {oh, ow0, len, j};
        j += len;
      }
      T* dst = bp + jr * kc;
      int64_t c = p0 / (g.r * g.s), rs = p0 % (g.r * g.s), r = rs / g.s, s = rs % g.s;
      for (int64_t p = 0; p < kc; ++p) {
        const T* plane = x + c * g.hw();
        T* d = dst + p * nr;
        for (int i = 0; i < nseg; ++i) {
          const Segment& sg = segs[i];
          const int64_t ih = sg.oh * g.sh - g.ph + r * g.dh;
          if (ih < 0 || ih >= g.h) {
            for (int64_t t = 0; t < sg.len; ++t) d[sg.joff + t] = T(0);
          } else {
            gather_row(plane + ih * g.w, g.w, sg.ow0 * g.sw - g.pw + s * g.dw, g.sw, sg.len, d + sg.joff);
          }
        }
        for (int64_t j = cols; j < nr; ++j) d[j] = T(0);
        if (++s == g.s) {
          s = 0;
          if (++r == g.r) {
            r = 0;
            ++c;
          }
        }
      }
    }
  }
};

// col (crs x ohw, row-major) = im2col of one image and group.
template <class T>
void im2col(const ConvGeom& g, const T* x, T* col) {
  for (int64_t c = 0; c < g.cg(); ++c)
    for (int64_t r = 0; r < g.r; ++r)
      for (int64_t s = 0; s < g.s; ++s) {
        T* dst = col + ((c * g.r + r) * g.s + s) * g.ohw();
        const T* plane = x + c * g.hw();
        for (int64_t oh = 0; oh < g.oh; ++oh) {
          const int64_t ih = oh * g.sh - g.ph + r * g.dh;
          T* d = dst + oh * g.ow;
          if (ih < 0 || ih >= g.h) {
            for (int64_t t = 0; t < g.ow; ++t) d[t] = T(0);
          } else {
            gather_row(plane + ih * g.w, g.w, s * g.dw - g.pw, g.sw, g.ow, d);
          }
        }
      }
}

// dx (one image and group) += col2im(col): the adjoint of im2col.
template <class T>
void col2im_add(const ConvGeom& g, const T* col, T* dx) {
  for (int64_t c = 0; c < g.cg(); ++c)
    for (int64_t r = 0; r < g.r; ++r)
      for (int64_t s = 0; s < g.s; ++s) {
        const T* src = col + ((c * g.r + r) * g.s + s) * g.ohw();
        T* plane = dx + c * g.hw();
        for (int64_t oh = 0; oh < g.oh; ++oh) {
          const int64_t ih = oh * g.sh - g.ph + r * g.dh;
          if (ih < 0 || ih >= g.h) continue;
          T* row = plane + ih * g.w;
          const T* sr = src + oh * g.ow;
          const int64_t iw0 = s * g.dw - g.pw;
          if (g.sw == 1) {
            const int64_t lo = std::min(g.ow, std::max<int64_t>(0, -iw0));
            const int64_t hi = std::max(lo, std::min(g.ow, g.w - iw0));
            T* dst = row + iw0;
            for (int64_t t = lo; t < hi; ++t) dst[t] += sr[t];
          } else {
            for (int64_t t = 0; t < g.ow; ++t) {
              const int64_t iw = iw0 + t * g.sw;
              if (iw >= 0 && iw < g.w) row[iw] += sr[t];
            }
          }
        }
      }
}

// B of the stride-1 conv: row p of col is xpad + offsets[p], contiguous (see the file comment).
template <class T>
struct ShiftedRowsPackB final : PackB<T> {
  const T* xpad;
  const int64_t* offsets;  // one per row of col (crs)
  ShiftedRowsPackB(const T* x, const int64_t* offs) : xpad(x), offsets(offs) {}
  void pack(int64_t p0, int64_t kc, int64_t j0, int64_t nc, int nr, T* __restrict bp) const override {
    const GemmKernel<T>& kern = gemm_kernel<T>();
    for (int64_t jr = 0; jr < nc; jr += nr) {
      const int64_t cols = std::min<int64_t>(nr, nc - jr);
      T* dst = bp + jr * kc;
      const T* base = xpad + j0 + jr;
      if (cols == nr) {
        kern.pack_b(base, offsets + p0, 0, kc, dst);
        continue;
      }
      for (int64_t p = 0; p < kc; ++p) {
        const T* src = base + offsets[p0 + p];
        T* d = dst + p * nr;
        int64_t j = 0;
        for (; j < cols; ++j) d[j] = src[j];
        for (; j < nr; ++j) d[j] = T(0);
      }
    }
  }
};

bool is_pointwise(const ConvGeom& g) {
  return g.r == 1 && g.s == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0;
}

// Runs body(image, gemm_parallel) for every image: whole images per thread when the batch can
// keep the pool busy, else one image at a time with the GEMM itself threaded. Returns false if
// any call failed (out of scratch memory).
template <class Body>
bool for_each_image(int64_t n, Body&& body) {
  const int threads = num_threads();
  if (n < threads) {
    for (int64_t i = 0; i < n; ++i)
      if (!body(i, true, 0)) return false;
    return true;
  }
  std::atomic<bool> ok{true};
  parallel_for(n, 1, [&](int64_t b, int64_t e, int thread) {
    for (int64_t i = b; i < e && ok.load(std::memory_order_relaxed); ++i)
      if (!body(i, false, thread)) ok.store(false);
  });
  return ok.load();
}

// Copies one image and group into the zero-padded (cg, hp, wp) layout the shifted paths read.
template <class T>
void pad_input(const ConvGeom& g, const T* xg, T* xpad) {
  const int64_t hp = g.h + 2 * g.ph, wp = g.w + 2 * g.pw, plane = hp * wp;
  for (int64_t c = 0; c < g.cg(); ++c) {
    T* dst = xpad + c * plane;
    const T* in = xg + c * g.hw();
    std::fill(dst, dst + g.ph * wp, T(0));
    for (int64_t i = 0; i < g.h; ++i) {
      T* row = dst + (g.ph + i) * wp;
      std::fill(row, row + g.pw, T(0));
      std::copy(in + i * g.w, in + (i + 1) * g.w, row + g.pw);
      std::fill(row + g.pw + g.w, row + wp, T(0));
    }
    std::fill(dst + (g.ph + g.h) * wp, dst + plane, T(0));
  }
}

// Stride-1 forward of one image and group on the padded grid; false when out of scratch memory.
template <class T>
bool forward_shifted(const ConvGeom& g, const PackedA<T>& wpack, const int64_t* offsets, const T* xg, const T* bias,
                     T* yg, bool par) {
  const int64_t hp = g.h + 2 * g.ph, wp = g.w + 2 * g.pw, plane = hp * wp;
  const T* src = xg;
  if (g.ph || g.pw) {
    T* xpad = static_cast<T*>(scratch(2, sizeof(T) * g.cg() * plane));
    if (!xpad) return false;
    pad_input(g, xg, xpad);
    src = xpad;
  }
  // Output positions on the padded grid: the last row stops at out_w so no read leaves xpad.
  const int64_t np = (g.oh - 1) * wp + g.ow;
  const bool direct = wp == g.ow;  // no discarded columns: write y itself
  T* out = yg;
  if (!direct) {
    out = static_cast<T*>(scratch(3, sizeof(T) * g.kg() * np));
    if (!out) return false;
  }
  ShiftedRowsPackB<T> packer(src, offsets);
  if (!gemm<T>(np, T(1), wpack, packer, T(0), out, np, par)) return false;
  for (int64_t kk = 0; kk < g.kg(); ++kk) {
    const T b = bias ? bias[kk] : T(0);
    T* yrow = yg + kk * g.ohw();
    const T* orow = out + kk * np;
    if (direct) {
      if (bias)
        for (int64_t j = 0; j < g.ohw(); ++j) yrow[j] += b;
      continue;
    }
    for (int64_t i = 0; i < g.oh; ++i)
      for (int64_t j = 0; j < g.ow; ++j) yrow[i * g.ow + j] = orow[i * wp + j] + b;
  }
  return true;
}

template <class T>
crb_status forward(const ConvGeom& g, const T* x, const T* w, const T* b, T* y) {
  // The weights are the A of every image's GEMM: pack them once, share them across threads.
  std::vector<PackedA<T>> wpack(g.groups);
  for (int64_t grp = 0; grp < g.groups; ++grp)
    if (!wpack[grp].pack(g.kg(), g.crs(), row_major(w + grp * g.kg() * g.crs(), g.crs())))
      return fail(CRB_ERR_OOM, "conv2d_forward", "could not allocate the packed weights");
  const bool shifted = g.sh == 1 && g.sw == 1 && !is_pointwise(g);
  std::vector<int64_t> offsets;
  if (shifted) {
    const int64_t hp = g.h + 2 * g.ph, wp = g.w + 2 * g.pw;
    offsets.resize(g.crs());
    for (int64_t c = 0; c < g.cg(); ++c)
      for (int64_t r = 0; r < g.r; ++r)
        for (int64_t s = 0; s < g.s; ++s) offsets[(c * g.r + r) * g.s + s] = c * hp * wp + r * g.dh * wp + s * g.dw;
  }
  bool ok = for_each_image(g.n, [&](int64_t img, bool par, int) {
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      const T* xg = x + (img * g.c + grp * g.cg()) * g.hw();
      T* yg = y + (img * g.k + grp * g.kg()) * g.ohw();
      const T* bg = b ? b + grp * g.kg() : nullptr;
      if (shifted) {
        if (!forward_shifted(g, wpack[grp], offsets.data(), xg, bg, yg, par)) return false;
        continue;
      }
      bool r;
      if (is_pointwise(g)) {
        r = gemm<T>(g.ohw(), T(1), wpack[grp], row_major(xg, g.hw()), T(0), yg, g.ohw(), par);
      } else {
        Im2colPackB<T> packer(g, xg);
        r = gemm<T>(g.ohw(), T(1), wpack[grp], packer, T(0), yg, g.ohw(), par);
      }
      if (!r) return false;
      if (bg) {
        for (int64_t kk = 0; kk < g.kg(); ++kk) {
          T* row = yg + kk * g.ohw();
          for (int64_t j = 0; j < g.ohw(); ++j) row[j] += bg[kk];
        }
      }
    }
    return true;
  });
  return ok ? CRB_OK : fail(CRB_ERR_OOM, "conv2d_forward", "could not allocate GEMM packing buffers");
}

template <class T>
crb_status backward_data(const ConvGeom& g, const T* dy, const T* w, T* dx) {
  const int64_t pad_h = g.dh * (g.r - 1) - g.ph, pad_w = g.dw * (g.s - 1) - g.pw;
  if (g.sh == 1 && g.sw == 1 && pad_h >= 0 && pad_w >= 0 && !is_pointwise(g)) {
    // dx = conv(dy, w'), w'[grp][c][k][r][s] = w[grp][k][c][R-1-r][S-1-s]
    std::vector<T> wt;
    try {
      wt.resize(size_t(g.k) * g.crs());
    } catch (const std::bad_alloc&) {
      return fail(CRB_ERR_OOM, "conv2d_backward_data", "could not allocate the flipped weights");
    }
    const int64_t rs = g.r * g.s;
    for (int64_t grp = 0; grp < g.groups; ++grp)
      for (int64_t k = 0; k < g.kg(); ++k)
        for (int64_t c = 0; c < g.cg(); ++c)
          for (int64_t i = 0; i < rs; ++i)
            wt[((grp * g.cg() + c) * g.kg() + k) * rs + (rs - 1 - i)] = w[((grp * g.kg() + k) * g.cg() + c) * rs + i];
    const ConvGeom t = {g.n, g.k, g.oh, g.ow, g.c, g.r, g.s, 1, 1, pad_h, pad_w, g.dh, g.dw, g.groups, g.h, g.w};
    return forward<T>(t, dy, wt.data(), nullptr, dx);
  }
  const bool pointwise = is_pointwise(g);
  std::vector<PackedA<T>> wpack(g.groups);  // w_g^T, shared by every image
  for (int64_t grp = 0; grp < g.groups; ++grp)
    if (!wpack[grp].pack(g.crs(), g.kg(), transposed(w + grp * g.kg() * g.crs(), g.crs())))
      return fail(CRB_ERR_OOM, "conv2d_backward_data", "could not allocate the packed weights");
  bool ok = for_each_image(g.n, [&](int64_t img, bool par, int) {
    T* col = nullptr;
    if (!pointwise) {
      col = static_cast<T*>(scratch(2, sizeof(T) * g.crs() * g.ohw()));
      if (!col) return false;
      std::memset(dx + img * g.c * g.hw(), 0, sizeof(T) * g.c * g.hw());
    }
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      const T* dyg = dy + (img * g.k + grp * g.kg()) * g.ohw();
      T* dxg = dx + (img * g.c + grp * g.cg()) * g.hw();
      // dcol (crs x ohw) = wg^T (crs x kg) * dyg (kg x ohw)
      T* out = pointwise ? dxg : col;
      if (!gemm<T>(g.ohw(), T(1), wpack[grp], row_major(dyg, g.ohw()), T(0), out, g.ohw(), par))
        return false;
      if (!pointwise) col2im_add(g, col, dxg);
    }
    return true;
  });
  return ok ? CRB_OK : fail(CRB_ERR_OOM, "conv2d_backward_data", "could not allocate im2col / packing buffers");
}

// B of the stride-1 filter gradient: B(p, j) = xpad[offsets[j] + p], p on the padded grid.
template <class T>
struct ShiftedColsPackB final : PackB<T> {
  const T* xpad;
  const int64_t* offsets;  // one per column (crs)
  ShiftedColsPackB(const T* x, const int64_t* offs) : xpad(x), offsets(offs) {}
  void pack(int64_t p0, int64_t kc, int64_t j0, int64_t nc, int nr, T* __restrict bp) const override {
    for (int64_t jr = 0; jr < nc; jr += nr) {
      const int64_t cols = std::min<int64_t>(nr, nc - jr);
      T* dst = bp + jr * kc;
      for (int64_t j = 0; j < cols; ++j) {
        const T* src = xpad + offsets[j0 + jr + j] + p0;
        for (int64_t p = 0; p < kc; ++p) dst[p * nr + j] = src[p];
      }
      for (int64_t j = cols; j < nr; ++j)
        for (int64_t p = 0; p < kc; ++p) dst[p * nr + j] = T(0);
    }
  }
};

template <class T>
crb_status backward_filter(const ConvGeom& g, const T* x, const T* dy, T* dw) {
  const int64_t wsize = g.k * g.crs();
  const int threads = num_threads();
  const bool per_image_threads = g.n >= threads;
  // Each thread accumulates its images into its own copy of dw; the copies are summed at the end.
  std::vector<T> partials;
  try {
    partials.assign(per_image_threads ? size_t(threads - 1) * wsize : 0, T(0));
  } catch (const std::bad_alloc&) {
    return fail(CRB_ERR_OOM, "conv2d_backward_filter", "could not allocate %d partial weight gradients", threads - 1);
  }
  std::vector<char> touched(threads, 0);
  const bool pointwise = is_pointwise(g);
  const bool shifted = g.sh == 1 && g.sw == 1 && !pointwise;
  const int64_t hp = g.h + 2 * g.ph, wp = g.w + 2 * g.pw, np = (g.oh - 1) * wp + g.ow;
  std::vector<int64_t> offsets;
  if (shifted) {
    offsets.resize(g.crs());
    for (int64_t c = 0; c < g.cg(); ++c)
      for (int64_t r = 0; r < g.r; ++r)
        for (int64_t s = 0; s < g.s; ++s) offsets[(c * g.r + r) * g.s + s] = c * hp * wp + r * g.dh * wp + s * g.dw;
  }
  bool ok = for_each_image(g.n, [&](int64_t img, bool par, int thread) {
    T* acc = thread == 0 ? dw : partials.data() + (thread - 1) * wsize;
    const T beta = touched[thread] ? T(1) : T(0);
    touched[thread] = 1;
    if (shifted) {
      T* xpad = static_cast<T*>(scratch(2, sizeof(T) * g.cg() * hp * wp));
      T* dypad = static_cast<T*>(scratch(3, sizeof(T) * g.kg() * np));
      if (!xpad || !dypad) return false;
      for (int64_t grp = 0; grp < g.groups; ++grp) {
        pad_input(g, x + (img * g.c + grp * g.cg()) * g.hw(), xpad);
        const T* dyg = dy + (img * g.k + grp * g.kg()) * g.ohw();
        for (int64_t kk = 0; kk < g.kg(); ++kk)
          for (int64_t i = 0; i < g.oh; ++i) {
            T* row = dypad + kk * np + i * wp;
            std::copy(dyg + kk * g.ohw() + i * g.ow, dyg + kk * g.ohw() + (i + 1) * g.ow, row);
            if (i + 1 < g.oh) std::fill(row + g.ow, row + wp, T(0));
          }
        ShiftedColsPackB<T> packer(xpad, offsets.data());
        if (!gemm<T>(g.kg(), g.crs(), np, T(1), row_major(dypad, np), packer, beta, acc + grp * g.kg() * g.crs(),
                     g.crs(), par))
          return false;
      }
      return true;
    }
    T* col = nullptr;
    if (!pointwise) {
      col = static_cast<T*>(scratch(2, sizeof(T) * g.crs() * g.ohw()));
      if (!col) return false;
    }
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      const T* xg = x + (img * g.c + grp * g.cg()) * g.hw();
      const T* dyg = dy + (img * g.k + grp * g.kg()) * g.ohw();
      const T* colg = xg;
      if (!pointwise) {
        im2col(g, xg, col);
        colg = col;
      }
      // dw_g (kg x crs) += dy_g (kg x ohw) * col_g^T (ohw x crs)
      if (!gemm<T>(g.kg(), g.crs(), g.ohw(), T(1), row_major(dyg, g.ohw()), transposed(colg, g.ohw()), beta,
                   acc + grp * g.kg() * g.crs(), g.crs(), par))
        return false;
    }
    return true;
  });
  if (!ok) return fail(CRB_ERR_OOM, "conv2d_backward_filter", "could not allocate im2col / packing buffers");
  for (int t = 1; t < threads && per_image_threads; ++t) {
    if (!touched[t]) continue;
    const T* p = partials.data() + (t - 1) * wsize;
    for (int64_t i = 0; i < wsize; ++i) dw[i] += p[i];
  }
  return CRB_OK;
}

template <class T>
void backward_bias(const ConvGeom& g, const T* dy, T* db) {
  parallel_for(g.k, 1, [&](int64_t k0, int64_t k1, int) {
    for (int64_t kk = k0; kk < k1; ++kk) {
      double total = 0;
      for (int64_t img = 0; img < g.n; ++img) {
        const T* row = dy + (img * g.k + kk) * g.ohw();
        T part = 0;  // short runs in T, vectorisable; summed across images in double
        for (int64_t j = 0; j < g.ohw(); ++j) part += row[j];
        total += part;
      }
      db[kk] = T(total);
    }
  });
}

}  // namespace

crb_status conv2d_forward(const crb_conv2d_desc* d, const void* x, const void* w, const void* b, void* y) {
  ConvGeom g;
  if (crb_status st = check_desc(d, "conv2d_forward", &g)) return st;
  return dispatch_float(d->dtype, "conv2d_forward", [&](auto zero) {
    using T = decltype(zero);
    return forward<T>(g, static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const T*>(b),
                      static_cast<T*>(y));
  });
}

crb_status conv2d_backward_data(const crb_conv2d_desc* d, const void* dy, const void* w, void* dx) {
  ConvGeom g;
  if (crb_status st = check_desc(d, "conv2d_backward_data", &g)) return st;
  return dispatch_float(d->dtype, "conv2d_backward_data", [&](auto zero) {
    using T = decltype(zero);
    return backward_data<T>(g, static_cast<const T*>(dy), static_cast<const T*>(w), static_cast<T*>(dx));
  });
}

crb_status conv2d_backward_filter(const crb_conv2d_desc* d, const void* x, const void* dy, void* dw) {
  ConvGeom g;
  if (crb_status st = check_desc(d, "conv2d_backward_filter", &g)) return st;
  return dispatch_float(d->dtype, "conv2d_backward_filter", [&](auto zero) {
    using T = decltype(zero);
    return backward_filter<T>(g, static_cast<const T*>(x), static_cast<const T*>(dy), static_cast<T*>(dw));
  });
}

crb_status conv2d_backward_bias(const crb_conv2d_desc* d, const void* dy, void* db) {
  ConvGeom g;
  if (crb_status st = check_desc(d, "conv2d_backward_bias", &g)) return st;
  return dispatch_float(d->dtype, "conv2d_backward_bias", [&](auto zero) {
    using T = decltype(zero);
    backward_bias<T>(g, static_cast<const T*>(dy), static_cast<T*>(db));
    return CRB_OK;
  });
}

}  // namespace crb_cpu
