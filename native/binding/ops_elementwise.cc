// add, sum, reluForward, reluBackward.
#include "exports.h"
#include "op_call.h"

namespace crb {

namespace {

// add(a, b): a + b, same shape and dtype.
Napi::Value Add(const Napi::CallbackInfo& info) {
  OpCall call(info, "add");
  TensorHandle* a = call.Tensor(0, "a");
  TensorHandle* b = call.Tensor(1, "b");
  call.RequireShape(b, "b", a->shape(), "the shape of a");
  call.RequireDType(b, "b", a->dtype(), "the dtype of a");
  call.RequireSameLayout(b, "b", a, "a");
  auto out = call.Alloc(a->shape(), a->dtype());
  if (a->numel())
    call.Check(call.backend()->add(out->data(), a->data(), b->data(), a->numel(), a->dtype()), "add");
  return call.Wrap(out, a->shape(), a->dtype(), a->channels_last());
}

// sum(x): shape [] of x's dtype.
Napi::Value Sum(const Napi::CallbackInfo& info) {
  OpCall call(info, "sum");
  TensorHandle* x = call.Tensor(0, "x");
  auto out = call.Alloc({}, x->dtype());
  if (x->numel()) {
    call.Check(call.backend()->sum(out->data(), x->data(), x->numel(), x->dtype()), "sum");
  } else {
    call.Check(call.backend()->fill(out->data(), 1, x->dtype(), 0.0), "fill");
  }
  return call.Wrap(out, {}, x->dtype());
}

Napi::Value ReluForward(const Napi::CallbackInfo& info) {
  OpCall call(info, "reluForward");
  TensorHandle* x = call.Tensor(0, "x");
  call.RequireFloat(x, "x");
  auto y = call.Alloc(x->shape(), x->dtype());
  if (x->numel())
    call.Check(call.backend()->relu_forward(y->data(), x->data(), x->numel(), x->dtype()), "relu_forward");
  return call.Wrap(y, x->shape(), x->dtype(), x->channels_last());
}

// reluBackward(dy, y): dy * (y > 0), y the forward output.
Napi::Value ReluBackward(const Napi::CallbackInfo& info) {
  OpCall call(info, "reluBackward");
  TensorHandle* dy = call.Tensor(0, "dy");
  TensorHandle* y = call.Tensor(1, "y");
  call.RequireFloat(dy, "dy");
  call.RequireShape(y, "y", dy->shape(), "the shape of dy");
  call.RequireDType(y, "y", dy->dtype(), "the dtype of dy");
  call.RequireSameLayout(y, "y", dy, "dy");
  auto dx = call.Alloc(dy->shape(), dy->dtype());
  if (dy->numel())
    call.Check(call.backend()->relu_backward(dx->data(), dy->data(), y->data(), dy->numel(), dy->dtype()),
               "relu_backward");
  return call.Wrap(dx, dy->shape(), dy->dtype(), dy->channels_last());
}

}  // namespace

// This file's rows of functions.def.
const js::Function js::add = Add;
const js::Function js::sum = Sum;
const js::Function js::reluForward = ReluForward;
const js::Function js::reluBackward = ReluBackward;

}  // namespace crb
