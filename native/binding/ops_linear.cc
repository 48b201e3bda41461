// linearForward / linearBackward: y = x W^T + b with x (m, k), W (n, k), b (n), y (m, n).
#include "exports.h"
#include "op_call.h"

namespace crb {

namespace {

crb_linear_desc LinearDesc(OpCall& call, const TensorHandle* x, const TensorHandle* w) {
  call.RequireFloat(x, "x");
  call.RequireDType(w, "weight", x->dtype(), "the dtype of x");
  crb_linear_desc d;
  crb_geom_error e;
  call.Geometry(crb_geom_linear(x->shape().data(), x->rank(), w->shape().data(), w->rank(), x->dtype(), &d, &e), e);
  return d;
}

// linearForward(x, w, b)
Napi::Value Forward(const Napi::CallbackInfo& info) {
  OpCall call(info, "linear");
  TensorHandle* x = call.Tensor(0, "x");
  TensorHandle* w = call.Tensor(1, "weight");
  TensorHandle* b = call.OptionalTensor(2, "bias");
  crb_linear_desc d = LinearDesc(call, x, w);
  if (b) {
    call.RequireDType(b, "bias", d.dtype, "the dtype of x");
    crb_geom_error e;
    call.Geometry(crb_geom_bias(b->shape().data(), b->rank(), d.n, "outputs", &e), e);
  }
  Shape y_shape{d.m, d.n};
  auto y = call.Alloc(y_shape, d.dtype);
  if (d.m && d.n)
    call.Check(call.backend()->linear_forward(&d, x->data(), w->data(), b ? b->data() : nullptr, y->data()),
               "linear_forward");
  return call.Wrap(y, y_shape, d.dtype);
}

// linearBackward(x, w, dy, needDx, needDw, needDb)
Napi::Value Backward(const Napi::CallbackInfo& info) {
  OpCall call(info, "linearBackward");
  TensorHandle* x = call.Tensor(0, "x");
  TensorHandle* w = call.Tensor(1, "weight");
  TensorHandle* dy = call.Tensor(2, "dy");
  bool need_dx = call.Bool(3, "needDx");
  bool need_dw = call.Bool(4, "needDw");
  bool need_db = call.Bool(5, "needDb");
  crb_linear_desc d = LinearDesc(call, x, w);
  call.RequireDType(dy, "dy", d.dtype, "the dtype of x");
  call.RequireShape(dy, "dy", {d.m, d.n}, "[m, n] of x and w");

  std::shared_ptr<Storage> dx, dw, db;
  if (need_dx) dx = call.Alloc(x->shape(), d.dtype);
  if (need_dw) dw = call.Alloc(w->shape(), d.dtype);
  if (need_db) db = call.Alloc({d.n}, d.dtype);
  const crb_backend* backend = call.backend();
  if (d.m && d.n) {
    call.Check(backend->linear_backward(&d, x->data(), w->data(), dy->data(), dx ? dx->data() : nullptr,
                                        dw ? dw->data() : nullptr, db ? db->data() : nullptr),
               "linear_backward");
  } else {
    // An empty batch or no outputs: every gradient is a sum over nothing.
    for (const auto& g : {dx, dw, db})
      if (g && g->nbytes()) call.Check(backend->fill(g->data(), int64_t(g->nbytes() / crb_dtype_size(d.dtype)), d.dtype, 0.0), "fill");
  }

  Napi::Object result = Napi::Object::New(call.env());
  result.Set("dx", call.WrapOptional(dx, x->shape(), d.dtype));
  result.Set("dw", call.WrapOptional(dw, w->shape(), d.dtype));
  result.Set("db", call.WrapOptional(db, {d.n}, d.dtype));
  return result;
}

}  // namespace

// This file's rows of functions.def.
const js::Function js::linearForward = Forward;
const js::Function js::linearBackward = Backward;

}  // namespace crb
