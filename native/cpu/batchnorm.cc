// TODO: implemented next; every entry reports CRB_ERR_UNSUPPORTED for now.
#include "errors.h"
#include "ops.h"

namespace crb_cpu {

crb_status batchnorm_forward_train(const crb_bn_desc* d, const void* x, const void* gamma, const void* beta, void* y, void* running_mean, void* running_var, void* save_mean, void* save_invstd) { return fail(CRB_ERR_UNSUPPORTED, "batchnorm_forward_train", "not implemented yet"); }
crb_status batchnorm_forward_eval(const crb_bn_desc* d, const void* x, const void* gamma, const void* beta, const void* running_mean, const void* running_var, void* y) { return fail(CRB_ERR_UNSUPPORTED, "batchnorm_forward_eval", "not implemented yet"); }
crb_status batchnorm_backward_train(const crb_bn_desc* d, const void* x, const void* dy, const void* gamma, const void* save_mean, const void* save_invstd, void* dx, void* dgamma, void* dbeta) { return fail(CRB_ERR_UNSUPPORTED, "batchnorm_backward_train", "not implemented yet"); }
crb_status batchnorm_backward_eval(const crb_bn_desc* d, const void* x, const void* dy, const void* gamma, const void* running_mean, const void* running_var, void* dx, void* dgamma, void* dbeta) { return fail(CRB_ERR_UNSUPPORTED, "batchnorm_backward_eval", "not implemented yet"); }

}  // namespace crb_cpu
