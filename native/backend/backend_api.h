// The one interface every compute backend implements (CPU in the addon, CUDA in its own shared
// library). It is plain C so the CUDA library, built by nvcc/CMake, and the addon, built by
// node-gyp, can be compiled by different toolchains and still agree: the addon checks
// `abi_version` before it calls anything else.
//
// Conventions
// - Every op returns crb_status; on failure `last_error()` describes it (per thread). The ops,
//   their parameters and the files implementing them are listed once, in ops.def.
// - Pointers are device pointers of the backend (host memory for the CPU backend) to dense
//   tensors, stored in the memory order the descriptor's `layout` names (NCHW or NHWC).
// - Ops are ordered on the backend's stream: a CPU op has finished when it returns, a CUDA op
//   may still be running. `read_begin` / `read_finish` give a consistent snapshot either way.
// - Shapes are given in the descriptor structs; `dtype` names the element type of the float
//   tensors of the op; `layout` says how NCHW tensors are stored in memory.
#ifndef CRB_BACKEND_API_H
#define CRB_BACKEND_API_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CRB_ABI_VERSION 4  // 3: crb_capabilities in the table; 4: bn_relu_*
#define CRB_CUDA_ENTRY_POINT "crb_cuda_backend"  // unversioned: crb_cuda_abi_version() says which ABI

typedef enum crb_dtype {
  CRB_F32 = 0,
  CRB_F64 = 1,
  CRB_F16 = 2,
  CRB_BF16 = 3,
  CRB_I32 = 4,
  CRB_I64 = 5,
  CRB_U8 = 6
} crb_dtype;

typedef enum crb_layout {
  CRB_NCHW = 0,
  CRB_NHWC = 1  // channels-last: memory order N, H, W, C; shapes are still given as N, C, H, W
} crb_layout;

typedef enum crb_status {
  CRB_OK = 0,
  CRB_ERR_INVALID = 1,      // bad argument that slipped past the front-end checks
  CRB_ERR_OOM = 2,          // allocation failed; the backend stays usable
  CRB_ERR_CUDA = 3,         // a CUDA runtime/driver call failed
  CRB_ERR_CUDNN = 4,        // a cuDNN call failed
  CRB_ERR_UNSUPPORTED = 5,  // valid request this backend cannot do (dtype, layout, ...)
  CRB_ERR_INTERNAL = 6
} crb_status;

typedef struct crb_error {
  crb_status code;
  char op[64];         // e.g. "conv2d_forward"
  char status[128];    // e.g. "CUDNN_STATUS_BAD_PARAM" or "cudaErrorMemoryAllocation"
  char message[1024];  // human-readable, includes shapes
} crb_error;

typedef struct crb_device_info {
  char name[256];
  int compute_major, compute_minor;
  uint64_t total_memory, free_memory;
  int multiprocessors;
  int driver_version;   // e.g. 13000
  int runtime_version;  // e.g. 13000
  int cudnn_version;    // e.g. 92400 (runtime library); 0 when not applicable
  int cudnn_compiled_version;
} crb_device_info;

typedef struct crb_memory_stats {
  uint64_t allocated;       // bytes in live tensors
  uint64_t reserved;        // bytes held by the caching allocator (live + cached)
  uint64_t peak_allocated;  // high-water mark of `allocated`
  uint64_t alloc_count;     // allocations served
  uint64_t cache_hits;      // allocations served from the cache
} crb_memory_stats;

// Options set with set_option.
typedef enum crb_option {
  CRB_OPT_ALLOW_TF32 = 0,      // float32 convolutions may use TF32 tensor cores (default 1)
  CRB_OPT_CUDNN_BENCHMARK = 1, // pick conv algorithms by measurement (default 0)
  CRB_OPT_DETERMINISTIC = 2,   // only deterministic algorithms (default 0)
  CRB_OPT_NUM_THREADS = 3,     // CPU worker threads (CPU backend only)
  CRB_OPT_MATMUL_ALLOW_TF32 = 4 // float32 matrix products (linear) may use TF32 (default 0, as
                                // torch.backends.cuda.matmul.allow_tf32)
} crb_option;

