#include "gloo_loader.h"

#include <dlfcn.h>
#include <sys/stat.h>

#include <cstdlib>
#include <mutex>

namespace crb {
namespace {

GlooLoadResult load(const std::string& addon_dir) {
  GlooLoadResult r;
  const char* env = getenv("CRB_GLOO_LIBRARY");
  const bool from_env = env && *env;
  r.library_path = from_env ? std::string(env) : addon_dir + "/libcrb_gloo.so";
  struct stat st;
  if (stat(r.library_path.c_str(), &st) != 0) {
    r.reason = from_env ? "CRB_GLOO_LIBRARY names " + r.library_path + ", which does not exist"
                        : "the gloo library is not built (" + r.library_path +
                              " not found): build it with `npm run build:gloo` (needs libgloo-dev)";
    return r;
  }
  // Kept open for the process: process groups and their threads may live until exit.
  void* lib = dlopen(r.library_path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* e = dlerror();
    const std::string err = e ? e : "unknown dlopen error";
    r.reason = err.find("libgloo.so") != std::string::npos
                   ? "gloo is not installed (" + err + "): on Debian/Ubuntu apt-get install libgloo0"
                   : "could not load " + r.library_path + ": " + err;
    return r;
  }
  auto abi = reinterpret_cast<crb_gloo_abi_version_fn>(dlsym(lib, "crb_gloo_abi_version"));
  auto entry = reinterpret_cast<crb_gloo_entry_fn>(dlsym(lib, CRB_GLOO_ENTRY_POINT));
  if (!abi || !entry) {
    r.reason = r.library_path + " is not a cudnn-resblock gloo library (no crb_gloo_abi_version)";
    return r;
  }
  const uint32_t version = abi();
  const crb_gloo_api_table* api = version == CRB_GLOO_ABI_VERSION ? entry() : nullptr;
  if (!api || api->abi_version != CRB_GLOO_ABI_VERSION) {
    r.reason = r.library_path + " has ABI version " + std::to_string(api ? api->abi_version : version) +
               ", the addon expects " + std::to_string(CRB_GLOO_ABI_VERSION) +
               ": rebuild it from the same version of cudnn-resblock (npm run build:gloo)";
    return r;
  }
  r.api = api;
  return r;
}

}  // namespace

const GlooLoadResult& load_gloo_library(const std::string& addon_dir) {
  static GlooLoadResult result;
  static std::once_flag once;
  std::call_once(once, [&] { result = load(addon_dir); });
  return result;
}

}  // namespace crb
