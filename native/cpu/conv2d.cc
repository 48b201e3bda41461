// 2-D convolution, PyTorch semantics (any kernel, stride, padding, dilation, groups), NCHW here and
// NHWC in Note [NHWC convolution] below.
//   x: (n, c, h, w)   w: (k, c/groups, r, s)   b: (k)   y: (n, k, out_h, out_w)
// Forward is one GEMM per chunk of images and group: y_g = w_g (k/g x c/g*r*s) * col_g, where
// col_g (c/g*r*s x images*out_h*out_w) is im2col(x) gathered straight into the GEMM's B panels
// from the zero-padded chunk (x in place when unpadded): no bounds checks per element.
// Chunks put several small images side by side so the GEMM's N stays large (ResNet's 7x7 and
// 1x1 layers would otherwise waste most of each register tile).
// Stride 1 on large maps needs no gather at all: on the zero-padded input (channel-major, the chunk's images
// side by side: c, image, hp, wp), row (c, r, s) of col is that buffer shifted by
// c*images*hp*wp + r*dh*wp + s*dw, if the output is computed on the padded grid (positions whose
// column is >= out_w, and the rows between images, are computed and discarded). Packing is then
// plain copies.
// Backward data: with stride 1 it is the forward conv of dy with the flipped, transposed weights
// (padding dil*(r-1) - pad); otherwise dcol = w_g^T * dy_g, then col2im scatters it into dx.
// Backward filter: dw_g = sum over chunks of dy_g * col_g^T, col_g^T gathered straight into the
// GEMM's panels from the zero-padded input (any stride; only the real output positions, so no
// wasted work on small maps).
// Chunks are spread over the threads (each runs its own single-threaded GEMM); when there are
// fewer chunks than threads the GEMM itself is threaded instead.
// The packing loops copy and zero short runs (at most one register panel, 48 elements): a call
// to memmove/memset costs more than that, so keep GCC from turning those loops into library calls.
#pragma GCC optimize("no-tree-loop-distribute-patterns")

#include <algorithm>
#include <atomic>
#include <cstring>
#include <immintrin.h>
#include <new>
#include <type_traits>
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
  // the padded grid of the stride-1 paths
  int64_t hp() const { return h + 2 * ph; }
  int64_t wp() const { return w + 2 * pw; }
  int64_t plane() const { return hp() * wp(); }
  int64_t np() const { return (oh - 1) * wp() + ow; }  // positions of one image, last row cut at out_w
};

// The descriptor, asserted (crb_conv2d_check), as the kernels' int64 geometry.
crb_status check_desc(const crb_conv2d_desc* d, const char* op, ConvGeom* g) {
  crb_geom_error e;
  if (crb_status st = check(crb_conv2d_check(d, &e), e, op)) return st;
  *g = {d->n, d->c, d->h, d->w, d->k, d->r, d->s, d->stride_h, d->stride_w, d->pad_h, d->pad_w,
        d->dil_h, d->dil_w, d->groups, d->out_h, d->out_w};
  return CRB_OK;
}

// Where each kernel tap reads: taps[(r*s_taps + s) * ohw + pos] is the input offset ih*w + iw for
// output position pos, or -1 in the padding. The same for every image and channel, so col2im
// becomes a table-driven scatter with no per-row bounds logic (what dominates on small maps).
std::vector<int32_t> tap_table(const ConvGeom& g) {
  std::vector<int32_t> t(size_t(g.r * g.s) * g.ohw());
  for (int64_t r = 0; r < g.r; ++r)
    for (int64_t s = 0; s < g.s; ++s)
      for (int64_t oh = 0; oh < g.oh; ++oh)
        for (int64_t ow = 0; ow < g.ow; ++ow) {
          const int64_t ih = oh * g.sh - g.ph + r * g.dh, iw = ow * g.sw - g.pw + s * g.dw;
          t[((r * g.s + s) * g.oh + oh) * g.ow + ow] =
              (ih >= 0 && ih < g.h && iw >= 0 && iw < g.w) ? int32_t(ih * g.w + iw) : -1;
        }
  return t;
}

// dx (one image and group) += col2im(col), col being crs rows of length ld: the adjoint of im2col.
// Within one tap the outputs read distinct inputs, so the scatter has no collisions per row.
template <class T>
void col2im_add(const ConvGeom& g, const int32_t* taps, const T* col, int64_t ld, T* dx) {
  const int64_t rs_count = g.r * g.s, ohw = g.ohw();
  for (int64_t c = 0; c < g.cg(); ++c) {
    T* plane = dx + c * g.hw();
    for (int64_t rs = 0; rs < rs_count; ++rs) {
      const int32_t* t = taps + rs * ohw;
      const T* src = col + (c * rs_count + rs) * ld;
      for (int64_t j = 0; j < ohw; ++j)
        if (t[j] >= 0) plane[t[j]] += src[j];
    }
  }
}

// B of the stride-1 forward: row p of col is xpad + offsets[p], contiguous (see the file comment).
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

// One full 48-column panel of PaddedGatherRowsPackB<float> with AVX-512 gathers (16 columns per
// instruction instead of one load and one store each). Only called when the GEMM runs its
// AVX-512 kernel (nr 48), so the CPU has it.
// Row p of the panel: base + row_offsets[p] + pos[j] for the 48 columns j.
__attribute__((target("avx512f"))) void gather_rows_panel48(const float* base, const int64_t* row_offsets,
                                                            const int32_t* pos, int64_t kc, float* dst) {
  const __m512i i0 = _mm512_loadu_si512(pos), i1 = _mm512_loadu_si512(pos + 16), i2 = _mm512_loadu_si512(pos + 32);
  const __m512 zero = _mm512_setzero_ps();  // (the masked form: GCC 12 warns on the plain one)
  for (int64_t p = 0; p < kc; ++p) {
    const float* src = base + row_offsets[p];
    float* d = dst + p * 48;
    _mm512_storeu_ps(d, _mm512_mask_i32gather_ps(zero, 0xFFFF, i0, src, 4));
    _mm512_storeu_ps(d + 16, _mm512_mask_i32gather_ps(zero, 0xFFFF, i1, src, 4));
    _mm512_storeu_ps(d + 32, _mm512_mask_i32gather_ps(zero, 0xFFFF, i2, src, 4));
  }
}

bool avx512_kernel() {
  static const bool yes = !std::strcmp(gemm_isa(), "avx512");
  return yes;
}

// B of the forward, col of a chunk (crs x images*ohw), read from the zero-padded input (or x in
// place when unpadded): B(p, j) = xpad[offsets[p] + positions[j]]. No bounds checks and no
// discarded positions.
template <class T>
struct PaddedGatherRowsPackB final : PackB<T> {
  const T* xpad;
  const int64_t* offsets;    // one per row (crs)
  const int64_t* positions;  // one per column (output position of the chunk)
  const int32_t* positions32;  // the same as int32, or null: AVX-512 gathers for float
  PaddedGatherRowsPackB(const T* x, const int64_t* offs, const int64_t* pos, const int32_t* pos32 = nullptr)
      : xpad(x), offsets(offs), positions(pos), positions32(pos32) {}
  void pack(int64_t p0, int64_t kc, int64_t j0, int64_t nc, int nr, T* __restrict bp) const override {
    for (int64_t jr = 0; jr < nc; jr += nr) {
      const int64_t cols = std::min<int64_t>(nr, nc - jr);
      const int64_t* pos = positions + j0 + jr;
      T* dst = bp + jr * kc;
      if constexpr (std::is_same<T, float>::value) {
        if (positions32 && nr == 48 && cols == 48) {
          gather_rows_panel48(xpad, offsets + p0, positions32 + j0 + jr, kc, dst);
          continue;
        }
      }
      for (int64_t p = 0; p < kc; ++p) {
        const T* src = xpad + offsets[p0 + p];
        T* d = dst + p * nr;
        int64_t j = 0;
        for (; j < cols; ++j) d[j] = src[pos[j]];
        for (; j < nr; ++j) d[j] = T(0);
      }
    }
  }
};

// Output positions of a chunk of `images` images as offsets into the (padded) input.
std::vector<int64_t> chunk_positions(const ConvGeom& g, int64_t images, int64_t image_stride) {
  std::vector<int64_t> positions(size_t(images * g.ohw()));
  for (int64_t i = 0; i < images; ++i)
    for (int64_t oh = 0; oh < g.oh; ++oh)
      for (int64_t ow = 0; ow < g.ow; ++ow)
        positions[(i * g.oh + oh) * g.ow + ow] = i * image_stride + oh * g.sh * g.wp() + ow * g.sw;
  return positions;
}

// B of the filter gradient, col^T of a chunk (images*ohw x crs), read from the zero-padded input:
// B(p, j) = xpad[positions[p] + offsets[j]]. Only the real output positions are rows (the shifted
// grid would also multiply the discarded ones, 65% more on 7x7 maps), and no bounds checks.
template <class T>
struct PaddedGatherPackB final : PackB<T> {
  const T* xpad;
  const int64_t* offsets;    // one per column (crs): c*cstride + r*dh*wp + s*dw
  const int64_t* positions;  // one per row: image*plane + oh*sh*wp + ow*sw
  const int32_t* offsets32;  // offsets as int32, or null: AVX-512 gathers for float
  PaddedGatherPackB(const T* x, const int64_t* offs, const int64_t* pos, const int32_t* offs32 = nullptr)
      : xpad(x), offsets(offs), positions(pos), offsets32(offs32) {}
  void pack(int64_t p0, int64_t kc, int64_t j0, int64_t nc, int nr, T* __restrict bp) const override {
    // Row by row: the stores stay sequential and the nr source streams stay in L1 (column by
    // column, every store would touch a new cache line).
    const int64_t* pos = positions + p0;
    for (int64_t jr = 0; jr < nc; jr += nr) {
      const int64_t cols = std::min<int64_t>(nr, nc - jr);
      const int64_t* off = offsets + j0 + jr;
      T* dst = bp + jr * kc;
      if constexpr (std::is_same<T, float>::value) {
        if (offsets32 && nr == 48 && cols == 48) {  // rows start at positions, columns at offsets
          gather_rows_panel48(xpad, pos, offsets32 + j0 + jr, kc, dst);
          continue;
        }
      }
      for (int64_t p = 0; p < kc; ++p) {
        const T* src = xpad + pos[p];
        T* d = dst + p * nr;
        int64_t j = 0;
        for (; j < cols; ++j) d[j] = src[off[j]];
        for (; j < nr; ++j) d[j] = T(0);
      }
    }
  }
};

// The padded grid computes plane() positions per image for ohw() useful ones, but its packing is
// plain contiguous copies; the exact positions need a gather per element. Measured on 7x7 maps
// (81 vs 49 positions) the gather already wins by ~7%; large maps waste little on the grid.
bool uses_shifted_grid(const ConvGeom& g) {
  return g.sh == 1 && g.sw == 1 && 4 * g.plane() <= 5 * g.ohw();
}

// Offsets of the rows (c, r, s) of col in the chunk's padded buffer (channel stride cstride).
std::vector<int64_t> shifted_offsets(const ConvGeom& g, int64_t cstride) {
  std::vector<int64_t> offsets(g.crs());
  for (int64_t c = 0; c < g.cg(); ++c)
    for (int64_t r = 0; r < g.r; ++r)
      for (int64_t s = 0; s < g.s; ++s) offsets[(c * g.r + r) * g.s + s] = c * cstride + r * g.dh * g.wp() + s * g.dw;
  return offsets;
}

