// The CPU backend's function table, built from the manifest (../backend/ops.def) by
// ../backend/backend_table.inc, every entry behind the exception guard both backends share
// (../backend/backend_guard.h). The ops live in one file per op family; the lifetime and device
// entries are here.
#include <cstring>

#include "../backend/backend_guard.h"
#include "errors.h"
#include "ops.h"
#include "threadpool.h"

namespace crb_cpu {

crb_status init() {
  thread_pool();  // creates the workers once
  return CRB_OK;
}

crb_status device_info(int device, crb_device_info* out) {
  if (device != 0) return fail(CRB_ERR_INVALID, "device_info", "device must be 0 on the CPU backend, got %d", device);
  if (!out) return fail(CRB_ERR_INVALID, "device_info", "out must not be null");
  std::memset(out, 0, sizeof *out);
  snprintf(out->name, sizeof out->name, "CPU (%d threads)", num_threads());
  out->multiprocessors = num_threads();
  return CRB_OK;
}

crb_status set_option(crb_option option, int64_t value) {
  switch (option) {
    case CRB_OPT_NUM_THREADS:
      if (value < 1 || value > 1024)
        return fail(CRB_ERR_INVALID, "set_option", "CRB_OPT_NUM_THREADS must be in [1, 1024], got %lld",
                    (long long)value);
      thread_pool().resize((int)value);
      return CRB_OK;
    case CRB_OPT_ALLOW_TF32:
    case CRB_OPT_CUDNN_BENCHMARK:
    case CRB_OPT_DETERMINISTIC:
    case CRB_OPT_MATMUL_ALLOW_TF32:
      return CRB_OK;  // GPU-only knobs: the CPU backend is always exact and deterministic
  }
  return fail(CRB_ERR_INVALID, "set_option", "unknown option %d", (int)option);
}

crb_status synchronize() { return CRB_OK; }  // every CPU op has finished when it returns

namespace {

int device_count() { return 1; }

// The guard's error setter. The CPU backend's `status` is always the code's name.
crb_status record_exception(crb_status code, const char* op, const char* status, const char* message) {
  (void)status;
  return fail(code, op, "%s", message);
}

#include "../backend/backend_table.inc"

// NCHW and NHWC (Note [NHWC convolution], cpu/conv2d.cc); the argmax is kept for backward; the
// fused BN + add + ReLU and BN + ReLU run for float32/float64; tensors live in host memory.
crb_capabilities capabilities() {
  crb_capabilities c{};
  c.layouts = CRB_LAYOUT_BIT(CRB_NCHW) | CRB_LAYOUT_BIT(CRB_NHWC);
  c.maxpool_keeps_indices = 1;
  c.fused_bn_add_relu = 1;
  c.fused_bn_relu = 1;
  c.host_visible_memory = 1;
  return c;
}

}  // namespace

}  // namespace crb_cpu

extern "C" const crb_backend* crb_cpu_backend(void) {
  static const crb_backend table = crb_cpu::make_backend_table("cpu", crb_cpu::capabilities());
  return &table;
}
