// cuDNN plumbing for the files that call cuDNN (only those include this header): the status
// check macro, one RAII template for every descriptor, the handle and the per-op workspace.
//
// Note [legacy API]
// The legacy calls used here (cudnnConvolution*, cudnnBatchNormalization*, cudnnActivation*,
// cudnnPooling*) are deprecated in cuDNN 9 in favour of the graph API but work unchanged; they
// stay silent because CUDNN_WARN_DEPRECATED is not defined (CMakeLists.txt). Each op is
// isolated in its own file so it can move to the graph API on its own.
#ifndef CRB_CUDA_CUDNN_UTILS_H
#define CRB_CUDA_CUDNN_UTILS_H

#include <cudnn.h>

#include <mutex>
#include <vector>  // for the users of this header (batchnorm.cu's fused-shape memo)

#include "allocator.h"
#include "common.h"

namespace crb_cuda {

// Records a failed cuDNN call, with cudnnGetErrorString and cuDNN's own last-error detail.
// CUDNN_STATUS_ALLOC_FAILED -> CRB_ERR_OOM, everything else -> CRB_ERR_CUDNN.
crb_status cudnn_failure(const OpScope& scope, cudnnStatus_t status, const char* call, const char* file, int line);

}  // namespace crb_cuda

// See Note [errors never abort] in common.h.
#define CRB_CUDNN_CHECK(scope, call)                                                   \
  do {                                                                                 \
    cudnnStatus_t crb_cudnn_st_ = (call);                                              \
    if (crb_cudnn_st_ != CUDNN_STATUS_SUCCESS)                                         \
      return ::crb_cuda::cudnn_failure((scope), crb_cudnn_st_, #call, __FILE__, __LINE__); \
  } while (0)

namespace crb_cuda {

// One owner per cuDNN descriptor type (PyTorch's Descriptors.h pattern): created by
// `create`, destroyed with the object, never copied.
template <typename T, cudnnStatus_t (*Create)(T*), cudnnStatus_t (*Destroy)(T)>
class Descriptor {
 public:
  Descriptor() = default;
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  ~Descriptor() {
    if (desc_) Destroy(desc_);
  }
  crb_status create(const OpScope& scope) {
    if (desc_) return CRB_OK;
    CRB_CUDNN_CHECK(scope, Create(&desc_));
    return CRB_OK;
  }
  T get() const { return desc_; }

 private:
  T desc_ = nullptr;
};

using TensorDescriptor = Descriptor<cudnnTensorDescriptor_t, &cudnnCreateTensorDescriptor, &cudnnDestroyTensorDescriptor>;
using FilterDescriptor = Descriptor<cudnnFilterDescriptor_t, &cudnnCreateFilterDescriptor, &cudnnDestroyFilterDescriptor>;
using ConvolutionDescriptor =
    Descriptor<cudnnConvolutionDescriptor_t, &cudnnCreateConvolutionDescriptor, &cudnnDestroyConvolutionDescriptor>;
using ActivationDescriptor =
    Descriptor<cudnnActivationDescriptor_t, &cudnnCreateActivationDescriptor, &cudnnDestroyActivationDescriptor>;
using PoolingDescriptor = Descriptor<cudnnPoolingDescriptor_t, &cudnnCreatePoolingDescriptor, &cudnnDestroyPoolingDescriptor>;

// Exclusive use of the process's cuDNN handle (bound to the backend's stream) for the duration
// of one op, and that op's workspace. A cuDNN handle must not be used by two threads at once.
//
// Note [workspace from the caching allocator]
// The workspace is an ordinary block of the caching allocator, owned by the lease and returned
// to the cache when the lease ends (or is replaced by a larger one). The next op asking for the
// same size class gets the same block back without a cudaMalloc, so steady-state training still
// allocates nothing; but nothing holds it for good: emptyCache() and the allocator's
// out-of-memory retry release it like any other cached block (PyTorch allocates cuDNN
// workspaces the same way).
class CudnnLease {
 public:
  explicit CudnnLease(const OpScope& scope);
  cudnnHandle_t handle() const { return handle_; }
  // A workspace of at least `bytes`, never null (at least one byte even when cuDNN asks for none:
  // some calls reject a null pointer). Fails with CRB_ERR_OOM when it cannot be allocated.
  crb_status workspace(size_t bytes, void** out, const OpScope& scope);
  size_t workspace_size() const { return workspace_.size(); }
  // Returns the workspace to the cache now (before trying another algorithm).
  void release_workspace() { workspace_.reset(); }

 private:
  std::unique_lock<std::mutex> lock_;
  cudnnHandle_t handle_ = nullptr;
  DeviceBuffer workspace_;
};

// Element type of a float tensor in cuDNN terms; false for types cuDNN does not take.
bool cudnn_data_type(crb_dtype dtype, cudnnDataType_t* out);
// Accumulation type: float for float32/float16/bfloat16, double for float64.
cudnnDataType_t cudnn_compute_type(crb_dtype dtype);
cudnnTensorFormat_t cudnn_format(crb_layout layout);

// A 4-D tensor (n, c, h, w) stored in `layout`. Fails with CRB_ERR_UNSUPPORTED for dtypes
// cuDNN lacks or sizes beyond its 32-bit element indexing.
crb_status set_tensor_4d(TensorDescriptor& desc, crb_dtype dtype, crb_layout layout, int64_t n, int64_t c, int64_t h,
                         int64_t w, const OpScope& scope);

// Blend factors: cuDNN reads float for float/half/bfloat16 tensors and double for double.
struct Blend {
  float f;
  double d;
  const void* for_dtype(crb_dtype dtype) const { return dtype == CRB_F64 ? static_cast<const void*>(&d) : &f; }
};
constexpr Blend kOne = {1.0f, 1.0};
constexpr Blend kZero = {0.0f, 0.0};

}  // namespace crb_cuda

#endif  // CRB_CUDA_CUDNN_UTILS_H