// Copies `images` images of one group into the zero-padded layout (c, image, hp, wp) whose
// channel stride is cstride. x points at the group's first channel of the first image.
template <class T>
void pad_chunk(const ConvGeom& g, const T* x, int64_t images, int64_t cstride, T* xpad) {
  const int64_t wp = g.wp(), plane = g.plane();
  for (int64_t c = 0; c < g.cg(); ++c)
    for (int64_t i = 0; i < images; ++i) {
      T* dst = xpad + c * cstride + i * plane;
      const T* in = x + i * g.c * g.hw() + c * g.hw();
      // plain loops: the runs are a few values long, a memmove/memset call each would cost more
      for (int64_t j = 0; j < g.ph * wp; ++j) dst[j] = T(0);
      for (int64_t row = 0; row < g.h; ++row) {
        T* d = dst + (g.ph + row) * wp;
        const T* src = in + row * g.w;
        for (int64_t j = 0; j < g.pw; ++j) d[j] = T(0);
        for (int64_t j = 0; j < g.w; ++j) d[g.pw + j] = src[j];
        for (int64_t j = g.pw + g.w; j < wp; ++j) d[j] = T(0);
      }
      for (int64_t j = (g.ph + g.h) * wp; j < plane; ++j) dst[j] = T(0);
    }
}

// Scratch slots of the calling thread (the chunk bodies use 2 and 3, the GEMM 0 and 1): reusing
// them saves an allocation, its zeroing and its page faults per call (deep layers hold megabytes).
constexpr int kLiveTapsSlot = 4;
constexpr int kFlippedWeightsSlot = 5;  // backward data
constexpr int kFilterPartialsSlot = 5;  // backward filter

// The packed weights of each group. Ungrouped convs (all of ResNet) reuse one per-thread buffer
// across calls, for the same reason.
template <class T>
class PackedWeights {
 public:
  // Constructed on the calling thread: the chunk bodies on the pool threads read its buffer.
  explicit PackedWeights(int64_t groups) {
    static thread_local PackedA<T> reused;
    if (groups > 1) own_ = std::vector<PackedA<T>>(groups);
    first_ = groups > 1 ? own_.data() : &reused;
  }
  PackedA<T>& operator[](int64_t grp) { return first_[grp]; }

 private:
  std::vector<PackedA<T>> own_;
  PackedA<T>* first_;
};

// How a batch is cut into chunks of whole images.
struct Chunks {
  int64_t per_chunk, count;
  bool gemm_parallel;  // fewer chunks than threads: thread the GEMM instead
};

Chunks plan_chunks(int64_t n, int64_t cols_per_image) {
  const int64_t threads = num_threads();
  constexpr int64_t kTargetCols = 2048;  // enough N for the packed GEMM to run near peak
  int64_t per = std::max<int64_t>(1, (kTargetCols + cols_per_image - 1) / cols_per_image);
  per = std::min(per, std::max<int64_t>(1, (n + threads - 1) / threads));  // keep every thread busy
  per = std::min(per, n);
  const int64_t count = (n + per - 1) / per;
  return {per, count, count < threads};
}

// Runs body(first_image, images, gemm_parallel, thread) for every chunk, chunks handed out to the
// threads as they finish (robust when another process steals a core). False if any body failed.
template <class Body>
bool for_each_chunk(int64_t n, const Chunks& plan, Body&& body) {
  if (plan.gemm_parallel) {
    for (int64_t ch = 0; ch < plan.count; ++ch) {
      const int64_t first = ch * plan.per_chunk;
      if (!body(first, std::min(plan.per_chunk, n - first), true, 0)) return false;
    }
    return true;
  }
  std::atomic<int64_t> next{0};
  std::atomic<bool> ok{true};
  parallel_for(num_threads(), 1, [&](int64_t t0, int64_t t1, int thread) {
    for (int64_t t = t0; t < t1; ++t) {
      for (;;) {
        const int64_t ch = next.fetch_add(1);
        if (ch >= plan.count || !ok.load(std::memory_order_relaxed)) break;
        const int64_t first = ch * plan.per_chunk;
        if (!body(first, std::min(plan.per_chunk, n - first), false, thread)) ok.store(false);
      }
    }
  });
  return ok.load();
}

// w_cs: distance between consecutive weights (1, or r*s when w is the single live tap of a larger
// kernel, see live_taps: read in place instead of gathered).
template <class T>
crb_status forward(const ConvGeom& g, const T* x, const T* w, const T* b, T* y, int64_t w_cs = 1) {
  // The weights are the A of every chunk's GEMM: pack them once, share them across threads.
  PackedWeights<T> wpack(g.groups);
  for (int64_t grp = 0; grp < g.groups; ++grp)
    if (!wpack[grp].pack(g.kg(), g.crs(), MatRef<T>{w + grp * g.kg() * g.crs() * w_cs, g.crs() * w_cs, w_cs}))
      return fail(CRB_ERR_OOM, "conv2d_forward", "could not allocate the packed weights");
  const bool shifted = uses_shifted_grid(g);
  const Chunks plan = plan_chunks(g.n, shifted ? g.plane() : g.ohw());
  // Without padding (and off the shifted grid) x is read in place.
  const bool padded = shifted || g.ph > 0 || g.pw > 0;
  const int64_t cstride = padded ? plan.per_chunk * g.plane() : g.hw();  // channel stride of the chunk
  const std::vector<int64_t> offsets = shifted_offsets(g, cstride);
  std::vector<int64_t> positions;
  std::vector<int32_t> positions32;  // for the AVX-512 gathers, when every index fits
  if (!shifted) {
    positions = chunk_positions(g, plan.per_chunk, padded ? g.plane() : g.c * g.hw());
    if (std::is_same<T, float>::value && avx512_kernel() && !positions.empty() && positions.back() < INT32_MAX)
      positions32.assign(positions.begin(), positions.end());
  }
  const bool ok = for_each_chunk(g.n, plan, [&](int64_t first, int64_t images, bool par, int) {
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      const T* xg = x + (first * g.c + grp * g.cg()) * g.hw();
      const T* bg = b ? b + grp * g.kg() : nullptr;
      T* yg = y + (first * g.k + grp * g.kg()) * g.ohw();
      if (shifted) {
        T* xpad = static_cast<T*>(scratch(2, sizeof(T) * g.cg() * cstride));
        // positions: images side by side, the last one cut at its last valid output
        const int64_t cols = (images - 1) * g.plane() + g.np();
        T* out = static_cast<T*>(scratch(3, sizeof(T) * g.kg() * cols));
        if (!xpad || !out) return false;
        pad_chunk(g, xg, images, cstride, xpad);
        ShiftedRowsPackB<T> packer(xpad, offsets.data());
        if (!gemm<T>(cols, T(1), wpack[grp], packer, T(0), out, cols, par)) return false;
        for (int64_t i = 0; i < images; ++i)
          for (int64_t kk = 0; kk < g.kg(); ++kk) {
            const T bias = bg ? bg[kk] : T(0);
            T* yrow = yg + (i * g.k + kk) * g.ohw();
            const T* orow = out + kk * cols + i * g.plane();
            for (int64_t oh = 0; oh < g.oh; ++oh)
              for (int64_t ow = 0; ow < g.ow; ++ow) yrow[oh * g.ow + ow] = orow[oh * g.wp() + ow] + bias;
          }
        continue;
      }
      const int64_t cols = images * g.ohw();
      T* xpad = padded ? static_cast<T*>(scratch(2, sizeof(T) * g.cg() * cstride)) : nullptr;
      if (padded && !xpad) return false;
      if (padded) pad_chunk(g, xg, images, cstride, xpad);
      PaddedGatherRowsPackB<T> packer(padded ? xpad : xg, offsets.data(), positions.data(),
                                      positions32.empty() ? nullptr : positions32.data());
      if (images == 1) {  // the output rows are the GEMM's C rows: write y directly
        if (!gemm<T>(cols, T(1), wpack[grp], packer, T(0), yg, cols, par)) return false;
        if (bg)
          for (int64_t kk = 0; kk < g.kg(); ++kk) {
            T* row = yg + kk * g.ohw();
            for (int64_t j = 0; j < g.ohw(); ++j) row[j] += bg[kk];
          }
        continue;
      }
      T* out = static_cast<T*>(scratch(3, sizeof(T) * g.kg() * cols));
      if (!out) return false;
      if (!gemm<T>(cols, T(1), wpack[grp], packer, T(0), out, cols, par)) return false;
      for (int64_t i = 0; i < images; ++i)
        for (int64_t kk = 0; kk < g.kg(); ++kk) {
          const T bias = bg ? bg[kk] : T(0);
          T* yrow = yg + (i * g.k + kk) * g.ohw();
          const T* orow = out + kk * cols + i * g.ohw();
          for (int64_t j = 0; j < g.ohw(); ++j) yrow[j] = orow[j] + bias;
        }
    }
    return true;
  });
  return ok ? CRB_OK : fail(CRB_ERR_OOM, "conv2d_forward", "could not allocate GEMM packing buffers");
}

template <class T>
crb_status backward_data(const ConvGeom& g, const T* dy, const T* w, T* dx, int64_t w_cs = 1) {
  const int64_t pad_h = g.dh * (g.r - 1) - g.ph, pad_w = g.dw * (g.s - 1) - g.pw;
  if (g.sh == 1 && g.sw == 1 && pad_h >= 0 && pad_w >= 0) {
    // dx = conv(dy, w'), w'[grp][c][k][r][s] = w[grp][k][c][R-1-r][S-1-s]
    T* wt = static_cast<T*>(scratch(kFlippedWeightsSlot, sizeof(T) * g.k * g.crs()));
    if (!wt) return fail(CRB_ERR_OOM, "conv2d_backward_data", "could not allocate the flipped weights");
    const int64_t rs = g.r * g.s;
    // transposed in 16x16 tiles of (k, c): one side of a plain loop would miss cache on every element
    // (threaded over the c tiles: megabytes of weights on the deep layers, flipped every call)
    const int64_t c_tiles = (g.cg() + 15) / 16;
    parallel_for(g.groups * c_tiles, 1, [&](int64_t t0, int64_t t1, int) {
      for (int64_t tile = t0; tile < t1; ++tile) {
        const int64_t grp = tile / c_tiles, c0 = tile % c_tiles * 16;
        for (int64_t k0 = 0; k0 < g.kg(); k0 += 16)
          for (int64_t c = c0; c < std::min(c0 + 16, g.cg()); ++c)
            for (int64_t k = k0; k < std::min(k0 + 16, g.kg()); ++k)
              for (int64_t i = 0; i < rs; ++i)
                wt[((grp * g.cg() + c) * g.kg() + k) * rs + (rs - 1 - i)] =
                    w[(((grp * g.kg() + k) * g.cg() + c) * rs + i) * w_cs];
      }
    });
    const ConvGeom t = {g.n, g.k, g.oh, g.ow, g.c, g.r, g.s, 1, 1, pad_h, pad_w, g.dh, g.dw, g.groups, g.h, g.w};
    return forward<T>(t, dy, wt, nullptr, dx);
  }
  PackedWeights<T> wpack(g.groups);  // w_g^T, shared by every chunk
  for (int64_t grp = 0; grp < g.groups; ++grp)
    if (!wpack[grp].pack(g.crs(), g.kg(), MatRef<T>{w + grp * g.kg() * g.crs() * w_cs, w_cs, g.crs() * w_cs}))
      return fail(CRB_ERR_OOM, "conv2d_backward_data", "could not allocate the packed weights");
  const Chunks plan = plan_chunks(g.n, g.ohw());
  // dy of a chunk read as a (kg x images*ohw) matrix: row kk at kk*ohw, image i at i*k*ohw
  std::vector<int64_t> dy_rows(size_t(g.kg())), dy_positions(size_t(plan.per_chunk * g.ohw()));
  for (int64_t kk = 0; kk < g.kg(); ++kk) dy_rows[kk] = kk * g.ohw();
  for (int64_t j = 0; j < plan.per_chunk * g.ohw(); ++j) dy_positions[j] = (j / g.ohw()) * g.k * g.ohw() + j % g.ohw();
  const std::vector<int32_t> taps = tap_table(g);
  const bool ok = for_each_chunk(g.n, plan, [&](int64_t first, int64_t images, bool par, int) {
    const int64_t cols = images * g.ohw();
    T* col = static_cast<T*>(scratch(2, sizeof(T) * g.crs() * cols));
    if (!col) return false;
    std::memset(dx + first * g.c * g.hw(), 0, sizeof(T) * images * g.c * g.hw());
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      // dcol (crs x cols) = wg^T (crs x kg) * dy_g (kg x cols)
      PaddedGatherRowsPackB<T> packer(dy + (first * g.k + grp * g.kg()) * g.ohw(), dy_rows.data(), dy_positions.data());
      if (!gemm<T>(cols, T(1), wpack[grp], packer, T(0), col, cols, par)) return false;
      for (int64_t i = 0; i < images; ++i)
        col2im_add(g, taps.data(), col + i * g.ohw(), cols, dx + ((first + i) * g.c + grp * g.cg()) * g.hw());
    }
    return true;
  });
  return ok ? CRB_OK : fail(CRB_ERR_OOM, "conv2d_backward_data", "could not allocate im2col / packing buffers");
}

