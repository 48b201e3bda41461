// Process-wide state of the CUDA backend: the device, the one stream every op is queued on,
// and the options. Initialized once, on first use, from whichever thread comes first.
#ifndef CRB_CUDA_CONTEXT_H
#define CRB_CUDA_CONTEXT_H

#include <cuda_runtime_api.h>

#include <atomic>

#include "common.h"

namespace crb_cuda {

struct Options {
  std::atomic<bool> allow_tf32{true};
  std::atomic<bool> cudnn_benchmark{false};
  std::atomic<bool> deterministic{false};
  // TF32 for float32 matrix products (linear), off by default as in PyTorch
  // (torch.backends.cuda.matmul.allow_tf32); allow_tf32 above is the convolutions' switch.
  std::atomic<bool> matmul_allow_tf32{false};
  // Read from the environment once, at init:
  //   CRB_CUDA_LOG_CONV=1              each convolution algorithm search, try and cache entry on stderr
  //   CRB_TEST_FAIL_FIRST_CONV_ALGO=1  (tests) the first candidate of every search fails as if cuDNN
  //                                    had refused it; implies CRB_CUDA_LOG_CONV=1
  //   CRB_TEST_FUSED_BN_NOT_SUPPORTED=1 (tests) the fused BN + add + ReLU cuDNN calls report
  //                                    CUDNN_STATUS_NOT_SUPPORTED, so the unfused fallback runs
  //                                    (=backward: only the backward call does)
  std::atomic<bool> log_conv{false};
  std::atomic<bool> test_fail_first_conv_algo{false};
  std::atomic<int> test_fused_bn_not_supported{0};  // 0 off, 1 both calls, 2 backward only
  std::atomic<bool> test_scalar_kernels{false};      // CRB_TEST_SCALAR_KERNELS: no vector paths
};
Options& options();

// Initializes the device, stream and cuDNN once; later calls return the first outcome (on
// failure they record the same error again). Also binds the calling thread to the device.
crb_status ensure_init(const OpScope& scope);

int active_device();
cudaStream_t stream();
int multiprocessor_count();

// Implemented in cudnn_utils.cc (keeps cuDNN headers out of here): creates the handle.
crb_status init_cudnn(const OpScope& scope);

// Grid size for a grid-stride loop over `n` elements with `threads` per block.
unsigned int grid_for(int64_t n, int threads);

}  // namespace crb_cuda

#endif  // CRB_CUDA_CONTEXT_H
