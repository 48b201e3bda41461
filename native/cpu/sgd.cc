// torch.optim.SGD, one fused step over all parameters, in the parameter's dtype:
//   g = maximize ? -grad : grad;  g += weight_decay * param
//   if momentum: buf = first ? g : momentum * buf + (1 - dampening) * g
//                g = nesterov ? g + momentum * buf : buf
//   param -= lr * g
#include "dtype.h"
#include "ops.h"
#include "threadpool.h"

namespace crb_cpu {

namespace {

template <class T>
void step(const crb_sgd_desc* d, const crb_sgd_param& prm) {
  T* p = static_cast<T*>(prm.param);
  const T* grad = static_cast<const T*>(prm.grad);
  T* buf = static_cast<T*>(prm.momentum_buf);
  const T lr = T(d->lr), wd = T(d->weight_decay), mom = T(d->momentum), damp = T(1 - d->dampening);
  const bool use_wd = d->weight_decay != 0, use_mom = d->momentum != 0, nesterov = d->nesterov != 0,
             maximize = d->maximize != 0, first = prm.init_momentum != 0;
  // captured by value: see relu.cc
  parallel_for(prm.numel, 1 << 14, [=](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) {
      T g = maximize ? -grad[i] : grad[i];
      if (use_wd) g = g + wd * p[i];
      if (use_mom) {
        const T v = first ? g : mom * buf[i] + damp * g;
        buf[i] = v;
        g = nesterov ? g + mom * v : v;
      }
      p[i] = p[i] - lr * g;
    }
  });
}

}  // namespace

crb_status sgd_step(const crb_sgd_desc* d, const crb_sgd_param* params, int count) {
  if (!d) return fail(CRB_ERR_INVALID, "sgd_step", "desc must not be null");
  if (count < 0 || (count > 0 && !params))
    return fail(CRB_ERR_INVALID, "sgd_step", "params must hold count (%d) entries", count);
  if (d->nesterov && (d->momentum <= 0 || d->dampening != 0))
    return fail(CRB_ERR_INVALID, "sgd_step", "Nesterov momentum requires a momentum and zero dampening, got momentum "
                "%g, dampening %g", d->momentum, d->dampening);
  for (int i = 0; i < count; ++i) {
    const crb_sgd_param& prm = params[i];
    if (prm.numel < 0 || (prm.numel > 0 && (!prm.param || !prm.grad)))
      return fail(CRB_ERR_INVALID, "sgd_step", "params[%d]: param and grad must be set for %lld elements", i,
                  (long long)prm.numel);
    if (d->momentum != 0 && prm.numel > 0 && !prm.momentum_buf)
      return fail(CRB_ERR_INVALID, "sgd_step", "params[%d]: momentum_buf must be set when momentum is %g", i,
                  d->momentum);
  }
  return dispatch_float(d->dtype, "sgd_step", [&](auto zero) {
    using T = decltype(zero);
    for (int i = 0; i < count; ++i) step<T>(d, params[i]);
    return CRB_OK;
  });
}

}  // namespace crb_cpu
