#include "errors.h"

#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace crb_cpu {

namespace {
thread_local crb_error tls_error = {CRB_OK, "", "", ""};
}

crb_status fail(crb_status code, const char* op, const char* fmt, ...) {
  tls_error.code = code;
  snprintf(tls_error.op, sizeof tls_error.op, "%s", op);
  snprintf(tls_error.status, sizeof tls_error.status, "%s", status_name(code));
  va_list args;
  va_start(args, fmt);
  vsnprintf(tls_error.message, sizeof tls_error.message, fmt, args);
  va_end(args);
  return code;
}

const crb_error* last_error() { return &tls_error; }

const char* status_name(crb_status code) {
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

const char* dtype_name(crb_dtype dtype) {
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

}  // namespace crb_cpu
