// conv2dForward, conv2dBackward (PyTorch semantics).
#include "exports.h"
#include "op_call.h"

namespace crb {

namespace {

// Reads stride/padding/dilation/groups at `first`; the shapes of x and w must make a
// convolution (crb_geom_conv2d).
crb_conv2d_desc ConvDesc(OpCall& call, const TensorHandle* x, const TensorHandle* w, size_t first) {
  IntPair stride = call.Pair(first, "stride", 1);
  IntPair padding = call.Pair(first + 1, "padding", 0);
  IntPair dilation = call.Pair(first + 2, "dilation", 1);
  int64_t groups = call.Integer(first + 3, "groups", 1, 0x7fffffff);
  call.RequireFloat(x, "x");
  call.RequireDType(w, "weight", x->dtype(), "the dtype of x");
  call.RequireSameLayout(w, "weight", x, "x");
  crb_conv2d_desc d;
  crb_geom_error e;
  call.Geometry(crb_geom_conv2d(x->shape().data(), x->rank(), w->shape().data(), w->rank(), stride.data(),
                                padding.data(), dilation.data(), groups, x->dtype(), x->layout(), &d, &e),
                e);
  return d;
}

Shape OutputShape(const crb_conv2d_desc& d) { return {d.n, d.k, d.out_h, d.out_w}; }

// conv2dForward(x, w, b, stride, padding, dilation, groups)
Napi::Value Conv2dForward(const Napi::CallbackInfo& info) {
  OpCall call(info, "conv2d");
  TensorHandle* x = call.Tensor(0, "x");
  TensorHandle* w = call.Tensor(1, "weight");
  TensorHandle* b = call.OptionalTensor(2, "bias");
  crb_conv2d_desc d = ConvDesc(call, x, w, 3);
  if (b) {
    call.RequireDType(b, "bias", x->dtype(), "the dtype of x");
    crb_geom_error e;
    call.Geometry(crb_geom_bias(b->shape().data(), b->rank(), d.k, "filters", &e), e);
  }
  Shape y_shape = OutputShape(d);
  auto y = call.Alloc(y_shape, d.dtype);
  if (d.n)
    call.Check(call.backend()->conv2d_forward(&d, x->data(), w->data(), b ? b->data() : nullptr, y->data()),
               "conv2d_forward");
  return call.Wrap(y, y_shape, d.dtype, x->channels_last());
}

// conv2dBackward(x, w, dy, stride, padding, dilation, groups, needDx, needDw, needDb)
Napi::Value Conv2dBackward(const Napi::CallbackInfo& info) {
  OpCall call(info, "conv2dBackward");
  TensorHandle* x = call.Tensor(0, "x");
  TensorHandle* w = call.Tensor(1, "weight");
  TensorHandle* dy = call.Tensor(2, "dy");
  crb_conv2d_desc d = ConvDesc(call, x, w, 3);
  bool need_dx = call.Bool(7, "needDx");
  bool need_dw = call.Bool(8, "needDw");
  bool need_db = call.Bool(9, "needDb");
  call.RequireDType(dy, "dy", x->dtype(), "the dtype of x");
  call.RequireShape(dy, "dy", OutputShape(d), "the output shape of the convolution");
  call.RequireSameLayout(dy, "dy", x, "x");

  const crb_backend* backend = call.backend();
  std::shared_ptr<Storage> dx, dw, db;
  if (need_dx) {
    dx = call.Alloc(x->shape(), d.dtype);
    if (d.n) call.Check(backend->conv2d_backward_data(&d, dy->data(), w->data(), dx->data()), "conv2d_backward_data");
  }
  if (need_dw) {
    dw = call.Alloc(w->shape(), d.dtype);
    if (d.n) call.Check(backend->conv2d_backward_filter(&d, x->data(), dy->data(), dw->data()), "conv2d_backward_filter");
    else call.Check(backend->fill(dw->data(), w->numel(), d.dtype, 0.0), "fill");
  }
  if (need_db) {
    db = call.Alloc({d.k}, d.dtype);
    if (d.n) call.Check(backend->conv2d_backward_bias(&d, dy->data(), db->data()), "conv2d_backward_bias");
    else call.Check(backend->fill(db->data(), d.k, d.dtype, 0.0), "fill");
  }

  Napi::Object result = Napi::Object::New(call.env());
  result.Set("dx", call.WrapOptional(dx, x->shape(), d.dtype, x->channels_last()));
  result.Set("dw", call.WrapOptional(dw, w->shape(), d.dtype, w->channels_last()));
  result.Set("db", call.WrapOptional(db, {d.k}, d.dtype));
  return result;
}

}  // namespace

// This file's rows of functions.def.
const js::Function js::conv2dForward = Conv2dForward;
const js::Function js::conv2dBackward = Conv2dBackward;

}  // namespace crb