// dw (wsize values) = the sum over the chunks of body(first, images, gemm_parallel, acc, beta):
// each thread accumulates its chunks into its own copy of dw (acc; beta 0 on its first chunk),
// and the copies are summed at the end. body returns false when out of memory.
template <class T, class Body>
crb_status sum_over_chunks(const ConvGeom& g, const Chunks& plan, int64_t wsize, T* dw, Body&& body) {
  const int threads = num_threads();
  T* partials = plan.gemm_parallel ? nullptr
                                    : static_cast<T*>(scratch(kFilterPartialsSlot, sizeof(T) * (threads - 1) * wsize + 1));
  if (!plan.gemm_parallel && !partials)
    return fail(CRB_ERR_OOM, "conv2d_backward_filter", "could not allocate %d partial weight gradients", threads - 1);
  std::vector<char> touched(threads, 0);
  const bool ok = for_each_chunk(g.n, plan, [&](int64_t first, int64_t images, bool par, int thread) {
    T* acc = thread == 0 ? dw : partials + (thread - 1) * wsize;
    const T beta = touched[thread] ? T(1) : T(0);
    touched[thread] = 1;
    return body(first, images, par, acc, beta);
  });
  if (!ok) return fail(CRB_ERR_OOM, "conv2d_backward_filter", "could not allocate im2col / packing buffers");
  if (!touched[0]) std::fill(dw, dw + wsize, T(0));  // the other threads took every chunk
  if (plan.gemm_parallel) return CRB_OK;
  parallel_for(wsize, 16384, [&](int64_t i0, int64_t i1, int) {
    for (int t = 1; t < threads; ++t) {
      if (!touched[t]) continue;
      const T* p = partials + (t - 1) * wsize;
      for (int64_t i = i0; i < i1; ++i) dw[i] += p[i];
    }
  });
  return CRB_OK;
}

template <class T>
crb_status backward_filter(const ConvGeom& g, const T* x, const T* dy, T* dw) {
  const Chunks plan = plan_chunks(g.n, g.ohw());
  // Without padding x is read in place (a copy would cost more than the gather saves, e.g. the
  // strided 1x1 convs read a quarter of x).
  const bool padded = g.ph > 0 || g.pw > 0;
  const int64_t cstride = padded ? plan.per_chunk * g.plane() : g.hw();
  const int64_t image_stride = padded ? g.plane() : g.c * g.hw();
  const std::vector<int64_t> offsets = shifted_offsets(g, cstride);
  std::vector<int32_t> offsets32;  // for the AVX-512 gathers, when every index fits
  if (std::is_same<T, float>::value && avx512_kernel() && *std::max_element(offsets.begin(), offsets.end()) < INT32_MAX)
    offsets32.assign(offsets.begin(), offsets.end());
  std::vector<int64_t> positions(size_t(plan.per_chunk * g.ohw()));
  for (int64_t i = 0; i < plan.per_chunk; ++i)
    for (int64_t oh = 0; oh < g.oh; ++oh)
      for (int64_t ow = 0; ow < g.ow; ++ow)
        positions[(i * g.oh + oh) * g.ow + ow] = i * image_stride + oh * g.sh * g.wp() + ow * g.sw;
  return sum_over_chunks(g, plan, g.k * g.crs(), dw, [&](int64_t first, int64_t images, bool par, T* acc, T beta) {
    const int64_t cols = images * g.ohw();
    T* xpad = padded ? static_cast<T*>(scratch(2, sizeof(T) * g.cg() * cstride)) : nullptr;
    T* dyc = static_cast<T*>(scratch(3, sizeof(T) * g.kg() * cols));
    if ((padded && !xpad) || !dyc) return false;
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      const T* xg = x + (first * g.c + grp * g.cg()) * g.hw();
      const T* dyg = dy + (first * g.k + grp * g.kg()) * g.ohw();
      // dw_g (kg x crs) += dy_g (kg x cols) * col_g^T (cols x crs), col^T gathered into the panels
      if (padded) pad_chunk(g, xg, images, cstride, xpad);
      for (int64_t i = 0; i < images; ++i)
        for (int64_t kk = 0; kk < g.kg(); ++kk) {
          const T* src = dyg + (i * g.k + kk) * g.ohw();
          T* d = dyc + kk * cols + i * g.ohw();
          for (int64_t j = 0; j < g.ohw(); ++j) d[j] = src[j];  // short runs: no memmove call
        }
      PaddedGatherPackB<T> packer(padded ? xpad : xg, offsets.data(), positions.data(),
                                  offsets32.empty() ? nullptr : offsets32.data());
      if (!gemm<T>(g.kg(), g.crs(), cols, T(1), row_major(dyc, cols), packer, beta, acc + grp * g.kg() * g.crs(),
                   g.crs(), par))
        return false;
    }
    return true;
  });
}

// Note [NHWC convolution]
// Channels-last: x (n, h, w, c), w (k, r, s, c/groups), y (n, oh, ow, k). Forward is an implicit
// GEMM whose rows are the output positions, written straight into y (row stride k):
//   y_g (positions x kg) = sum over the live taps t of A_t (positions x cg) * w_{g,t}^T (cg x kg)
// where row i of A_t is the cg channels of the pixel tap t reads for output i: a contiguous run
// of x, or padding. The direct tile (gemm_kernel.h rows_tile) takes one pointer per row and tap
// and broadcasts from those runs in place (a shared zero run in the padding), so there is no
// im2col, no padded copy and no gather, and every tap accumulates in registers: C is stored
// once. Taps that only ever read padding (a 3x3 conv on a 1x1 map) are skipped. w^T is packed
// once per call, every tap of a panel in turn, and shared by the threads.
// Backward data, stride 1: the forward conv of dy with the flipped, transposed weights (as in
// NCHW), read from w as they are packed. Strided: one dense GEMM per phase of dx, the phase's
// pixels of all images in a row (see backward_data_nhwc).
// Backward filter: outer-product tiles over x and dy in place (filter_outer_nhwc) from 4096
// output positions on; below, dw_g (kg x live taps*cg) = dy_g^T * A with A packed as the GEMM's
// B panels from the same runs, chunks of images accumulated per thread as in NCHW.
// Which algorithm runs is chosen per shape where measured faster: 3x3 stride-1 convs go through
// Winograd F(2x2, 3x3) (Note [Winograd]), and convs with at most 16 channels on the tile's side
// through the NCHW kernels (Note [few channels in NHWC]).

constexpr int kNhwcWeightsSlot = 6;  // packed w^T, calling thread
constexpr int kNhwcAuxSlot = 7;      // live-tap gradient (filter)

// Which taps read any input along one axis.
std::vector<char> live_axis(int64_t taps, int64_t out, int64_t stride, int64_t pad, int64_t dil, int64_t size) {
  std::vector<char> live(size_t(taps), 0);
  for (int64_t t = 0; t < taps; ++t)
    for (int64_t o = 0; o < out && !live[t]; ++o) {
      const int64_t i = o * stride - pad + t * dil;
      live[t] = i >= 0 && i < size;
    }
  return live;
}

std::vector<int64_t> nhwc_live_taps(const ConvGeom& g) {
  const std::vector<char> lr = live_axis(g.r, g.oh, g.sh, g.ph, g.dh, g.h), ls = live_axis(g.s, g.ow, g.sw, g.pw, g.dw, g.w);
  std::vector<int64_t> taps;
  for (int64_t r = 0; r < g.r; ++r)
    for (int64_t s = 0; s < g.s; ++s)
      if (lr[r] && ls[s]) taps.push_back(r * g.s + s);
  return taps;
}

// The rows of a padding pixel: zeros as long as any segment (kc <= 256 channels).
template <class T>
const T* zero_run() {
  static const T zeros[1024] = {};
  return zeros;
}

// Rows per block of the direct tiles: at most 256 (the block's input rows stay in L2 while each
// B panel streams over them), fewer when that would leave a thread without blocks.
int64_t block_rows(int64_t m, int mr) {
  const int64_t per_task = (m + 4 * num_threads() - 1) / (4 * num_threads());
  return std::clamp<int64_t>((per_task + mr - 1) / mr * mr, mr, 256 / mr * mr);
}

// The weights of some taps as the direct tile's B: panel jp (columns [jp*nr, jp*nr + nr) of the
// output channels) holds, segment after segment, the len x nr block of each (tap, channel block).
// seg_tap[s], seg_k0[s], lens[s]: the tap, first and count of the inner channels of segment s;
// wt(t) the (inner x out) matrix of tap t.
template <class T, class Wt>
void pack_segments(const std::vector<int64_t>& seg_tap, const std::vector<int64_t>& seg_k0,
                   const std::vector<int64_t>& lens, int64_t out, int nr, Wt wt, T* dst) {
  const int64_t nseg = int64_t(lens.size()), panels = (out + nr - 1) / nr;
  std::vector<int64_t> at(size_t(nseg) + 1, 0);  // offset of each segment in a panel
  for (int64_t s = 0; s < nseg; ++s) at[s + 1] = at[s] + lens[s] * nr;
  parallel_for(panels * nseg, 1, [&](int64_t q0, int64_t q1, int) {
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t jp = q / nseg, sg = q % nseg;
      pack_b_panels(wt(seg_tap[sg]), seg_k0[sg], lens[sg], jp * nr, std::min<int64_t>(nr, out - jp * nr), nr,
                    dst + jp * at[nseg] + at[sg]);
    }
  });
}

