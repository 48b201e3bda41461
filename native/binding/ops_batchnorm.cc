// Batch norm over (n, h, w) per channel: forward train/eval, backward train/eval.
// x is (n, c, h, w) or (n, c); the per-channel tensors (gamma, beta, running and saved
// statistics) are (c) of float32, or float64 when x is float64.
#include "exports.h"
#include "op_call.h"

namespace crb {

namespace {

crb_dtype ParamDType(crb_dtype x_dtype) { return x_dtype == CRB_F64 ? CRB_F64 : CRB_F32; }

crb_bn_desc BnDesc(OpCall& call, const TensorHandle* x, double eps, double momentum) {
  call.RequireFloat(x, "x");
  if (x->rank() != 4 && x->rank() != 2)
    call.RangeErr("x", "4-D shape [n, c, h, w] or 2-D shape [n, c]", ShapeToString(x->shape()));
  if (eps < 0) call.RangeErr("eps", "a number >= 0", std::to_string(eps));
  crb_bn_desc d{};
  d.n = AsInt(x->dim(0));
  d.c = AsInt(x->dim(1));
  d.h = x->rank() == 4 ? AsInt(x->dim(2)) : 1;
  d.w = x->rank() == 4 ? AsInt(x->dim(3)) : 1;
  d.eps = eps;
  d.momentum = momentum;
  d.dtype = x->dtype();
  d.layout = x->layout();
  return d;
}

// A per-channel tensor: c elements of the parameter dtype.
void RequireChannelTensor(OpCall& call, const TensorHandle* t, const char* name, const TensorHandle* x) {
  crb_dtype dtype = ParamDType(x->dtype());
  call.RequireDType(t, name, dtype, std::string("per-channel tensors are ") + DTypeName(dtype) + " for " +
                                        DTypeName(x->dtype()) + " input");
  if (t->numel() != x->dim(1))
    call.RangeErr(name, "shape [" + std::to_string(x->dim(1)) + "] (x has " + std::to_string(x->dim(1)) + " channels)",
                  ShapeToString(t->shape()));
}

void RequireLikeX(OpCall& call, const TensorHandle* t, const char* name, const TensorHandle* x) {
  call.RequireDType(t, name, x->dtype(), "the dtype of x");
  call.RequireShape(t, name, x->shape(), "the shape of x");
  call.RequireSameLayout(t, name, x, "x");
}

// batchNormForwardTrain(x, gamma, beta, runningMean, runningVar, momentum, eps)
Napi::Value ForwardTrain(const Napi::CallbackInfo& info) {
  OpCall call(info, "batchNormForwardTrain");
  TensorHandle* x = call.Tensor(0, "x");
  TensorHandle* gamma = call.Tensor(1, "gamma");
  TensorHandle* beta = call.Tensor(2, "beta");
  TensorHandle* running_mean = call.OptionalTensor(3, "runningMean");
  TensorHandle* running_var = call.OptionalTensor(4, "runningVar");
  double momentum = call.Number(5, "momentum");
  double eps = call.Number(6, "eps");
  crb_bn_desc d = BnDesc(call, x, eps, momentum);
  RequireChannelTensor(call, gamma, "gamma", x);
  RequireChannelTensor(call, beta, "beta", x);
  if (running_mean) RequireChannelTensor(call, running_mean, "runningMean", x);
  if (running_var) RequireChannelTensor(call, running_var, "runningVar", x);
  if (!running_mean != !running_var)
    call.RangeErr(running_mean ? "runningVar" : "runningMean", "a tensor when the other running statistic is given",
                  "null");
  if (int64_t(d.n) * d.h * d.w == 0)
    call.RangeErr("x", "at least one value per channel to normalize over", ShapeToString(x->shape()));

  crb_dtype pdtype = ParamDType(d.dtype);
  auto y = call.Alloc(x->shape(), d.dtype);
  auto save_mean = call.Alloc({d.c}, pdtype);
  auto save_invstd = call.Alloc({d.c}, pdtype);
  if (d.c)
    call.Check(call.backend()->batchnorm_forward_train(
                   &d, x->data(), gamma->data(), beta->data(), y->data(),
                   running_mean ? running_mean->data() : nullptr, running_var ? running_var->data() : nullptr,
                   save_mean->data(), save_invstd->data()),
               "batchnorm_forward_train");
  Napi::Object result = Napi::Object::New(call.env());
  result.Set("y", call.Wrap(y, x->shape(), d.dtype, x->channels_last()));
  result.Set("saveMean", call.Wrap(save_mean, {d.c}, pdtype));
  result.Set("saveInvstd", call.Wrap(save_invstd, {d.c}, pdtype));
  return result;
}

// batchNormForwardEval(x, gamma, beta, runningMean, runningVar, eps)
Napi::Value ForwardEval(const Napi::CallbackInfo& info) {
  OpCall call(info, "batchNormForwardEval");
  TensorHandle* x = call.Tensor(0, "x");
  TensorHandle* gamma = call.Tensor(1, "gamma");
  TensorHandle* beta = call.Tensor(2, "beta");
  TensorHandle* running_mean = call.Tensor(3, "runningMean");
  TensorHandle* running_var = call.Tensor(4, "runningVar");
  double eps = call.Number(5, "eps");
  crb_bn_desc d = BnDesc(call, x, eps, 0.0);
  RequireChannelTensor(call, gamma, "gamma", x);
  RequireChannelTensor(call, beta, "beta", x);
  RequireChannelTensor(call, running_mean, "runningMean", x);
  RequireChannelTensor(call, running_var, "runningVar", x);
  auto y = call.Alloc(x->shape(), d.dtype);
  if (x->numel())
    call.Check(call.backend()->batchnorm_forward_eval(&d, x->data(), gamma->data(), beta->data(),
                                                      running_mean->data(), running_var->data(), y->data()),
               "batchnorm_forward_eval");
  return call.Wrap(y, x->shape(), d.dtype, x->channels_last());
}

// Shared by the two backward functions: (x, dy, gamma, stat1, stat2, eps) -> {dx, dgamma, dbeta}
template <bool kTrain>
Napi::Value Backward(const Napi::CallbackInfo& info) {
  const char* fn = kTrain ? "batchNormBackwardTrain" : "batchNormBackwardEval";
  const char* stat1_name = kTrain ? "saveMean" : "runningMean";
  const char* stat2_name = kTrain ? "saveInvstd" : "runningVar";
  OpCall call(info, fn);
  TensorHandle* x = call.Tensor(0, "x");
  TensorHandle* dy = call.Tensor(1, "dy");
  TensorHandle* gamma = call.Tensor(2, "gamma");
  TensorHandle* stat1 = call.Tensor(3, stat1_name);
  TensorHandle* stat2 = call.Tensor(4, stat2_name);
  double eps = call.Number(5, "eps");
  crb_bn_desc d = BnDesc(call, x, eps, 0.0);
  RequireLikeX(call, dy, "dy", x);
  RequireChannelTensor(call, gamma, "gamma", x);
  RequireChannelTensor(call, stat1, stat1_name, x);
  RequireChannelTensor(call, stat2, stat2_name, x);

  crb_dtype pdtype = ParamDType(d.dtype);
  auto dx = call.Alloc(x->shape(), d.dtype);
  auto dgamma = call.Alloc({d.c}, pdtype);
  auto dbeta = call.Alloc({d.c}, pdtype);
  const crb_backend* backend = call.backend();
  if (x->numel()) {
    if (kTrain) {
      call.Check(backend->batchnorm_backward_train(&d, x->data(), dy->data(), gamma->data(), stat1->data(),
                                                   stat2->data(), dx->data(), dgamma->data(), dbeta->data()),
                 "batchnorm_backward_train");
    } else {
      call.Check(backend->batchnorm_backward_eval(&d, x->data(), dy->data(), gamma->data(), stat1->data(),
                                                  stat2->data(), dx->data(), dgamma->data(), dbeta->data()),
                 "batchnorm_backward_eval");
    }
  } else if (d.c) {
    call.Check(backend->fill(dgamma->data(), d.c, pdtype, 0.0), "fill");
    call.Check(backend->fill(dbeta->data(), d.c, pdtype, 0.0), "fill");
  }
  Napi::Object result = Napi::Object::New(call.env());
  result.Set("dx", call.Wrap(dx, x->shape(), d.dtype, x->channels_last()));
  result.Set("dgamma", call.Wrap(dgamma, {d.c}, pdtype));
  result.Set("dbeta", call.Wrap(dbeta, {d.c}, pdtype));
  return result;
}

// batchNormAddReluForwardTrain(x, z, gamma, beta, runningMean, runningVar, momentum, eps):
// y = relu(bn(x) + z) in one backend call, or null when the backend cannot fuse this case
// (the caller then runs the ops one by one). Returns {y, saveMean, saveInvstd, reserve}.
Napi::Value AddReluForwardTrain(const Napi::CallbackInfo& info) {
  OpCall call(info, "batchNormAddReluForwardTrain");
  TensorHandle* x = call.Tensor(0, "x");
  TensorHandle* z = call.Tensor(1, "z");
  TensorHandle* gamma = call.Tensor(2, "gamma");
  TensorHandle* beta = call.Tensor(3, "beta");
  TensorHandle* running_mean = call.Tensor(4, "runningMean");
  TensorHandle* running_var = call.Tensor(5, "runningVar");
  double momentum = call.Number(6, "momentum");
  double eps = call.Number(7, "eps");
  crb_bn_desc d = BnDesc(call, x, eps, momentum);
  RequireLikeX(call, z, "z", x);
  RequireChannelTensor(call, gamma, "gamma", x);
  RequireChannelTensor(call, beta, "beta", x);
  RequireChannelTensor(call, running_mean, "runningMean", x);
  RequireChannelTensor(call, running_var, "runningVar", x);
  const crb_backend* backend = call.backend();
  size_t reserve_bytes = 0;
  if (!backend->bn_add_relu_reserve_size || !backend->bn_add_relu_forward_train || x->numel() == 0 ||
      backend->bn_add_relu_reserve_size(&d, &reserve_bytes) != CRB_OK)
    return call.env().Null();
  crb_dtype pdtype = ParamDType(d.dtype);
  auto y = call.Alloc(x->shape(), d.dtype);
  auto save_mean = call.Alloc({d.c}, pdtype);
  auto save_invstd = call.Alloc({d.c}, pdtype);
  auto reserve = call.Alloc({int64_t(reserve_bytes)}, CRB_U8);
  call.Check(backend->bn_add_relu_forward_train(&d, x->data(), z->data(), gamma->data(), beta->data(), y->data(),
                                                running_mean->data(), running_var->data(), save_mean->data(),
                                                save_invstd->data(), reserve->data(), reserve_bytes),
             "bn_add_relu_forward_train");
  Napi::Object result = Napi::Object::New(call.env());
  result.Set("y", call.Wrap(y, x->shape(), d.dtype, x->channels_last()));
  result.Set("saveMean", call.Wrap(save_mean, {d.c}, pdtype));
  result.Set("saveInvstd", call.Wrap(save_invstd, {d.c}, pdtype));
  result.Set("reserve", call.Wrap(reserve, {int64_t(reserve_bytes)}, CRB_U8));
  return result;
}

// batchNormAddReluBackwardTrain(x, y, dy, gamma, beta, saveMean, saveInvstd, reserve, eps)
// -> {dx, dz, dgamma, dbeta}
Napi::Value AddReluBackwardTrain(const Napi::CallbackInfo& info) {
  OpCall call(info, "batchNormAddReluBackwardTrain");
  TensorHandle* x = call.Tensor(0, "x");
  TensorHandle* y = call.Tensor(1, "y");
  TensorHandle* dy = call.Tensor(2, "dy");
  TensorHandle* gamma = call.Tensor(3, "gamma");
  TensorHandle* beta = call.Tensor(4, "beta");
  TensorHandle* save_mean = call.Tensor(5, "saveMean");
  TensorHandle* save_invstd = call.Tensor(6, "saveInvstd");
  TensorHandle* reserve = call.Tensor(7, "reserve");
  double eps = call.Number(8, "eps");
  crb_bn_desc d = BnDesc(call, x, eps, 0.0);
  RequireLikeX(call, y, "y", x);
  RequireLikeX(call, dy, "dy", x);
  RequireChannelTensor(call, gamma, "gamma", x);
  RequireChannelTensor(call, beta, "beta", x);
  RequireChannelTensor(call, save_mean, "saveMean", x);
  RequireChannelTensor(call, save_invstd, "saveInvstd", x);
  call.RequireDType(reserve, "reserve", CRB_U8, "the uint8 reserve from batchNormAddReluForwardTrain");
  const crb_backend* backend = call.backend();
  if (!backend->bn_add_relu_backward_train)
    ThrowError(call.env(), "batchNormAddReluBackwardTrain: this backend has no fused BN + add + ReLU");
  crb_dtype pdtype = ParamDType(d.dtype);
  auto dx = call.Alloc(x->shape(), d.dtype);
  auto dz = call.Alloc(x->shape(), d.dtype);
  auto dgamma = call.Alloc({d.c}, pdtype);
  auto dbeta = call.Alloc({d.c}, pdtype);
  call.Check(backend->bn_add_relu_backward_train(&d, x->data(), y->data(), dy->data(), gamma->data(), beta->data(),
                                                 save_mean->data(), save_invstd->data(), reserve->data(),
                                                 size_t(reserve->numel()), dx->data(), dz->data(), dgamma->data(),
                                                 dbeta->data()),
             "bn_add_relu_backward_train");
  Napi::Object result = Napi::Object::New(call.env());
  result.Set("dx", call.Wrap(dx, x->shape(), d.dtype, x->channels_last()));
  result.Set("dz", call.Wrap(dz, x->shape(), d.dtype, x->channels_last()));
  result.Set("dgamma", call.Wrap(dgamma, {d.c}, pdtype));
  result.Set("dbeta", call.Wrap(dbeta, {d.c}, pdtype));
  return result;
}

}  // namespace

// This file's rows of functions.def.
const js::Function js::batchNormForwardTrain = ForwardTrain;
const js::Function js::batchNormForwardEval = ForwardEval;
const js::Function js::batchNormBackwardTrain = Backward<true>;
const js::Function js::batchNormBackwardEval = Backward<false>;
const js::Function js::batchNormAddReluForwardTrain = AddReluForwardTrain;
const js::Function js::batchNormAddReluBackwardTrain = AddReluBackwardTrain;

}  // namespace crb
