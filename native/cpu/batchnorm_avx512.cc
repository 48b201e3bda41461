// The batch norm kernels built with -mavx512f (only called when the CPU has it; batchnorm.cc picks).
#define BN_NS isa_avx512
#include "batchnorm_kernels.h"
