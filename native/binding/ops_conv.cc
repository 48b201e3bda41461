// conv2dForward, conv2dBackward (PyTorch semantics).
#include "exports.h"
#include "op_call.h"

namespace crb {

namespace {

struct ConvArgs {
  TensorHandle* x;
  TensorHandle* w;
  crb_conv2d_desc desc;
};

// out = floor((in + 2p - d(k-1) - 1) / s) + 1, computed in int64 so nothing overflows.
int64_t ConvOutSize(int64_t in, int64_t pad, int64_t dil, int64_t kernel, int64_t stride) {
  int64_t span = in + 2 * pad - dil * (kernel - 1) - 1;
  if (span < 0) return 0;
  return span / stride + 1;
}

// Reads stride/padding/dilation/groups at `first` and checks x and w against each other.
crb_conv2d_desc ConvDesc(OpCall& call, const TensorHandle* x, const TensorHandle* w, size_t first) {
  IntPair stride = call.Pair(first, "stride", 1);
  IntPair padding = call.Pair(first + 1, "padding", 0);
  IntPair dilation = call.Pair(first + 2, "dilation", 1);
  int64_t groups = call.Integer(first + 3, "groups", 1, 0x7fffffff);

  call.RequireFloat(x, "x");
  call.RequireRank(x, "x", 4, "[n, c, h, w]");
  call.RequireRank(w, "weight", 4, "[k, c / groups, r, s]");
  call.RequireDType(w, "weight", x->dtype(), "the dtype of x");
  call.RequireSameLayout(w, "weight", x, "x");
  int64_t c = x->dim(1), k = w->dim(0);
  if (c % groups != 0)
    call.RangeErr("groups", "a divisor of the " + std::to_string(c) + " channels of x", std::to_string(groups));
  if (k % groups != 0 || k == 0)
    call.RangeErr("weight", "a positive multiple of groups (" + std::to_string(groups) + ") as its first dimension",
                  ShapeToString(w->shape()));
  if (w->dim(1) * groups != c)
    call.RangeErr("weight", "shape [k, " + std::to_string(c / groups) + ", r, s] (x has " + std::to_string(c) +
                           " channels" + (groups > 1 ? ", groups " + std::to_string(groups) : std::string()) + ")",
                  ShapeToString(w->shape()));
  int64_t out_h = ConvOutSize(x->dim(2), padding[0], dilation[0], w->dim(2), stride[0]);
  int64_t out_w = ConvOutSize(x->dim(3), padding[1], dilation[1], w->dim(3), stride[1]);
  if (out_h <= 0 || out_w <= 0)
    call.RangeErr("x", "an input large enough for the kernel (output size would be " + std::to_string(out_h) + "x" +
                           std::to_string(out_w) + ")",
                  ShapeToString(x->shape()) + " with kernel " + ShapeToString({w->dim(2), w->dim(3)}));
  // Only padding makes the output larger than the input plane; otherwise it is the filters.
  if (padding[0] || padding[1])
    call.CheckOutputShape({x->dim(0), k, out_h, out_w}, x->dtype(), "padding", ShapeToString({padding[0], padding[1]}));
  else
    call.CheckOutputShape({x->dim(0), k, out_h, out_w}, x->dtype(), "weight", ShapeToString(w->shape()));
  call.CheckPlane(x, "x");

  crb_conv2d_desc d{};
  d.n = AsInt(x->dim(0));
  d.c = AsInt(c);
  d.h = AsInt(x->dim(2));
  d.w = AsInt(x->dim(3));
  d.k = AsInt(k);
  d.r = AsInt(w->dim(2));
  d.s = AsInt(w->dim(3));
  d.stride_h = stride[0];
  d.stride_w = stride[1];
  d.pad_h = padding[0];
  d.pad_w = padding[1];
  d.dil_h = dilation[0];
  d.dil_w = dilation[1];
  d.groups = AsInt(groups);
  d.out_h = AsInt(out_h);
  d.out_w = AsInt(out_w);
  d.dtype = x->dtype();
  d.layout = x->layout();
  return d;
}

Shape OutputShape(const crb_conv2d_desc& d) { return {d.n, d.k, d.out_h, d.out_w}; }

// conv2dForward(x, w, b, stride, padding, dilation, groups)
Napi::Value Conv2dForward(const Napi::CallbackInfo& info) {
  OpCall call(info, "conv2dForward");
  TensorHandle* x = call.Tensor(0, "x");
  TensorHandle* w = call.Tensor(1, "weight");
  TensorHandle* b = call.OptionalTensor(2, "bias");
  crb_conv2d_desc d = ConvDesc(call, x, w, 3);
  if (b) {
    call.RequireDType(b, "bias", x->dtype(), "the dtype of x");
    if (b->numel() != d.k) call.RangeErr("bias", "shape [" + std::to_string(d.k) + "] (weight has " + std::to_string(d.k) + " filters)", ShapeToString(b->shape()));
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

  Napi::Env env = call.env();
  Napi::Object result = Napi::Object::New(env);
  result.Set("dx", dx ? Napi::Value(call.Wrap(dx, x->shape(), d.dtype, x->channels_last())) : env.Null());
  result.Set("dw", dw ? Napi::Value(call.Wrap(dw, w->shape(), d.dtype, w->channels_last())) : env.Null());
  result.Set("db", db ? Napi::Value(call.Wrap(db, {d.k}, d.dtype)) : env.Null());
  return result;
}

}  // namespace

// This file's rows of functions.def.
const js::Function js::conv2dForward = Conv2dForward;
const js::Function js::conv2dBackward = Conv2dBackward;

}  // namespace crb
