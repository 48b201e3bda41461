// TODO: implemented next; every entry reports CRB_ERR_UNSUPPORTED for now.
#include "errors.h"
#include "ops.h"

namespace crb_cpu {

crb_status linear_forward(const crb_linear_desc* d, const void* x, const void* w, const void* b, void* y) { return fail(CRB_ERR_UNSUPPORTED, "linear_forward", "not implemented yet"); }
crb_status linear_backward(const crb_linear_desc* d, const void* x, const void* w, const void* dy, void* dx, void* dw, void* db) { return fail(CRB_ERR_UNSUPPORTED, "linear_backward", "not implemented yet"); }

}  // namespace crb_cpu
