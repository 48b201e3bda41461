// The one interface every compute backend implements (CPU in the addon, CUDA in its own shared
// library). It is plain C so the CUDA library, built by nvcc/CMake, and the addon, built by
// node-gyp, can be compiled by different toolchains and still agree: the addon checks
// `abi_version` before it calls anything else.
//
// Conventions
// - Every op returns crb_status; on failure `last_error()` describes it (per thread).
// - Pointers are device pointers of the backend (host memory for the CPU backend), contiguous.
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

#define CRB_ABI_VERSION 3  // 3: crb_capabilities in the table
#define CRB_CUDA_ENTRY_POINT "crb_cuda_backend_v1"

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
  CRB_OPT_NUM_THREADS = 3      // CPU worker threads (CPU backend only)
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
  int host_visible_memory;    // alloc returns host memory the addon may read and write directly
} crb_capabilities;

typedef struct crb_backend {
  uint32_t abi_version;  // CRB_ABI_VERSION
  const char* name;      // "cpu" or "cuda"
  crb_capabilities capabilities;

  // --- lifetime, devices, errors
  crb_status (*init)(void);  // idempotent
  const crb_error* (*last_error)(void);
  int (*device_count)(void);
  crb_status (*device_info)(int device, crb_device_info* out);
  crb_status (*set_option)(crb_option option, int64_t value);
  crb_status (*synchronize)(void);

  // --- memory
  crb_status (*alloc)(size_t bytes, void** out);
  crb_status (*free)(void* ptr);
  crb_status (*memory_stats)(crb_memory_stats* out);
  crb_status (*empty_cache)(void);
  crb_status (*copy_from_host)(void* dst, const void* host_src, size_t bytes);  // blocking
  crb_status (*copy_device)(void* dst, const void* src, size_t bytes);
  // Starts a device -> host copy ordered after all work queued so far; read_finish waits for it
  // (it may be called from another thread), copies into host_dst, and frees the read.
  crb_status (*read_begin)(const void* src, size_t bytes, crb_read** out);
  crb_status (*read_finish)(crb_read* read, void* host_dst);

  // --- elementwise (numel elements of dtype)
  crb_status (*fill)(void* dst, int64_t numel, crb_dtype dtype, double value);
  crb_status (*cast)(void* dst, crb_dtype dst_dtype, const void* src, crb_dtype src_dtype, int64_t numel);
  crb_status (*add)(void* out, const void* a, const void* b, int64_t numel, crb_dtype dtype);
  // y = alpha * x + beta * y
  crb_status (*axpby)(void* y, const void* x, double alpha, double beta, int64_t numel, crb_dtype dtype);
  crb_status (*relu_forward)(void* y, const void* x, int64_t numel, crb_dtype dtype);
  // dx = dy * (y > 0); y is the forward output
  crb_status (*relu_backward)(void* dx, const void* dy, const void* y, int64_t numel, crb_dtype dtype);
  // Sum of all elements into out[0] (same dtype).
  crb_status (*sum)(void* out, const void* x, int64_t numel, crb_dtype dtype);

  // --- convolution. b may be null. dw, db are overwritten (not accumulated).
  crb_status (*conv2d_forward)(const crb_conv2d_desc* d, const void* x, const void* w, const void* b, void* y);
  crb_status (*conv2d_backward_data)(const crb_conv2d_desc* d, const void* dy, const void* w, void* dx);
  crb_status (*conv2d_backward_filter)(const crb_conv2d_desc* d, const void* x, const void* dy, void* dw);
  crb_status (*conv2d_backward_bias)(const crb_conv2d_desc* d, const void* dy, void* db);

  // --- batch norm. running_mean/var may be null (no tracking). save_mean/save_invstd: (c),
  // the batch mean and 1/sqrt(biased var + eps), kept for backward.
  crb_status (*batchnorm_forward_train)(const crb_bn_desc* d, const void* x, const void* gamma, const void* beta,
                                        void* y, void* running_mean, void* running_var, void* save_mean,
                                        void* save_invstd);
  crb_status (*batchnorm_forward_eval)(const crb_bn_desc* d, const void* x, const void* gamma, const void* beta,
                                       const void* running_mean, const void* running_var, void* y);
  crb_status (*batchnorm_backward_train)(const crb_bn_desc* d, const void* x, const void* dy, const void* gamma,
                                         const void* save_mean, const void* save_invstd, void* dx, void* dgamma,
                                         void* dbeta);
  crb_status (*batchnorm_backward_eval)(const crb_bn_desc* d, const void* x, const void* dy, const void* gamma,
                                        const void* running_mean, const void* running_var, void* dx, void* dgamma,
                                        void* dbeta);

  // --- pooling. indices (int32, flat h*w offset of the max within its plane) may be null on
  // backends that recompute it from x and y.
  crb_status (*maxpool2d_forward)(const crb_pool_desc* d, const void* x, void* y, int32_t* indices);
  crb_status (*maxpool2d_backward)(const crb_pool_desc* d, const void* x, const void* y, const void* dy,
                                   const int32_t* indices, void* dx);
  crb_status (*adaptive_avgpool2d_forward)(const crb_pool_desc* d, const void* x, void* y);
  crb_status (*adaptive_avgpool2d_backward)(const crb_pool_desc* d, const void* dy, void* dx);

  // --- linear. b, dx, dw, db may be null (skipped).
  crb_status (*linear_forward)(const crb_linear_desc* d, const void* x, const void* w, const void* b, void* y);
  crb_status (*linear_backward)(const crb_linear_desc* d, const void* x, const void* w, const void* dy, void* dx,
                                void* dw, void* db);

  // --- softmax cross-entropy over (n, classes) logits with int32 labels in [0, classes).
  // loss_out[0] = mean over the batch; probs (n, classes) is saved for backward.
  crb_status (*cross_entropy_forward)(int n, int classes, crb_dtype dtype, const void* logits,
                                      const int32_t* labels, void* loss_out, void* probs);
  // dlogits = dloss[0] * (probs - onehot(labels)) / n
  crb_status (*cross_entropy_backward)(int n, int classes, crb_dtype dtype, const void* probs,
                                       const int32_t* labels, const void* dloss, void* dlogits);
  // correct[0] (int32) = number of rows whose argmax equals the label.
  crb_status (*accuracy_count)(int n, int classes, crb_dtype dtype, const void* logits, const int32_t* labels,
                               int32_t* correct);

  // --- optimizer: one fused update over all parameters (PyTorch torch.optim.SGD semantics).
  crb_status (*sgd_step)(const crb_sgd_desc* d, const crb_sgd_param* params, int count);

  // --- data: uint8 images -> normalized, resized float batch
  crb_status (*images_u8_to_float)(const crb_image_desc* d, const uint8_t* src, void* dst);

  // --- layout (ABI 2): copies an (n, c, h, w) tensor of any dtype from src_layout memory order
  // into dst_layout memory order (NCHW <-> NHWC; equal layouts copy).
  crb_status (*convert_layout)(void* dst, crb_layout dst_layout, const void* src, crb_layout src_layout, int n, int c,
                               int h, int w, crb_dtype dtype);

  // --- the fused tail of a residual block (ABI 2), training mode: y = relu(bn(x) + z).
  // bn_add_relu_reserve_size returns CRB_ERR_UNSUPPORTED when this backend cannot fuse for the
  // descriptor's layout and dtype (the caller then runs BN, add and ReLU one by one); otherwise
  // the bytes of `reserve`, which forward fills and backward reads. Entries may be null.
  crb_status (*bn_add_relu_reserve_size)(const crb_bn_desc* d, size_t* bytes);
  crb_status (*bn_add_relu_forward_train)(const crb_bn_desc* d, const void* x, const void* z, const void* gamma,
                                          const void* beta, void* y, void* running_mean, void* running_var,
                                          void* save_mean, void* save_invstd, void* reserve, size_t reserve_bytes);
  // dz is the gradient of the sum (after the ReLU); dx, dgamma, dbeta go through the BN.
  crb_status (*bn_add_relu_backward_train)(const crb_bn_desc* d, const void* x, const void* y, const void* dy,
                                           const void* gamma, const void* beta, const void* save_mean,
                                           const void* save_invstd, const void* reserve, size_t reserve_bytes,
                                           void* dx, void* dz, void* dgamma, void* dbeta);
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
