// Device -> host reads into JS typed arrays. float16/bfloat16 are widened to Float32Array,
// int64 reads into BigInt64Array.
#pragma once

#include "napi_config.h"

#include <memory>
#include <vector>

#include "../backend/backend_api.h"
#include "storage.h"

namespace crb {

// Copies `numel` elements of `dtype` from backend memory into host memory of the same dtype.
// Synchronous (read_begin + read_finish); returns the failing status and sets *abi_op.
crb_status ReadToHost(const crb_backend* backend, const void* src, size_t nbytes, void* host_dst,
                      const char** abi_op);

}  // namespace crb
