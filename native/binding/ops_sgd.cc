// sgdStep: one fused torch.optim.SGD update over every parameter, in place.
#include <vector>

#include "exports.h"
#include "op_call.h"

namespace crb {

namespace {

Napi::Array ArrayArg(OpCall& call, size_t index, const char* name, const char* what) {
  Napi::Value v = call.Arg(index);
  if (!v.IsArray()) call.TypeErr(name, std::string("an array of ") + what, DescribeValue(v));
  return v.As<Napi::Array>();
}

// sgdStep(params, grads, bufs, initBuf, opts)
Napi::Value SgdStep(const Napi::CallbackInfo& info) {
  OpCall call(info, "sgdStep");
  Napi::Array params = ArrayArg(call, 0, "params", "tensor handles");
  Napi::Array grads = ArrayArg(call, 1, "grads", "tensor handles");
  Napi::Array bufs = ArrayArg(call, 2, "bufs", "tensor handles or nulls");
  Napi::Array init = ArrayArg(call, 3, "initBuf", "booleans");
  uint32_t count = params.Length();
  const std::string count_text = std::to_string(count) + " entries (one per parameter)";
  if (grads.Length() != count) call.RangeErr("grads", count_text, DescribeValue(grads));
  if (bufs.Length() != count) call.RangeErr("bufs", count_text, DescribeValue(bufs));
  if (init.Length() != count) call.RangeErr("initBuf", count_text, DescribeValue(init));

  Napi::Value opts_value = call.Arg(4);
  if (!opts_value.IsObject() || opts_value.IsArray())
    call.TypeErr("opts", "an object {lr, momentum, dampening, weightDecay, nesterov, maximize}", DescribeValue(opts_value));
  Napi::Object opts = opts_value.As<Napi::Object>();
  crb_sgd_desc d{};
  d.lr = call.NumberValue(opts.Get("lr"), "opts.lr");
  d.momentum = call.NumberValue(opts.Get("momentum"), "opts.momentum");
  d.dampening = call.NumberValue(opts.Get("dampening"), "opts.dampening");
  d.weight_decay = call.NumberValue(opts.Get("weightDecay"), "opts.weightDecay");
  d.nesterov = call.BoolValue(opts.Get("nesterov"), "opts.nesterov") ? 1 : 0;
  d.maximize = call.BoolValue(opts.Get("maximize"), "opts.maximize") ? 1 : 0;
  if (d.lr < 0) call.RangeErr("opts.lr", "a number >= 0", std::to_string(d.lr));
  if (d.momentum < 0) call.RangeErr("opts.momentum", "a number >= 0", std::to_string(d.momentum));
  if (d.weight_decay < 0) call.RangeErr("opts.weightDecay", "a number >= 0", std::to_string(d.weight_decay));
  if (d.nesterov && (d.momentum <= 0 || d.dampening != 0))
    call.RangeErr("opts.nesterov", "false unless momentum > 0 and dampening == 0 (as torch.optim.SGD)", "true");
  bool use_momentum = d.momentum != 0;

  std::vector<crb_sgd_param> entries(count);
  for (uint32_t i = 0; i < count; ++i) {
    std::string index = "[" + std::to_string(i) + "]";
    TensorHandle* p = call.TensorValue(params.Get(i), "params" + index, false);
    TensorHandle* g = call.TensorValue(grads.Get(i), "grads" + index, false);
    TensorHandle* b = call.TensorValue(bufs.Get(i), "bufs" + index, true);
    bool init_buf = call.BoolValue(init.Get(i), "initBuf" + index);
    call.RequireFloat(p, "params" + index);
    if (i == 0) d.dtype = p->dtype();
    else call.RequireDType(p, "params" + index, d.dtype, "the dtype of params[0]; one step updates one dtype");
    call.RequireDType(g, "grads" + index, p->dtype(), "the dtype of params" + index);
    call.RequireShape(g, "grads" + index, p->shape(), "the shape of params" + index);
    if (use_momentum) {
      if (!b) call.TypeErr("bufs" + index, "a momentum buffer (momentum is " + std::to_string(d.momentum) + ")", "null");
      call.RequireDType(b, "bufs" + index, p->dtype(), "the dtype of params" + index);
      call.RequireShape(b, "bufs" + index, p->shape(), "the shape of params" + index);
    }
    entries[i].param = p->data();
    entries[i].grad = g->data();
    entries[i].momentum_buf = use_momentum ? b->data() : nullptr;
    entries[i].numel = p->numel();
    entries[i].init_momentum = init_buf ? 1 : 0;
  }
  if (count == 0) return call.env().Undefined();
  call.Check(call.backend()->sgd_step(&d, entries.data(), int(count)), "sgd_step");
  return call.env().Undefined();
}

}  // namespace

// This file's rows of functions.def.
const js::Function js::sgdStep = SgdStep;

}  // namespace crb
