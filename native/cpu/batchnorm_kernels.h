// Batch norm over (n, h, w) per channel, NCHW or NHWC, PyTorch semantics.
//   x, y, dy, dx: (n, c, h, w)   gamma, beta, running_*, save_*: (c), same float type as x
// NHWC is (n*h*w) rows of c contiguous channels: every pass goes row by row, vectorised across
// the channels, each thread summing its rows into its own per-channel accumulators.
// Training normalizes with the batch mean and the BIASED variance, saves mean and
// invstd = 1/sqrt(var + eps), and moves running_var towards the UNBIASED variance (PyTorch).
// Per-channel sums are accumulated in double. gamma and beta are always given (the ABI has no
// affine=False). The fused relu(bn(x)) recomputes its ReLU mask in backward from x and the saved
// statistics (ReluGate), so it saves no y and reads one tensor fewer per pass.
// Compiled once per ISA (batchnorm.cc, batchnorm_avx2.cc, batchnorm_avx512.cc), each in its own
// namespace BN_NS; batchnorm.cc checks the descriptor and picks one.
#include <algorithm>
#include <cmath>
#include <vector>

#include "dtype.h"
#include "ops.h"
#include "threadpool.h"

#ifndef BN_NS
#error "define BN_NS (the ISA namespace) before including batchnorm_kernels.h"
#endif
#include "batchnorm_isa.h"

