// The batch norm kernels built with -mavx2 (only called when the CPU has it; batchnorm.cc picks).
#define BN_NS isa_avx2
#include "batchnorm_kernels.h"
