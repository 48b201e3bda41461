// TODO: implemented next; every entry reports CRB_ERR_UNSUPPORTED for now.
#include "errors.h"
#include "ops.h"

namespace crb_cpu {

crb_status maxpool2d_forward(const crb_pool_desc* d, const void* x, void* y, int32_t* indices) { return fail(CRB_ERR_UNSUPPORTED, "maxpool2d_forward", "not implemented yet"); }
crb_status maxpool2d_backward(const crb_pool_desc* d, const void* x, const void* y, const void* dy, const int32_t* indices, void* dx) { return fail(CRB_ERR_UNSUPPORTED, "maxpool2d_backward", "not implemented yet"); }
crb_status adaptive_avgpool2d_forward(const crb_pool_desc* d, const void* x, void* y) { return fail(CRB_ERR_UNSUPPORTED, "adaptive_avgpool2d_forward", "not implemented yet"); }
crb_status adaptive_avgpool2d_backward(const crb_pool_desc* d, const void* dy, void* dx) { return fail(CRB_ERR_UNSUPPORTED, "adaptive_avgpool2d_backward", "not implemented yet"); }

}  // namespace crb_cpu
