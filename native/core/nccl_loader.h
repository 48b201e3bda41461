// Finds and loads libcrb_nccl.so, the NCCL collectives (native/nccl/), at run time. Neither the
// addon nor libcrb_cuda.so links NCCL, so both load where it is absent; the result says why not.
#pragma once

#include <string>
#include <vector>

#include "../nccl/crb_nccl.h"

namespace crb {

struct NcclLoadResult {
  const crb_nccl_api_table* api = nullptr;  // null when unusable
  std::string reason;                       // one line: why not, and what to do
  std::string library_path;                 // loaded, or tried
  std::string nccl_library;                 // the libnccl.so.2 it resolved, when loaded
};

// Loads once (thread-safe) and caches the result: $CRB_NCCL_LIBRARY (a file path) when set, else
// <addon_dir>/libcrb_nccl.so. Its libnccl.so.2 comes from $NCCL_LIB_DIR when set (preloaded),
// else its RUNPATH ($ORIGIN) or the system loader path, else the pip wheel nvidia-nccl-cu13.
const NcclLoadResult& load_nccl_library(const std::string& addon_dir);

}  // namespace crb
