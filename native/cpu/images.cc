// TODO: implemented next; every entry reports CRB_ERR_UNSUPPORTED for now.
#include "errors.h"
#include "ops.h"

namespace crb_cpu {

crb_status images_u8_to_float(const crb_image_desc* d, const uint8_t* src, void* dst) { return fail(CRB_ERR_UNSUPPORTED, "images_u8_to_float", "not implemented yet"); }

}  // namespace crb_cpu
