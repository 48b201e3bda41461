// TODO: implemented next; every entry reports CRB_ERR_UNSUPPORTED for now.
#include "errors.h"
#include "ops.h"

namespace crb_cpu {

crb_status conv2d_forward(const crb_conv2d_desc* d, const void* x, const void* w, const void* b, void* y) { return fail(CRB_ERR_UNSUPPORTED, "conv2d_forward", "not implemented yet"); }
crb_status conv2d_backward_data(const crb_conv2d_desc* d, const void* dy, const void* w, void* dx) { return fail(CRB_ERR_UNSUPPORTED, "conv2d_backward_data", "not implemented yet"); }
crb_status conv2d_backward_filter(const crb_conv2d_desc* d, const void* x, const void* dy, void* dw) { return fail(CRB_ERR_UNSUPPORTED, "conv2d_backward_filter", "not implemented yet"); }
crb_status conv2d_backward_bias(const crb_conv2d_desc* d, const void* dy, void* db) { return fail(CRB_ERR_UNSUPPORTED, "conv2d_backward_bias", "not implemented yet"); }

}  // namespace crb_cpu
