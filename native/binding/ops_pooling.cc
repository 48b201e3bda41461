// maxPool2dForward/Backward (ceil_mode false, dilation 1) and adaptiveAvgPool2dForward/Backward.
#include "exports.h"
#include "op_call.h"

namespace crb {

namespace {

// Note [max-pool indices]
// A backend with capabilities.maxpool_keeps_indices (the CPU) keeps the argmax (int32, flat h*w
// offset within the plane) for backward. The CUDA backend recomputes it from x and y (cuDNN
// pooling backward), so there indices are null and are neither allocated nor passed.

crb_pool_desc MaxPoolDesc(OpCall& call, const TensorHandle* x, size_t first) {
  IntPair kernel = call.Pair(first, "kernel", 1);
  IntPair stride = call.Pair(first + 1, "stride", 1);
  IntPair padding = call.Pair(first + 2, "padding", 0);
  call.RequireFloat(x, "x");
  call.RequireRank(x, "x", 4, "[n, c, h, w]");
  for (int i = 0; i < 2; ++i) {
    if (padding[i] * 2 > kernel[i])
      call.RangeErr("padding", "at most half the kernel size (kernel " + ShapeToString({kernel[0], kernel[1]}) + ")",
                    ShapeToString({padding[0], padding[1]}));
  }
  crb_pool_desc d{};
  d.n = AsInt(x->dim(0));
  d.c = AsInt(x->dim(1));
  d.h = AsInt(x->dim(2));
  d.w = AsInt(x->dim(3));
  d.kernel_h = kernel[0];
  d.kernel_w = kernel[1];
  d.stride_h = stride[0];
  d.stride_w = stride[1];
  d.pad_h = padding[0];
  d.pad_w = padding[1];
  int64_t span_h = int64_t(d.h) + 2 * d.pad_h - d.kernel_h;
  int64_t span_w = int64_t(d.w) + 2 * d.pad_w - d.kernel_w;
  int64_t out_h = span_h < 0 ? 0 : span_h / d.stride_h + 1;
  int64_t out_w = span_w < 0 ? 0 : span_w / d.stride_w + 1;
  if (out_h <= 0 || out_w <= 0)
    call.RangeErr("x", "an input at least as large as the kernel " + ShapeToString({kernel[0], kernel[1]}) +
                           " (with padding)",
                  ShapeToString(x->shape()));
  call.CheckOutputShape({x->dim(0), x->dim(1), out_h, out_w}, x->dtype(), "padding",
                        ShapeToString({padding[0], padding[1]}));
  call.CheckPlane(x, "x");  // the indices are flat offsets within a plane of x
  d.out_h = AsInt(out_h);
  d.out_w = AsInt(out_w);
  d.dtype = x->dtype();
  d.layout = x->layout();
  return d;
}

// maxPool2dForward(x, kernel, stride, padding) -> {y, indices}
Napi::Value MaxPoolForward(const Napi::CallbackInfo& info) {
  OpCall call(info, "maxPool2dForward");
  TensorHandle* x = call.Tensor(0, "x");
  crb_pool_desc d = MaxPoolDesc(call, x, 1);
  Shape y_shape{d.n, d.c, d.out_h, d.out_w};
  auto y = call.Alloc(y_shape, d.dtype);
  std::shared_ptr<Storage> indices;
  if (call.backend()->capabilities.maxpool_keeps_indices) indices = call.Alloc(y_shape, CRB_I32);
  if (x->numel())
    call.Check(call.backend()->maxpool2d_forward(&d, x->data(), y->data(),
                                                 indices ? static_cast<int32_t*>(indices->data()) : nullptr),
               "maxpool2d_forward");
  Napi::Object result = Napi::Object::New(call.env());
  result.Set("y", call.Wrap(y, y_shape, d.dtype, x->channels_last()));
  result.Set("indices", indices ? Napi::Value(call.Wrap(indices, y_shape, CRB_I32, x->channels_last()))
                                : call.env().Null());
  return result;
}

// maxPool2dBackward(x, y, dy, indices, kernel, stride, padding) -> dx
Napi::Value MaxPoolBackward(const Napi::CallbackInfo& info) {
  OpCall call(info, "maxPool2dBackward");
  TensorHandle* x = call.Tensor(0, "x");
  TensorHandle* y = call.Tensor(1, "y");
  TensorHandle* dy = call.Tensor(2, "dy");
  TensorHandle* indices = call.OptionalTensor(3, "indices");
  crb_pool_desc d = MaxPoolDesc(call, x, 4);
  Shape y_shape{d.n, d.c, d.out_h, d.out_w};
  for (TensorHandle* t : {y, dy}) {
    const char* name = t == y ? "y" : "dy";
    call.RequireDType(t, name, x->dtype(), "the dtype of x");
    call.RequireShape(t, name, y_shape, "the output shape of the pooling");
    call.RequireSameLayout(t, name, x, "x");
  }
  if (indices) {
    call.RequireDType(indices, "indices", CRB_I32, "max-pool indices");
    call.RequireShape(indices, "indices", y_shape, "the output shape of the pooling");
  }  // null: the backend finds each window's maximum again from x
  auto dx = call.Alloc(x->shape(), d.dtype);
  if (x->numel())
    call.Check(call.backend()->maxpool2d_backward(&d, x->data(), y->data(), dy->data(),
                                                  indices ? static_cast<const int32_t*>(indices->data()) : nullptr,
                                                  dx->data()),
               "maxpool2d_backward");
  return call.Wrap(dx, x->shape(), d.dtype, x->channels_last());
}

crb_pool_desc AdaptiveDesc(const Shape& x_shape, IntPair out, crb_dtype dtype, crb_layout layout) {
  crb_pool_desc d{};
  d.n = AsInt(x_shape[0]);
  d.c = AsInt(x_shape[1]);
  d.h = AsInt(x_shape[2]);
  d.w = AsInt(x_shape[3]);
  d.out_h = out[0];
  d.out_w = out[1];
  d.dtype = dtype;
  d.layout = layout;
  return d;
}

// adaptiveAvgPool2dForward(x, outputSize)
Napi::Value AdaptiveForward(const Napi::CallbackInfo& info) {
  OpCall call(info, "adaptiveAvgPool2dForward");
  TensorHandle* x = call.Tensor(0, "x");
  IntPair out = call.Pair(1, "outputSize", 1);
  call.RequireFloat(x, "x");
  call.RequireRank(x, "x", 4, "[n, c, h, w]");
  if (x->dim(2) == 0 || x->dim(3) == 0)
    call.RangeErr("x", "non-empty spatial dimensions", ShapeToString(x->shape()));
  call.CheckOutputShape({x->dim(0), x->dim(1), out[0], out[1]}, x->dtype(), "outputSize",
                        ShapeToString({out[0], out[1]}));
  crb_pool_desc d = AdaptiveDesc(x->shape(), out, x->dtype(), x->layout());
  Shape y_shape{d.n, d.c, d.out_h, d.out_w};
  auto y = call.Alloc(y_shape, d.dtype);
  if (x->numel())
    call.Check(call.backend()->adaptive_avgpool2d_forward(&d, x->data(), y->data()), "adaptive_avgpool2d_forward");
  return call.Wrap(y, y_shape, d.dtype, x->channels_last());
}

// adaptiveAvgPool2dBackward(dy, inputShape)
Napi::Value AdaptiveBackward(const Napi::CallbackInfo& info) {
  OpCall call(info, "adaptiveAvgPool2dBackward");
  TensorHandle* dy = call.Tensor(0, "dy");
  Shape x_shape = call.ShapeArg(1, "inputShape");
  call.RequireFloat(dy, "dy");
  call.RequireRank(dy, "dy", 4, "[n, c, outH, outW]");
  if (x_shape.size() != 4) call.RangeErr("inputShape", "4 dimensions [n, c, h, w]", ShapeToString(x_shape));
  if (x_shape[0] != dy->dim(0) || x_shape[1] != dy->dim(1))
    call.RangeErr("inputShape", "[" + std::to_string(dy->dim(0)) + ", " + std::to_string(dy->dim(1)) +
                                    ", h, w] (n and c of dy)",
                  ShapeToString(x_shape));
  if (x_shape[2] == 0 || x_shape[3] == 0)
    call.RangeErr("inputShape", "non-empty spatial dimensions", ShapeToString(x_shape));
  if (dy->dim(2) == 0 || dy->dim(3) == 0) call.RangeErr("dy", "a non-empty output size", ShapeToString(dy->shape()));
  crb_pool_desc d = AdaptiveDesc(x_shape, {AsInt(dy->dim(2)), AsInt(dy->dim(3))}, dy->dtype(), dy->layout());
  auto dx = call.Alloc(x_shape, d.dtype);
  if (dy->numel())
    call.Check(call.backend()->adaptive_avgpool2d_backward(&d, dy->data(), dx->data()), "adaptive_avgpool2d_backward");
  return call.Wrap(dx, x_shape, d.dtype, dy->channels_last());
}

}  // namespace

// This file's rows of functions.def.
const js::Function js::maxPool2dForward = MaxPoolForward;
const js::Function js::maxPool2dBackward = MaxPoolBackward;
const js::Function js::adaptiveAvgPool2dForward = AdaptiveForward;
const js::Function js::adaptiveAvgPool2dBackward = AdaptiveBackward;

}  // namespace crb
