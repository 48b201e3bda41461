// The two backends: the CPU table linked into the addon, and the CUDA table loaded at run time
// the first time 'cuda' is used or backendInfo() asks. Both are process-wide and initialized once.
#pragma once

#include "napi_config.h"

#include <string>
#include <vector>

#include "../backend/backend_api.h"
#include "../core/cuda_loader.h"
#include "../core/dtype.h"

namespace crb {

struct CudaAvailability {
  const crb_backend* backend = nullptr;  // null when CUDA cannot be used
  const crb_cuda_interop_table* interop = nullptr;  // the backend's stream, for NCCL; null when backend is
  std::string reason;                    // why not
  std::string hint;                      // what to do about it
  std::string library;                   // backend library loaded or tried last
  std::vector<CudaLoadAttempt> attempts;
};

// Loads (once) and reports on the CUDA backend; never throws.
const CudaAvailability& CudaBackendAvailability();

// The initialized backend of `device`; throws an Error naming `fn`, the reason and the hint
// when CUDA is unavailable.
const crb_backend* BackendFor(Napi::Env env, Device device, const char* fn);

// Directory holding the addon's .node file (where libcrb_cuda.so is looked for first).
std::string AddonDirectory();

}  // namespace crb