// Note [Winograd]
// 3x3 stride-1 NHWC convolutions as Winograd F(2x2, 3x3) (Lavin & Gray 2015): each 2x2 block of
// outputs (a tile) comes from its 4x4 input patch with 16 products instead of 36. Per block of
// tiles, a thread
//   1. transforms the patches: V[xi][tile][c] = (B^T d B)[xi]          (wino_in, gemm_kernel.h)
//   2. runs 16 GEMMs on the direct tile: M[xi] (tiles x K) = V[xi] (tiles x C) * U[xi] (C x K),
//      U[xi] = (G g G^T)[xi] the weights transformed and packed once per call
//   3. transforms back: y = A^T M A + bias                             (wino_out)
// with V and M in its cache: 2.25x fewer multiply-adds than the direct conv, for a few adds per
// value in the transforms. Rounding differs from the direct conv's by a few ulps of the inputs'
// magnitude (the transforms add and halve exactly representable coefficients).

// The tiles of Note [Winograd]: tile t holds the 2x2 outputs from (2 ty, 2 tx) of image img.
struct WinoTiles {
  const ConvGeom& g;
  int64_t th, tw;
  explicit WinoTiles(const ConvGeom& geom) : g(geom), th((geom.oh + 1) / 2), tw((geom.ow + 1) / 2) {}
  int64_t per_image() const { return th * tw; }
  int64_t count() const { return g.n * th * tw; }
  // tile t's 4x4 input patch: pixel q = (i, j) at px[i*4 + j] (its g.c channels), `zeros` in
  // the padding
  template <class T>
  void patch(int64_t t, const T* x, const T* zeros, const T** px) const {
    const int64_t img = t / (th * tw), ty = t % (th * tw) / tw, tx = t % tw;
    for (int q = 0; q < 16; ++q) {
      const int64_t ih = 2 * ty - g.ph + q / 4, iw = 2 * tx - g.pw + q % 4;
      px[q] = ih >= 0 && ih < g.h && iw >= 0 && iw < g.w ? x + ((img * g.h + ih) * g.w + iw) * g.c : zeros;
    }
  }
  // tile t's 2x2 outputs in an (n, oh, ow, k) tensor: output q = (i, j) at out[i*2 + j],
  // `outside` past the map's edge
  template <class P>
  void outputs(int64_t t, P y, P outside, P* out) const {
    const int64_t img = t / (th * tw), ty = t % (th * tw) / tw, tx = t % tw;
    for (int q = 0; q < 4; ++q) {
      const int64_t oh = 2 * ty + q / 2, ow = 2 * tx + q % 2;
      out[q] = oh < g.oh && ow < g.ow ? y + ((img * g.oh + oh) * g.ow + ow) * g.k : outside;
    }
  }
};

// Each block of tiles streams all 16 C K transformed weights: 96 tiles a block, 0.96-0.98x the
// time of 48 at 256 channels (paired), the same at 64; V and M then take 1.5 MB each at 256.
constexpr int64_t kWinoTilesPerBlock = 96;

// Where it is faster, measured against the direct tile (paired, 2 threads, AVX-512): 1.1-1.6x
// with C, K <= 128 on 4x4 to 56x56 maps, 1.3x at 256 channels on 14x14; but 0.57x at 256 on 2x2
// maps and 0.35x at 512 on 3x3, where every block of tiles streams the 16 C K transformed
// weights for a few outputs.
template <class T>
bool winograd_applies(const ConvGeom& g) {
  const GemmKernel<T>& kern = gemm_kernel<T>();
  if (kern.wino_vl == 0 || g.r != 3 || g.s != 3 || g.sh != 1 || g.sw != 1 || g.dh != 1 || g.dw != 1 || g.groups != 1 ||
      g.c % kern.wino_vl != 0 || g.k % kern.wino_vl != 0 || nhwc_live_taps(g).size() != 9)
    return false;
  return g.c * g.k <= 128 * 128 || (g.c * g.k <= 256 * 256 && WinoTiles(g).per_image() >= 16);
}

template <class T>
crb_status forward_winograd_nhwc(const ConvGeom& g, const T* x, const T* w, const T* b, T* y, bool flipped) {
  const GemmKernel<T>& kern = gemm_kernel<T>();
  const int mr = kern.direct_mr, nr = kern.direct_nr;
  const WinoTiles tl(g);
  const int64_t C = g.c, K = g.k, tiles = tl.count();
  const int64_t kc = std::min<int64_t>(C, kern.kc), panels = (K + nr - 1) / nr, gsize = panels * C * nr;
  std::vector<int64_t> seg_c0, lens;
  for (int64_t c0 = 0; c0 < C; c0 += kc) {
    seg_c0.push_back(c0);
    lens.push_back(std::min(kc, C - c0));
  }
  const int64_t nseg = int64_t(lens.size());
  // U[xi] (C x K) = G g G^T, G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]; g the 3x3 kernel of
  // (c, kk): w[kk][t][c], or flipped w[c][8 - t][kk] (see forward_nhwc)
  T* u = static_cast<T*>(scratch(kNhwcAuxSlot, sizeof(T) * 16 * C * K));
  T* wp = static_cast<T*>(scratch(kNhwcWeightsSlot, sizeof(T) * (16 * gsize + 1)));
  if (!u || !wp) return fail(CRB_ERR_OOM, "conv2d_forward", "could not allocate the transformed weights");
  parallel_for(K, 1, [&](int64_t k0, int64_t k1, int) {
    for (int64_t kk = k0; kk < k1; ++kk)
      for (int64_t c = 0; c < C; ++c) {
        T gm[9], a[12];
        for (int t = 0; t < 9; ++t) gm[t] = flipped ? w[(c * 9 + (8 - t)) * K + kk] : w[(kk * 9 + t) * C + c];
        for (int j = 0; j < 3; ++j) {  // G g
          a[j] = gm[j];
          a[3 + j] = (gm[j] + gm[3 + j] + gm[6 + j]) * T(0.5);
          a[6 + j] = (gm[j] - gm[3 + j] + gm[6 + j]) * T(0.5);
          a[9 + j] = gm[6 + j];
        }
        for (int i = 0; i < 4; ++i) {  // (G g) G^T
          const T* r = a + i * 3;
          const T row[4] = {r[0], (r[0] + r[1] + r[2]) * T(0.5), (r[0] - r[1] + r[2]) * T(0.5), r[2]};
          for (int j = 0; j < 4; ++j) u[((i * 4 + j) * C + c) * K + kk] = row[j];
        }
      }
  });
  for (int64_t xi = 0; xi < 16; ++xi)
    pack_segments<T>(std::vector<int64_t>(size_t(nseg), xi), seg_c0, lens, K, nr,
                     [&](int64_t q) { return MatRef<T>{u + q * C * K, K, 1}; }, wp + xi * gsize);
  // tiles per block: whole register tiles, at most kWinoTilesPerBlock, fewer when that would
  // leave a thread idle
  const int64_t per_thread = (tiles + 2 * num_threads() - 1) / (2 * num_threads());
  const int64_t tb = std::clamp<int64_t>((per_thread + mr - 1) / mr * mr, mr, kWinoTilesPerBlock / mr * mr);
  const int64_t blocks = (tiles + tb - 1) / tb;
  const T* zeros = zero_run<T>();
  std::atomic<bool> ok{true};
  parallel_for_dynamic(blocks, 1, [&](int64_t b0, int64_t b1, int) {
    T* v = static_cast<T*>(scratch(0, sizeof(T) * 16 * tb * C));
    T* m = static_cast<T*>(scratch(1, sizeof(T) * 16 * tb * K));
    const T** rows = static_cast<const T**>(scratch(2, sizeof(T*) * (tb * nseg + 1)));
    if (!v || !m || !rows) {
      ok.store(false);
      return;
    }
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t t0 = blk * tb, nt = std::min(tb, tiles - t0);
      for (int64_t i = 0; i < nt; ++i) {
        const T* px[16];
        tl.patch(t0 + i, x, zeros, px);
        kern.wino_in(px, C, v + i * C, tb * C);
      }
      for (int64_t xi = 0; xi < 16; ++xi) {
        for (int64_t i = 0; i < (nt + mr - 1) / mr * mr; ++i)
          for (int64_t sg = 0; sg < nseg; ++sg)
            rows[(i / mr * nseg + sg) * mr + i % mr] = i < nt ? v + (xi * tb + i) * C + seg_c0[sg] : zeros;
        for (int64_t jp = 0; jp < panels; ++jp)
          for (int64_t ir = 0; ir < nt; ir += mr)
            kern.direct(nseg, rows + ir * nseg, lens.data(), wp + xi * gsize + jp * C * nr, m + (xi * tb + ir) * K + jp * nr,
                        K, T(1), T(0), int(std::min<int64_t>(mr, nt - ir)), int(std::min<int64_t>(nr, K - jp * nr)));
      }
      for (int64_t i = 0; i < nt; ++i) {
        T* py[4];
        tl.outputs<T*>(t0 + i, y, nullptr, py);
        kern.wino_out(m + i * K, tb * K, K, b, py);
      }
    }
  });
  return ok ? CRB_OK : fail(CRB_ERR_OOM, "conv2d_forward", "could not allocate the Winograd buffers");
}

