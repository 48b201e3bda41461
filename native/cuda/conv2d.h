// Shared with linear.cu, which runs its GEMMs as 1x1 convolutions.
#ifndef CRB_CUDA_CONV2D_H
#define CRB_CUDA_CONV2D_H

#include "common.h"

namespace crb_cuda {

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
