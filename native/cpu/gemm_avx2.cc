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
  k.wino_vl = 8, k.wino_in = &isa_avx2::wino_in<float, 8>, k.wino_out = &isa_avx2::wino_out<float, 8>;
  k.wino_dy = &isa_avx2::wino_dy<float, 8>;
  return k;
}

GemmKernel<double> gemm_kernel_avx2_f64() {
  GemmKernel<double> k = {6, 8, 256, 120, 1024, &isa_avx2::macro_kernel<double, 4, 6, 2>,
          &isa_avx2::pack_b_panel<double, 4, 2>,
          6, 8, &isa_avx2::rows_tile<double, 4, 6, 2>};
  isa_avx2::outer_table<double, 4, 6, 2>(k);
  k.wino_vl = 4, k.wino_in = &isa_avx2::wino_in<double, 4>, k.wino_out = &isa_avx2::wino_out<double, 4>;
  k.wino_dy = &isa_avx2::wino_dy<double, 4>;
  return k;
}

}  // namespace crb_cpu
