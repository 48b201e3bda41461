// Names and sizes of the ABI's enums, in one place for the addon and both backends (plain C
// inline functions, so nvcc and node-gyp builds include the same definitions).
#ifndef CRB_BACKEND_NAMES_H
#define CRB_BACKEND_NAMES_H

#include "backend_api.h"

#ifdef __cplusplus
extern "C" {
#endif

static inline const char* crb_status_name(crb_status code) {
  switch (code) {
    case CRB_OK: return "CRB_OK";
    case CRB_ERR_INVALID: return "CRB_ERR_INVALID";
    case CRB_ERR_OOM: return "CRB_ERR_OOM";
    case CRB_ERR_CUDA: return "CRB_ERR_CUDA";
    case CRB_ERR_CUDNN: return "CRB_ERR_CUDNN";
    case CRB_ERR_UNSUPPORTED: return "CRB_ERR_UNSUPPORTED";
    case CRB_ERR_INTERNAL: return "CRB_ERR_INTERNAL";
  }
  return "CRB_ERR_UNKNOWN";
}

static inline const char* crb_dtype_name(crb_dtype dtype) {
  switch (dtype) {
    case CRB_F32: return "float32";
    case CRB_F64: return "float64";
    case CRB_F16: return "float16";
    case CRB_BF16: return "bfloat16";
    case CRB_I32: return "int32";
    case CRB_I64: return "int64";
    case CRB_U8: return "uint8";
  }
  return "unknown dtype";
}

/* Bytes per element; 0 for a value outside the enum. */
static inline size_t crb_dtype_size(crb_dtype dtype) {
  switch (dtype) {
    case CRB_F64: case CRB_I64: return 8;
    case CRB_F32: case CRB_I32: return 4;
    case CRB_F16: case CRB_BF16: return 2;
    case CRB_U8: return 1;
  }
  return 0;
}

static inline const char* crb_layout_name(crb_layout layout) {
  switch (layout) {
    case CRB_NCHW: return "NCHW";
    case CRB_NHWC: return "NHWC";
  }
  return "unknown layout";
}

#ifdef __cplusplus
}
#endif

#endif  // CRB_BACKEND_NAMES_H
