// AVX2 + FMA micro-kernels (compiled with -mavx2 -mfma; only called when the CPU has both).
#define GEMM_NS isa_avx2
#include "gemm_kernel.h"
#include "gemm.h"

namespace crb_cpu {

GemmKernel<float> gemm_kernel_avx2_f32() {
  GemmKernel<float> k = {6, 16, 256, 120, 2048, &isa_avx2::macro_kernel<float, 8, 6, 2>,
          &isa_avx2::pack_b_panel<float, 8, 2>,
          6, 16, &isa_avx2::rows_tile<float, 8, 6, 2>};
  isa_avx2::outer_table<float, 8, 6, 2>(k);
  isa_avx2::wino_table<float, 8>(k);
  return k;
}

GemmKernel<double> gemm_kernel_avx2_f64() {
  GemmKernel<double> k = {6, 8, 256, 120, 1024, &isa_avx2::macro_kernel<double, 4, 6, 2>,
          &isa_avx2::pack_b_panel<double, 4, 2>,
          6, 8, &isa_avx2::rows_tile<double, 4, 6, 2>};
  isa_avx2::outer_table<double, 4, 6, 2>(k);
  isa_avx2::wino_table<double, 4>(k);
  return k;
}

}  // namespace crb_cpu
