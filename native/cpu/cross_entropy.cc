// TODO: implemented next; every entry reports CRB_ERR_UNSUPPORTED for now.
#include "errors.h"
#include "ops.h"

namespace crb_cpu {

crb_status cross_entropy_forward(int n, int classes, crb_dtype dtype, const void* logits, const int32_t* labels, void* loss_out, void* probs) { return fail(CRB_ERR_UNSUPPORTED, "cross_entropy_forward", "not implemented yet"); }
crb_status cross_entropy_backward(int n, int classes, crb_dtype dtype, const void* probs, const int32_t* labels, const void* dloss, void* dlogits) { return fail(CRB_ERR_UNSUPPORTED, "cross_entropy_backward", "not implemented yet"); }
crb_status accuracy_count(int n, int classes, crb_dtype dtype, const void* logits, const int32_t* labels, int32_t* correct) { return fail(CRB_ERR_UNSUPPORTED, "accuracy_count", "not implemented yet"); }

}  // namespace crb_cpu
