#include "errors.h"

#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "../backend/names.h"

namespace crb_cpu {

namespace {
thread_local crb_error tls_error = {CRB_OK, "", "", ""};
}

crb_status fail(crb_status code, const char* op, const char* fmt, ...) {
  tls_error.code = code;
  snprintf(tls_error.op, sizeof tls_error.op, "%s", op);
  snprintf(tls_error.status, sizeof tls_error.status, "%s", crb_status_name(code));
  va_list args;
  va_start(args, fmt);
  vsnprintf(tls_error.message, sizeof tls_error.message, fmt, args);
  va_end(args);
  return code;
}

const crb_error* last_error() { return &tls_error; }

}  // namespace crb_cpu
