// Batch norm over (n, h, w) per channel: forward train/eval, backward train/eval.
// x is (n, c, h, w) or (n, c); the per-channel tensors (weight, bias, running and saved
// statistics) are (c) of float32, or float64 when x is float64.
#include <initializer_list>
#include <utility>
#include <vector>

#include "exports.h"
#include "op_call.h"

namespace crb {

namespace {

crb_dtype ParamDType(crb_dtype x_dtype) { return x_dtype == CRB_F64 ? CRB_F64 : CRB_F32; }

using Named = std::pair<const TensorHandle*, const char*>;

// x's descriptor (crb_geom_batchnorm), and the tensors that go with x: `like_x` of x's dtype,
// shape and layout; `per_channel` c elements of the parameter dtype (null ones skipped).
crb_bn_desc BnDesc(OpCall& call, const TensorHandle* x, double eps, double momentum, bool train_forward,
                   std::initializer_list<Named> like_x, std::initializer_list<Named> per_channel) {
  call.RequireFloat(x, "x");
  crb_bn_desc d;
  crb_geom_error e;
  call.Geometry(crb_geom_batchnorm(x->shape().data(), x->rank(), eps, momentum, train_forward, x->dtype(), x->layout(),
                                   &d, &e),
                e);
  for (const Named& t : like_x) {
    call.RequireDType(t.first, t.second, x->dtype(), "the dtype of x");
    call.RequireShape(t.first, t.second, x->shape(), "the shape of x");
    call.RequireSameLayout(t.first, t.second, x, "x");
  }
  crb_dtype pdtype = ParamDType(x->dtype());
  for (const Named& t : per_channel) {
    if (!t.first) continue;
    call.RequireDType(t.first, t.second, pdtype, std::string("per-channel tensors are ") + crb_dtype_name(pdtype) + " for " +
                                                     crb_dtype_name(x->dtype()) + " input");
    call.Geometry(crb_geom_channel_vector(t.first->shape().data(), t.first->rank(), x->dim(1), t.second, &e), e);
  }
  return d;
}

// The op's outputs: `LikeX` shaped and laid out as x, `PerChannel` (c) of the parameter dtype,
// allocated before the backend call and wrapped, in order, by Result() after it.
class Outputs {
 public:
  Outputs(OpCall& call, const TensorHandle* x, const crb_bn_desc& d) : call_(call), x_(x), d_(d) {}
  void* LikeX(const char* name) { return Add(name, x_->shape(), d_.dtype, x_->channels_last()); }
  void* PerChannel(const char* name) { return Add(name, {d_.c}, ParamDType(d_.dtype), false); }
  void* Bytes(const char* name, size_t bytes) { return Add(name, {int64_t(bytes)}, CRB_U8, false); }
  Napi::Object Result() {
    Napi::Object result = Napi::Object::New(call_.env());
    for (const Output& o : outputs_) result.Set(o.name, call_.Wrap(o.storage, o.shape, o.dtype, o.channels_last));
    return result;
  }

