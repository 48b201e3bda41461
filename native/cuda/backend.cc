// The CUDA backend's function table and the library's two exported symbols. Everything else in
// libcrb_cuda.so is hidden (CMakeLists.txt: visibility hidden, static cudart's symbols excluded).
#include <cudnn.h>

#include <cstring>
#include <exception>
#include <new>

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

// Every table entry runs inside a catch-all: a C++ exception (std::bad_alloc from a host
// container, say) must not unwind into the addon through a C ABI. It becomes a crb_error.
template <typename Name, typename Fn, Fn fn>
struct Guarded;
template <typename Name, typename R, typename... Args, R (*fn)(Args...)>
struct Guarded<Name, R (*)(Args...), fn> {
  static R call(Args... args) noexcept {
    try {
      return fn(args...);
    } catch (const std::bad_alloc&) {
      return fail(CRB_ERR_OOM, OpScope(Name::value()), "std::bad_alloc", "out of host memory");
    } catch (const std::exception& e) {
      return fail(CRB_ERR_INTERNAL, OpScope(Name::value()), "exception", "unexpected C++ exception: %s", e.what());
    } catch (...) {
      return fail(CRB_ERR_INTERNAL, OpScope(Name::value()), "exception", "unexpected C++ exception");
    }
  }
};
#define GUARD(fn)                                              \
  ([] {                                                        \
    struct Name {                                              \
      static const char* value() { return #fn; }               \
    };                                                         \
    return &Guarded<Name, decltype(&fn), &fn>::call;           \
  }())

crb_backend make_table() {
  crb_backend t;
  std::memset(&t, 0, sizeof t);
  t.abi_version = CRB_ABI_VERSION;
  t.name = "cuda";
  // Both layouts natively; cuDNN pooling backward recomputes the argmax from x and y; cuDNN
  // fuses BN + add + ReLU for channels-last float16 (bn_add_relu_reserve_size); device memory.
  t.capabilities.layouts = CRB_LAYOUT_BIT(CRB_NCHW) | CRB_LAYOUT_BIT(CRB_NHWC);
  t.capabilities.maxpool_keeps_indices = 0;
  t.capabilities.fused_bn_add_relu = 1;
  t.capabilities.host_visible_memory = 0;
  t.init = GUARD(init);
  t.last_error = last_error_entry;
  t.device_count = device_count;
  t.device_info = GUARD(device_info);
  t.set_option = GUARD(set_option);
  t.synchronize = GUARD(synchronize);
  t.alloc = GUARD(alloc);
  t.free = GUARD(free_);
  t.memory_stats = GUARD(memory_stats);
  t.empty_cache = GUARD(empty_cache);
  t.copy_from_host = GUARD(copy_from_host);
  t.copy_device = GUARD(copy_device);
  t.read_begin = GUARD(read_begin);
  t.read_finish = GUARD(read_finish);
  t.fill = GUARD(fill);
  t.cast = GUARD(cast);
  t.add = GUARD(add);
  t.axpby = GUARD(axpby);
  t.relu_forward = GUARD(relu_forward);
  t.relu_backward = GUARD(relu_backward);
  t.sum = GUARD(sum);
  t.conv2d_forward = GUARD(conv2d_forward);
  t.conv2d_backward_data = GUARD(conv2d_backward_data);
  t.conv2d_backward_filter = GUARD(conv2d_backward_filter);
  t.conv2d_backward_bias = GUARD(conv2d_backward_bias);
  t.batchnorm_forward_train = GUARD(batchnorm_forward_train);
  t.batchnorm_forward_eval = GUARD(batchnorm_forward_eval);
  t.batchnorm_backward_train = GUARD(batchnorm_backward_train);
  t.batchnorm_backward_eval = GUARD(batchnorm_backward_eval);
  t.maxpool2d_forward = GUARD(maxpool2d_forward);
  t.maxpool2d_backward = GUARD(maxpool2d_backward);
  t.adaptive_avgpool2d_forward = GUARD(adaptive_avgpool2d_forward);
  t.adaptive_avgpool2d_backward = GUARD(adaptive_avgpool2d_backward);
  t.linear_forward = GUARD(linear_forward);
  t.linear_backward = GUARD(linear_backward);
  t.cross_entropy_forward = GUARD(cross_entropy_forward);
  t.cross_entropy_backward = GUARD(cross_entropy_backward);
  t.accuracy_count = GUARD(accuracy_count);
  t.sgd_step = GUARD(sgd_step);
  t.images_u8_to_float = GUARD(images_u8_to_float);
  t.convert_layout = GUARD(convert_layout);
  t.bn_add_relu_reserve_size = GUARD(bn_add_relu_reserve_size);
  t.bn_add_relu_forward_train = GUARD(bn_add_relu_forward_train);
  t.bn_add_relu_backward_train = GUARD(bn_add_relu_backward_train);
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
  if (table.init() != CRB_OK) {  // guarded: no exception crosses into the loader
    if (why && why_len > 0) snprintf(why, why_len, "%s", crb_cuda::last_error()->message);
    return nullptr;
  }
  if (why && why_len > 0) why[0] = '\0';
  return &table;
}
