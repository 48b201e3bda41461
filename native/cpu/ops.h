// Every op of the CPU backend, one declaration per crb_backend entry. Each .cc file holds one op
// family, forward and backward side by side; backend.cc only fills the function table.
#ifndef CRB_CPU_OPS_H
#define CRB_CPU_OPS_H

#include "../backend/backend_api.h"

namespace crb_cpu {

// lifetime (backend.cc / threadpool.cc)
crb_status init();
crb_status set_option(crb_option option, int64_t value);

// memory.cc
crb_status alloc(size_t bytes, void** out);
crb_status free_(void* ptr);
crb_status memory_stats(crb_memory_stats* out);
crb_status empty_cache();
crb_status copy_from_host(void* dst, const void* host_src, size_t bytes);
crb_status copy_device(void* dst, const void* src, size_t bytes);
crb_status read_begin(const void* src, size_t bytes, crb_read** out);
crb_status read_finish(crb_read* read, void* host_dst);

// elementwise.cc
crb_status fill(void* dst, int64_t numel, crb_dtype dtype, double value);
crb_status cast(void* dst, crb_dtype dst_dtype, const void* src, crb_dtype src_dtype, int64_t numel);
crb_status add(void* out, const void* a, const void* b, int64_t numel, crb_dtype dtype);
crb_status axpby(void* y, const void* x, double alpha, double beta, int64_t numel, crb_dtype dtype);
crb_status sum(void* out, const void* x, int64_t numel, crb_dtype dtype);

// relu.cc
crb_status relu_forward(void* y, const void* x, int64_t numel, crb_dtype dtype);
crb_status relu_backward(void* dx, const void* dy, const void* y, int64_t numel, crb_dtype dtype);

// conv2d.cc
crb_status conv2d_forward(const crb_conv2d_desc* d, const void* x, const void* w, const void* b, void* y);
crb_status conv2d_backward_data(const crb_conv2d_desc* d, const void* dy, const void* w, void* dx);
crb_status conv2d_backward_filter(const crb_conv2d_desc* d, const void* x, const void* dy, void* dw);
crb_status conv2d_backward_bias(const crb_conv2d_desc* d, const void* dy, void* db);

// batchnorm.cc
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

// the fused tail of a residual block, y = relu(bn(x) + z) (batchnorm.cc)
crb_status bn_add_relu_reserve_size(const crb_bn_desc* d, size_t* bytes);
crb_status bn_add_relu_forward_train(const crb_bn_desc* d, const void* x, const void* z, const void* gamma,
                                     const void* beta, void* y, void* running_mean, void* running_var, void* save_mean,
                                     void* save_invstd, void* reserve, size_t reserve_bytes);
crb_status bn_add_relu_backward_train(const crb_bn_desc* d, const void* x, const void* y, const void* dy,
                                      const void* gamma, const void* beta, const void* save_mean,
                                      const void* save_invstd, const void* reserve, size_t reserve_bytes, void* dx,
                                      void* dz, void* dgamma, void* dbeta);

// pooling.cc
crb_status maxpool2d_forward(const crb_pool_desc* d, const void* x, void* y, int32_t* indices);
crb_status maxpool2d_backward(const crb_pool_desc* d, const void* x, const void* y, const void* dy,
                              const int32_t* indices, void* dx);
crb_status adaptive_avgpool2d_forward(const crb_pool_desc* d, const void* x, void* y);
crb_status adaptive_avgpool2d_backward(const crb_pool_desc* d, const void* dy, void* dx);

// linear.cc
crb_status linear_forward(const crb_linear_desc* d, const void* x, const void* w, const void* b, void* y);
crb_status linear_backward(const crb_linear_desc* d, const void* x, const void* w, const void* dy, void* dx,
                           void* dw, void* db);

// cross_entropy.cc
crb_status cross_entropy_forward(int n, int classes, crb_dtype dtype, const void* logits, const int32_t* labels,
                                 void* loss_out, void* probs);
crb_status cross_entropy_backward(int n, int classes, crb_dtype dtype, const void* probs, const int32_t* labels,
                                  const void* dloss, void* dlogits);
crb_status accuracy_count(int n, int classes, crb_dtype dtype, const void* logits, const int32_t* labels,
                          int32_t* correct);

// sgd.cc
crb_status sgd_step(const crb_sgd_desc* d, const crb_sgd_param* params, int count);

// images.cc
crb_status images_u8_to_float(const crb_image_desc* d, const uint8_t* src, void* dst);

// layout.cc
crb_status convert_layout(void* dst, crb_layout dst_layout, const void* src, crb_layout src_layout, int n, int c, int h,
                          int w, crb_dtype dtype);

}  // namespace crb_cpu

#endif  // CRB_CPU_OPS_H