 private:
  struct Output {
    const char* name;
    std::shared_ptr<Storage> storage;
    Shape shape;
    crb_dtype dtype;
    bool channels_last;
  };
  void* Add(const char* name, Shape shape, crb_dtype dtype, bool channels_last) {
    auto storage = call_.Alloc(shape, dtype);
    outputs_.push_back({name, storage, std::move(shape), dtype, channels_last});
    return storage->data();
  }
  OpCall& call_;
  const TensorHandle* x_;
  const crb_bn_desc& d_;
  std::vector<Output> outputs_;
};

// batchNormForwardTrain(x, gamma, beta, runningMean, runningVar, momentum, eps)
Napi::Value ForwardTrain(const Napi::CallbackInfo& info) {
  OpCall call(info, "batchNorm");
  TensorHandle* x = call.Tensor(0, "x");
  TensorHandle* gamma = call.Tensor(1, "weight");
  TensorHandle* beta = call.Tensor(2, "bias");
  TensorHandle* running_mean = call.OptionalTensor(3, "runningMean");
  TensorHandle* running_var = call.OptionalTensor(4, "runningVar");
  double momentum = call.Number(5, "momentum");
  double eps = call.Number(6, "eps");
  crb_bn_desc d = BnDesc(call, x, eps, momentum, true, {},
                         {{gamma, "weight"}, {beta, "bias"}, {running_mean, "runningMean"}, {running_var, "runningVar"}});
  if (!running_mean != !running_var)
    call.RangeErr(running_mean ? "runningVar" : "runningMean", "a tensor when the other running statistic is given",
                  "null");
  Outputs out{call, x, d};
  void* y = out.LikeX("y");
  void* save_mean = out.PerChannel("saveMean");
  void* save_invstd = out.PerChannel("saveInvstd");
  if (d.c)
    call.Check(call.backend()->batchnorm_forward_train(&d, x->data(), gamma->data(), beta->data(), y,
                                                       running_mean ? running_mean->data() : nullptr,
                                                       running_var ? running_var->data() : nullptr, save_mean,
                                                       save_invstd),
               "batchnorm_forward_train");
  return out.Result();
}

// batchNormForwardEval(x, gamma, beta, runningMean, runningVar, eps)
Napi::Value ForwardEval(const Napi::CallbackInfo& info) {
  OpCall call(info, "batchNorm");
  TensorHandle* x = call.Tensor(0, "x");
  TensorHandle* gamma = call.Tensor(1, "weight");
  TensorHandle* beta = call.Tensor(2, "bias");
  TensorHandle* running_mean = call.Tensor(3, "runningMean");
  TensorHandle* running_var = call.Tensor(4, "runningVar");
  double eps = call.Number(5, "eps");
  crb_bn_desc d = BnDesc(call, x, eps, 0.0, false, {},
                         {{gamma, "weight"}, {beta, "bias"}, {running_mean, "runningMean"}, {running_var, "runningVar"}});
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
  TensorHandle* gamma = call.Tensor(2, "weight");
  TensorHandle* stat1 = call.Tensor(3, stat1_name);
  TensorHandle* stat2 = call.Tensor(4, stat2_name);
  double eps = call.Number(5, "eps");
  crb_bn_desc d = BnDesc(call, x, eps, 0.0, false, {{dy, "dy"}}, {{gamma, "weight"}, {stat1, stat1_name}, {stat2, stat2_name}});

  Outputs out{call, x, d};
  void* dx = out.LikeX("dx");
  void* dgamma = out.PerChannel("dgamma");
  void* dbeta = out.PerChannel("dbeta");
  const crb_backend* backend = call.backend();
  if (x->numel()) {
    auto op = kTrain ? backend->batchnorm_backward_train : backend->batchnorm_backward_eval;
    call.Check(op(&d, x->data(), dy->data(), gamma->data(), stat1->data(), stat2->data(), dx, dgamma, dbeta),
               kTrain ? "batchnorm_backward_train" : "batchnorm_backward_eval");
  } else if (d.c) {
    call.Check(backend->fill(dgamma, d.c, ParamDType(d.dtype), 0.0), "fill");
    call.Check(backend->fill(dbeta, d.c, ParamDType(d.dtype), 0.0), "fill");
  }
  return out.Result();
}

// batchNormReluForwardTrain(x, gamma, beta, runningMean, runningVar, momentum, eps): y = relu(bn(x))
// in one backend call, or null when the backend does not fuse it (the caller then runs batchNorm
// and relu). Returns {y, saveMean, saveInvstd}.
Napi::Value ReluForwardTrain(const Napi::CallbackInfo& info) {
  OpCall call(info, "batchNormRelu");
  TensorHandle* x = call.Tensor(0, "x");
  TensorHandle* gamma = call.Tensor(1, "weight");
  TensorHandle* beta = call.Tensor(2, "bias");
  TensorHandle* running_mean = call.Tensor(3, "runningMean");
  TensorHandle* running_var = call.Tensor(4, "runningVar");
  double momentum = call.Number(5, "momentum");
  double eps = call.Number(6, "eps");
  crb_bn_desc d = BnDesc(call, x, eps, momentum, false, {},
                         {{gamma, "weight"}, {beta, "bias"}, {running_mean, "runningMean"}, {running_var, "runningVar"}});
  const crb_backend* backend = call.backend();
  if (!backend->capabilities.fused_bn_relu || (d.dtype != CRB_F32 && d.dtype != CRB_F64) ||
      !crb_bn_values_per_channel_ok(int64_t(d.n) * d.h * d.w))
    return call.env().Null();
  Outputs out{call, x, d};
  void* y = out.LikeX("y");
  void* save_mean = out.PerChannel("saveMean");
  void* save_invstd = out.PerChannel("saveInvstd");
  call.Check(backend->bn_relu_forward_train(&d, x->data(), gamma->data(), beta->data(), y, running_mean->data(),
                                            running_var->data(), save_mean, save_invstd),
             "bn_relu_forward_train");
  return out.Result();
}

// batchNormReluBackwardTrain(x, dy, gamma, beta, saveMean, saveInvstd, eps) -> {dx, dgamma, dbeta}
Napi::Value ReluBackwardTrain(const Napi::CallbackInfo& info) {
  OpCall call(info, "batchNormReluBackwardTrain");
  TensorHandle* x = call.Tensor(0, "x");
  TensorHandle* dy = call.Tensor(1, "dy");
  TensorHandle* gamma = call.Tensor(2, "weight");
  TensorHandle* beta = call.Tensor(3, "bias");
  TensorHandle* save_mean = call.Tensor(4, "saveMean");
  TensorHandle* save_invstd = call.Tensor(5, "saveInvstd");
  double eps = call.Number(6, "eps");
  crb_bn_desc d = BnDesc(call, x, eps, 0.0, false, {{dy, "dy"}},
                         {{gamma, "weight"}, {beta, "bias"}, {save_mean, "saveMean"}, {save_invstd, "saveInvstd"}});
  Outputs out{call, x, d};
  void* dx = out.LikeX("dx");
  void* dgamma = out.PerChannel("dgamma");
  void* dbeta = out.PerChannel("dbeta");
  call.Check(call.backend()->bn_relu_backward_train(&d, x->data(), dy->data(), gamma->data(), beta->data(),
                                                    save_mean->data(), save_invstd->data(), dx, dgamma, dbeta),
             "bn_relu_backward_train");
  return out.Result();
}

// batchNormAddReluForwardTrain(x, z, gamma, beta, runningMean, runningVar, momentum, eps):
// y = relu(bn(x) + z) in one backend call, or null when the backend cannot fuse this case
// (the caller then runs the ops one by one, and batchNorm's checks name what is wrong).
// Returns {y, saveMean, saveInvstd, reserve}.
Napi::Value AddReluForwardTrain(const Napi::CallbackInfo& info) {
  OpCall call(info, "batchNormAddRelu");
  TensorHandle* x = call.Tensor(0, "x");
  TensorHandle* z = call.Tensor(1, "z");
  TensorHandle* gamma = call.Tensor(2, "weight");
  TensorHandle* beta = call.Tensor(3, "bias");
  TensorHandle* running_mean = call.Tensor(4, "runningMean");
  TensorHandle* running_var = call.Tensor(5, "runningVar");
  double momentum = call.Number(6, "momentum");
  double eps = call.Number(7, "eps");
  crb_bn_desc d = BnDesc(call, x, eps, momentum, false, {{z, "z"}},
                         {{gamma, "weight"}, {beta, "bias"}, {running_mean, "runningMean"}, {running_var, "runningVar"}});
  const crb_backend* backend = call.backend();
  size_t reserve_bytes = 0;
  if (!backend->bn_add_relu_reserve_size || !backend->bn_add_relu_forward_train ||
      !crb_bn_values_per_channel_ok(int64_t(d.n) * d.h * d.w) ||
      backend->bn_add_relu_reserve_size(&d, &reserve_bytes) != CRB_OK)
    return call.env().Null();
  Outputs out{call, x, d};
  void* y = out.LikeX("y");
  void* save_mean = out.PerChannel("saveMean");
  void* save_invstd = out.PerChannel("saveInvstd");
  void* reserve = out.Bytes("reserve", reserve_bytes);
  call.Check(backend->bn_add_relu_forward_train(&d, x->data(), z->data(), gamma->data(), beta->data(), y,
                                                running_mean->data(), running_var->data(), save_mean, save_invstd,
                                                reserve, reserve_bytes),
             "bn_add_relu_forward_train");
  return out.Result();
}

// batchNormAddReluBackwardTrain(x, y, dy, gamma, beta, saveMean, saveInvstd, reserve, eps)
// -> {dx, dz, dgamma, dbeta}
Napi::Value AddReluBackwardTrain(const Napi::CallbackInfo& info) {
  OpCall call(info, "batchNormAddReluBackwardTrain");
  TensorHandle* x = call.Tensor(0, "x");
  TensorHandle* y = call.Tensor(1, "y");
  TensorHandle* dy = call.Tensor(2, "dy");
  TensorHandle* gamma = call.Tensor(3, "weight");
  TensorHandle* beta = call.Tensor(4, "bias");
  TensorHandle* save_mean = call.Tensor(5, "saveMean");
  TensorHandle* save_invstd = call.Tensor(6, "saveInvstd");
  TensorHandle* reserve = call.Tensor(7, "reserve");
  double eps = call.Number(8, "eps");
  crb_bn_desc d = BnDesc(call, x, eps, 0.0, false, {{y, "y"}, {dy, "dy"}},
                         {{gamma, "weight"}, {beta, "bias"}, {save_mean, "saveMean"}, {save_invstd, "saveInvstd"}});
  call.RequireDType(reserve, "reserve", CRB_U8, "the uint8 reserve from batchNormAddReluForwardTrain");
  const crb_backend* backend = call.backend();
  if (!backend->bn_add_relu_backward_train)
    ThrowError(call.env(), "batchNormAddReluBackwardTrain: this backend has no fused BN + add + ReLU");
  Outputs out{call, x, d};
  void* dx = out.LikeX("dx");
  void* dz = out.LikeX("dz");
  void* dgamma = out.PerChannel("dgamma");
  void* dbeta = out.PerChannel("dbeta");
  call.Check(backend->bn_add_relu_backward_train(&d, x->data(), y->data(), dy->data(), gamma->data(), beta->data(),
                                                 save_mean->data(), save_invstd->data(), reserve->data(),
                                                 size_t(reserve->numel()), dx, dz, dgamma, dbeta),
             "bn_add_relu_backward_train");
  return out.Result();
}

}  // namespace

// This file's rows of functions.def.
const js::Function js::batchNormForwardTrain = ForwardTrain;
const js::Function js::batchNormForwardEval = ForwardEval;
const js::Function js::batchNormBackwardTrain = Backward<true>;
const js::Function js::batchNormBackwardEval = Backward<false>;
const js::Function js::batchNormReluForwardTrain = ReluForwardTrain;
const js::Function js::batchNormReluBackwardTrain = ReluBackwardTrain;
const js::Function js::batchNormAddReluForwardTrain = AddReluForwardTrain;
const js::Function js::batchNormAddReluBackwardTrain = AddReluBackwardTrain;

}  // namespace crb
