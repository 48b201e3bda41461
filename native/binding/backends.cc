#include "backends.h"

#include <dlfcn.h>

#include <mutex>

#include "errors.h"

namespace crb {

std::string AddonDirectory() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&AddonDirectory), &info) == 0 || !info.dli_fname) return ".";
  std::string path = info.dli_fname;
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

namespace {

struct CpuState {
  const crb_backend* backend = nullptr;
  std::string failure;  // empty when usable
};

const CpuState& CpuBackendState() {
  static CpuState state;
  static std::once_flag once;
  std::call_once(once, [] {
    const crb_backend* backend = crb_cpu_backend();
    if (!backend || backend->abi_version != CRB_ABI_VERSION) {
      state.failure = "the CPU backend has ABI version " + std::to_string(backend ? backend->abi_version : 0) +
                      ", the addon expects " + std::to_string(CRB_ABI_VERSION);
      return;
    }
    if (backend->init() != CRB_OK) {
      const crb_error* e = backend->last_error();
      state.failure = std::string("the CPU backend failed to initialize: ") + (e ? e->message : "unknown error");
      return;
    }
    state.backend = backend;
  });
  return state;
}

}  // namespace

const CudaAvailability& CudaBackendAvailability() {
  static CudaAvailability state;
  static std::once_flag once;
  std::call_once(once, [] {
    const CudaLoadResult& loaded = load_cuda_backend(AddonDirectory());
    state.reason = loaded.reason;
    state.hint = loaded.hint;
    state.library = loaded.library_path;
    state.attempts = loaded.attempts;
    const crb_backend* backend = loaded.backend;
    if (!backend) {
      if (state.reason.empty()) state.reason = "the CUDA backend could not be loaded";
      return;
    }
    if (backend->abi_version != CRB_ABI_VERSION) {
      state.reason = "the CUDA backend " + state.library + " has ABI version " +
                     std::to_string(backend->abi_version) + ", the addon expects " + std::to_string(CRB_ABI_VERSION);
      state.hint = "rebuild the CUDA backend from the same version of cudnn-resblock (npm run build:cuda)";
      return;
    }
    if (backend->init() != CRB_OK) {
      const crb_error* e = backend->last_error();
      state.reason = std::string("the CUDA backend failed to initialize: ") + (e ? e->message : "unknown error");
      if (state.hint.empty()) state.hint = "check that a CUDA device is visible (nvidia-smi) and the driver is loaded";
      state.attempts.push_back({"init " + state.library, state.reason});
      return;
    }
    state.backend = backend;
    state.interop = loaded.interop;
  });
  return state;
}

const crb_backend* BackendFor(Napi::Env env, Device device, const char* fn) {
  if (device == Device::kCpu) {
    const CpuState& cpu = CpuBackendState();
    if (!cpu.backend) ThrowError(env, std::string(fn) + ": " + cpu.failure);
    return cpu.backend;
  }
  const CudaAvailability& cuda = CudaBackendAvailability();
  if (!cuda.backend) {
    std::string message = std::string(fn) + ": CUDA is not available: " + cuda.reason;
    if (!cuda.hint.empty()) message += " (hint: " + cuda.hint + ")";
    ThrowError(env, message);
  }
  return cuda.backend;
}

}  // namespace crb