// flipped: w holds the weights of the conv whose stride-1 data gradient this is, (cg, r, s, kg)
// per group, read as w' (kg, r, s, cg) with w'[kk][r][s][c] = w[c][R-1-r][S-1-s][kk] (see
// backward_data_nhwc), straight into the packed panels.
template <class T>
crb_status forward_nhwc(const ConvGeom& g, const T* x, const T* w, const T* b, T* y, bool flipped = false) {
  if (winograd_applies<T>(g)) return forward_winograd_nhwc<T>(g, x, w, b, y, flipped);
  const GemmKernel<T>& kern = gemm_kernel<T>();
  const int mr = kern.direct_mr, nr = kern.direct_nr;
  const int64_t cg = g.cg(), kg = g.kg(), rs = g.r * g.s, m = g.n * g.ohw();
  const int64_t kc = std::min<int64_t>(cg, kern.kc);
  const std::vector<int64_t> taps = nhwc_live_taps(g);
  // segments: (live tap, channel block), every tap accumulated in registers
  std::vector<int64_t> seg_tap, seg_c0, lens;
  for (int64_t t : taps)
    for (int64_t c0 = 0; c0 < cg; c0 += kc) {
      seg_tap.push_back(t);
      seg_c0.push_back(c0);
      lens.push_back(std::min(kc, cg - c0));
    }
  const int64_t nseg = int64_t(lens.size()), kall = int64_t(taps.size()) * cg;
  // each segment's tap as a row and column step and the offset from the tap (0, 0) pixel
  std::vector<int64_t> seg_dr(static_cast<size_t>(nseg)), seg_ds(seg_dr), seg_off(seg_dr);
  for (int64_t sg = 0; sg < nseg; ++sg) {
    seg_dr[sg] = seg_tap[sg] / g.s * g.dh;
    seg_ds[sg] = seg_tap[sg] % g.s * g.dw;
    seg_off[sg] = (seg_dr[sg] * g.w + seg_ds[sg]) * g.c + seg_c0[sg];
  }
  const int64_t panels = (kg + nr - 1) / nr, gsize = panels * kall * nr;
  T* wp = static_cast<T*>(scratch(kNhwcWeightsSlot, sizeof(T) * (g.groups * gsize + 1)));
  if (!wp) return fail(CRB_ERR_OOM, "conv2d_forward", "could not allocate the packed weights");
  // w_{g,t}^T (cg x kg): element (c, kk) at w[((grp*kg + kk)*rs + t)*cg + c], or flipped at
  // w[((grp*cg + c)*rs + rs-1-t)*kg + kk]
  for (int64_t grp = 0; grp < g.groups; ++grp)
    pack_segments<T>(seg_tap, seg_c0, lens, kg, nr,
                     [&](int64_t t) {
                       const T* wg = w + grp * kg * rs * cg;
                       return flipped ? MatRef<T>{wg + (rs - 1 - t) * kg, rs * kg, 1} : MatRef<T>{wg + t * cg, 1, rs * cg};
                     },
                     wp + grp * gsize);
  const int64_t mc = block_rows(m, mr), mblocks = (m + mc - 1) / mc;
  const T* zeros = zero_run<T>();
  std::atomic<bool> ok{true};
  parallel_for_dynamic(mblocks, 1, [&](int64_t b0, int64_t b1, int) {
    // row pointers of every tile of the block: rows[(tile * nseg + s) * mr + i]
    const T** rows = static_cast<const T**>(scratch(2, sizeof(T*) * (mc * nseg + 1)));
    if (!rows) {
      ok.store(false);
      return;
    }
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t i0 = blk * mc, rows_in_block = std::min(mc, m - i0);
      for (int64_t grp = 0; grp < g.groups; ++grp) {
        // (img, oh, ow) counted on from the block's first row: no division per row
        int64_t img = i0 / g.ohw(), oh = i0 % g.ohw() / g.ow, ow = i0 % g.ow;
        for (int64_t i = 0; i < (rows_in_block + mr - 1) / mr * mr; ++i) {
          const T** r = rows + (i / mr * nseg) * mr + i % mr;
          const int64_t ih0 = oh * g.sh - g.ph, iw0 = ow * g.sw - g.pw;
          const int64_t base = ((img * g.h + ih0) * g.w + iw0) * g.c + grp * cg;  // tap (0, 0), maybe outside
          for (int64_t sg = 0; sg < nseg; ++sg) {
            const int64_t ih = ih0 + seg_dr[sg], iw = iw0 + seg_ds[sg];
            const bool in = i < rows_in_block && ih >= 0 && ih < g.h && iw >= 0 && iw < g.w;
            r[sg * mr] = in ? x + base + seg_off[sg] : zeros;
          }
          if (++ow == g.ow) {
            ow = 0;
            if (++oh == g.oh) oh = 0, ++img;
          }
        }
        T* cblk = y + i0 * g.k + grp * kg;
        for (int64_t jp = 0; jp < panels; ++jp)
          for (int64_t ir = 0; ir < rows_in_block; ir += mr)
            kern.direct(nseg, rows + ir * nseg, lens.data(), wp + grp * gsize + jp * kall * nr, cblk + ir * g.k + jp * nr,
                        g.k, T(1), T(0), int(std::min<int64_t>(mr, rows_in_block - ir)),
                        int(std::min<int64_t>(nr, kg - jp * nr)));
        if (b)
          for (int64_t i = 0; i < rows_in_block; ++i)
            for (int64_t kk = 0; kk < kg; ++kk) cblk[i * g.k + kk] += b[grp * kg + kk];
      }
    }
  });
  return ok ? CRB_OK : fail(CRB_ERR_OOM, "conv2d_forward", "could not allocate the row pointers");
}

template <class T>
crb_status backward_data_nhwc(const ConvGeom& g, const T* dy, const T* w, T* dx) {
  const int64_t cg = g.cg(), kg = g.kg(), rs = g.r * g.s;
  const int64_t pad_h = g.dh * (g.r - 1) - g.ph, pad_w = g.dw * (g.s - 1) - g.pw;
  if (g.sh == 1 && g.sw == 1 && pad_h >= 0 && pad_w >= 0) {
    // dx = conv(dy, w'), w'[grp*cg + c][r][s][kk] = w[grp*kg + kk][R-1-r][S-1-s][c], w' read in
    // place (a transposed copy, strided reads of megabytes, cost 12% of a ResNet-18 step)
    const ConvGeom t = {g.n, g.k, g.oh, g.ow, g.c, g.r, g.s, 1, 1, pad_h, pad_w, g.dh, g.dw, g.groups, g.h, g.w};
    return forward_nhwc<T>(t, dy, w, nullptr, dx, true);
  }
  // Strided: dx split by phase, (ih % sh, iw % sw). The pixels of one phase are reached by a
  // fixed set of taps, each reading dy at consecutive positions, so a phase is a dense GEMM:
  //   dx[ih, iw] = sum over its taps t of dy[(ih + ph - r*dh)/sh, (iw + pw - s*dw)/sw] * w_{g,t}
  // run by the direct tile over the phase's pixels of all images in a row (a phase row can be
  // one pixel long: ResNet's 2x2 maps), into a block buffer then copied to dx. Every pixel is
  // written exactly once (a phase with no taps gets zeros): no col buffer, no zeroing pass.
  const GemmKernel<T>& kern = gemm_kernel<T>();
  const bool narrow = kern.narrow && cg <= kern.narrow_nr;
  const auto tile = narrow ? kern.narrow : kern.direct;
  const int mr = narrow ? kern.narrow_mr : kern.direct_mr, nr = narrow ? kern.narrow_nr : kern.direct_nr;
  const int64_t kc = std::min<int64_t>(kg, kern.kc), panels = (cg + nr - 1) / nr;
  const int64_t phases = g.sh * g.sw;
  struct Phase {
    std::vector<int64_t> seg_tap, seg_k0, lens;
    int64_t kall = 0, rows = 0, cols = 0;  // rows x cols pixels per image
    T* wp = nullptr;
  };
  std::vector<Phase> ph(static_cast<size_t>(phases));
  int64_t total = 0;
  for (int64_t q = 0; q < phases; ++q) {
    const int64_t a = q / g.sw, bq = q % g.sw;
    ph[q].rows = std::max<int64_t>(0, (g.h - a + g.sh - 1) / g.sh);
    ph[q].cols = std::max<int64_t>(0, (g.w - bq + g.sw - 1) / g.sw);
    for (int64_t t = 0; t < rs; ++t) {
      if ((a + g.ph - t / g.s * g.dh) % g.sh != 0 || (bq + g.pw - t % g.s * g.dw) % g.sw != 0) continue;
      for (int64_t k0 = 0; k0 < kg; k0 += kc) {
        ph[q].seg_tap.push_back(t);
        ph[q].seg_k0.push_back(k0);
        ph[q].lens.push_back(std::min(kc, kg - k0));
        ph[q].kall += std::min(kc, kg - k0);
      }
    }
    total += ph[q].kall * panels * nr;
  }
  T* wp = static_cast<T*>(scratch(kNhwcWeightsSlot, sizeof(T) * (g.groups * total + 1)));
  if (!wp) return fail(CRB_ERR_OOM, "conv2d_backward_data", "could not allocate the packed weights");
  const T* zeros = zero_run<T>();
  // work units: blocks of at most mc pixels of one phase, numbered phase after phase
  std::vector<int64_t> first_unit(static_cast<size_t>(phases) + 1, 0);
  std::vector<int64_t> block(static_cast<size_t>(phases));
  for (int64_t q = 0; q < phases; ++q) {
    const int64_t m = g.n * ph[q].rows * ph[q].cols;
    block[q] = block_rows(std::max<int64_t>(m, 1), mr);
    first_unit[q + 1] = first_unit[q] + (m + block[q] - 1) / block[q];
  }
  for (int64_t grp = 0; grp < g.groups; ++grp) {
    // w_{g,t} (kg x cg): element (kk, c) at w[((grp*kg + kk)*rs + t)*cg + c]
    T* at = wp + grp * total;
    for (Phase& p : ph) {
      p.wp = at;
      pack_segments<T>(p.seg_tap, p.seg_k0, p.lens, cg, nr,
                       [&](int64_t t) { return MatRef<T>{w + grp * kg * rs * cg + t * cg, rs * cg, 1}; }, at);
      at += p.kall * panels * nr;
    }
    std::atomic<bool> ok{true};
    parallel_for_dynamic(first_unit[phases], 1, [&](int64_t u0, int64_t u1, int) {
      for (int64_t u = u0; u < u1; ++u) {
        const int64_t q = std::upper_bound(first_unit.begin(), first_unit.end(), u) - first_unit.begin() - 1;
        const Phase& p = ph[q];
        const int64_t a = q / g.sw, bq = q % g.sw, mc = block[q], per_image = p.rows * p.cols;
        const int64_t i0 = (u - first_unit[q]) * mc, rows_in_block = std::min(mc, g.n * per_image - i0);
        const int64_t nseg = int64_t(p.lens.size());
        // the dx pixel (img, ih, iw) of the block's row i
        auto locate = [&](int64_t i, int64_t* img, int64_t* ih, int64_t* iw) {
          const int64_t pos = i0 + i;
          *img = pos / per_image;
          *ih = a + pos % per_image / p.cols * g.sh;
          *iw = bq + pos % p.cols * g.sw;
        };
        auto pixel = [&](int64_t i) {
          int64_t img, ih, iw;
          locate(i, &img, &ih, &iw);
          return (img * g.h + ih) * g.w + iw;
        };
        if (nseg == 0) {  // no tap reaches this phase (stride > kernel): zeros
          for (int64_t i = 0; i < rows_in_block; ++i) std::fill_n(dx + pixel(i) * g.c + grp * cg, cg, T(0));
          continue;
        }
        const int64_t padded = (rows_in_block + mr - 1) / mr * mr;
        const T** rows = static_cast<const T**>(scratch(2, sizeof(T*) * (padded * nseg + 1)));
        T* out = static_cast<T*>(scratch(3, sizeof(T) * (padded * cg + 1)));
        if (!rows || !out) {
          ok.store(false);
          return;
        }
        for (int64_t i = 0; i < padded; ++i) {
          const T** r = rows + (i / mr * nseg) * mr + i % mr;
          int64_t img, ih, iw;
          locate(i, &img, &ih, &iw);
          for (int64_t sg = 0; sg < nseg; ++sg) {
            const int64_t t = p.seg_tap[sg];
            const int64_t oh = (ih + g.ph - t / g.s * g.dh) / g.sh, ow = (iw + g.pw - t % g.s * g.dw) / g.sw;
            const bool in = i < rows_in_block && ih + g.ph - t / g.s * g.dh >= 0 && oh < g.oh &&
                            iw + g.pw - t % g.s * g.dw >= 0 && ow < g.ow;
            r[sg * mr] = in ? dy + ((img * g.oh + oh) * g.ow + ow) * g.k + grp * kg + p.seg_k0[sg] : zeros;
          }
        }
        for (int64_t jp = 0; jp < panels; ++jp)
          for (int64_t ir = 0; ir < rows_in_block; ir += mr)
            tile(nseg, rows + ir * nseg, p.lens.data(), p.wp + jp * p.kall * nr, out + ir * cg + jp * nr, cg, T(1),
                 T(0), int(std::min<int64_t>(mr, rows_in_block - ir)), int(std::min<int64_t>(nr, cg - jp * nr)));
        for (int64_t i = 0; i < rows_in_block; ++i)
          std::memcpy(dx + pixel(i) * g.c + grp * cg, out + i * cg, sizeof(T) * cg);
      }
    });
    if (!ok) return fail(CRB_ERR_OOM, "conv2d_backward_data", "could not allocate the row pointers");
  }
  return CRB_OK;
}

