// Device selection, the stream, and the checks that make "available" mean "works": a device
// exists, its architecture is one this build has code for (a probe kernel runs), cuDNN loads.
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "context.h"

namespace crb_cuda {
namespace {

struct State {
  std::once_flag once;
  crb_status status = CRB_OK;
  crb_error error = {};  // the failure of the first initialization, replayed to later callers
  int device = 0;
  int multiprocessors = 1;
  cudaStream_t stream = nullptr;  // never destroyed: see Note [no teardown at exit]
};

// Note [no teardown at exit]
// The stream, the cuDNN handle and the cached device memory live until the process ends. The
// driver releases them then; destroying them from static destructors races with the static
// CUDA runtime's own teardown (cudaErrorCudartUnloading), as PyTorch found.
State& state() {
  static State* s = new State();
  return *s;
}

__global__ void probe_kernel(int* out) { *out = 42; }

bool env_flag(const char* name) {
  const char* v = getenv(name);
  return v && *v && strcmp(v, "0") != 0;
}

crb_status initialize(State& s, const OpScope& scope) {
  Options& o = options();
  o.test_fail_first_conv_algo = env_flag("CRB_TEST_FAIL_FIRST_CONV_ALGO");
  o.test_scalar_kernels = env_flag("CRB_TEST_SCALAR_KERNELS");
  o.log_conv = env_flag("CRB_CUDA_LOG_CONV") || o.test_fail_first_conv_algo.load();
  if (env_flag("CRB_TEST_FUSED_BN_NOT_SUPPORTED")) {
    const char* v = getenv("CRB_TEST_FUSED_BN_NOT_SUPPORTED");
    o.test_fused_bn_not_supported = strcmp(v, "backward") == 0 ? 2 : 1;
  }
  int count = 0;
  CRB_CUDA_CHECK(scope, cudaGetDeviceCount(&count));
  if (count <= 0) return fail(CRB_ERR_CUDA, scope, "cudaErrorNoDevice", "no CUDA device is visible");
  if (const char* env = getenv("CRB_CUDA_DEVICE")) {
    char* end = nullptr;
    long wanted = strtol(env, &end, 10);
    if (end == env || *end != '\0' || wanted < 0 || wanted >= count)
      return invalid(scope, "CRB_CUDA_DEVICE must be a device index in [0, %d), got '%s'", count, env);
    s.device = static_cast<int>(wanted);
  }
  CRB_CUDA_CHECK(scope, cudaSetDevice(s.device));
  cudaDeviceProp prop;
  CRB_CUDA_CHECK(scope, cudaGetDeviceProperties(&prop, s.device));
  if (prop.major * 10 + prop.minor < 75)
    return fail(CRB_ERR_UNSUPPORTED, scope, "cudaErrorNoKernelImageForDevice",
                "device %d (%s) has compute capability %d.%d; this build needs 7.5 or newer", s.device, prop.name,
                prop.major, prop.minor);
  s.multiprocessors = prop.multiProcessorCount;
  CRB_CUDA_CHECK(scope, cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking));

  // A kernel of ours must run: catches a missing kernel image (architecture not compiled in, no
  // PTX the driver can JIT) before the first real op does.
  int* probe = nullptr;
  CRB_CUDA_CHECK(scope, cudaMalloc(&probe, sizeof(int)));
  probe_kernel<<<1, 1, 0, s.stream>>>(probe);
  cudaError_t launched = cudaGetLastError();
  cudaError_t done = launched == cudaSuccess ? cudaStreamSynchronize(s.stream) : launched;
  int value = 0;
  if (done == cudaSuccess) done = cudaMemcpy(&value, probe, sizeof(int), cudaMemcpyDeviceToHost);
  cudaFree(probe);
  if (done != cudaSuccess) return cuda_failure(scope, done, "probe_kernel<<<1, 1>>>", __FILE__, __LINE__);
  if (value != 42)
    return fail(CRB_ERR_CUDA, scope, "probe", "the probe kernel ran but wrote %d instead of 42", value);

  return init_cudnn(scope);
}

}  // namespace

Options& options() {
  static Options* o = new Options();
  return *o;
}

crb_status ensure_init(const OpScope& scope) {
  State& s = state();
  std::call_once(s.once, [&] {
    s.status = initialize(s, scope);
    if (s.status != CRB_OK) s.error = *last_error();
  });
  if (s.status != CRB_OK) {
    restore_error(s.error);
    return s.status;
  }
  // The current device is per thread in the runtime; bind each new thread once.
  thread_local bool bound = false;
  if (!bound) {
    CRB_CUDA_CHECK(scope, cudaSetDevice(s.device));
    bound = true;
  }
  return CRB_OK;
}

int active_device() { return state().device; }
cudaStream_t stream() { return state().stream; }
int multiprocessor_count() { return state().multiprocessors; }

unsigned int grid_for(int64_t n, int threads) {
  int64_t blocks = (n + threads - 1) / threads;
  // Enough blocks to fill every SM several times over; grid-stride loops cover the rest.
  int64_t cap = static_cast<int64_t>(multiprocessor_count()) * 32;
  if (blocks > cap) blocks = cap;
  if (blocks < 1) blocks = 1;
  return static_cast<unsigned int>(blocks);
}

}  // namespace crb_cuda
