// Shared with linear.cu, which runs its GEMMs as 1x1 convolutions.
#ifndef CRB_CUDA_CONV2D_H
#define CRB_CUDA_CONV2D_H

#include "common.h"
#include "context.h"

namespace crb_cuda {

// Note [TF32 for convolutions and matmuls]
// PyTorch has two TF32 switches: torch.backends.cudnn.allow_tf32 (convolutions, default on) and
// torch.backends.cuda.matmul.allow_tf32 (matrix products, default off). Here they are
// CRB_OPT_ALLOW_TF32 and CRB_OPT_MATMUL_ALLOW_TF32. Linear runs its products as 1x1 cuDNN
// convolutions, so while a MatmulTf32Scope is alive the convolutions on that thread obey the
// matmul switch instead (it is read for the math type and the algorithm-cache key alike).
inline thread_local int tl_conv_tf32_override = -1;  // -1: none; else 0 or 1

inline bool conv_allow_tf32() {
  return tl_conv_tf32_override >= 0 ? tl_conv_tf32_override != 0 : options().allow_tf32.load();
}

class MatmulTf32Scope {
 public:
  MatmulTf32Scope() : saved_(tl_conv_tf32_override) {
    tl_conv_tf32_override = options().matmul_allow_tf32.load() ? 1 : 0;
  }
  ~MatmulTf32Scope() { tl_conv_tf32_override = saved_; }
  MatmulTf32Scope(const MatmulTf32Scope&) = delete;
  MatmulTf32Scope& operator=(const MatmulTf32Scope&) = delete;

 private:
  int saved_;
};

crb_status validate_conv(const crb_conv2d_desc* d, const OpScope& scope);

// The conv2d entry points, reporting errors under `op_name` (null: their own name).
crb_status conv2d_forward_as(const char* op_name, const crb_conv2d_desc* d, const void* x, const void* w,
                             const void* b, void* y);
crb_status conv2d_backward_data_as(const char* op_name, const crb_conv2d_desc* d, const void* dy, const void* w,
                                   void* dx);
crb_status conv2d_backward_filter_as(const char* op_name, const crb_conv2d_desc* d, const void* x, const void* dy,
                                     void* dw);
crb_status conv2d_backward_bias_as(const char* op_name, const crb_conv2d_desc* d, const void* dy, void* db);

}  // namespace crb_cuda

#endif  // CRB_CUDA_CONV2D_H