// B of the NHWC filter gradient, A of a chunk (positions x live taps*cg): B(p, j) is channel
// j % cg of the pixel that live tap j / cg reads for position first + p, 0 in the padding. Each
// row is a few channel runs copied whole.
template <class T>
struct NhwcColsPackB final : PackB<T> {
  const ConvGeom& g;
  const T* x;  // the group's first channel
  const std::vector<int64_t>& taps;
  int64_t first;
  NhwcColsPackB(const ConvGeom& geom, const T* xg, const std::vector<int64_t>& live, int64_t first_pos)
      : g(geom), x(xg), taps(live), first(first_pos) {}
  void pack(int64_t p0, int64_t kc, int64_t j0, int64_t nc, int nr, T* __restrict bp) const override {
    const int64_t cg = g.cg();
    // the rows' first input row and column and image, counted on from the first row (no division
    // per row)
    static thread_local std::vector<int64_t> at;
    at.resize(size_t(3 * kc));
    int64_t pos = first + p0, img = pos / g.ohw(), oh = pos % g.ohw() / g.ow, ow = pos % g.ow;
    for (int64_t p = 0; p < kc; ++p) {
      at[3 * p] = oh * g.sh - g.ph;
      at[3 * p + 1] = ow * g.sw - g.pw;
      at[3 * p + 2] = img * g.h;
      if (++ow == g.ow) {
        ow = 0;
        if (++oh == g.oh) oh = 0, ++img;
      }
    }
    struct Run {
      int64_t dr, ds, c0, col, len;
    };
    Run runs[64];  // a panel's columns as runs of one tap's channels (nr <= 64)
    for (int64_t jr = 0; jr < nc; jr += nr) {
      const int64_t cols = std::min<int64_t>(nr, nc - jr);
      int nruns = 0;
      for (int64_t j = j0 + jr, done = 0; done < cols; ++nruns) {
        const int64_t t = taps[j / cg], c0 = j % cg, len = std::min(cg - c0, cols - done);
        runs[nruns] = {t / g.s * g.dh, t % g.s * g.dw, c0, done, len};
        done += len;
        j += len;
      }
      for (int64_t p = 0; p < kc; ++p) {
        T* d = bp + jr * kc + p * nr;
        for (int u = 0; u < nruns; ++u) {
          const Run& rn = runs[u];
          const int64_t ih = at[3 * p] + rn.dr, iw = at[3 * p + 1] + rn.ds;
          if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) {
            for (int64_t q = 0; q < rn.len; ++q) d[rn.col + q] = T(0);
          } else {
            const T* src = x + ((at[3 * p + 2] + ih) * g.w + iw) * g.c + rn.c0;
            for (int64_t q = 0; q < rn.len; ++q) d[rn.col + q] = src[q];
          }
        }
        for (int64_t q = cols; q < nr; ++q) d[q] = T(0);
      }
    }
  }
};

// Per-thread copies of an accumulator of `size` values, in the calling thread's scratch: a
// thread's copy is zeroed when it first takes work (mine), and sum(i) adds the copies that did.
template <class T>
class ThreadPartials {
 public:
  explicit ThreadPartials(int64_t size)
      : size_(size), touched_(size_t(num_threads()), 0),
        data_(static_cast<T*>(scratch(kFilterPartialsSlot, sizeof(T) * touched_.size() * size + 1))) {}
  bool ok() const { return data_ != nullptr; }
  T* mine(int thread) {
    T* p = data_ + thread * size_;
    if (!touched_[thread]) std::fill(p, p + size_, T(0));
    touched_[thread] = 1;
    return p;
  }
  T sum(int64_t i) const {
    T v = T(0);
    for (size_t t = 0; t < touched_.size(); ++t)
      if (touched_[t]) v += data_[t * size_ + i];
    return v;
  }

 private:
  int64_t size_;
  std::vector<char> touched_;
  T* data_;
};

// The NHWC filter gradient as outer products, when the output channels fill whole vectors:
//   dw_g^T[(t, c)][kk] = sum over the output positions p that tap t reads inside the input of
//                        x[pixel(p, t)][c] * dy[p][kk]
// A tile of mr input channels of one tap by nv vectors of output channels (outer_tile) streams
// both operands: along an output row the tap's pixels are sw*C apart, so x is read in place with
// no im2col and no padding arithmetic per element. Positions go in blocks of whole output rows;
// the threads split the blocks, each into its own dw^T, summed at the end. In a thread's block
// dy is first copied into panels of the tile's width: its rows then lie one after another, where
// K floats apart (1 KB for K = 256) they would fall into a few L1 sets and every tile would
// refetch them. Returns false when out of memory.
template <class T>
bool filter_outer_nhwc(const ConvGeom& g, const std::vector<int64_t>& taps, const T* x, const T* dy, T* dw) {
  const GemmKernel<T>& kern = gemm_kernel<T>();
  const int64_t cg = g.cg(), kg = g.kg(), rs = g.r * g.s, ntaps = int64_t(taps.size()), cols = ntaps * cg;
  const int64_t vl = kern.outer_vl, nr_max = kern.outer_nv * vl, panels = (kg + nr_max - 1) / nr_max;
  const int64_t wsize = g.groups * cols * kg;  // dw^T: (group, live tap, channel) x kg
  // about 384 positions a block: longer runs per tile call (0.90x the time of 128, paired, 64->64
  // at 56x56), while the blocks still outnumber the threads
  const int64_t rows_per_block = std::max<int64_t>(1, 384 / g.ow), out_rows = g.n * g.oh;
  const int64_t blocks = (out_rows + rows_per_block - 1) / rows_per_block;
  ThreadPartials<T> acc(wsize);
  if (!acc.ok()) return false;
  // each tap's output columns inside the input: ow in [lo, hi)
  std::vector<int64_t> lo(size_t(g.s)), hi(size_t(g.s));
  for (int64_t s = 0; s < g.s; ++s) {
    const int64_t off = s * g.dw - g.pw;  // iw = ow*sw + off
    lo[s] = off >= 0 ? 0 : std::min<int64_t>((-off + g.sw - 1) / g.sw, g.ow);
    hi[s] = g.w - 1 - off < 0 ? 0 : std::min<int64_t>((g.w - 1 - off) / g.sw + 1, g.ow);
  }
  // The tiles of one (group, panel, tap) over one block of output rows, added to out. dyb: the
  // block's dy panel, position p of the block at dyb + p * bs.
  auto run = [&](int64_t grp, int64_t jp, int64_t ti, int64_t blk, const T* dyb, int64_t bs, T* out) {
    struct Segs {
      std::vector<const T*> a, b;
      std::vector<int32_t> lens;
    };
    static thread_local Segs sg;
    sg.a.clear(), sg.b.clear(), sg.lens.clear();
    const int64_t t = taps[ti], tr = t / g.s, ts = t % g.s, first = blk * rows_per_block;
    for (int64_t row = first; row < std::min(out_rows, first + rows_per_block); ++row) {
      const int64_t img = row / g.oh, oh = row % g.oh, ih = oh * g.sh - g.ph + tr * g.dh;
      if (ih < 0 || ih >= g.h || lo[ts] >= hi[ts]) continue;
      sg.a.push_back(x + ((img * g.h + ih) * g.w + lo[ts] * g.sw - g.pw + ts * g.dw) * g.c + grp * cg);
      sg.b.push_back(dyb + ((row - first) * g.ow + lo[ts]) * bs);
      sg.lens.push_back(int32_t(hi[ts] - lo[ts]));
    }
    const int64_t j0 = jp * nr_max, nv = std::min(nr_max, kg - j0) / vl;
    T* c = out + (grp * cols + ti * cg) * kg + j0;
    for (int64_t c0 = 0; c0 < cg; c0 += kern.outer_mr) {
      const int64_t mr = std::min<int64_t>(kern.outer_mr, cg - c0);
      kern.outer[(mr - 1) * kern.outer_nv + nv - 1](int64_t(sg.lens.size()), sg.a.data(), c0, sg.b.data(), 0,
                                                    sg.lens.data(), g.sw * g.c, bs, c + c0 * kg, kg, T(1));
    }
  };
  const bool in_place = g.groups == 1 && kg <= nr_max;  // dy's rows are already one panel each
  std::atomic<bool> ok{true};
  parallel_for_dynamic(blocks, 1, [&](int64_t b0, int64_t b1, int thread) {
    T* out = acc.mine(thread);
    const int64_t positions = rows_per_block * g.ow;
    T* panel = in_place ? nullptr : static_cast<T*>(scratch(2, sizeof(T) * positions * nr_max));
    if (!in_place && !panel) {
      ok.store(false);
      return;
    }
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t p0 = blk * positions, np = std::min(out_rows * g.ow, p0 + positions) - p0;
      for (int64_t gp = 0; gp < g.groups * panels; ++gp) {
        const int64_t grp = gp / panels, jp = gp % panels, j0 = grp * kg + jp * nr_max;
        const int64_t width = std::min(nr_max, kg - jp * nr_max);
        if (!in_place)
          for (int64_t p = 0; p < np; ++p) std::memcpy(panel + p * width, dy + (p0 + p) * g.k + j0, sizeof(T) * width);
        for (int64_t ti = 0; ti < ntaps; ++ti)
          run(grp, jp, ti, blk, in_place ? dy + p0 * g.k : panel, in_place ? g.k : width, out);
      }
    }
  });
  if (!ok) return false;
  // dw[(grp*kg + kk)*rs + t][c] = the sum of the copies' dw^T[(grp, t, c)][kk]; dead taps zero
  if (ntaps != rs) std::fill(dw, dw + g.k * rs * cg, T(0));
  constexpr int64_t kBlock = 16;  // output channels per pass: 16 rows of dw written side by side
  const int64_t kblocks = (kg + kBlock - 1) / kBlock;
  parallel_for(g.groups * kblocks, 1, [&](int64_t q0, int64_t q1, int) {
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t grp = q / kblocks, k0 = q % kblocks * kBlock, k1 = std::min(kg, k0 + kBlock);
      for (int64_t j = 0; j < cols; ++j) {
        const int64_t t = taps[j / cg], c = j % cg;
        for (int64_t kk = k0; kk < k1; ++kk) dw[((grp * kg + kk) * rs + t) * cg + c] = acc.sum((grp * cols + j) * kg + kk);
      }
    }
  });
  return true;
}