// Convolution, PyTorch semantics. x: (n, c, h, w), w: (k, c/groups, r, s), y: (n, k, out_h, out_w)
typedef struct crb_conv2d_desc {
  int n, c, h, w;
  int k, r, s;
  int stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups;
  int out_h, out_w;
  crb_dtype dtype;
  crb_layout layout;
} crb_conv2d_desc;

// Batch norm over (n, h, w) per channel c. gamma/beta/running/save tensors: (c), always float32
// for float32/f16/bf16 inputs and float64 for float64 inputs.
typedef struct crb_bn_desc {
  int n, c, h, w;
  double eps;
  double momentum;  // running = (1 - momentum) * running + momentum * batch_stat
  crb_dtype dtype;
  crb_layout layout;
} crb_bn_desc;

// Max pooling / adaptive average pooling. x: (n, c, h, w), y: (n, c, out_h, out_w)
typedef struct crb_pool_desc {
  int n, c, h, w;
  int kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w;  // unused by adaptive avg
  int out_h, out_w;
  crb_dtype dtype;
  crb_layout layout;
} crb_pool_desc;

// Linear, y = x W^T + b. x: (m, k), W: (n, k), b: (n), y: (m, n)
typedef struct crb_linear_desc {
  int m, k, n;
  crb_dtype dtype;
} crb_linear_desc;

// One parameter of the fused SGD update. momentum_buf is null when momentum == 0.
typedef struct crb_sgd_param {
  void* param;
  const void* grad;
  void* momentum_buf;
  int64_t numel;
  int init_momentum;  // 1 on the first step of this buffer: buf = grad (PyTorch), else buf = m*buf + (1-d)*grad
} crb_sgd_param;

typedef struct crb_sgd_desc {
  double lr, momentum, dampening, weight_decay;
  int nesterov;
  int maximize;
  crb_dtype dtype;
} crb_sgd_desc;

// uint8 images (n, c, h, w) -> float (n, c, out_h, out_w): bilinear resize (align_corners=False,
// no antialias, as torch.nn.functional.interpolate), then (v / 255 - mean) / std.
typedef struct crb_image_desc {
  int n, c, h, w, out_h, out_w;
  double mean, std;
  crb_dtype dtype;  // of the output
} crb_image_desc;

typedef struct crb_read crb_read;  // an in-flight device -> host copy

// What a backend does natively, so callers ask the table instead of comparing device names.
#define CRB_LAYOUT_BIT(layout) (1u << (unsigned)(layout))
typedef struct crb_capabilities {
  uint32_t layouts;           // CRB_LAYOUT_BIT of each layout the ops compute in (others are converted first)
  int maxpool_keeps_indices;  // maxpool2d_forward fills `indices`; else backward recomputes the argmax
  int fused_bn_add_relu;      // the bn_add_relu_* entries exist (reserve_size still decides per descriptor)
  int fused_bn_relu;          // bn_relu_* compute (else they return CRB_ERR_UNSUPPORTED)
  int host_visible_memory;    // alloc returns host memory the addon may read and write directly
} crb_capabilities;

typedef struct crb_backend {
  uint32_t abi_version;  // CRB_ABI_VERSION
  const char* name;      // "cpu" or "cuda"
  crb_capabilities capabilities;
  const crb_error* (*last_error)(void);  // the calling thread's last failure
  int (*device_count)(void);

  // Every other entry returns crb_status: one row each in ops.def, which documents them.
#define CRB_OP(name, params, args) crb_status(*name) params;
#include "ops.def"
#undef CRB_OP
} crb_backend;

// The CUDA shared library exports this symbol (CRB_CUDA_ENTRY_POINT). It returns null and
// fills `why` when the backend cannot run (no driver, no device, cuDNN missing).
typedef const crb_backend* (*crb_cuda_entry_fn)(char* why, size_t why_len);

// The CPU backend, always linked into the addon.
const crb_backend* crb_cpu_backend(void);

#ifdef __cplusplus
}
#endif

#endif  // CRB_BACKEND_API_H
