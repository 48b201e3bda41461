// AVX-512 micro-kernels (compiled with -mavx512f ...; only called when the CPU has AVX-512).
#define GEMM_NS isa_avx512
#include "gemm_kernel.h"
#include "gemm.h"

namespace crb_cpu {

GemmKernel<float> gemm_kernel_avx512_f32() {
  GemmKernel<float> k = {8, 48, 256, 128, 768, &isa_avx512::macro_kernel<float, 16, 8, 3>,
          &isa_avx512::pack_b_panel<float, 16, 3>,
          // 6 x 64: 24 accumulators, 10 loads per 24 FMAs (8 x 32: 10 per 16); NHWC conv forward and
          // backward data ~5-9% faster on the issue #14 blocks, measured
          6, 64, &isa_avx512::rows_tile<float, 16, 6, 4>,
          // 1-channel stem's data gradient 92 -> 56 ms (N=32 96x96, 7x7/2); with 64 channels 6 x 64 wins
          8, 32, &isa_avx512::rows_tile<float, 16, 8, 2>};
  isa_avx512::outer_table<float, 16, 6, 4>(k);  // 6 x 64, the direct tile's shape
  isa_avx512::wino_table<float, 16>(k);
  return k;
}

GemmKernel<double> gemm_kernel_avx512_f64() {
  GemmKernel<double> k = {8, 16, 256, 128, 1024, &isa_avx512::macro_kernel<double, 8, 8, 2>,
          &isa_avx512::pack_b_panel<double, 8, 2>,
          8, 16, &isa_avx512::rows_tile<double, 8, 8, 2>};
  isa_avx512::outer_table<double, 8, 6, 4>(k);
  isa_avx512::wino_table<double, 8>(k);
  return k;
}

}  // namespace crb_cpu
