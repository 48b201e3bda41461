// GEMM driver: blocking, packing and threading around the per-ISA micro-kernels.
#define GEMM_NS isa_sse2
#include "gemm.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "gemm_kernel.h"
#include "threadpool.h"

namespace crb_cpu {

namespace {

enum class Isa { kSse2, kAvx2, kAvx512 };

Isa detect_isa() {
  __builtin_cpu_init();
  Isa best = Isa::kSse2;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = Isa::kAvx2;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma"))
    best = Isa::kAvx512;
  if (const char* force = std::getenv("CRB_GEMM_ISA")) {
    if (!std::strcmp(force, "sse2")) best = Isa::kSse2;
    if (!std::strcmp(force, "avx2") && best == Isa::kAvx512) best = Isa::kAvx2;
  }
  return best;
}

Isa isa() {
  static const Isa chosen = detect_isa();
  return chosen;
}

template <class T>
GemmKernel<T> baseline_kernel();
template <>
GemmKernel<float> baseline_kernel<float>() {
  GemmKernel<float> k = {4, 8, 256, 128, 1024, &isa_sse2::macro_kernel<float, 4, 4, 2>,
                         &isa_sse2::pack_b_panel<float, 4, 2>, 4, 8, &isa_sse2::rows_tile<float, 4, 4, 2>};
  isa_sse2::outer_table<float, 4, 4, 2>(k);
  isa_sse2::wino_table<float, 4>(k);
  return k;
}
template <>
GemmKernel<double> baseline_kernel<double>() {
  GemmKernel<double> k = {4, 4, 256, 128, 1024, &isa_sse2::macro_kernel<double, 2, 4, 2>,
                          &isa_sse2::pack_b_panel<double, 2, 2>, 4, 4, &isa_sse2::rows_tile<double, 2, 4, 2>};
  isa_sse2::outer_table<double, 2, 4, 2>(k);
  isa_sse2::wino_table<double, 2>(k);
  return k;
}

template <class T>
GemmKernel<T> pick_kernel();
template <>
GemmKernel<float> pick_kernel<float>() {
  switch (isa()) {
    case Isa::kAvx512: return gemm_kernel_avx512_f32();
    case Isa::kAvx2: return gemm_kernel_avx2_f32();
    default: return baseline_kernel<float>();
  }
}
template <>
GemmKernel<double> pick_kernel<double>() {
  switch (isa()) {
    case Isa::kAvx512: return gemm_kernel_avx512_f64();
    case Isa::kAvx2: return gemm_kernel_avx2_f64();
    default: return baseline_kernel<double>();
  }
}

template <class T>
const GemmKernel<T>& kernel() {
  static const GemmKernel<T> k = pick_kernel<T>();
  return k;
}

// A block (mc x kc) starting at (i0, p0) -> panels of mr rows: ap[panel][p * mr + i].
template <class T>
void pack_a(MatRef<T> a, int64_t i0, int64_t p0, int64_t mc, int64_t kc, int mr, T* __restrict ap) {
  for (int64_t ir = 0; ir < mc; ir += mr) {
    const int rows = (int)std::min<int64_t>(mr, mc - ir);
    T* dst = ap + ir * kc;
    if (a.rs == 1 && rows == mr) {
      // columns of A are contiguous: one run of mr values per k
      for (int64_t p = 0; p < kc; ++p) {
        const T* src = a.p + (i0 + ir) + (p0 + p) * a.cs;
        for (int i = 0; i < mr; ++i) dst[p * mr + i] = src[i];
      }
      continue;
    }
    if (a.cs == 1 && rows == mr && mr <= 16) {
      // rows of A are contiguous: read the mr rows side by side so every store is sequential
      const T* src[16];
      for (int i = 0; i < mr; ++i) src[i] = a.p + (i0 + ir + i) * a.rs + p0;
      for (int64_t p = 0; p < kc; ++p)
        for (int i = 0; i < mr; ++i) dst[p * mr + i] = src[i][p];
      continue;
    }
    for (int i = 0; i < rows; ++i) {
      const T* src = a.p + (i0 + ir + i) * a.rs + p0 * a.cs;
      if (a.cs == 1) {
        for (int64_t p = 0; p < kc; ++p) dst[p * mr + i] = src[p];
      } else {
        for (int64_t p = 0; p < kc; ++p) dst[p * mr + i] = src[p * a.cs];
      }
    }
    for (int i = rows; i < mr; ++i)
      for (int64_t p = 0; p < kc; ++p) dst[p * mr + i] = T(0);
  }
}

// B block (kc x nc) starting at (p0, j0) -> panels of nr columns: bp[panel][p * nr + j].
template <class T>
struct StridedPackB final : PackB<T> {
  MatRef<T> b;
  explicit StridedPackB(MatRef<T> b_) : b(b_) {}
  void pack(int64_t p0, int64_t kc, int64_t j0, int64_t nc, int nr, T* __restrict bp) const override {
    for (int64_t jr = 0; jr < nc; jr += nr) {
      const int cols = (int)std::min<int64_t>(nr, nc - jr);
      T* dst = bp + jr * kc;
      if (b.cs == 1 && cols == nr && nr == kernel<T>().nr) {
        kernel<T>().pack_b(b.p + p0 * b.rs + (j0 + jr), nullptr, b.rs, kc, dst);
        continue;
      }
      if (b.cs == 1) {
        for (int64_t p = 0; p < kc; ++p) {
          const T* src = b.p + (p0 + p) * b.rs + (j0 + jr);
          T* d = dst + p * nr;
          int j = 0;
          for (; j < cols; ++j) d[j] = src[j];
          for (; j < nr; ++j) d[j] = T(0);
        }
        continue;
      }
      if (b.rs == 1 && nr <= 64) {
        // columns of B are contiguous: walk them side by side in short runs of k so the stores
        // stay sequential and the column streams stay in L1
        const T* src[64];
        for (int j = 0; j < cols; ++j) src[j] = b.p + p0 + (j0 + jr + j) * b.cs;
        for (int64_t pb = 0; pb < kc; pb += 16) {
          const int64_t pe = std::min<int64_t>(kc, pb + 16);
          for (int64_t p = pb; p < pe; ++p) {
            T* d = dst + p * nr;
            for (int j = 0; j < cols; ++j) d[j] = src[j][p];
            for (int j = cols; j < nr; ++j) d[j] = T(0);
          }
        }
        continue;
      }
      for (int j = 0; j < cols; ++j) {
        const T* src = b.p + p0 * b.rs + (j0 + jr + j) * b.cs;
        for (int64_t p = 0; p < kc; ++p) dst[p * nr + j] = src[p * b.rs];
      }
      for (int j = cols; j < nr; ++j)
        for (int64_t p = 0; p < kc; ++p) dst[p * nr + j] = T(0);
    }
  }
};

template <class T>
void scale_c(int64_t m, int64_t n, T beta, T* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    T* row = c + i * ldc;
    if (beta == T(0)) {
      for (int64_t j = 0; j < n; ++j) row[j] = T(0);
    } else {
      for (int64_t j = 0; j < n; ++j) row[j] *= beta;
    }
  }
}

// One thread's share: rows [i_begin, i_end) x columns [j_begin, j_end) of C. A comes either as a
// strided view packed here block by block, or already packed whole (packed_a, see PackedA).
template <class T>
bool gemm_serial(int64_t i_begin, int64_t i_end, int64_t j_begin, int64_t j_end, int64_t k, T alpha, MatRef<T> a,
                 const T* packed_a, int64_t packed_m, const PackB<T>& b, T beta, T* c, int64_t ldc) {
  const GemmKernel<T>& kern = kernel<T>();
  const int64_t m = i_end - i_begin, n = j_end - j_begin;
  if (m <= 0 || n <= 0) return true;
  if (k == 0 || alpha == T(0)) {
    scale_c(m, n, beta, c + i_begin * ldc + j_begin, ldc);
    return true;
  }
  const int64_t kc_max = std::min<int64_t>(kern.kc, k);
  const int64_t nc_max = std::min<int64_t>(kern.nc, (n + kern.nr - 1) / kern.nr * kern.nr);
  const int64_t mc_max = std::min<int64_t>(kern.mc, (m + kern.mr - 1) / kern.mr * kern.mr);
  T* bp = static_cast<T*>(scratch(0, sizeof(T) * kc_max * nc_max));
  T* ap = packed_a ? nullptr : static_cast<T*>(scratch(1, sizeof(T) * kc_max * mc_max));
  if (!bp || (!packed_a && !ap)) return false;
  for (int64_t jc = j_begin; jc < j_end; jc += kern.nc) {
    const int64_t nc = std::min<int64_t>(kern.nc, j_end - jc);
    for (int64_t pc = 0; pc < k; pc += kern.kc) {
      const int64_t kc = std::min<int64_t>(kern.kc, k - pc);
      b.pack(pc, kc, jc, nc, kern.nr, bp);
      const T beta_block = pc == 0 ? beta : T(1);
      for (int64_t ic = i_begin; ic < i_end; ic += kern.mc) {
        const int64_t mc = std::min<int64_t>(kern.mc, i_end - ic);
        const T* block;
        if (packed_a) {
          block = packed_a + pc * packed_m + ic * kc;
        } else {
          pack_a(a, ic, pc, mc, kc, kern.mr, ap);
          block = ap;
        }
        kern.macro(mc, nc, kc, block, bp, c + ic * ldc + jc, ldc, alpha, beta_block);
      }
    }
  }
  return true;
}

template <class T>
bool gemm_any(int64_t m, int64_t n, int64_t k, T alpha, MatRef<T> a, const T* packed_a, int64_t packed_m,
              const PackB<T>& b, T beta, T* c, int64_t ldc, bool parallel) {
  if (m <= 0 || n <= 0) return true;
  const GemmKernel<T>& kern = kernel<T>();
  const int threads = parallel ? num_threads() : 1;
  // Split C along its longer side, in whole register tiles, when there is enough work to share.
  const double flops = 2.0 * m * n * k;
  if (threads <= 1 || flops < 2e6)
    return gemm_serial<T>(0, m, 0, n, k, alpha, a, packed_a, packed_m, b, beta, c, ldc);
  const bool split_n = (n / kern.nr) >= (m / kern.mr);
  const int64_t unit = split_n ? kern.nr : kern.mr;
  const int64_t units = ((split_n ? n : m) + unit - 1) / unit;
  // about four pieces per thread, handed out dynamically (see parallel_for_dynamic)
  const int64_t grain = std::max<int64_t>(1, units / (4 * threads));
  std::atomic<bool> ok{true};
  parallel_for_dynamic(units, grain, [&](int64_t u0, int64_t u1, int) {
    const int64_t lo = u0 * unit, hi = std::min<int64_t>(u1 * unit, split_n ? n : m);
    bool r = split_n ? gemm_serial<T>(0, m, lo, hi, k, alpha, a, packed_a, packed_m, b, beta, c, ldc)
                     : gemm_serial<T>(lo, hi, 0, n, k, alpha, a, packed_a, packed_m, b, beta, c, ldc);
    if (!r) ok.store(false);
  });
  return ok.load();
}

}  // namespace

