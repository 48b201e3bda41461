// Every entry of the CPU backend, declared from the manifest (../backend/ops.def, which names
// the file of each op family); backend.cc fills the function table from the same rows.
#ifndef CRB_CPU_OPS_H
#define CRB_CPU_OPS_H

#include "../backend/backend_api.h"

namespace crb_cpu {

#define CRB_OP(name, params, args) crb_status name params;
#include "../backend/ops.def"
#undef CRB_OP

}  // namespace crb_cpu

#endif  // CRB_CPU_OPS_H
