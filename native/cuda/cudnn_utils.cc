#include "cudnn_utils.h"

#include <climits>
#include <cstring>

#include "allocator.h"
#include "context.h"

namespace crb_cuda {
namespace {

struct CudnnState {
  std::mutex mu;
  cudnnHandle_t handle = nullptr;  // see Note [no teardown at exit] in context.cu
};

CudnnState& cudnn_state() {
  static auto* s = new CudnnState();
  return *s;
}

}  // namespace

crb_status cudnn_failure(const OpScope& scope, cudnnStatus_t status, const char* call, const char* file, int line) {
  char detail[512];
  detail[0] = '\0';
  cudnnGetLastErrorString(detail, sizeof detail);
  const char* base = strrchr(file, '/');
  crb_status code = status == CUDNN_STATUS_ALLOC_FAILED ? CRB_ERR_OOM : CRB_ERR_CUDNN;
  return fail(code, scope, cudnnGetErrorString(status), "%s failed: %s (%d)%s%s at %s:%d", call,
              cudnnGetErrorString(status), static_cast<int>(status), detail[0] ? ": " : "", detail,
              base ? base + 1 : file, line);
}

crb_status init_cudnn(const OpScope& scope) {
  const size_t runtime = cudnnGetVersion();
  // The backend was compiled against CUDNN_MAJOR's headers; another major has another ABI.
  if (runtime / 10000 != CUDNN_MAJOR)
    return fail(CRB_ERR_CUDNN, scope, "CUDNN_STATUS_VERSION_MISMATCH",
                "the cuDNN library loaded is version %zu but this backend was built for cuDNN %d.x", runtime,
                CUDNN_MAJOR);
  // cuDNN 9 is a front library that loads its sub-libraries on demand: a missing or mismatched
  // libcudnn_ops / libcudnn_cnn would otherwise surface only at the first op that needs it.
  struct SubLibrary {
    const char* name;
    cudnnStatus_t (*check)();
  };
  const SubLibrary subs[] = {{"libcudnn_ops.so.9", &cudnnOpsVersionCheck}, {"libcudnn_cnn.so.9", &cudnnCnnVersionCheck}};
  for (const SubLibrary& sub : subs) {
    const cudnnStatus_t st = sub.check();
    if (st != CUDNN_STATUS_SUCCESS) {
      char detail[512];
      detail[0] = '\0';
      cudnnGetLastErrorString(detail, sizeof detail);
      return fail(CRB_ERR_CUDNN, scope, cudnnGetErrorString(st),
                  "cuDNN %zu is installed incompletely: %s failed its version check: %s (%d)%s%s; reinstall cuDNN "
                  "(pip install nvidia-cudnn-cu13) so that every libcudnn_*.so.9 comes from the same release",
                  runtime, sub.name, cudnnGetErrorString(st), static_cast<int>(st), detail[0] ? ": " : "", detail);
    }
  }
  CudnnState& s = cudnn_state();
  std::lock_guard<std::mutex> lock(s.mu);
  if (s.handle) return CRB_OK;
  cudnnHandle_t h = nullptr;
  CRB_CUDNN_CHECK(scope, cudnnCreate(&h));
  cudnnStatus_t st = cudnnSetStream(h, stream());
  if (st != CUDNN_STATUS_SUCCESS) {
    cudnnDestroy(h);
    return cudnn_failure(scope, st, "cudnnSetStream", __FILE__, __LINE__);
  }
  s.handle = h;
  return CRB_OK;
}

CudnnLease::CudnnLease(const OpScope&) : lock_(cudnn_state().mu), handle_(cudnn_state().handle) {}

crb_status CudnnLease::workspace(size_t bytes, void** out, const OpScope& scope) {
  if (bytes == 0) bytes = 1;
  if (workspace_.size() < bytes) {
    workspace_.reset();  // stream-ordered: queued users of the old block run first (allocator.h)
    CRB_TRY(workspace_.allocate(bytes, scope));
  }
  *out = workspace_.get();
  return CRB_OK;
}

bool cudnn_data_type(crb_dtype dtype, cudnnDataType_t* out) {
  switch (dtype) {
    case CRB_F32: *out = CUDNN_DATA_FLOAT; return true;
    case CRB_F64: *out = CUDNN_DATA_DOUBLE; return true;
    case CRB_F16: *out = CUDNN_DATA_HALF; return true;
    case CRB_BF16: *out = CUDNN_DATA_BFLOAT16; return true;
    default: return false;
  }
}

cudnnDataType_t cudnn_compute_type(crb_dtype dtype) { return dtype == CRB_F64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT; }

cudnnTensorFormat_t cudnn_format(crb_layout layout) {
  return layout == CRB_NHWC ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
}

crb_status set_tensor_4d(TensorDescriptor& desc, crb_dtype dtype, crb_layout layout, int64_t n, int64_t c, int64_t h,
                         int64_t w, const OpScope& scope) {
  cudnnDataType_t dt;
  if (!cudnn_data_type(dtype, &dt)) return unsupported(scope, "cuDNN takes no %s tensors", crb_dtype_name(dtype));
  if (layout != CRB_NCHW && layout != CRB_NHWC) return invalid(scope, "unknown layout %d", static_cast<int>(layout));
  if (n <= 0 || c <= 0 || h <= 0 || w <= 0)
    return invalid(scope, "tensor dims must be positive, got (%lld, %lld, %lld, %lld)", (long long)n, (long long)c,
                   (long long)h, (long long)w);
  if (n * c * h * w > INT_MAX)
    return unsupported(scope, "tensor (%lld, %lld, %lld, %lld) has more than 2^31-1 elements, beyond cuDNN's legacy API",
                       (long long)n, (long long)c, (long long)h, (long long)w);
  CRB_TRY(desc.create(scope));
  CRB_CUDNN_CHECK(scope, cudnnSetTensor4dDescriptor(desc.get(), cudnn_format(layout), dt, static_cast<int>(n),
                                                    static_cast<int>(c), static_cast<int>(h), static_cast<int>(w)));
  return CRB_OK;
}

}  // namespace crb_cuda
