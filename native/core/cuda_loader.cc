// Finds and loads libcrb_cuda.so at run time (see cuda_loader.h). The addon links no CUDA
// library, so this file only uses dlopen; every place tried is recorded in `attempts` for
// `cudnn-resblock doctor` and backendInfo().
//
// Order:
//  1. the driver, libcuda.so.1. Without it CUDA cannot run, but the backend library is still
//     loaded and its ABI checked (its static CUDA runtime opens libcuda lazily, so loading does
//     not need the driver) to tell a broken install apart from a machine without a GPU.
//  2. cuDNN from $CUDNN_LIB_DIR/libcudnn.so.9, loaded RTLD_GLOBAL first when the variable is set,
//     so the backend's NEEDED libcudnn.so.9 resolves to it.
//  3. the backend: $CRB_CUDA_BACKEND when set, else <addon dir>/libcrb_cuda.so. Its
//     libcudnn.so.9 comes from (2), else its RUNPATH ($ORIGIN), else the system loader path;
//     failing those, from a pip-installed nvidia-cudnn-cu13 (asks python3 where it is).
//  4. crb_cuda_abi_version() must equal CRB_ABI_VERSION; then crb_cuda_backend() initializes
//     the device and returns the table, or says why not.
#include "cuda_loader.h"

#include <dlfcn.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace crb {
namespace {

constexpr const char* kDriverHint =
    "install the NVIDIA driver (R580 or newer for this CUDA 13 build) on a machine with an NVIDIA GPU; "
    "until then the CPU backend is used";

std::string dl_error() {
  const char* e = dlerror();
  return e ? e : "unknown dlopen error";
}

bool file_exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// Path of the shared object that defines `symbol` (looked up through `handle` and its
// dependencies), or "".
std::string defining_library(void* handle, const char* symbol) {
  void* sym = dlsym(handle, symbol);
  Dl_info info{};
  if (!sym || dladdr(sym, &info) == 0 || !info.dli_fname) return "";
  return info.dli_fname;
}

std::string hint_for_init_failure(const std::string& why) {
  if (why.find("insufficient") != std::string::npos || why.find("cudaErrorInsufficientDriver") != std::string::npos)
    return "the NVIDIA driver is older than this build's CUDA runtime (13.x): update the driver to R580 or newer";
  if (why.find("no CUDA device") != std::string::npos || why.find("cudaErrorNoDevice") != std::string::npos)
    return "check that a GPU is visible: nvidia-smi, CUDA_VISIBLE_DEVICES, container --gpus";
  if (why.find("compute capability") != std::string::npos)
    return "this build has code for compute capability 7.5 (Turing) and newer";
  if (why.find("cudnn") != std::string::npos || why.find("CUDNN") != std::string::npos)
    return "install cuDNN 9 for CUDA 13 (pip install nvidia-cudnn-cu13, or set CUDNN_LIB_DIR to its lib directory)";
  return "run `cudnn-resblock doctor` for details";
}

CudaLoadResult load(const std::string& addon_dir) {
  CudaLoadResult r;
  auto attempt = [&r](const std::string& what, const std::string& result) { r.attempts.push_back({what, result}); };

  // 1. The driver.
  bool driver_ok = false;
  if (void* driver = dlopen("libcuda.so.1", RTLD_NOW | RTLD_GLOBAL)) {  // kept open for the process
    driver_ok = true;
    std::string result = "ok";
    using GetVersion = int (*)(int*);
    int version = 0;
    if (auto get = reinterpret_cast<GetVersion>(dlsym(driver, "cuDriverGetVersion")); get && get(&version) == 0)
      result += " (supports CUDA " + CudaVersionString(version) + ")";
    const std::string where = defining_library(driver, "cuInit");
    if (!where.empty()) result += ", " + where;
    attempt("driver libcuda.so.1", result);
  } else {
    attempt("driver libcuda.so.1", dl_error());
  }
  auto no_driver = [&]() -> CudaLoadResult& {
    r.reason = "no CUDA driver (libcuda.so.1 not found)";
    r.hint = kDriverHint;
    return r;
  };

  // 3 (first the path). The backend library.
  const char* env_backend = getenv("CRB_CUDA_BACKEND");
  const bool from_env = env_backend && *env_backend;
  r.library_path = from_env ? std::string(env_backend) : addon_dir + "/libcrb_cuda.so";
  const std::string backend_what =
      "backend " + r.library_path + (from_env ? " (CRB_CUDA_BACKEND)" : "");
  if (!file_exists(r.library_path)) {
    attempt(backend_what, "not found");
    if (!driver_ok) return no_driver();
    r.reason = from_env ? "CRB_CUDA_BACKEND names " + r.library_path + ", which does not exist"
                        : "the CUDA backend library is not built (" + r.library_path + " not found)";
    r.hint = "build it with `npm run build:cuda` (needs nvcc and cuDNN 9), or set CRB_CUDA_BACKEND to its path";
    return r;
  }

  // 2. cuDNN named by the user.
  if (const char* dir = getenv("CUDNN_LIB_DIR"); dir && *dir) {
    const std::string path = std::string(dir) + "/libcudnn.so.9";
    if (dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL))
      attempt("cuDNN " + path + " (CUDNN_LIB_DIR)", "ok");
    else
      attempt("cuDNN " + path + " (CUDNN_LIB_DIR)", dl_error());
  } else {
    attempt("cuDNN from CUDNN_LIB_DIR", "not set");
  }

