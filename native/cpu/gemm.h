// C = alpha * A * B + beta * C on host memory, row-major C with leading dimension ldc. A (m x k)
// and B (k x n) are strided views (element (i, j) at p[i * rs + j * cs]), so transposes cost nothing
// to express. BLIS-style: blocks of A and B are packed into panels that the micro-kernel streams;
// the kernel is picked once at run time (AVX-512, AVX2 or the baseline SSE2 one).
#ifndef CRB_CPU_GEMM_H
#define CRB_CPU_GEMM_H

#include <cstddef>
#include <cstdint>

namespace crb_cpu {

template <class T>
struct MatRef {
  const T* p;
  int64_t rs, cs;  // row stride, column stride (elements)
  const T& at(int64_t i, int64_t j) const { return p[i * rs + j * cs]; }
};

template <class T>
MatRef<T> row_major(const T* p, int64_t ld) { return {p, ld, 1}; }
template <class T>
MatRef<T> transposed(const T* p, int64_t ld) { return {p, 1, ld}; }  // view of (row-major p)^T

// A source of packed B panels, for B matrices that are never materialised (implicit im2col).
// pack() writes rows [k0, k0+kc) and columns [n0, n0+nc) as ceil(nc/nr) panels of kc x nr, each
// row of a panel contiguous, columns past nc zero-filled.
template <class T>
struct PackB {
  virtual void pack(int64_t k0, int64_t kc, int64_t n0, int64_t nc, int nr, T* dst) const = 0;

 protected:
  ~PackB() = default;
};

// Returns false only when scratch memory cannot be allocated. `threads` > 1 splits the work over
// the pool (only from outside a parallel region; inside one it runs on the calling thread).
template <class T>
bool gemm(int64_t m, int64_t n, int64_t k, T alpha, MatRef<T> a, MatRef<T> b, T beta, T* c, int64_t ldc,
          bool parallel);
template <class T>
bool gemm(int64_t m, int64_t n, int64_t k, T alpha, MatRef<T> a, const PackB<T>& b, T beta, T* c, int64_t ldc,
          bool parallel);

// A matrix packed once into the micro-kernel's panel layout, for an A that many GEMMs share (the
// weights of a convolution, used once per image). Read-only once packed, so threads share it.
template <class T>
struct PackedA {
  T* data = nullptr;
  int64_t m = 0, k = 0, padded_m = 0;
  size_t capacity = 0;
  PackedA() = default;
  PackedA(const PackedA&) = delete;
  PackedA& operator=(const PackedA&) = delete;
  ~PackedA();
  bool pack(int64_t m, int64_t k, MatRef<T> a);  // false when out of memory
};

// C (a.m x n) = alpha * A * B + beta * C with A prepacked.
template <class T>
bool gemm(int64_t n, T alpha, const PackedA<T>& a, const PackB<T>& b, T beta, T* c, int64_t ldc, bool parallel);
template <class T>
bool gemm(int64_t n, T alpha, const PackedA<T>& a, MatRef<T> b, T beta, T* c, int64_t ldc, bool parallel);

// Which micro-kernel runs ("avx512", "avx2", "sse2"); CRB_GEMM_ISA=avx2|sse2 forces a lesser one.
const char* gemm_isa();

// The outer-product tile of the NHWC filter gradient (outer_tile in gemm_kernel.h).
template <class T>
using OuterFn = void (*)(int64_t nseg, const T* const* a, int64_t aoff, const T* const* b, int64_t boff,
                         const int32_t* lens, int64_t as, int64_t bs, T* c, int64_t ldc, T beta);
constexpr int kOuterTiles = 24;

// The micro-kernel family of one ISA: MR x NR register tile, and the macro-kernel that runs all
// tiles of a packed (mc x kc) A block against a packed (kc x nc) B block.
template <class T>
struct GemmKernel {
  int mr, nr;
  int64_t kc, mc, nc;  // cache blocking
  void (*macro)(int64_t mc, int64_t nc, int64_t kc, const T* ap, const T* bp, T* c, int64_t ldc, T alpha, T beta);
  // one full kc x nr B panel from contiguous rows (see pack_b_panel in gemm_kernel.h)
  void (*pack_b)(const T* base, const int64_t* offsets, int64_t rs, int64_t kc, T* dst);
  // The tile that reads A in place through row pointers, segment by segment (rows_tile in
  // gemm_kernel.h): C[mr x nr] (+)= alpha * sum_s A_s * Bp_s, Bp the segments' packed direct_nr-wide
  // panels one after another (pack_b_panels). Its own tile shape, fitted to the channel
  // counts of NHWC convolutions (nr divides 64 or is 64).
  int direct_mr, direct_nr;
  void (*direct)(int64_t nseg, const T* const* rows, const int64_t* lens, const T* bp, T* c, int64_t ldc, T alpha,
                 T beta, int mr, int nr);
  // A narrower direct tile for the strided data gradient of layers with at most narrow_nr input
  // channels (the stem's 1), where the wide tile computes mostly padding (AVX-512 f32 only; unset:
  // `direct` everywhere).
  int narrow_mr = 0, narrow_nr = 0;
  void (*narrow)(int64_t nseg, const T* const* rows, const int64_t* lens, const T* bp, T* c, int64_t ldc, T alpha,
                 T beta, int mr, int nr) = nullptr;
  // outer[(mr - 1) * outer_nv + nv - 1]: the mr x (nv * outer_vl) outer-product tile, for every
  // mr <= outer_mr and nv <= outer_nv (unset: outer_mr 0).
  int outer_mr = 0, outer_nv = 0, outer_vl = 0;
  OuterFn<T> outer[kOuterTiles] = {};
  // The Winograd F(2x2, 3x3) transforms, wino_vl channels at a time (wino_in / wino_out in
  // gemm_kernel.h; unset: wino_vl 0).
  int wino_vl = 0;
  void (*wino_in)(const T* const* px, int64_t c, T* v, int64_t vs) = nullptr;
  void (*wino_out)(const T* m, int64_t ms, int64_t k, const T* bias, T* const* py) = nullptr;
  void (*wino_dy)(const T* const* py, int64_t k, T* d, int64_t ds) = nullptr;
};

// B block (kc x nc) starting at (k0, n0) as ceil(nc/nr) panels of kc x nr (columns past nc zero),
// the layout every micro-kernel reads.
template <class T>
void pack_b_panels(MatRef<T> b, int64_t k0, int64_t kc, int64_t n0, int64_t nc, int nr, T* dst);

// The packing parameters PackB implementations need (nr, kc) and the fast full-panel packer.
template <class T>
const GemmKernel<T>& gemm_kernel();

GemmKernel<float> gemm_kernel_avx512_f32();
GemmKernel<double> gemm_kernel_avx512_f64();
GemmKernel<float> gemm_kernel_avx2_f32();
GemmKernel<double> gemm_kernel_avx2_f64();

}  // namespace crb_cpu

#endif  // CRB_CPU_GEMM_H
