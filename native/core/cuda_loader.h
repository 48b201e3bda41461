// Finds and loads the CUDA backend library at run time. The addon itself never links CUDA, so
// `require()` works on every machine; when CUDA cannot be used, the result says why.
#pragma once

#include <string>
#include <vector>

#include "../backend/backend_api.h"
#include "../backend/cuda_interop.h"

namespace crb {

struct CudaLoadAttempt {
  std::string what;    // e.g. "driver libcuda.so.1", "backend /x/prebuilds/linux-x64/libcrb_cuda.so"
  std::string result;  // "ok" or the loader's / backend's error text
};

struct CudaLoadResult {
  const crb_backend* backend = nullptr;  // null when CUDA is not usable
  const crb_cuda_interop_table* interop = nullptr;  // the stream for libcrb_nccl.so; null when backend is, or too old
  std::string reason;                    // one-line why, when backend is null
  std::string hint;                      // what the user can do about it
  std::string library_path;              // the backend library that was loaded (or tried last)
  std::vector<CudaLoadAttempt> attempts; // every place tried, in order
};

// Loads once (thread-safe) and caches the result. `addon_dir` is the directory of the .node
// file; the backend library `libcrb_cuda.so` is searched there first, then in
// CRB_CUDA_BACKEND (a file path) when set.
const CudaLoadResult& load_cuda_backend(const std::string& addon_dir);

// Directory of a pip-installed NVIDIA wheel (`module` "nvidia.cudnn" -> .../nvidia/cudnn), or "".
// Runs python3, so only as a last resort, never at import time.
std::string PipPackageDir(const char* module);

// 13000 -> "13.0" (CUDA driver/runtime encoding: 1000 * major + 10 * minor)
std::string CudaVersionString(int v);
// 92400 -> "9.24.0" (cuDNN 9 encoding: 10000 * major + 100 * minor + patch); "" when v <= 0
std::string CudnnVersionString(long v);

}  // namespace crb
