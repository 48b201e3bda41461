// maxPool2dForward/Backward (ceil_mode false, dilation 1) and adaptiveAvgPool2dForward/Backward.
#include "exports.h"
#include "op_call.h"

namespace crb {

namespace {

// Note [max-pool indices]
// A backend with capabilities.maxpool_keeps_indices (the CPU and CUDA backends) keeps the argmax
// (int32, flat h*w offset within the plane, stored in y's layout) for backward. A backend without
// it would find each window's maximum again from x, so there indices are null and are neither
// allocated nor passed.

crb_pool_desc MaxPoolDesc(OpCall& call, const TensorHandle* x, size_t first) {
  IntPair kernel = call.Pair(first, "kernelSize", 1);
  IntPair stride = call.Pair(first + 1, "stride", 1);
  IntPair padding = call.Pair(first + 2, "padding", 0);
  call.RequireFloat(x, "x");
  crb_pool_desc d;
  crb_geom_error e;
  call.Geometry(crb_geom_maxpool2d(x->shape().data(), x->rank(), kernel.data(), stride.data(), padding.data(),
                                   x->dtype(), x->layout(), &d, &e),
                e);
  return d;
}

// maxPool2dForward(x, kernel, stride, padding) -> {y, indices}
Napi::Value MaxPoolForward(const Napi::CallbackInfo& info) {
  OpCall call(info, "maxPool2d");
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
  result.Set("indices", call.WrapOptional(indices, y_shape, CRB_I32, x->channels_last()));
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
  } else if (call.backend()->capabilities.maxpool_keeps_indices) {
    call.TypeErr("indices", "the indices tensor from maxPool2dForward (this backend keeps them)", "null");
  }  // null elsewhere: the backend finds each window's maximum again from x
  auto dx = call.Alloc(x->shape(), d.dtype);
  if (x->numel())
    call.Check(call.backend()->maxpool2d_backward(&d, x->data(), y->data(), dy->data(),
                                                  indices ? static_cast<const int32_t*>(indices->data()) : nullptr,
                                                  dx->data()),
               "maxpool2d_backward");
  return call.Wrap(dx, x->shape(), d.dtype, x->channels_last());
}

// adaptiveAvgPool2dForward(x, outputSize)
Napi::Value AdaptiveForward(const Napi::CallbackInfo& info) {
  OpCall call(info, "adaptiveAvgPool2d");
  TensorHandle* x = call.Tensor(0, "x");
  IntPair out = call.Pair(1, "outputSize", 1);
  call.RequireFloat(x, "x");
  crb_pool_desc d;
  crb_geom_error e;
  call.Geometry(crb_geom_adaptive_avgpool2d(x->shape().data(), x->rank(), out.data(), "x", x->dtype(), x->layout(),
                                            &d, &e),
                e);
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
  crb_pool_desc d;
  crb_geom_error e;
  call.Geometry(crb_geom_adaptive_avgpool2d_backward(dy->shape().data(), dy->rank(), x_shape.data(), x_shape.size(),
                                                     dy->dtype(), dy->layout(), &d, &e),
                e);
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