  // 3. The backend, with libcudnn.so.9 from what is loaded, its RUNPATH or the system path.
  void* lib = dlopen(r.library_path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib) {
    attempt(backend_what, "ok");
  } else {
    std::string err = dl_error();
    attempt(backend_what, err);
    if (err.find("libcudnn") != std::string::npos) {
      attempt("cuDNN through the backend's RUNPATH ($ORIGIN) and the system loader path", "libcudnn.so.9 not found");
      // Last resort for cuDNN: the pip package.
      const std::string pip = PipPackageDir("nvidia.cudnn");
      if (pip.empty()) {
        attempt("cuDNN from pip (python3 -c 'import nvidia.cudnn')", "not installed (or no python3)");
      } else {
        const std::string path = pip + "/lib/libcudnn.so.9";
        if (dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL)) {
          attempt("cuDNN " + path + " (pip nvidia-cudnn-cu13)", "ok");
          lib = dlopen(r.library_path.c_str(), RTLD_NOW | RTLD_LOCAL);
          if (lib) attempt(backend_what, "ok");
          else attempt(backend_what, err = dl_error());
        } else {
          attempt("cuDNN " + path + " (pip nvidia-cudnn-cu13)", dl_error());
        }
      }
    }
    if (!lib) {
      if (!driver_ok) return no_driver();
      if (err.find("libcudnn") != std::string::npos) {
        r.reason = "cuDNN 9 not found (libcudnn.so.9), which the CUDA backend needs";
        r.hint = "pip install nvidia-cudnn-cu13, or set CUDNN_LIB_DIR to the directory holding libcudnn.so.9";
      } else {
        r.reason = "could not load the CUDA backend " + r.library_path + ": " + err;
        r.hint = "rebuild it with `npm run build:cuda`";
      }
      return r;
    }
  }
  // Which cuDNN the backend got, for doctor. cudnnGetVersion needs no GPU.
  {
    const std::string where = defining_library(lib, "cudnnGetVersion");
    using GetVersion = size_t (*)();
    auto get = reinterpret_cast<GetVersion>(dlsym(lib, "cudnnGetVersion"));
    if (!where.empty())
      attempt("cuDNN libcudnn.so.9", "ok, version " + (get ? CudnnVersionString(long(get())) : "?") + ", " + where);
  }

  // 4. ABI, then initialization.
  using AbiFn = uint32_t (*)();
  auto abi = reinterpret_cast<AbiFn>(dlsym(lib, "crb_cuda_abi_version"));
  if (!abi) {
    attempt("backend ABI", "missing crb_cuda_abi_version: not a cudnn-resblock CUDA backend");
    if (!driver_ok) return no_driver();
    r.reason = r.library_path + " is not a cudnn-resblock CUDA backend (no crb_cuda_abi_version)";
    r.hint = "point CRB_CUDA_BACKEND at libcrb_cuda.so, or rebuild with `npm run build:cuda`";
    return r;
  }
  const uint32_t version = abi();
  if (version != CRB_ABI_VERSION) {
    attempt("backend ABI", "version " + std::to_string(version) + ", the addon expects " +
                               std::to_string(CRB_ABI_VERSION));
    if (!driver_ok) return no_driver();
    r.reason = "the CUDA backend " + r.library_path + " has ABI version " + std::to_string(version) +
               ", the addon expects " + std::to_string(CRB_ABI_VERSION);
    r.hint = "rebuild the CUDA backend from the same version of cudnn-resblock (npm run build:cuda)";
    return r;
  }
  attempt("backend ABI", "ok (version " + std::to_string(version) + ")");
  if (!driver_ok) return no_driver();

  auto entry = reinterpret_cast<crb_cuda_entry_fn>(dlsym(lib, CRB_CUDA_ENTRY_POINT));
  if (!entry) {
    attempt(std::string("init ") + CRB_CUDA_ENTRY_POINT, "symbol missing");
    r.reason = r.library_path + " lacks " + CRB_CUDA_ENTRY_POINT;
    r.hint = "rebuild it with `npm run build:cuda`";
    return r;
  }
  char why[1024] = {0};
  const crb_backend* table = entry(why, sizeof why);
  if (!table) {
    const std::string text = why[0] ? why : "the CUDA backend did not say why";
    attempt(std::string("init ") + CRB_CUDA_ENTRY_POINT, text);
    r.reason = text;
    r.hint = hint_for_init_failure(text);
    return r;
  }
  if (table->abi_version != CRB_ABI_VERSION) {
    attempt(std::string("init ") + CRB_CUDA_ENTRY_POINT,
            "table has ABI version " + std::to_string(table->abi_version));
    r.reason = "the CUDA backend's function table has ABI version " + std::to_string(table->abi_version) +
               ", the addon expects " + std::to_string(CRB_ABI_VERSION);
    r.hint = "rebuild the CUDA backend from the same version of cudnn-resblock (npm run build:cuda)";
    return r;
  }
  std::string ok = "ok";
  crb_device_info info;
  std::memset(&info, 0, sizeof info);
  if (table->device_info && table->device_info(0, &info) == CRB_OK)
    ok += " (" + std::string(info.name) + ", compute capability " + std::to_string(info.compute_major) + "." +
          std::to_string(info.compute_minor) + ")";
  attempt(std::string("init ") + CRB_CUDA_ENTRY_POINT, ok);
  r.backend = table;
  if (auto interop = reinterpret_cast<crb_cuda_interop_fn>(dlsym(lib, CRB_CUDA_INTEROP_ENTRY_POINT));
      interop && interop() && interop()->version == CRB_CUDA_INTEROP_VERSION)
    r.interop = interop();
  return r;
}

}  // namespace

const CudaLoadResult& load_cuda_backend(const std::string& addon_dir) {
  static CudaLoadResult result;
  static std::once_flag once;
  std::call_once(once, [&] { result = load(addon_dir); });
  return result;
}

std::string PipPackageDir(const char* module) {
  const std::string command = std::string("python3 -c 'import ") + module + " as m; print(list(m.__path__)[0])' 2>/dev/null";
  FILE* p = popen(command.c_str(), "r");
  if (!p) return "";
  char line[4096];
  std::string out;
  if (fgets(line, sizeof line, p)) out = line;
  pclose(p);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r' || out.back() == ' ')) out.pop_back();
  return out;
}

std::string CudaVersionString(int v) { return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10); }

std::string CudnnVersionString(long v) {
  if (v <= 0) return "";
  return std::to_string(v / 10000) + "." + std::to_string((v % 10000) / 100) + "." + std::to_string(v % 100);
}

}  // namespace crb
