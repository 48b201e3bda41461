// The CUDA backend's function table and the library's two exported symbols. Everything else in
// libcrb_cuda.so is hidden (CMakeLists.txt: visibility hidden, static cudart's symbols excluded).
#include <cudnn.h>

#include <cstring>

#include "context.h"
#include "ops.h"

namespace crb_cuda {
namespace {

const crb_error* last_error_entry() { return last_error(); }

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return count;
}

crb_status device_info(int device, crb_device_info* out) {
  OpScope scope("device_info", "device %d", device);
  if (!out) return invalid(scope, "out must not be null");
  CRB_TRY(ensure_init(scope));
  const int count = device_count();
  if (device < 0 || device >= count) return invalid(scope, "device must be in [0, %d), got %d", count, device);
  std::memset(out, 0, sizeof *out);
  cudaDeviceProp prop;
  CRB_CUDA_CHECK(scope, cudaGetDeviceProperties(&prop, device));
  snprintf(out->name, sizeof out->name, "%s", prop.name);
  out->compute_major = prop.major;
  out->compute_minor = prop.minor;
  out->total_memory = prop.totalGlobalMem;
  out->multiprocessors = prop.multiProcessorCount;
  // Free memory needs a context on that device; only the device in use has one, and creating
  // contexts on every GPU just to report would cost each of them memory. Others report 0.
  if (device == active_device()) {
    size_t free_bytes = 0, total_bytes = 0;
    CRB_CUDA_CHECK(scope, cudaMemGetInfo(&free_bytes, &total_bytes));
    out->free_memory = free_bytes;
  }
  CRB_CUDA_CHECK(scope, cudaDriverGetVersion(&out->driver_version));
  CRB_CUDA_CHECK(scope, cudaRuntimeGetVersion(&out->runtime_version));
  out->cudnn_version = static_cast<int>(cudnnGetVersion());
  out->cudnn_compiled_version = CUDNN_VERSION;
  return CRB_OK;
}

crb_status synchronize() {
  OpScope scope("synchronize");
  CRB_TRY(ensure_init(scope));
  // Also where asynchronous kernel faults surface (illegal address, ...).
  CRB_CUDA_CHECK(scope, cudaStreamSynchronize(stream()));
  return CRB_OK;
}

crb_backend make_table() {
  crb_backend t;
  std::memset(&t, 0, sizeof t);
  t.abi_version = CRB_ABI_VERSION;
  t.name = "cuda";
  t.init = init;
  t.last_error = last_error_entry;
  t.device_count = device_count;
  t.device_info = device_info;
  t.set_option = set_option;
  t.synchronize = synchronize;
  t.alloc = alloc;
  t.free = free_;
  t.memory_stats = memory_stats;
  t.empty_cache = empty_cache;
  t.copy_from_host = copy_from_host;
  t.copy_device = copy_device;
  t.read_begin = read_begin;
  t.read_finish = read_finish;
  t.fill = fill;
  t.cast = cast;
  t.add = add;
  t.axpby = axpby;
  t.relu_forward = relu_forward;
  t.relu_backward = relu_backward;
  t.sum = sum;
  t.conv2d_forward = conv2d_forward;
  t.conv2d_backward_data = conv2d_backward_data;
  t.conv2d_backward_filter = conv2d_backward_filter;
  t.conv2d_backward_bias = conv2d_backward_bias;
  t.batchnorm_forward_train = batchnorm_forward_train;
  t.batchnorm_forward_eval = batchnorm_forward_eval;
  t.batchnorm_backward_train = batchnorm_backward_train;
  t.batchnorm_backward_eval = batchnorm_backward_eval;
  t.maxpool2d_forward = maxpool2d_forward;
  t.maxpool2d_backward = maxpool2d_backward;
  t.adaptive_avgpool2d_forward = adaptive_avgpool2d_forward;
  t.adaptive_avgpool2d_backward = adaptive_avgpool2d_backward;
  t.linear_forward = linear_forward;
  t.linear_backward = linear_backward;
  t.cross_entropy_forward = cross_entropy_forward;
  t.cross_entropy_backward = cross_entropy_backward;
  t.accuracy_count = accuracy_count;
  t.sgd_step = sgd_step;
  t.images_u8_to_float = images_u8_to_float;
  return t;
}

}  // namespace

crb_status init() {
  OpScope scope("init");
  return ensure_init(scope);
}

crb_status set_option(crb_option option, int64_t value) {
  OpScope scope("set_option", "option %d, value %lld", static_cast<int>(option), (long long)value);
  Options& o = options();
  switch (option) {
    case CRB_OPT_ALLOW_TF32: o.allow_tf32 = value != 0; return CRB_OK;
    case CRB_OPT_CUDNN_BENCHMARK: o.cudnn_benchmark = value != 0; return CRB_OK;
    case CRB_OPT_DETERMINISTIC: o.deterministic = value != 0; return CRB_OK;
    case CRB_OPT_NUM_THREADS: return CRB_OK;  // CPU backend only; nothing to do here
  }
  return invalid(scope, "unknown option %d", static_cast<int>(option));
}

}  // namespace crb_cuda

#define CRB_EXPORT extern "C" __attribute__((visibility("default")))

// Checked by the loader before anything else (native/core/cuda_loader.cc).
CRB_EXPORT uint32_t crb_cuda_abi_version(void) { return CRB_ABI_VERSION; }

// CRB_CUDA_ENTRY_POINT: initializes the device (a probe kernel runs, cuDNN creates its handle)
// and returns the table, or null with the reason in `why`.
CRB_EXPORT const crb_backend* crb_cuda_backend_v1(char* why, size_t why_len) {
  static const crb_backend table = crb_cuda::make_table();
  if (crb_cuda::init() != CRB_OK) {
    if (why && why_len > 0) snprintf(why, why_len, "%s", crb_cuda::last_error()->message);
    return nullptr;
  }
  if (why && why_len > 0) why[0] = '\0';
  return &table;
}
