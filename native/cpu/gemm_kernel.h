// The register-tiled micro-kernel, written once with GCC vector extensions and compiled per ISA
// (gemm.cc baseline, gemm_avx2.cc, gemm_avx512.cc). Included only by those files.
#ifndef CRB_CPU_GEMM_KERNEL_H
#define CRB_CPU_GEMM_KERNEL_H

#include <cstdint>
#include <cstring>
#include <utility>

#include "gemm.h"

namespace crb_cpu {
namespace GEMM_NS {

// The first mr x nr of the accumulators into C: C = alpha * acc + beta * C (beta 0: C not read).
template <class T, int VL, int MR, int NV, class V>
inline void store_tile(V (&acc)[MR][NV], T* __restrict c, int64_t ldc, T alpha, T beta, int mr, int nr) {
  constexpr int NR = NV * VL;
  if (mr == MR && nr == NR) {
    for (int i = 0; i < MR; ++i) {
      T* row = c + i * ldc;
      for (int v = 0; v < NV; ++v) {
        V r = alpha * acc[i][v];
        if (beta != T(0)) {
          V old;
          std::memcpy(&old, row + v * VL, sizeof(V));
          r += beta * old;
        }
        std::memcpy(row + v * VL, &r, sizeof(V));
      }
    }
    return;
  }
  alignas(64) T tile[MR * NR];
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < NV; ++v) std::memcpy(tile + i * NR + v * VL, &acc[i][v], sizeof(V));
  for (int i = 0; i < mr; ++i) {
    T* row = c + i * ldc;
    const T* t = tile + i * NR;
    if (beta == T(0)) {
      for (int j = 0; j < nr; ++j) row[j] = alpha * t[j];
    } else {
      for (int j = 0; j < nr; ++j) row[j] = alpha * t[j] + beta * row[j];
    }
  }
}

// acc[MR][NV] += A(MR x kc) * Bp(kc x NR), A(i, p) = a(i, p); bp advances past the kc rows. The
// one k-loop of both tiles below.
template <class T, int VL, int MR, int NV, class V, class A>
inline void accumulate(V (&acc)[MR][NV], int64_t kc, A a, const T* __restrict& bp) {
  constexpr int NR = NV * VL;
#pragma GCC unroll 4
  for (int64_t p = 0; p < kc; ++p) {
    V b[NV];
    for (int v = 0; v < NV; ++v) std::memcpy(&b[v], bp + v * VL, sizeof(V));
    for (int i = 0; i < MR; ++i) {
      const T av = a(i, p);
      for (int v = 0; v < NV; ++v) acc[i][v] += av * b[v];
    }
    bp += NR;
  }
}

// C[MR x NR] (+)= alpha * Ap(MR x kc) * Bp(kc x NR). Ap holds MR values per k, Bp NR values per k.
// VL is the vector length in elements; NR = NV * VL. beta == 0 never reads C (it may hold NaN).
template <class T, int VL, int MR, int NV>
inline void micro_kernel(int64_t kc, const T* __restrict ap, const T* __restrict bp, T* __restrict c, int64_t ldc,
                         T alpha, T beta, int mr, int nr) {
  typedef T V __attribute__((vector_size(VL * sizeof(T))));
  V acc[MR][NV] = {};
  accumulate<T, VL, MR, NV>(acc, kc, [ap](int i, int64_t p) { return ap[p * MR + i]; }, bp);
  store_tile<T, VL, MR, NV>(acc, c, ldc, alpha, beta, mr, nr);
}

// C[MR x NR] (+)= alpha * sum over the segments s of A_s(MR x lens[s]) * Bp_s, with A_s read in
// place through MR row pointers, A_s(i, p) = rows[s * MR + i][p], and the Bp_s one after another
// in bp. The NHWC convolutions: a segment is one kernel tap (and channel block), its rows the
// channel runs of the pixels the tap reads (a zero run in the padding), so every tap accumulates
// in registers, with no im2col, no gather, and C stored once.
template <class T, int VL, int MR, int NV>
void rows_tile(int64_t nseg, const T* const* rows, const int64_t* lens, const T* bp, T* c, int64_t ldc, T alpha,
               T beta, int mr, int nr) {
  typedef T V __attribute__((vector_size(VL * sizeof(T))));
  V acc[MR][NV] = {};
  for (int64_t s = 0; s < nseg; ++s) {
    const T* r[MR];
    for (int i = 0; i < MR; ++i) r[i] = rows[s * MR + i];
    accumulate<T, VL, MR, NV>(acc, lens[s], [&r](int i, int64_t p) { return r[i][p]; }, bp);
  }
  store_tile<T, VL, MR, NV>(acc, c, ldc, alpha, beta, mr, nr);
}

// C[MR x NR] (+)= sum over the segments s of sum over p < lens[s] of the outer product
// a_s[p*as + (0..MR)] x b_s[p*bs + (0..NR)], with a_s = a[s] + aoff, b_s = b[s] + boff: two
// strided streams, neither packed. The NHWC filter gradient: a_s the input channels of the pixels
// one tap reads along an output row, b_s the output-channel rows of dy (see gemm.h OuterFn).
// Full tiles only (beta 0 or 1); the caller picks the instantiation for a tail (outer_table).
template <class T, int VL, int MR, int NV>
void outer_tile(int64_t nseg, const T* const* a, int64_t aoff, const T* const* b, int64_t boff,
                const int32_t* lens, int64_t as, int64_t bs, T* c, int64_t ldc, T beta) {
  typedef T V __attribute__((vector_size(VL * sizeof(T))));
  V acc[MR][NV] = {};
  for (int64_t s = 0; s < nseg; ++s) {
    const T* __restrict ap = a[s] + aoff;
    const T* __restrict bp = b[s] + boff;
#pragma GCC unroll 4
    for (int32_t p = 0; p < lens[s]; ++p) {
      V bv[NV];
      for (int v = 0; v < NV; ++v) std::memcpy(&bv[v], bp + v * VL, sizeof(V));
      for (int i = 0; i < MR; ++i) {
        const T av = ap[i];
        for (int v = 0; v < NV; ++v) acc[i][v] += av * bv[v];
      }
      ap += as;
      bp += bs;
    }
  }
  store_tile<T, VL, MR, NV>(acc, c, ldc, T(1), beta, MR, NV * VL);
}

// Winograd F(2x2, 3x3) transforms (Lavin & Gray 2015), VL channels at a time, c % VL == 0.
// Input: the 4x4 patch d (px[i*4 + j]: pixel (i, j), a zero run in the padding) to
// V = B^T d B, value xi at v + xi * vs, with B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1].
template <class T, int VL>
void wino_in(const T* const* px, int64_t c, T* v, int64_t vs) {
  typedef T V __attribute__((vector_size(VL * sizeof(T))));
  for (int64_t c0 = 0; c0 < c; c0 += VL) {
    V d[16], t[16];
    for (int q = 0; q < 16; ++q) std::memcpy(&d[q], px[q] + c0, sizeof(V));
    for (int j = 0; j < 4; ++j) {  // B^T d, down each column
      t[0 * 4 + j] = d[0 * 4 + j] - d[2 * 4 + j];
      t[1 * 4 + j] = d[1 * 4 + j] + d[2 * 4 + j];
      t[2 * 4 + j] = d[2 * 4 + j] - d[1 * 4 + j];
      t[3 * 4 + j] = d[1 * 4 + j] - d[3 * 4 + j];
    }
    for (int i = 0; i < 4; ++i) {  // (B^T d) B, along each row
      const V r[4] = {t[i * 4] - t[i * 4 + 2], t[i * 4 + 1] + t[i * 4 + 2], t[i * 4 + 2] - t[i * 4 + 1],
                      t[i * 4 + 1] - t[i * 4 + 3]};
      for (int j = 0; j < 4; ++j) std::memcpy(v + (i * 4 + j) * vs + c0, &r[j], sizeof(V));
    }
  }
}

// Output: Y = A^T m A + bias for the 2x2 outputs of one tile, m value xi at m + xi * ms, with
// A^T = [1 1 1 0; 0 1 -1 -1]; py[i*2 + j] is output (i, j), null when outside the map.
template <class T, int VL>
void wino_out(const T* m, int64_t ms, int64_t k, const T* bias, T* const* py) {
  typedef T V __attribute__((vector_size(VL * sizeof(T))));
  for (int64_t k0 = 0; k0 < k; k0 += VL) {
    V a[16], s[8];
    for (int q = 0; q < 16; ++q) std::memcpy(&a[q], m + q * ms + k0, sizeof(V));
    for (int j = 0; j < 4; ++j) {  // A^T m, down each column
      s[0 * 4 + j] = a[0 * 4 + j] + a[1 * 4 + j] + a[2 * 4 + j];
      s[1 * 4 + j] = a[1 * 4 + j] - a[2 * 4 + j] - a[3 * 4 + j];
    }
    V b = {};
    if (bias) std::memcpy(&b, bias + k0, sizeof(V));
    for (int i = 0; i < 2; ++i) {  // (A^T m) A, along each row
      const V y[2] = {s[i * 4] + s[i * 4 + 1] + s[i * 4 + 2] + b, s[i * 4 + 1] - s[i * 4 + 2] - s[i * 4 + 3] + b};
      for (int j = 0; j < 2; ++j)
        if (py[i * 2 + j]) std::memcpy(py[i * 2 + j] + k0, &y[j], sizeof(V));
    }
  }
}

// The filter gradient's transform of one tile's 2x2 output gradients (py[i*2 + j], a zero run
// outside the map) to A dy A^T, value xi at d + xi * ds, A = (A^T)^T: see conv2d.cc
// filter_winograd_nhwc.
template <class T, int VL>
void wino_dy(const T* const* py, int64_t k, T* d, int64_t ds) {
  typedef T V __attribute__((vector_size(VL * sizeof(T))));
  for (int64_t k0 = 0; k0 < k; k0 += VL) {
    V g[4];
    for (int q = 0; q < 4; ++q) std::memcpy(&g[q], py[q] + k0, sizeof(V));
    const V r[8] = {g[0], g[1], g[0] + g[2], g[1] + g[3], g[0] - g[2], g[1] - g[3], -g[2], -g[3]};  // A dy
    for (int i = 0; i < 4; ++i) {  // (A dy) A^T, along each row
      const V u = r[i * 2], v = r[i * 2 + 1];
      const V out[4] = {u, u + v, u - v, -v};
      for (int j = 0; j < 4; ++j) std::memcpy(d + (i * 4 + j) * ds + k0, &out[j], sizeof(V));
    }
  }
}

// The three Winograd transforms of VL-wide vectors.
template <class T, int VL>
void wino_table(GemmKernel<T>& k) {
  k.wino_vl = VL;
  k.wino_in = &wino_in<T, VL>;
  k.wino_out = &wino_out<T, VL>;
  k.wino_dy = &wino_dy<T, VL>;
}

// Every outer_tile of up to MAXMR rows and MAXNV vectors: table[(mr - 1) * MAXNV + nv - 1].
template <class T, int VL, int MAXNV, int MR, int... NV>
void outer_row(OuterFn<T>* table, std::integer_sequence<int, NV...>) {
  ((table[(MR - 1) * MAXNV + NV] = &outer_tile<T, VL, MR, NV + 1>), ...);
}
template <class T, int VL, int MAXNV, int... MR>
void outer_rows(OuterFn<T>* table, std::integer_sequence<int, MR...>) {
  (outer_row<T, VL, MAXNV, MR + 1>(table, std::make_integer_sequence<int, MAXNV>()), ...);
}
template <class T, int VL, int MAXMR, int MAXNV>
void outer_table(GemmKernel<T>& k) {
  static_assert(MAXMR * MAXNV <= kOuterTiles, "outer tile table too small");
  k.outer_mr = MAXMR;
  k.outer_nv = MAXNV;
  k.outer_vl = VL;
  outer_rows<T, VL, MAXNV>(k.outer, std::make_integer_sequence<int, MAXMR>());
}

template <class T, int VL, int MR, int NV>
void macro_kernel(int64_t mc, int64_t nc, int64_t kc, const T* ap, const T* bp, T* c, int64_t ldc, T alpha, T beta) {
  constexpr int NR = NV * VL;
  for (int64_t jr = 0; jr < nc; jr += NR) {
    const int nr = (int)(nc - jr < NR ? nc - jr : NR);
    const T* b = bp + jr * kc;
    for (int64_t ir = 0; ir < mc; ir += MR) {
      const int mr = (int)(mc - ir < MR ? mc - ir : MR);
      micro_kernel<T, VL, MR, NV>(kc, ap + ir * kc, b, c + ir * ldc + jr, ldc, alpha, beta, mr, nr);
    }
  }
}

// Packs one full-width B panel (kc x NR) whose rows are contiguous in memory: row p starts at
// base + offsets[p] (offsets null: row p starts at base + p * rs). The fixed NR lets the compiler
// use whole-vector moves.
template <class T, int VL, int NV>
void pack_b_panel(const T* base, const int64_t* offsets, int64_t rs, int64_t kc, T* __restrict dst) {
  constexpr int NR = NV * VL;
  for (int64_t p = 0; p < kc; ++p) {
    const T* src = base + (offsets ? offsets[p] : p * rs);
    std::memcpy(dst + p * NR, src, NR * sizeof(T));
  }
}

}  // namespace GEMM_NS
}  // namespace crb_cpu

#endif  // CRB_CPU_GEMM_KERNEL_H
