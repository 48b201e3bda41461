// Linear layer, y = x W^T + b, as cuDNN GEMMs: a 1x1 convolution of x viewed as (m, k, 1, 1)
// with W viewed as (n, k, 1, 1) filters is exactly that product, with cuDNN's tuned kernels and
// algorithm cache for free. Float32 TF32 follows the matmul switch (CRB_OPT_MATMUL_ALLOW_TF32,
// default off, as torch.backends.cuda.matmul.allow_tf32), not the convolutions' one: see
// Note [TF32 for convolutions and matmuls] in conv2d.h. (Why not cuBLASLt: native/cuda/README.md.)
//   x: (m, k)   W: (n, k)   b: (n)   y, dy: (m, n)   dx: (m, k)   dW: (n, k)   db: (n)
//   forward:         y  = conv(x, W)            (+ b, per output channel)
//   backward data:   dx = dy W                   (convolution backward data)
//   backward filter: dW = dy^T x                 (convolution backward filter)
//   backward bias:   db = sum over rows of dy
#include "conv2d.h"
#include "ops.h"

namespace crb_cuda {
namespace {

crb_conv2d_desc as_conv(const crb_linear_desc& d) {
  crb_conv2d_desc c;
  c.n = d.m;
  c.c = d.k;
  c.h = c.w = 1;
  c.k = d.n;
  c.r = c.s = 1;
  c.stride_h = c.stride_w = 1;
  c.pad_h = c.pad_w = 0;
  c.dil_h = c.dil_w = 1;
  c.groups = 1;
  c.out_h = c.out_w = 1;
  c.dtype = d.dtype;
  c.layout = CRB_NCHW;  // identical to NHWC when h = w = 1
  return c;
}

crb_status validate_linear(const crb_linear_desc* d, const OpScope& scope) {
  crb_geom_error e;
  CRB_TRY(check(crb_linear_check(d, &e), e, scope));
  if (!is_float_dtype(d->dtype)) return unsupported(scope, "linear takes float tensors, got %s", crb_dtype_name(d->dtype));
  return CRB_OK;
}

}  // namespace

crb_status linear_forward(const crb_linear_desc* d, const void* x, const void* w, const void* b, void* y) {
  OpScope scope("linear_forward", "x (%d, %d), w (%d, %d), y (%d, %d) %s", d ? d->m : 0, d ? d->k : 0, d ? d->n : 0,
                d ? d->k : 0, d ? d->m : 0, d ? d->n : 0, d ? crb_dtype_name(d->dtype) : "");
  CRB_TRY(validate_linear(d, scope));
  const crb_conv2d_desc c = as_conv(*d);
  MatmulTf32Scope tf32;
  return conv2d_forward_as("linear_forward", &c, x, w, b, y);
}

crb_status linear_backward(const crb_linear_desc* d, const void* x, const void* w, const void* dy, void* dx, void* dw,
                           void* db) {
  OpScope scope("linear_backward", "x (%d, %d), w (%d, %d), dy (%d, %d) %s", d ? d->m : 0, d ? d->k : 0,
                d ? d->n : 0, d ? d->k : 0, d ? d->m : 0, d ? d->n : 0, d ? crb_dtype_name(d->dtype) : "");
  CRB_TRY(validate_linear(d, scope));
  const crb_conv2d_desc c = as_conv(*d);
  MatmulTf32Scope tf32;
  if (dx) CRB_TRY(conv2d_backward_data_as("linear_backward (dx)", &c, dy, w, dx));
  if (dw) CRB_TRY(conv2d_backward_filter_as("linear_backward (dw)", &c, x, dy, dw));
  if (db) CRB_TRY(conv2d_backward_bias_as("linear_backward (db)", &c, dy, db));
  return CRB_OK;
}

}  // namespace crb_cuda