template <class T>
void pack_b_panels(MatRef<T> b, int64_t k0, int64_t kc, int64_t n0, int64_t nc, int nr, T* dst) {
  StridedPackB<T>(b).pack(k0, kc, n0, nc, nr, dst);
}
template void pack_b_panels<float>(MatRef<float>, int64_t, int64_t, int64_t, int64_t, int, float*);
template void pack_b_panels<double>(MatRef<double>, int64_t, int64_t, int64_t, int64_t, int, double*);

template <class T>
const GemmKernel<T>& gemm_kernel() {
  return kernel<T>();
}
template const GemmKernel<float>& gemm_kernel<float>();
template const GemmKernel<double>& gemm_kernel<double>();

const char* gemm_isa() {
  switch (isa()) {
    case Isa::kAvx512: return "avx512";
    case Isa::kAvx2: return "avx2";
    default: return "sse2";
  }
}

template <class T>
bool gemm(int64_t m, int64_t n, int64_t k, T alpha, MatRef<T> a, const PackB<T>& b, T beta, T* c, int64_t ldc,
          bool parallel) {
  return gemm_any<T>(m, n, k, alpha, a, nullptr, 0, b, beta, c, ldc, parallel);
}

template <class T>
bool gemm(int64_t m, int64_t n, int64_t k, T alpha, MatRef<T> a, MatRef<T> b, T beta, T* c, int64_t ldc,
          bool parallel) {
  StridedPackB<T> packer(b);
  return gemm_any<T>(m, n, k, alpha, a, nullptr, 0, packer, beta, c, ldc, parallel);
}