// The filter gradient of Note [Winograd]: with y = A^T (U . V) A, U = G g G^T, the gradient
// of U is (A dy A^T) . V, so
//   dw = G^T [ sum over tiles of V[xi][tile][c] * D[xi][tile][k] ] G,   D = A dy A^T  (wino_dy)
// 16 GEMMs over the tiles (outer_tile: V's channels by D's, in place), into each thread's copy of
// the 16 C K sums, then summed and transformed back: 2.25x fewer multiply-adds than
// filter_outer_nhwc. Returns false when out of memory.
template <class T>
bool filter_winograd_nhwc(const ConvGeom& g, const T* x, const T* dy, T* dw) {
  const GemmKernel<T>& kern = gemm_kernel<T>();
  const WinoTiles tl(g);
  const int64_t C = g.c, K = g.k, tiles = tl.count();
  const int64_t vl = kern.outer_vl, nr_max = kern.outer_nv * vl, panels = (K + nr_max - 1) / nr_max;
  const int threads = num_threads();
  ThreadPartials<T> acc(16 * C * K);
  if (!acc.ok()) return false;
  const int64_t per_thread = (tiles + 2 * threads - 1) / (2 * threads);
  const int64_t tb = std::clamp<int64_t>(per_thread, 1, kWinoTilesPerBlock), blocks = (tiles + tb - 1) / tb;
  const T* zeros = zero_run<T>();
  std::atomic<bool> ok{true};
  parallel_for_dynamic(blocks, 1, [&](int64_t b0, int64_t b1, int thread) {
    T* v = static_cast<T*>(scratch(0, sizeof(T) * 16 * tb * C));
    T* d = static_cast<T*>(scratch(1, sizeof(T) * 16 * panels * tb * nr_max));  // [xi][panel][tile][nr_max]
    if (!v || !d) {
      ok.store(false);
      return;
    }
    T* out = acc.mine(thread);
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t t0 = blk * tb, nt = std::min(tb, tiles - t0);
      for (int64_t i = 0; i < nt; ++i) {
        const T* px[16];
        tl.patch(t0 + i, x, zeros, px);
        kern.wino_in(px, C, v + i * C, tb * C);
        const T* py[4];
        tl.outputs<const T*>(t0 + i, dy, zeros, py);
        for (int64_t jp = 0; jp < panels; ++jp) {
          const int64_t j0 = jp * nr_max, width = std::min(nr_max, K - j0);
          const T* pj[4] = {py[0] + (py[0] == zeros ? 0 : j0), py[1] + (py[1] == zeros ? 0 : j0),
                            py[2] + (py[2] == zeros ? 0 : j0), py[3] + (py[3] == zeros ? 0 : j0)};
          kern.wino_dy(pj, width, d + (jp * tb + i) * nr_max, panels * tb * nr_max);
        }
      }
      for (int64_t xi = 0; xi < 16; ++xi)
        for (int64_t jp = 0; jp < panels; ++jp) {
          const int64_t j0 = jp * nr_max, nv = std::min(nr_max, K - j0) / vl;
          const T* a = v + xi * tb * C;
          const T* bp = d + ((xi * panels + jp) * tb) * nr_max;
          const int32_t len = int32_t(nt);
          for (int64_t c0 = 0; c0 < C; c0 += kern.outer_mr) {
            const int64_t mr = std::min<int64_t>(kern.outer_mr, C - c0);
            kern.outer[(mr - 1) * kern.outer_nv + nv - 1](1, &a, c0, &bp, 0, &len, C, nr_max,
                                                          out + (xi * C + c0) * K + j0, K, T(1));
          }
        }
    }
  });
  if (!ok) return false;
  // dw[kk][r][s][c] = (G^T dU G)[r][s], dU[i][j] = the copies' sum at (i*4 + j, c, kk)
  parallel_for(K, 1, [&](int64_t k0, int64_t k1, int) {
    for (int64_t kk = k0; kk < k1; ++kk)
      for (int64_t c = 0; c < C; ++c) {
        T du[16], yv[12];
        for (int q = 0; q < 16; ++q) du[q] = acc.sum((q * C + c) * K + kk);
        for (int i = 0; i < 4; ++i) {  // dU G
          const T* r = du + i * 4;
          yv[i * 3] = r[0] + (r[1] + r[2]) * T(0.5);
          yv[i * 3 + 1] = (r[1] - r[2]) * T(0.5);
          yv[i * 3 + 2] = (r[1] + r[2]) * T(0.5) + r[3];
        }
        for (int s = 0; s < 3; ++s) {  // G^T (dU G)
          dw[(kk * 9 + 0 * 3 + s) * C + c] = yv[s] + (yv[3 + s] + yv[6 + s]) * T(0.5);
          dw[(kk * 9 + 1 * 3 + s) * C + c] = (yv[3 + s] - yv[6 + s]) * T(0.5);
          dw[(kk * 9 + 2 * 3 + s) * C + c] = (yv[3 + s] + yv[6 + s]) * T(0.5) + yv[9 + s];
        }
      }
  });
  return true;
}

template <class T>
crb_status backward_filter_nhwc(const ConvGeom& g, const T* x, const T* dy, T* dw) {
  const std::vector<int64_t> taps = nhwc_live_taps(g);
  const int64_t cg = g.cg(), kg = g.kg(), rs = g.r * g.s, cols = int64_t(taps.size()) * cg;
  const GemmKernel<T>& kern = gemm_kernel<T>();
  // Winograd where measured faster: 1.1-1.6x on 7x7 to 56x56 maps (4096 or more positions);
  // 0.89x on 4x4 maps (128 channels) and 0.4-0.8x on small batches, where the per-thread sums
  // and their transform cost more than the products they save
  if (winograd_applies<T>(g) && WinoTiles(g).per_image() >= 16 && g.n * g.ohw() >= 4096) {
    if (!filter_winograd_nhwc(g, x, dy, dw))
      return fail(CRB_ERR_OOM, "conv2d_backward_filter", "could not allocate the Winograd buffers");
    return CRB_OK;
  }
  // The outer-product tiles, where measured faster: at least 4096 output positions (below, the
  // per-thread copies of dw^T cost more than they save: ResNet-18's 512-channel layers on 1x1 to
  // 3x3 maps ran 1.3-1.5x slower).
  if (kern.outer_mr > 0 && kg % kern.outer_vl == 0 && g.n * g.ohw() >= 4096) {
    if (!filter_outer_nhwc(g, taps, x, dy, dw))
      return fail(CRB_ERR_OOM, "conv2d_backward_filter", "could not allocate the weight gradient partials");
    return CRB_OK;
  }
  const bool all_live = int64_t(taps.size()) == rs;
  // dw (k, r, s, cg) is row-major k x rs*cg; with dead taps the live columns go to dwl first
  T* dwl = all_live ? dw : static_cast<T*>(scratch(kNhwcAuxSlot, sizeof(T) * g.k * cols + 1));
  if (!dwl) return fail(CRB_ERR_OOM, "conv2d_backward_filter", "could not allocate the live-tap gradient");
  const Chunks plan = plan_chunks(g.n, g.ohw());
  if (crb_status st = sum_over_chunks(g, plan, g.k * cols, dwl, [&](int64_t first, int64_t images, bool par, T* acc,
                                                                     T beta) {
        for (int64_t grp = 0; grp < g.groups; ++grp) {
          // dw_g (kg x cols) += dy_g^T (kg x positions) * A (positions x cols)
          const NhwcColsPackB<T> packer(g, x + grp * cg, taps, first * g.ohw());
          const MatRef<T> dyt{dy + first * g.ohw() * g.k + grp * kg, 1, g.k};
          if (!gemm<T>(kg, cols, images * g.ohw(), T(1), dyt, packer, beta, acc + grp * kg * cols, cols, par))
            return false;
        }
        return true;
      }))
    return st;
  if (all_live) return CRB_OK;
  std::fill(dw, dw + g.k * rs * cg, T(0));
  for (int64_t kk = 0; kk < g.k; ++kk)
    for (size_t ti = 0; ti < taps.size(); ++ti)
      std::copy(dwl + kk * cols + ti * cg, dwl + kk * cols + (ti + 1) * cg, dw + (kk * rs + taps[ti]) * cg);
  return CRB_OK;
}

// db = the sum of dy's rows (positions x k): row ranges per thread, summed in double, each run
// of 64 rows first in T (vector adds along k, and a double add per 64 values).
template <class T>
void backward_bias_nhwc(const ConvGeom& g, const T* dy, T* db) {
  const int64_t m = g.n * g.ohw(), k = g.k, threads = num_threads();
  std::vector<double> part(size_t(threads * k), 0.0);
  parallel_for(m, 1024, [&](int64_t i0, int64_t i1, int thread) {
    double* acc = part.data() + thread * k;
    static thread_local std::vector<T> run;
    run.resize(size_t(k));
    for (int64_t r0 = i0; r0 < i1; r0 += 64) {
      std::fill(run.begin(), run.end(), T(0));
      T* __restrict sum = run.data();
      for (int64_t i = r0; i < std::min(i1, r0 + 64); ++i)
        for (int64_t kk = 0; kk < k; ++kk) sum[kk] += dy[i * k + kk];
      for (int64_t kk = 0; kk < k; ++kk) acc[kk] += sum[kk];
    }
  });
  for (int64_t kk = 0; kk < k; ++kk) {
    double total = 0;
    for (int64_t t = 0; t < threads; ++t) total += part[t * k + kk];
    db[kk] = T(total);
  }
}

// Kernel taps that only ever read padding contribute nothing: on ResNet's 1x1 maps a 3x3 conv
// with padding 1 is really a 1x1 conv, 9x less work. The live taps form a smaller kernel with
// less padding that reads exactly the same inputs.
struct LiveTaps {
  int64_t r0, r1, s0, s1;
  ConvGeom reduced;
  bool any_dead;
};

LiveTaps live_taps(const ConvGeom& g) {
  auto axis = [](int64_t taps, int64_t out, int64_t stride, int64_t pad, int64_t dil, int64_t size, int64_t* lo,
                 int64_t* hi) {
    *lo = taps;
    *hi = 0;
    for (int64_t t = 0; t < taps; ++t)
      for (int64_t o = 0; o < out; ++o) {
        const int64_t i = o * stride - pad + t * dil;
        if (i >= 0 && i < size) {
          *lo = std::min(*lo, t);
          *hi = std::max(*hi, t + 1);
          break;
        }
      }
  };
  LiveTaps lt;
  axis(g.r, g.oh, g.sh, g.ph, g.dh, g.h, &lt.r0, &lt.r1);
  axis(g.s, g.ow, g.sw, g.pw, g.dw, g.w, &lt.s0, &lt.s1);
  lt.any_dead = false;
  if (lt.r0 >= lt.r1 || lt.s0 >= lt.s1 || (lt.r1 - lt.r0 == g.r && lt.s1 - lt.s0 == g.s)) return lt;
  ConvGeom t = g;
  t.r = lt.r1 - lt.r0;
  t.s = lt.s1 - lt.s0;
  t.ph = g.ph - lt.r0 * g.dh;
  t.pw = g.pw - lt.s0 * g.dw;
  if (t.ph < 0 || t.pw < 0) return lt;
  // same output size with the same (symmetric) padding on the far side
  if ((t.h + 2 * t.ph - t.dh * (t.r - 1) - 1) / t.sh + 1 != g.oh) return lt;
  if ((t.w + 2 * t.pw - t.dw * (t.s - 1) - 1) / t.sw + 1 != g.ow) return lt;
  lt.reduced = t;
  lt.any_dead = true;
  return lt;
}

