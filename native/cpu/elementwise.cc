// TODO: implemented next; every entry reports CRB_ERR_UNSUPPORTED for now.
#include "errors.h"
#include "ops.h"

namespace crb_cpu {

crb_status fill(void* dst, int64_t numel, crb_dtype dtype, double value) { return fail(CRB_ERR_UNSUPPORTED, "fill", "not implemented yet"); }
crb_status cast(void* dst, crb_dtype dst_dtype, const void* src, crb_dtype src_dtype, int64_t numel) { return fail(CRB_ERR_UNSUPPORTED, "cast", "not implemented yet"); }
crb_status add(void* out, const void* a, const void* b, int64_t numel, crb_dtype dtype) { return fail(CRB_ERR_UNSUPPORTED, "add", "not implemented yet"); }
crb_status axpby(void* y, const void* x, double alpha, double beta, int64_t numel, crb_dtype dtype) { return fail(CRB_ERR_UNSUPPORTED, "axpby", "not implemented yet"); }
crb_status sum(void* out, const void* x, int64_t numel, crb_dtype dtype) { return fail(CRB_ERR_UNSUPPORTED, "sum", "not implemented yet"); }

}  // namespace crb_cpu