namespace crb_cpu {
namespace BN_NS {

namespace {

// Runs fn(channel) for every channel on the pool.
template <class Fn>
void for_each_channel(int64_t c, Fn&& fn) {
  parallel_for_dynamic(c, 1, [&](int64_t c0, int64_t c1, int) {
    for (int64_t ch = c0; ch < c1; ++ch) fn(ch);
  });
}

// Runs fn(c0, c1) for blocks of at most kChannelBlock channels on the pool. Within a block the
// passes go image by image over the block's channels, which sit side by side in memory: walking
// one channel through all images jumps c*h*w values per short run (49 values on a 7x7 map), which
// defeats the prefetchers.
constexpr int64_t kChannelBlock = 64;
template <class Fn>
void for_each_channel_block(int64_t c, Fn&& fn) {
  const int64_t per_thread = 4;  // blocks per thread, so a stalled core's share is picked up
  const int64_t block = std::max<int64_t>(
      1, std::min<int64_t>(kChannelBlock, (c + per_thread * num_threads() - 1) / (per_thread * num_threads())));
  const int64_t blocks = (c + block - 1) / block;
  parallel_for_dynamic(blocks, 1, [&](int64_t b0, int64_t b1, int) {
    for (int64_t b = b0; b < b1; ++b) fn(b * block, std::min(c, (b + 1) * block));
  });
}

// ---- NHWC

// Per-channel double sums over the rows (n*h*w of them): fn(row, s1, s2) adds one row's terms
// to the thread's accumulators; the totals land in t1, t2 (c each).
template <class Fn>
void nhwc_channel_sums(int64_t rows, int64_t c, double* t1, double* t2, Fn&& fn) {
  const int threads = num_threads();
  std::vector<double> part(size_t(threads) * 2 * c, 0.0);
  parallel_for(rows, 256, [&](int64_t r0, int64_t r1, int thread) {
    double* s1 = part.data() + size_t(thread) * 2 * c;
    double* s2 = s1 + c;
    for (int64_t r = r0; r < r1; ++r) fn(r, s1, s2);
  });
  for (int64_t ch = 0; ch < c; ++ch) {
    double a = 0, b = 0;
    for (int t = 0; t < threads; ++t) {
      a += part[size_t(t) * 2 * c + ch];
      b += part[size_t(t) * 2 * c + c + ch];
    }
    t1[ch] = a;
    t2[ch] = b;
  }
}

// Row pieces of the elementwise passes: fn(row) over all rows on the pool.
template <class Fn>
void nhwc_rows(int64_t rows, Fn&& fn) {
  parallel_for(rows, 256, [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r) fn(r);
  });
}

// One normalized value. Forward and ReluGate both call it with the same operands (scale from the
// saved, rounded invstd), so the recomputed mask is exactly the forward's.
template <class T>
inline T bn_value(T x, T mu, T scale, T shift) {
  return (x - mu) * scale + shift;
}

// What the BN backward's dy is, given channel, x and the incoming gradient g: g itself, or g
// through the ReLU after the BN, threshold_backward on y = relu(bn(x)), y recomputed. The sums
// take a run at a time (channel(): len values of one channel; row(): channels ch .. ch+len-1),
// gated into `buf` first: gated inside the sums' loop, the backward ran ~2x slower (measured,
// N=32 64x56x56, both layouts).
constexpr int64_t kGateRun = 256;  // buf's length: stays in L1
template <class T>
struct Ungated {
  T operator()(int64_t, T, T g) const { return g; }
  const T* channel(int64_t, int64_t, const T*, const T* g, T*) const { return g; }
  const T* row(int64_t, int64_t, const T*, const T* g, T*) const { return g; }
};
template <class T>
struct ReluGate {
  const T *mu, *scale, *shift;  // (c)
  // g is a value, read unconditionally: a conditional load keeps the loops scalar
  static T masked(T x, T m, T sc, T sh, T g) { return bn_value(x, m, sc, sh) <= T(0) ? T(0) : g; }
  T operator()(int64_t ch, T x, T g) const { return masked(x, mu[ch], scale[ch], shift[ch], g); }
  const T* channel(int64_t ch, int64_t len, const T* x, const T* g, T* __restrict buf) const {
    const T m = mu[ch], sc = scale[ch], sh = shift[ch];
    for (int64_t j = 0; j < len; ++j) buf[j] = masked(x[j], m, sc, sh, g[j]);
    return buf;
  }
  const T* row(int64_t ch, int64_t len, const T* x, const T* g, T* __restrict buf) const {
    const T *m = mu + ch, *sc = scale + ch, *sh = shift + ch;
    for (int64_t j = 0; j < len; ++j) buf[j] = masked(x[j], m[j], sc[j], sh[j], g[j]);
    return buf;
  }
};

// What the forward applies after the BN: nothing, + z then ReLU (the block's tail), or ReLU.
enum class Tail { kNone, kAddRelu, kRelu };

template <class T>
crb_status forward_train_nhwc(const crb_bn_desc* d, const T* x, const T* gamma, const T* beta, T* y,
                              T* running_mean, T* running_var, T* save_mean, T* save_invstd, Tail tail, const T* z) {
  const int64_t c = d->c, rows = int64_t(d->n) * d->h * d->w, count = rows;
  const double m = d->momentum;
  // shifted by the first row, as in NCHW
  std::vector<double> pivot(x, x + c), s1(c), s2(c);
  nhwc_channel_sums(rows, c, s1.data(), s2.data(), [&](int64_t r, double* a, double* b) {
    const T* p = x + r * c;
    for (int64_t ch = 0; ch < c; ++ch) {
      const double dv = double(p[ch]) - pivot[ch];
      a[ch] += dv;
      b[ch] += dv * dv;
    }
  });
  std::vector<T> scale(c), shift(c), mu(c);
  for (int64_t ch = 0; ch < c; ++ch) {
    const double mean_shift = s1[ch] / count, mean = pivot[ch] + mean_shift;
    const double sq = std::max(0.0, s2[ch] - s1[ch] * mean_shift);
    const double invstd = 1.0 / std::sqrt(sq / count + d->eps);
    scale[ch] = T(double(T(invstd)) * double(gamma[ch]));  // bn_value
    shift[ch] = beta[ch];
    mu[ch] = T(mean);
    if (save_mean) save_mean[ch] = T(mean);
    if (save_invstd) save_invstd[ch] = T(invstd);
    if (running_mean) running_mean[ch] = T((1 - m) * double(running_mean[ch]) + m * mean);
    if (running_var) running_var[ch] = T((1 - m) * double(running_var[ch]) + m * (sq / (count - 1)));
  }
  const T *sc = scale.data(), *sh = shift.data(), *mt = mu.data();
  nhwc_rows(rows, [&](int64_t r) {
    const T* p = x + r * c;
    T* q = y + r * c;
    if (tail == Tail::kAddRelu) {
      const T* zz = z + r * c;
      for (int64_t ch = 0; ch < c; ++ch) {
        const T v = (p[ch] - mt[ch]) * sc[ch] + sh[ch] + zz[ch];
        q[ch] = v < T(0) ? T(0) : v;
      }
    } else if (tail == Tail::kRelu) {
      for (int64_t ch = 0; ch < c; ++ch) {
        const T v = bn_value(p[ch], mt[ch], sc[ch], sh[ch]);
        q[ch] = v < T(0) ? T(0) : v;
      }
    } else {
      for (int64_t ch = 0; ch < c; ++ch) q[ch] = (p[ch] - mt[ch]) * sc[ch] + sh[ch];
    }
  });
  return CRB_OK;
}

template <class T>
crb_status forward_eval_nhwc(const crb_bn_desc* d, const T* x, const T* gamma, const T* beta, const T* running_mean,
                             const T* running_var, T* y) {
  const int64_t c = d->c, rows = int64_t(d->n) * d->h * d->w;
  std::vector<T> scale(c), shift(c);
  for (int64_t ch = 0; ch < c; ++ch) {
    scale[ch] = T(double(gamma[ch]) / std::sqrt(double(running_var[ch]) + d->eps));
    shift[ch] = beta[ch];
  }
  const T *sc = scale.data(), *sh = shift.data();
  nhwc_rows(rows, [&](int64_t r) {
    const T* p = x + r * c;
    T* q = y + r * c;
    for (int64_t ch = 0; ch < c; ++ch) q[ch] = (p[ch] - running_mean[ch]) * sc[ch] + sh[ch];
  });
  return CRB_OK;
}

// relu_y, dz and gate as in backward_train.
template <class T, class Gate>
crb_status backward_train_nhwc(const crb_bn_desc* d, const T* x, const T* dy, const T* gamma, const T* save_mean,
                               const T* save_invstd, T* dx, T* dgamma, T* dbeta, const T* relu_y, T* dz, Gate gate) {
  const int64_t c = d->c, rows = int64_t(d->n) * d->h * d->w, count = rows;
  const T* grad = relu_y ? dz : dy;
  std::vector<double> sum_dy(c), sum_dy_xmu(c);
  std::vector<double> mean(save_mean, save_mean + c);
  nhwc_channel_sums(rows, c, sum_dy.data(), sum_dy_xmu.data(), [&](int64_t r, double* __restrict a,
                                                                   double* __restrict b) {
    if (relu_y) {
      // the ReLU mask of the row first, its own loop (inside the sums' loop it ran ~2x slower),
      // then summed while still in L1: no separate pass over dy and y (-1 of 8 passes)
      const T* yy = relu_y + r * c;
      const T* gy = dy + r * c;
      T* __restrict out = dz + r * c;
      for (int64_t ch = 0; ch < c; ++ch) {
        const T v = gy[ch];  // read unconditionally: a conditional load keeps the loop scalar
        out[ch] = yy[ch] <= T(0) ? T(0) : v;
      }
    }
    T buf[kGateRun];
    for (int64_t c0 = 0; c0 < c; c0 += kGateRun) {
      const int64_t len = std::min(kGateRun, c - c0);
      const T* p = x + r * c + c0;
      const T* gr = gate.row(c0, len, p, grad + r * c + c0, buf);
      const double* __restrict mu = mean.data() + c0;
      double* __restrict sa = a + c0;
      double* __restrict sb = b + c0;
      for (int64_t ch = 0; ch < len; ++ch) {
        const double gv = double(gr[ch]);
        sa[ch] += gv;
        sb[ch] += gv * (double(p[ch]) - mu[ch]);
      }
    }
  });
  std::vector<T> k(c), mean_dy(c), proj(c);
  for (int64_t ch = 0; ch < c; ++ch) {
    const double invstd = save_invstd[ch], sum_dy_xhat = sum_dy_xmu[ch] * invstd;
    if (dgamma) dgamma[ch] = T(sum_dy_xhat);
    if (dbeta) dbeta[ch] = T(sum_dy[ch]);
    k[ch] = T(invstd * double(gamma[ch]));
    mean_dy[ch] = T(sum_dy[ch] / count);
    proj[ch] = T(sum_dy_xhat * invstd / count);
  }
  if (!dx) return CRB_OK;
  const T *kk = k.data(), *mdy = mean_dy.data(), *pr = proj.data();
  nhwc_rows(rows, [&](int64_t r) {
    const T* p = x + r * c;
    const T* gy = grad + r * c;
    T* q = dx + r * c;
    for (int64_t ch = 0; ch < c; ++ch)
      q[ch] = (gate(ch, p[ch], gy[ch]) - mdy[ch] - (p[ch] - save_mean[ch]) * pr[ch]) * kk[ch];
  });
  return CRB_OK;
}

template <class T>
crb_status backward_eval_nhwc(const crb_bn_desc* d, const T* x, const T* dy, const T* gamma, const T* running_mean,
                              const T* running_var, T* dx, T* dgamma, T* dbeta) {
  const int64_t c = d->c, rows = int64_t(d->n) * d->h * d->w;
  std::vector<T> a(c);
  for (int64_t ch = 0; ch < c; ++ch) a[ch] = T(double(gamma[ch]) / std::sqrt(double(running_var[ch]) + d->eps));
  if (dgamma || dbeta) {
    std::vector<double> sum_dy(c), sum_dy_xmu(c);
    nhwc_channel_sums(rows, c, sum_dy.data(), sum_dy_xmu.data(), [&](int64_t r, double* s1, double* s2) {
      const T* p = x + r * c;
      const T* gy = dy + r * c;
      for (int64_t ch = 0; ch < c; ++ch) {
        s1[ch] += double(gy[ch]);
        s2[ch] += double(gy[ch]) * (double(p[ch]) - double(running_mean[ch]));
      }
    });
    for (int64_t ch = 0; ch < c; ++ch) {
      if (dgamma) dgamma[ch] = T(sum_dy_xmu[ch] / std::sqrt(double(running_var[ch]) + d->eps));
      if (dbeta) dbeta[ch] = T(sum_dy[ch]);
    }
  }
  if (!dx) return CRB_OK;
  const T* ap = a.data();
  nhwc_rows(rows, [&](int64_t r) {
    const T* gy = dy + r * c;
    T* q = dx + r * c;
    for (int64_t ch = 0; ch < c; ++ch) q[ch] = gy[ch] * ap[ch];
  });
  return CRB_OK;
}


// Adds sum(x - pivot) and sum((x - pivot)^2) over the n runs p + i*stride, [0, len), to *s1, *s2,
// in double. Eight independent lanes keep the additions vectorisable and off one long dependency
// chain; they live across the runs, so the short runs of small maps (7x7 down to 1x1) pay for no
// per-run setup and reduction.
template <class T>
inline void lane_moments(const T* p, int64_t n, int64_t stride, int64_t len, double pivot, double* s1, double* s2) {
  double a[8] = {}, b[8] = {};
  for (int64_t i = 0; i < n; ++i, p += stride) {
    int64_t j = 0;
    for (; j + 8 <= len; j += 8)
      for (int l = 0; l < 8; ++l) {
        const double d = double(p[j + l]) - pivot;
        a[l] += d;
        b[l] += d * d;
      }
    for (int l = int(i & 7); j < len; ++j, l = (l + 1) & 7) {  // tails rotate over the lanes
      const double d = double(p[j]) - pivot;
      a[l] += d;
      b[l] += d * d;
    }
  }
  double ta = 0, tb = 0;
  for (int l = 0; l < 8; ++l) {
    ta += a[l];
    tb += b[l];
  }
  *s1 += ta;
  *s2 += tb;
}

// Adds sum(g) and sum(g * (p - mean)) over the n runs p + i*stride (g likewise), [0, len), to
// *s1, *s2, in double, eight lanes as above.
template <class T>
inline void lane_grad_sums(const T* p, const T* g, int64_t n, int64_t stride, int64_t len, double mean, double* s1,
                           double* s2) {
  double a[8] = {}, b[8] = {};
  for (int64_t i = 0; i < n; ++i, p += stride, g += stride) {
    int64_t j = 0;
    for (; j + 8 <= len; j += 8)
      for (int l = 0; l < 8; ++l) {
        const double gv = double(g[j + l]);
        a[l] += gv;
        b[l] += gv * (double(p[j + l]) - mean);
      }
    for (int l = int(i & 7); j < len; ++j, l = (l + 1) & 7) {
      const double gv = double(g[j]);
      a[l] += gv;
      b[l] += gv * (double(p[j]) - mean);
    }
  }
  double ta = 0, tb = 0;
  for (int l = 0; l < 8; ++l) {
    ta += a[l];
    tb += b[l];
  }
  *s1 += ta;
  *s2 += tb;
}

// tail kAddRelu: y = relu(bn(x) + z), the fused tail of a residual block (one pass over memory
// instead of three); kRelu: y = relu(bn(x)) (one instead of two).
template <class T>
crb_status forward_train(const crb_bn_desc* d, const T* x, const T* gamma, const T* beta, T* y, T* running_mean,
                         T* running_var, T* save_mean, T* save_invstd, Tail tail = Tail::kNone,
                         const T* z = nullptr) {
  if (d->layout == CRB_NHWC)
    return forward_train_nhwc(d, x, gamma, beta, y, running_mean, running_var, save_mean, save_invstd, tail, z);
  const int64_t n = d->n, c = d->c, hw = int64_t(d->h) * d->w, count = n * hw;
  const double m = d->momentum;
  for_each_channel_block(c, [&](int64_t c0, int64_t c1) {
    // One pass for both moments, shifted by each channel's first value so E[x^2] - E[x]^2 does
    // not cancel catastrophically when |mean| >> std.
    double pivot[kChannelBlock], s1[kChannelBlock] = {}, s2[kChannelBlock] = {};
    T scale[kChannelBlock], shift[kChannelBlock], mu[kChannelBlock];
    for (int64_t ch = c0; ch < c1; ++ch) pivot[ch - c0] = x[ch * hw];
    for (int64_t i = 0; i < n; ++i)
      for (int64_t ch = c0; ch < c1; ++ch)
        lane_moments(x + (i * c + ch) * hw, 1, 0, hw, pivot[ch - c0], &s1[ch - c0], &s2[ch - c0]);
    for (int64_t ch = c0; ch < c1; ++ch) {
      const int64_t b = ch - c0;
      const double mean_shift = s1[b] / count;
      const double mean = pivot[b] + mean_shift;
      const double sq = std::max(0.0, s2[b] - s1[b] * mean_shift);  // sum of (x - mean)^2
      const double var = sq / count;
      const double invstd = 1.0 / std::sqrt(var + d->eps);
      const double g = double(gamma[ch]);
      // (x - mean) * scale + beta: folding mean into the shift would cancel badly when |mean| >> std
      scale[b] = T(double(T(invstd)) * g);  // bn_value
      shift[b] = beta[ch];
      mu[b] = T(mean);
      if (save_mean) save_mean[ch] = T(mean);
      if (save_invstd) save_invstd[ch] = T(invstd);
      if (running_mean) running_mean[ch] = T((1 - m) * double(running_mean[ch]) + m * mean);
      if (running_var) running_var[ch] = T((1 - m) * double(running_var[ch]) + m * (sq / (count - 1)));
    }
    for (int64_t i = 0; i < n; ++i)
      for (int64_t ch = c0; ch < c1; ++ch) {
        const int64_t b = ch - c0;
        const T* p = x + (i * c + ch) * hw;
        T* q = y + (i * c + ch) * hw;
        const T sc = scale[b], sh = shift[b], mean_t = mu[b];
        if (tail == Tail::kAddRelu) {
          const T* r = z + (i * c + ch) * hw;
          for (int64_t j = 0; j < hw; ++j) {
            const T v = (p[j] - mean_t) * sc + sh + r[j];
            q[j] = v < T(0) ? T(0) : v;
          }
        } else if (tail == Tail::kRelu) {
          for (int64_t j = 0; j < hw; ++j) {
            const T v = bn_value(p[j], mean_t, sc, sh);
            q[j] = v < T(0) ? T(0) : v;
          }
        } else {
          for (int64_t j = 0; j < hw; ++j) q[j] = (p[j] - mean_t) * sc + sh;
        }
      }
  });
  return CRB_OK;
}

template <class T>
crb_status forward_eval(const crb_bn_desc* d, const T* x, const T* gamma, const T* beta, const T* running_mean,
                        const T* running_var, T* y) {
  if (!running_mean || !running_var)
    return fail(CRB_ERR_INVALID, "batchnorm_forward_eval", "running_mean and running_var are required in eval mode");
  if (d->layout == CRB_NHWC) return forward_eval_nhwc(d, x, gamma, beta, running_mean, running_var, y);
  const int64_t n = d->n, c = d->c, hw = int64_t(d->h) * d->w;
  for_each_channel(c, [&](int64_t ch) {
    const double invstd = 1.0 / std::sqrt(double(running_var[ch]) + d->eps);
    const double g = double(gamma[ch]), b = double(beta[ch]);
    const T scale = T(invstd * g), shift = T(b), mu = running_mean[ch];
    for (int64_t i = 0; i < n; ++i) {
      const T* p = x + (i * c + ch) * hw;
      T* q = y + (i * c + ch) * hw;
      for (int64_t j = 0; j < hw; ++j) q[j] = (p[j] - mu) * scale + shift;
    }
  });
  return CRB_OK;
}

// Shared by train and eval backward: the per-channel sums of dy and dy * (x - mean).
template <class T>
void channel_sums(const T* x, const T* dy, int64_t n, int64_t c, int64_t hw, int64_t ch, double mean, double* sum_dy,
                  double* sum_dy_xmu) {
  double s1 = 0, s2 = 0;
  lane_grad_sums(x + ch * hw, dy + ch * hw, n, c * hw, hw, mean, &s1, &s2);
  *sum_dy = s1;
  *sum_dy_xmu = s2;
}

// relu_y null: plain BN backward. relu_y given (the fused tail's output): the incoming dy first
// goes through the ReLU, dz = (y <= 0) ? 0 : dy, is written to dz (the gradient of z) and is then
// the dy of the BN. gate a ReluGate (of relu(bn(x))): dy goes through the recomputed ReLU inside
// both passes, never stored.
template <class T, class Gate = Ungated<T>>
crb_status backward_train(const crb_bn_desc* d, const T* x, const T* dy, const T* gamma, const T* save_mean,
                          const T* save_invstd, T* dx, T* dgamma, T* dbeta, const T* relu_y = nullptr,
                          T* dz = nullptr, Gate gate = {}) {
  if (!save_mean || !save_invstd)
    return fail(CRB_ERR_INVALID, "batchnorm_backward_train", "save_mean and save_invstd are required");
  if (d->layout == CRB_NHWC)
    return backward_train_nhwc(d, x, dy, gamma, save_mean, save_invstd, dx, dgamma, dbeta, relu_y, dz, gate);
  const int64_t n = d->n, c = d->c, hw = int64_t(d->h) * d->w, count = n * hw;
  for_each_channel_block(c, [&](int64_t c0, int64_t c1) {
    // the ReLU mask and both sums in one pass, image by image
    double sum_dy[kChannelBlock] = {}, sum_dy_xmu[kChannelBlock] = {};
    for (int64_t i = 0; i < n; ++i)
      for (int64_t ch = c0; ch < c1; ++ch) {
        const int64_t at = (i * c + ch) * hw;
        if (relu_y) {
          const T* yy = relu_y + at;
          const T* g = dy + at;
          T* out = dz + at;
          for (int64_t j = 0; j < hw; ++j) {
            const T v = g[j];
            out[j] = yy[j] <= T(0) ? T(0) : v;
          }
        }
        T buf[kGateRun];
        for (int64_t j = 0; j < hw; j += kGateRun) {
          const int64_t len = std::min(kGateRun, hw - j);
          const T* g = gate.channel(ch, len, x + at + j, (relu_y ? dz : dy) + at + j, buf);
          lane_grad_sums(x + at + j, g, 1, 0, len, double(save_mean[ch]), &sum_dy[ch - c0], &sum_dy_xmu[ch - c0]);
        }
      }
    const T* grad = relu_y ? dz : dy;
    T k[kChannelBlock], mean_dy[kChannelBlock], proj[kChannelBlock], mu[kChannelBlock];
    for (int64_t ch = c0; ch < c1; ++ch) {
      const int64_t b = ch - c0;
      const double invstd = save_invstd[ch];
      const double sum_dy_xhat = sum_dy_xmu[b] * invstd;
      if (dgamma) dgamma[ch] = T(sum_dy_xhat);
      if (dbeta) dbeta[ch] = T(sum_dy[b]);
      // dx = invstd*gamma/M * (M*dy - sum(dy) - xhat*sum(dy*xhat))
      //    = k * (dy - mean(dy) - (x - mean) * proj)
      const double g = double(gamma[ch]);
      k[b] = T(invstd * g);
      mean_dy[b] = T(sum_dy[b] / count);
      proj[b] = T(sum_dy_xhat * invstd / count);
      mu[b] = save_mean[ch];
    }
    if (!dx) return;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t ch = c0; ch < c1; ++ch) {
        const int64_t b = ch - c0, at = (i * c + ch) * hw;
        const T* p = x + at;
        const T* gy = grad + at;
        T* q = dx + at;
        const T kb = k[b], mdy = mean_dy[b], pr = proj[b], mean_t = mu[b];
        for (int64_t j = 0; j < hw; ++j) q[j] = (gate(ch, p[j], gy[j]) - mdy - (p[j] - mean_t) * pr) * kb;
      }
  });
  return CRB_OK;
}

template <class T>
crb_status backward_eval(const crb_bn_desc* d, const T* x, const T* dy, const T* gamma, const T* running_mean,
                         const T* running_var, T* dx, T* dgamma, T* dbeta) {
  if (!running_mean || !running_var)
    return fail(CRB_ERR_INVALID, "batchnorm_backward_eval", "running_mean and running_var are required in eval mode");
  if (d->layout == CRB_NHWC)
    return backward_eval_nhwc(d, x, dy, gamma, running_mean, running_var, dx, dgamma, dbeta);
  const int64_t n = d->n, c = d->c, hw = int64_t(d->h) * d->w;
  for_each_channel(c, [&](int64_t ch) {
    const double invstd = 1.0 / std::sqrt(double(running_var[ch]) + d->eps);
    if (dgamma || dbeta) {
      double sum_dy, sum_dy_xmu;
      channel_sums(x, dy, n, c, hw, ch, double(running_mean[ch]), &sum_dy, &sum_dy_xmu);
      if (dgamma) dgamma[ch] = T(sum_dy_xmu * invstd);
      if (dbeta) dbeta[ch] = T(sum_dy);
    }
    if (!dx) return;
    const T a = T(invstd * double(gamma[ch]));
    for (int64_t i = 0; i < n; ++i) {
      const T* gy = dy + (i * c + ch) * hw;
      T* q = dx + (i * c + ch) * hw;
      for (int64_t j = 0; j < hw; ++j) q[j] = gy[j] * a;
    }
  });
  return CRB_OK;
}

}  // namespace

