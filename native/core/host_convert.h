// Element conversion on the host, for data that crosses the JS boundary or moves between devices:
// the backends' `cast` may not cover every pair, but host memory is always reachable here.
#pragma once

#include <cstdint>

#include "../backend/backend_api.h"

namespace crb {

// IEEE binary16 and bfloat16 <-> float32, round to nearest even; NaN stays NaN.
float HalfToFloat(uint16_t h);
uint16_t FloatToHalf(float f);
float BFloat16ToFloat(uint16_t b);
uint16_t FloatToBFloat16(float f);

// dst[i] = (dst_dtype) src[i]. Float -> integer truncates toward zero and saturates (NaN -> 0);
// integer -> integer goes through int64 so int64 values survive exactly.
void ConvertHost(void* dst, crb_dtype dst_dtype, const void* src, crb_dtype src_dtype, int64_t numel);

}  // namespace crb
