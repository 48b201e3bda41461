#include "nccl_loader.h"

#include <dlfcn.h>
#include <sys/stat.h>

#include <cstdlib>
#include <mutex>

#include "cuda_loader.h"  // PipPackageDir

namespace crb {
namespace {

std::string DlError() {
  const char* e = dlerror();
  return e ? e : "unknown dlopen error";
}

NcclLoadResult Load(const std::string& addon_dir) {
  NcclLoadResult r;
  const char* env = getenv("CRB_NCCL_LIBRARY");
  const bool from_env = env && *env;
  r.library_path = from_env ? std::string(env) : addon_dir + "/libcrb_nccl.so";
  struct stat st;
  if (stat(r.library_path.c_str(), &st) != 0) {
    r.reason = from_env ? "CRB_NCCL_LIBRARY names " + r.library_path + ", which does not exist"
                        : "the NCCL library is not built (" + r.library_path +
                              " not found): build it with `npm run build:cuda` where NCCL is installed "
                              "(pip install nvidia-nccl-cu13, then NCCL_ROOT=<site-packages>/nvidia/nccl)";
    return r;
  }
  // libnccl.so.2 loaded RTLD_GLOBAL first satisfies libcrb_nccl.so's NEEDED entry.
  std::string preload_note;
  if (const char* dir = getenv("NCCL_LIB_DIR"); dir && *dir) {
    const std::string path = std::string(dir) + "/libnccl.so.2";
    if (!dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL)) preload_note = "; NCCL_LIB_DIR: " + DlError();
  }
  // Kept open for the process: communicators and NCCL's proxy threads may live until exit.
  void* lib = dlopen(r.library_path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    std::string err = DlError();
    if (err.find("libnccl.so") != std::string::npos) {
      const std::string pip = PipPackageDir("nvidia.nccl");
      const std::string path = pip + "/lib/libnccl.so.2";
      if (!pip.empty() && dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL)) lib = dlopen(r.library_path.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (!lib) {
        r.reason = "NCCL is not installed (" + err + preload_note +
                   "): pip install nvidia-nccl-cu13, or set NCCL_LIB_DIR to the directory holding libnccl.so.2";
        return r;
      }
    } else {
      r.reason = "could not load " + r.library_path + ": " + err;
      return r;
    }
  }
  auto abi = reinterpret_cast<crb_nccl_abi_version_fn>(dlsym(lib, "crb_nccl_abi_version"));
  auto entry = reinterpret_cast<crb_nccl_entry_fn>(dlsym(lib, CRB_NCCL_ENTRY_POINT));
  if (!abi || !entry) {
    r.reason = r.library_path + " is not a cudnn-resblock NCCL library (no crb_nccl_abi_version)";
    return r;
  }
  const uint32_t version = abi();
  const crb_nccl_api_table* api = version == CRB_NCCL_ABI_VERSION ? entry() : nullptr;
  if (!api || api->abi_version != CRB_NCCL_ABI_VERSION) {
    r.reason = r.library_path + " has ABI version " + std::to_string(api ? api->abi_version : version) +
               ", the addon expects " + std::to_string(CRB_NCCL_ABI_VERSION) +
               ": rebuild it from the same version of cudnn-resblock (npm run build:cuda)";
    return r;
  }
  // Which libnccl.so.2 the dynamic loader picked, for doctor.
  if (void* nccl = dlopen("libnccl.so.2", RTLD_NOW | RTLD_NOLOAD)) {
    Dl_info info{};
    if (void* sym = dlsym(nccl, "ncclGetVersion"); sym && dladdr(sym, &info) && info.dli_fname) r.nccl_library = info.dli_fname;
  }
  r.api = api;
  return r;
}

}  // namespace

const NcclLoadResult& load_nccl_library(const std::string& addon_dir) {
  static NcclLoadResult result;
  static std::once_flag once;
  std::call_once(once, [&] { result = Load(addon_dir); });
  return result;
}

}  // namespace crb