crb_status batchnorm_forward_train(const crb_bn_desc* d, const void* x, const void* gamma, const void* beta, void* y,
                                   void* running_mean, void* running_var, void* save_mean, void* save_invstd) {
  return dispatch_float(d->dtype, "batchnorm_forward_train", [&](auto zero) {
    using T = decltype(zero);
    return forward_train<T>(d, (const T*)x, (const T*)gamma, (const T*)beta, (T*)y, (T*)running_mean,
                            (T*)running_var, (T*)save_mean, (T*)save_invstd);
  });
}

crb_status batchnorm_forward_eval(const crb_bn_desc* d, const void* x, const void* gamma, const void* beta,
                                  const void* running_mean, const void* running_var, void* y) {
  return dispatch_float(d->dtype, "batchnorm_forward_eval", [&](auto zero) {
    using T = decltype(zero);
    return forward_eval<T>(d, (const T*)x, (const T*)gamma, (const T*)beta, (const T*)running_mean,
                           (const T*)running_var, (T*)y);
  });
}

crb_status batchnorm_backward_train(const crb_bn_desc* d, const void* x, const void* dy, const void* gamma,
                                    const void* save_mean, const void* save_invstd, void* dx, void* dgamma,
                                    void* dbeta) {
  return dispatch_float(d->dtype, "batchnorm_backward_train", [&](auto zero) {
    using T = decltype(zero);
    return backward_train<T>(d, (const T*)x, (const T*)dy, (const T*)gamma, (const T*)save_mean,
                             (const T*)save_invstd, (T*)dx, (T*)dgamma, (T*)dbeta);
  });
}

