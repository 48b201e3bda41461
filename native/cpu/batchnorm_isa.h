// The batch norm entry points of one ISA's build of batchnorm_kernels.h, in namespace BN_NS: the
// public ones (ops.h) less the descriptor check, which batchnorm.cc does first. No include guard:
// batchnorm.cc declares them once per ISA.
#include "ops.h"

namespace crb_cpu {
namespace BN_NS {

crb_status batchnorm_forward_train(const crb_bn_desc* d, const void* x, const void* gamma, const void* beta, void* y,
                                   void* running_mean, void* running_var, void* save_mean, void* save_invstd);
crb_status batchnorm_forward_eval(const crb_bn_desc* d, const void* x, const void* gamma, const void* beta,
                                  const void* running_mean, const void* running_var, void* y);
crb_status batchnorm_backward_train(const crb_bn_desc* d, const void* x, const void* dy, const void* gamma,
                                    const void* save_mean, const void* save_invstd, void* dx, void* dgamma,
                                    void* dbeta);
crb_status batchnorm_backward_eval(const crb_bn_desc* d, const void* x, const void* dy, const void* gamma,
                                   const void* running_mean, const void* running_var, void* dx, void* dgamma,
                                   void* dbeta);
crb_status bn_relu_forward_train(const crb_bn_desc* d, const void* x, const void* gamma, const void* beta, void* y,
                                 void* running_mean, void* running_var, void* save_mean, void* save_invstd);
crb_status bn_relu_backward_train(const crb_bn_desc* d, const void* x, const void* dy, const void* gamma,
                                  const void* beta, const void* save_mean, const void* save_invstd, void* dx,
                                  void* dgamma, void* dbeta);
crb_status bn_add_relu_forward_train(const crb_bn_desc* d, const void* x, const void* z, const void* gamma,
                                     const void* beta, void* y, void* running_mean, void* running_var, void* save_mean,
                                     void* save_invstd, void* reserve, size_t reserve_bytes);
crb_status bn_add_relu_backward_train(const crb_bn_desc* d, const void* x, const void* y, const void* dy,
                                      const void* gamma, const void* beta, const void* save_mean,
                                      const void* save_invstd, const void* reserve, size_t reserve_bytes, void* dx,
                                      void* dz, void* dgamma, void* dbeta);

}  // namespace BN_NS
}  // namespace crb_cpu
