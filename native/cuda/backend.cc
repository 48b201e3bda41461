// The CUDA backend's function table, built from the manifest (../backend/ops.def) by
// ../backend/backend_table.inc, every entry behind the exception guard both backends share
// (../backend/backend_guard.h), and the library's two exported symbols. Everything else in libcrb_cuda.so is hidden (CMakeLists.txt:
// visibility hidden, static cudart's symbols excluded).
#include <cudnn.h>

#include <cstring>

#include "../backend/backend_guard.h"
#include "../backend/cuda_interop.h"
#include "context.h"
#include "ops.h"

namespace crb_cuda {
namespace {

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return count;
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
    case CRB_OPT_MATMUL_ALLOW_TF32: o.matmul_allow_tf32 = value != 0; return CRB_OK;
    case CRB_OPT_NUM_THREADS: return CRB_OK;  // CPU backend only; nothing to do here
  }
  return invalid(scope, "unknown option %d", static_cast<int>(option));
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

namespace {

// The guard's error setter (../backend/backend_guard.h).
crb_status record_exception(crb_status code, const char* op, const char* status, const char* message) {
  return fail(code, OpScope(op), status, "%s", message);
}

#include "../backend/backend_table.inc"

// Both layouts natively; max-pool forward keeps the argmax (Note [max pool ties] in pooling.cu); cuDNN
// fuses BN + add + ReLU for channels-last float16 (bn_add_relu_reserve_size), not BN + ReLU; device
// memory.
crb_capabilities capabilities() {
  crb_capabilities c{};
  c.layouts = CRB_LAYOUT_BIT(CRB_NCHW) | CRB_LAYOUT_BIT(CRB_NHWC);
  c.maxpool_keeps_indices = 1;
  c.fused_bn_add_relu = 1;
  c.fused_bn_relu = 0;
  c.host_visible_memory = 0;
  return c;
}

// crb_cuda_interop's stream(), behind the same exception guard as the table's entries.
crb_status interop_stream(void** out_stream, int* out_device) noexcept {
  try {
    OpScope scope("stream");
    CRB_TRY(ensure_init(scope));
    *out_stream = static_cast<void*>(stream());
    *out_device = active_device();
    return CRB_OK;
  } catch (...) {
    return crb_status_of_exception("stream", record_exception);
  }
}

}  // namespace

}  // namespace crb_cuda

#define CRB_EXPORT extern "C" __attribute__((visibility("default")))

// Checked by the loader before anything else (native/core/cuda_loader.cc).
CRB_EXPORT uint32_t crb_cuda_abi_version(void) { return CRB_ABI_VERSION; }

// CRB_CUDA_ENTRY_POINT: initializes the device (a probe kernel runs, cuDNN creates its handle)
// and returns the table, or null with the reason in `why`.
CRB_EXPORT const crb_backend* crb_cuda_backend(char* why, size_t why_len) {
  static const crb_backend table = crb_cuda::make_backend_table("cuda", crb_cuda::capabilities());
  if (table.init() != CRB_OK) {  // guarded: no exception crosses into the loader
    if (why && why_len > 0) snprintf(why, why_len, "%s", crb_cuda::last_error()->message);
    return nullptr;
  }
  if (why && why_len > 0) why[0] = '\0';
  return &table;
}

// The side interface for libraries that queue work on the backend's stream (../backend/cuda_interop.h).
CRB_EXPORT const crb_cuda_interop_table* crb_cuda_interop(void) {
  static const crb_cuda_interop_table interop{CRB_CUDA_INTEROP_VERSION, crb_cuda::interop_stream};
  return &interop;
}
