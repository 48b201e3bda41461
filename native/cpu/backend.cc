// The CPU backend's function table. The ops live in one file per op family (see ops.h).
#include <cstring>

#include "errors.h"
#include "ops.h"
#include "threadpool.h"

namespace crb_cpu {
namespace {

const crb_error* last_error_entry() { return last_error(); }

int device_count() { return 1; }

crb_status device_info(int device, crb_device_info* out) {
  if (device != 0) return fail(CRB_ERR_INVALID, "device_info", "device must be 0 on the CPU backend, got %d", device);
  if (!out) return fail(CRB_ERR_INVALID, "device_info", "out must not be null");
  std::memset(out, 0, sizeof *out);
  snprintf(out->name, sizeof out->name, "CPU (%d threads)", num_threads());
  out->multiprocessors = num_threads();
  return CRB_OK;
}

crb_status synchronize() { return CRB_OK; }  // every CPU op has finished when it returns

crb_backend make_table() {
  crb_backend t;
  std::memset(&t, 0, sizeof t);
  t.abi_version = CRB_ABI_VERSION;
  t.name = "cpu";
  // NCHW only (Note [channelsLast], binding/transfer.cc); the argmax is kept for backward; the
  // fused BN + add + ReLU runs for float32/float64; tensors live in host memory.
  t.capabilities.layouts = CRB_LAYOUT_BIT(CRB_NCHW);
  t.capabilities.maxpool_keeps_indices = 1;
  t.capabilities.fused_bn_add_relu = 1;
  t.capabilities.host_visible_memory = 1;
  t.init = init;
  t.last_error = last_error_entry;
  t.device_count = device_count;
  t.device_info = device_info;
  t.set_option = set_option;
  t.synchronize = synchronize;
  t.alloc = alloc;
  t.free = free_;
  t.memory_stats = memory_stats;
  t.empty_cache = empty_cache;
  t.copy_from_host = copy_from_host;
  t.copy_device = copy_device;
  t.read_begin = read_begin;
  t.read_finish = read_finish;
  t.fill = fill;
  t.cast = cast;
  t.add = add;
  t.axpby = axpby;
  t.relu_forward = relu_forward;
  t.relu_backward = relu_backward;
  t.sum = sum;
  t.conv2d_forward = conv2d_forward;
  t.conv2d_backward_data = conv2d_backward_data;
  t.conv2d_backward_filter = conv2d_backward_filter;
  t.conv2d_backward_bias = conv2d_backward_bias;
  t.batchnorm_forward_train = batchnorm_forward_train;
  t.batchnorm_forward_eval = batchnorm_forward_eval;
  t.batchnorm_backward_train = batchnorm_backward_train;
  t.batchnorm_backward_eval = batchnorm_backward_eval;
  t.maxpool2d_forward = maxpool2d_forward;
  t.maxpool2d_backward = maxpool2d_backward;
  t.adaptive_avgpool2d_forward = adaptive_avgpool2d_forward;
  t.adaptive_avgpool2d_backward = adaptive_avgpool2d_backward;
  t.linear_forward = linear_forward;
  t.linear_backward = linear_backward;
  t.cross_entropy_forward = cross_entropy_forward;
  t.cross_entropy_backward = cross_entropy_backward;
  t.accuracy_count = accuracy_count;
  t.sgd_step = sgd_step;
  t.images_u8_to_float = images_u8_to_float;
  t.convert_layout = convert_layout;
  t.bn_add_relu_reserve_size = bn_add_relu_reserve_size;
  t.bn_add_relu_forward_train = bn_add_relu_forward_train;
  t.bn_add_relu_backward_train = bn_add_relu_backward_train;
  return t;
}

}  // namespace

crb_status init() {
  thread_pool();  // creates the workers once
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
      return CRB_OK;  // GPU-only knobs: the CPU backend is always exact and deterministic
  }
  return fail(CRB_ERR_INVALID, "set_option", "unknown option %d", (int)option);
}

}  // namespace crb_cpu

extern "C" const crb_backend* crb_cpu_backend(void) {
  static const crb_backend table = crb_cpu::make_table();
  return &table;
}
