// The per-thread last error of the CUDA backend and the helpers every op reports through.
#include <cstdarg>
#include <cstring>

#include "../backend/names.h"
#include "common.h"

// Long messages are cut to the fixed-size fields of crb_error on purpose.
#pragma GCC diagnostic ignored "-Wformat-truncation"

namespace crb_cuda {
namespace {

thread_local crb_error tls_error = {CRB_OK, {0}, {0}, {0}};

void copy_truncated(char* dst, size_t cap, const char* src) {
  snprintf(dst, cap, "%s", src ? src : "");
}

crb_status record(crb_status code, const OpScope& scope, const char* status, const char* fmt, va_list ap) {
  crb_error& e = tls_error;
  e.code = code;
  copy_truncated(e.op, sizeof e.op, scope.op);
  copy_truncated(e.status, sizeof e.status, status);
  char detail[768];
  vsnprintf(detail, sizeof detail, fmt, ap);
  // The op has its own field (and callers print it first), so the message starts with the detail.
  if (scope.shapes[0])
    snprintf(e.message, sizeof e.message, "%s [%s]", detail, scope.shapes);
  else
    snprintf(e.message, sizeof e.message, "%s", detail);
  return code;
}

}  // namespace

OpScope::OpScope(const char* op_name, const char* fmt, ...) : op(op_name) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(shapes, sizeof shapes, fmt, ap);
  va_end(ap);
}

crb_status fail(crb_status code, const OpScope& scope, const char* status, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  crb_status st = record(code, scope, status, fmt, ap);
  va_end(ap);
  return st;
}

crb_status invalid(const OpScope& scope, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  crb_status st = record(CRB_ERR_INVALID, scope, "CRB_ERR_INVALID", fmt, ap);
  va_end(ap);
  return st;
}

crb_status unsupported(const OpScope& scope, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  crb_status st = record(CRB_ERR_UNSUPPORTED, scope, "CRB_ERR_UNSUPPORTED", fmt, ap);
  va_end(ap);
  return st;
}

crb_status cuda_failure(const OpScope& scope, cudaError_t err, const char* call, const char* file, int line) {
  // Clears the error if it is not sticky, so the next call does not report it again. A sticky
  // error (illegal address, ...) stays: the context is lost and every later call says so.
  (void)cudaGetLastError();
  const char* base = strrchr(file, '/');
  crb_status code = err == cudaErrorMemoryAllocation ? CRB_ERR_OOM : CRB_ERR_CUDA;
  return fail(code, scope, cudaGetErrorName(err), "%s failed: %s (%s, error %d) at %s:%d", call,
              cudaGetErrorString(err), cudaGetErrorName(err), static_cast<int>(err), base ? base + 1 : file, line);
}

const crb_error* last_error() { return &tls_error; }

void restore_error(const crb_error& saved) { tls_error = saved; }

void clear_error() {
  tls_error.code = CRB_OK;
  tls_error.op[0] = tls_error.status[0] = tls_error.message[0] = '\0';
}

bool is_float_dtype(crb_dtype dtype) {
  return dtype == CRB_F32 || dtype == CRB_F64 || dtype == CRB_F16 || dtype == CRB_BF16;
}

}  // namespace crb_cuda