template <class T>
bool PackedA<T>::pack(int64_t m_, int64_t k_, MatRef<T> a) {
  const GemmKernel<T>& kern = kernel<T>();
  m = m_;
  k = k_;
  padded_m = (m + kern.mr - 1) / kern.mr * kern.mr;
  const size_t bytes = sizeof(T) * size_t(padded_m) * size_t(k > 0 ? k : 1);
  if (bytes > capacity) {
    std::free(data);
    capacity = 0;
    data = static_cast<T*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64));
    if (!data) return false;
    capacity = bytes;
  }
  // Same block layout gemm_serial walks: k-blocks of kc, each holding all of M as mr-row panels.
  // The panels are independent: threaded (a conv's weights reach megabytes, packed every call).
  const int64_t panels = padded_m / kern.mr;
  parallel_for(panels, std::max<int64_t>(1, 16384 / (kern.mr * std::max<int64_t>(k, 1))), [&](int64_t q0, int64_t q1, int) {
    const int64_t i0 = q0 * kern.mr, rows = std::min<int64_t>(q1 * kern.mr, m) - i0;
    for (int64_t pc = 0; pc < k; pc += kern.kc) {
      const int64_t kc = std::min<int64_t>(kern.kc, k - pc);
      pack_a(a, i0, pc, rows, kc, kern.mr, data + pc * padded_m + i0 * kc);
    }
  });
  return true;
}

