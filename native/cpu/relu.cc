// TODO: implemented next; every entry reports CRB_ERR_UNSUPPORTED for now.
#include "errors.h"
#include "ops.h"

namespace crb_cpu {

crb_status relu_forward(void* y, const void* x, int64_t numel, crb_dtype dtype) { return fail(CRB_ERR_UNSUPPORTED, "relu_forward", "not implemented yet"); }
crb_status relu_backward(void* dx, const void* dy, const void* y, int64_t numel, crb_dtype dtype) { return fail(CRB_ERR_UNSUPPORTED, "relu_backward", "not implemented yet"); }

}  // namespace crb_cpu