// The live taps of w (k, cg, r, s) as a (k, cg, r', s') tensor.
template <class T>
void gather_taps(const ConvGeom& g, const LiveTaps& lt, const T* w, T* wr) {
  const int64_t r2 = lt.r1 - lt.r0, s2 = lt.s1 - lt.s0;
  const int64_t rs = g.r * g.s, first = lt.r0 * g.s + lt.s0;
  parallel_for(g.k * g.cg(), 256, [&](int64_t ck0, int64_t ck1, int) {
    for (int64_t ck = ck0; ck < ck1; ++ck) {
      const T* src = w + ck * rs + first;
      T* dst = wr + ck * r2 * s2;
      for (int64_t r = 0; r < r2; ++r)
        for (int64_t s = 0; s < s2; ++s) dst[r * s2 + s] = src[r * g.s + s];
    }
  });
}
// And back, dead taps zero.
template <class T>
void scatter_taps(const ConvGeom& g, const LiveTaps& lt, const T* wr, T* w) {
  const int64_t r2 = lt.r1 - lt.r0, s2 = lt.s1 - lt.s0;
  parallel_for(g.k * g.cg(), 256, [&](int64_t ck0, int64_t ck1, int) {
    const int64_t rs = g.r * g.s;
    std::fill(w + ck0 * rs, w + ck1 * rs, T(0));
    for (int64_t ck = ck0; ck < ck1; ++ck)
      for (int64_t r = 0; r < r2; ++r)
        for (int64_t s = 0; s < s2; ++s) w[(ck * g.r + r + lt.r0) * g.s + s + lt.s0] = wr[(ck * r2 + r) * s2 + s];
  });
}

// One live tap (3x3 on 1x1 maps): the reduced weights are w itself, every r*s-th element.
bool single_tap(const LiveTaps& lt) { return lt.r1 - lt.r0 == 1 && lt.s1 - lt.s0 == 1; }

template <class T>
crb_status forward_live(const ConvGeom& g, const T* x, const T* w, const T* b, T* y) {
  const LiveTaps lt = live_taps(g);
  if (!lt.any_dead) return forward<T>(g, x, w, b, y);
  if (single_tap(lt)) return forward<T>(lt.reduced, x, w + lt.r0 * g.s + lt.s0, b, y, g.r * g.s);
  T* wr = static_cast<T*>(scratch(kLiveTapsSlot, sizeof(T) * g.k * lt.reduced.crs()));
  if (!wr) return fail(CRB_ERR_OOM, "conv2d_forward", "could not allocate the live-tap weights");
  gather_taps(g, lt, w, wr);
  return forward<T>(lt.reduced, x, wr, b, y);
}

template <class T>
crb_status backward_data_live(const ConvGeom& g, const T* dy, const T* w, T* dx) {
  const LiveTaps lt = live_taps(g);
  if (!lt.any_dead) return backward_data<T>(g, dy, w, dx);
  if (single_tap(lt)) return backward_data<T>(lt.reduced, dy, w + lt.r0 * g.s + lt.s0, dx, g.r * g.s);
  T* wr = static_cast<T*>(scratch(kLiveTapsSlot, sizeof(T) * g.k * lt.reduced.crs()));
  if (!wr) return fail(CRB_ERR_OOM, "conv2d_backward_data", "could not allocate the live-tap weights");
  gather_taps(g, lt, w, wr);
  return backward_data<T>(lt.reduced, dy, wr, dx);
}

template <class T>
crb_status backward_filter_live(const ConvGeom& g, const T* x, const T* dy, T* dw) {
  const LiveTaps lt = live_taps(g);
  if (!lt.any_dead) return backward_filter<T>(g, x, dy, dw);
  T* dwr = static_cast<T*>(scratch(kLiveTapsSlot, sizeof(T) * g.k * lt.reduced.crs()));
  if (!dwr) return fail(CRB_ERR_OOM, "conv2d_backward_filter", "could not allocate the live-tap gradient");
  if (crb_status st = backward_filter<T>(lt.reduced, x, dy, dwr)) return st;
  scatter_taps(g, lt, dwr, dw);
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

// Note [few channels in NHWC]
// With few channels the NHWC tiles compute mostly padding (64 output channels wide for K = 3, or
// a 1-channel data gradient) while the NCHW kernels put positions along the vectors. There the
// NHWC entry points re-lay the operands out (one blocked transpose each, none for a single
// channel, where both orders are the same memory), run the NCHW kernel and re-lay the result:
// see nchw_is_faster for where, measured.

template <class T>
constexpr crb_dtype dtype_of() {
  return std::is_same<T, double>::value ? CRB_F64 : CRB_F32;
}

// A temporary NCHW copy of an NHWC (n, c, h, w) tensor (or an alias where the orders coincide),
// or the NHWC destination's NCHW stand-in; freed with the op.
template <class T>
class NchwCopy {
 public:
  NchwCopy(const T* src, int64_t n, int64_t c, int64_t h, int64_t w, T* dst = nullptr)
      : n_(n), c_(c), h_(h), w_(w), dst_(dst) {
    if (c == 1 || h * w == 1) {  // the same memory in both orders
      data_ = const_cast<T*>(src ? src : dst);
      return;
    }
    void* p = nullptr;
    if (alloc(sizeof(T) * size_t(n * c * h * w), &p) != CRB_OK) return;
    own_ = data_ = static_cast<T*>(p);
    if (src) convert_layout(data_, CRB_NCHW, src, CRB_NHWC, int(n), int(c), int(h), int(w), dtype_of<T>());
  }
  ~NchwCopy() {
    if (own_) dealloc(own_);
  }
  NchwCopy(const NchwCopy&) = delete;
  NchwCopy& operator=(const NchwCopy&) = delete;
  T* get() const { return data_; }
  // the result back into the NHWC destination
  void store() const {
    if (own_ && dst_) convert_layout(dst_, CRB_NHWC, own_, CRB_NCHW, int(n_), int(c_), int(h_), int(w_), dtype_of<T>());
  }

 private:
  int64_t n_, c_, h_, w_;
  T* dst_;
  T* data_ = nullptr;
  T* own_ = nullptr;
};

// Measured, kernels and transposes together (paired, 2 threads), the NCHW route is faster where
// the NHWC tile's width is the small side: the forward with at most 16 output channels (16 -> 16
// at 56x56 0.69x the time, 64 -> 3 0.4x), the data gradient with at most 16 input channels (the
// 1-channel stem's 45 -> 4.4 ms, 3 -> 64 0.38x), the filter gradient only with at most 8 on both
// sides (the seed's 3 -> 3 at 224x224 0.84x; 16 -> 16 1.8x slower, the stem's 1.1-1.5x).
enum class Pass { kForward, kData, kFilter };
bool nchw_is_faster(const ConvGeom& g, Pass pass) {
  switch (pass) {
    case Pass::kForward: return g.kg() <= 16;
    case Pass::kData: return g.cg() <= 16;
    default: return g.cg() <= 8 && g.kg() <= 8;
  }
}

template <class T>
crb_status forward_via_nchw(const ConvGeom& g, const T* x, const T* w, const T* b, T* y) {
  NchwCopy<T> xn(x, g.n, g.c, g.h, g.w), wn(w, g.k, g.cg(), g.r, g.s), yn(nullptr, g.n, g.k, g.oh, g.ow, y);
  if (!xn.get() || !wn.get() || !yn.get()) return fail(CRB_ERR_OOM, "conv2d_forward", "could not allocate NCHW copies");
  if (crb_status st = forward_live<T>(g, xn.get(), wn.get(), b, yn.get())) return st;
  yn.store();
  return CRB_OK;
}

template <class T>
crb_status backward_data_via_nchw(const ConvGeom& g, const T* dy, const T* w, T* dx) {
  NchwCopy<T> dyn(dy, g.n, g.k, g.oh, g.ow), wn(w, g.k, g.cg(), g.r, g.s), dxn(nullptr, g.n, g.c, g.h, g.w, dx);
  if (!dyn.get() || !wn.get() || !dxn.get())
    return fail(CRB_ERR_OOM, "conv2d_backward_data", "could not allocate NCHW copies");
  if (crb_status st = backward_data_live<T>(g, dyn.get(), wn.get(), dxn.get())) return st;
  dxn.store();
  return CRB_OK;
}

template <class T>
crb_status backward_filter_via_nchw(const ConvGeom& g, const T* x, const T* dy, T* dw) {
  NchwCopy<T> xn(x, g.n, g.c, g.h, g.w), dyn(dy, g.n, g.k, g.oh, g.ow), dwn(nullptr, g.k, g.cg(), g.r, g.s, dw);
  if (!xn.get() || !dyn.get() || !dwn.get())
    return fail(CRB_ERR_OOM, "conv2d_backward_filter", "could not allocate NCHW copies");
  if (crb_status st = backward_filter_live<T>(g, xn.get(), dyn.get(), dwn.get())) return st;
  dwn.store();
  return CRB_OK;
}

}  // namespace

crb_status conv2d_forward(const crb_conv2d_desc* d, const void* x, const void* w, const void* b, void* y) {
  ConvGeom g;
  if (crb_status st = check_desc(d, "conv2d_forward", &g)) return st;
  return dispatch_float(d->dtype, "conv2d_forward", [&](auto zero) {
    using T = decltype(zero);
    if (d->layout == CRB_NHWC && nchw_is_faster(g, Pass::kForward))
      return forward_via_nchw<T>(g, static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const T*>(b),
                                 static_cast<T*>(y));
    if (d->layout == CRB_NHWC)
      return forward_nhwc<T>(g, static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const T*>(b),
                             static_cast<T*>(y));
    return forward_live<T>(g, static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const T*>(b),
                      static_cast<T*>(y));
  });
}

crb_status conv2d_backward_data(const crb_conv2d_desc* d, const void* dy, const void* w, void* dx) {
  ConvGeom g;
  if (crb_status st = check_desc(d, "conv2d_backward_data", &g)) return st;
  return dispatch_float(d->dtype, "conv2d_backward_data", [&](auto zero) {
    using T = decltype(zero);
    if (d->layout == CRB_NHWC && nchw_is_faster(g, Pass::kData))
      return backward_data_via_nchw<T>(g, static_cast<const T*>(dy), static_cast<const T*>(w), static_cast<T*>(dx));
    if (d->layout == CRB_NHWC)
      return backward_data_nhwc<T>(g, static_cast<const T*>(dy), static_cast<const T*>(w), static_cast<T*>(dx));
    return backward_data_live<T>(g, static_cast<const T*>(dy), static_cast<const T*>(w), static_cast<T*>(dx));
  });
}

crb_status conv2d_backward_filter(const crb_conv2d_desc* d, const void* x, const void* dy, void* dw) {
  ConvGeom g;
  if (crb_status st = check_desc(d, "conv2d_backward_filter", &g)) return st;
  return dispatch_float(d->dtype, "conv2d_backward_filter", [&](auto zero) {
    using T = decltype(zero);
    if (d->layout == CRB_NHWC && nchw_is_faster(g, Pass::kFilter))
      return backward_filter_via_nchw<T>(g, static_cast<const T*>(x), static_cast<const T*>(dy), static_cast<T*>(dw));
    if (d->layout == CRB_NHWC)
      return backward_filter_nhwc<T>(g, static_cast<const T*>(x), static_cast<const T*>(dy), static_cast<T*>(dw));
    return backward_filter_live<T>(g, static_cast<const T*>(x), static_cast<const T*>(dy), static_cast<T*>(dw));
  });
}

crb_status conv2d_backward_bias(const crb_conv2d_desc* d, const void* dy, void* db) {
  ConvGeom g;
  if (crb_status st = check_desc(d, "conv2d_backward_bias", &g)) return st;
  return dispatch_float(d->dtype, "conv2d_backward_bias", [&](auto zero) {
    using T = decltype(zero);
    if (d->layout == CRB_NHWC)
      backward_bias_nhwc<T>(g, static_cast<const T*>(dy), static_cast<T*>(db));
    else
      backward_bias<T>(g, static_cast<const T*>(dy), static_cast<T*>(db));
    return CRB_OK;
  });
}

}  // namespace crb_cpu
