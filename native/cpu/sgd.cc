// TODO: implemented next; every entry reports CRB_ERR_UNSUPPORTED for now.
#include "errors.h"
#include "ops.h"

namespace crb_cpu {

crb_status sgd_step(const crb_sgd_desc* d, const crb_sgd_param* params, int count) { return fail(CRB_ERR_UNSUPPORTED, "sgd_step", "not implemented yet"); }

}  // namespace crb_cpu