crb_status batchnorm_backward_eval(const crb_bn_desc* d, const void* x, const void* dy, const void* gamma,
                                   const void* running_mean, const void* running_var, void* dx, void* dgamma,
                                   void* dbeta) {
  return dispatch_float(d->dtype, "batchnorm_backward_eval", [&](auto zero) {
    using T = decltype(zero);
    return backward_eval<T>(d, (const T*)x, (const T*)dy, (const T*)gamma, (const T*)running_mean,
                            (const T*)running_var, (T*)dx, (T*)dgamma, (T*)dbeta);
  });
}

crb_status bn_relu_forward_train(const crb_bn_desc* d, const void* x, const void* gamma, const void* beta, void* y,
                                 void* running_mean, void* running_var, void* save_mean, void* save_invstd) {
  if (!save_mean || !save_invstd)
    return fail(CRB_ERR_INVALID, "bn_relu_forward_train", "save_mean and save_invstd are required");
  return dispatch_float(d->dtype, "bn_relu_forward_train", [&](auto zero) {
    using T = decltype(zero);
    return forward_train<T>(d, (const T*)x, (const T*)gamma, (const T*)beta, (T*)y, (T*)running_mean,
                            (T*)running_var, (T*)save_mean, (T*)save_invstd, Tail::kRelu);
  });
}