template <class T>
PackedA<T>::~PackedA() {
  std::free(data);
}

template <class T>
bool gemm(int64_t n, T alpha, const PackedA<T>& a, const PackB<T>& b, T beta, T* c, int64_t ldc, bool parallel) {
  return gemm_any<T>(a.m, n, a.k, alpha, MatRef<T>{nullptr, 0, 0}, a.data, a.padded_m, b, beta, c, ldc, parallel);
}

template <class T>
bool gemm(int64_t n, T alpha, const PackedA<T>& a, MatRef<T> b, T beta, T* c, int64_t ldc, bool parallel) {
  StridedPackB<T> packer(b);
  return gemm_any<T>(a.m, n, a.k, alpha, MatRef<T>{nullptr, 0, 0}, a.data, a.padded_m, packer, beta, c, ldc,
                     parallel);
}

template bool gemm<float>(int64_t, int64_t, int64_t, float, MatRef<float>, MatRef<float>, float, float*, int64_t,
                          bool);
template bool gemm<double>(int64_t, int64_t, int64_t, double, MatRef<double>, MatRef<double>, double, double*,
                           int64_t, bool);
template bool gemm<float>(int64_t, int64_t, int64_t, float, MatRef<float>, const PackB<float>&, float, float*,
                          int64_t, bool);
template bool gemm<double>(int64_t, int64_t, int64_t, double, MatRef<double>, const PackB<double>&, double,
                           double*, int64_t, bool);

}  // namespace crb_cpu

namespace crb_cpu {
template struct PackedA<float>;
template struct PackedA<double>;
template bool gemm<float>(int64_t, float, const PackedA<float>&, const PackB<float>&, float, float*, int64_t, bool);
template bool gemm<double>(int64_t, double, const PackedA<double>&, const PackB<double>&, double, double*, int64_t,
                           bool);
template bool gemm<float>(int64_t, float, const PackedA<float>&, MatRef<float>, float, float*, int64_t, bool);
template bool gemm<double>(int64_t, double, const PackedA<double>&, MatRef<double>, double, double*, int64_t, bool);
}  // namespace crb_cpu