crb_status bn_relu_backward_train(const crb_bn_desc* d, const void* x, const void* dy, const void* gamma,
                                  const void* beta, const void* save_mean, const void* save_invstd, void* dx,
                                  void* dgamma, void* dbeta) {
  if (!beta || !save_mean || !save_invstd)
    return fail(CRB_ERR_INVALID, "bn_relu_backward_train", "beta, save_mean and save_invstd are required");
  return dispatch_float(d->dtype, "bn_relu_backward_train", [&](auto zero) {
    using T = decltype(zero);
    const T *mean = (const T*)save_mean, *invstd = (const T*)save_invstd, *g = (const T*)gamma;
    std::vector<T> scale(d->c);  // as the forward's (bn_value)
    for (int64_t ch = 0; ch < d->c; ++ch) scale[ch] = T(double(invstd[ch]) * double(g[ch]));
    return backward_train<T>(d, (const T*)x, (const T*)dy, g, mean, invstd, (T*)dx, (T*)dgamma, (T*)dbeta,
                             nullptr, nullptr, ReluGate<T>{mean, scale.data(), (const T*)beta});
  });
}

crb_status bn_add_relu_forward_train(const crb_bn_desc* d, const void* x, const void* z, const void* gamma,
                                     const void* beta, void* y, void* running_mean, void* running_var, void* save_mean,
                                     void* save_invstd, void* reserve, size_t reserve_bytes) {
  (void)reserve;
  (void)reserve_bytes;
  if (!z) return fail(CRB_ERR_INVALID, "bn_add_relu_forward_train", "z must not be null");
  return dispatch_float(d->dtype, "bn_add_relu_forward_train", [&](auto zero) {
    using T = decltype(zero);
    return forward_train<T>(d, (const T*)x, (const T*)gamma, (const T*)beta, (T*)y, (T*)running_mean,
                            (T*)running_var, (T*)save_mean, (T*)save_invstd, Tail::kAddRelu, (const T*)z);
  });
}

crb_status bn_add_relu_backward_train(const crb_bn_desc* d, const void* x, const void* y, const void* dy,
                                      const void* gamma, const void* beta, const void* save_mean,
                                      const void* save_invstd, const void* reserve, size_t reserve_bytes, void* dx,
                                      void* dz, void* dgamma, void* dbeta) {
  (void)beta;
  (void)reserve;
  (void)reserve_bytes;
  if (!y || !dz) return fail(CRB_ERR_INVALID, "bn_add_relu_backward_train", "y and dz must not be null");
  return dispatch_float(d->dtype, "bn_add_relu_backward_train", [&](auto zero) {
    using T = decltype(zero);
    return backward_train<T>(d, (const T*)x, (const T*)dy, (const T*)gamma, (const T*)save_mean,
                             (const T*)save_invstd, (T*)dx, (T*)dgamma, (T*)dbeta, (const T*)y, (T*)dz);
  });
}

}  // namespace BN_NS
}  // namespace crb_cpu
