#include "host_convert.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "dtype.h"

namespace crb {

float HalfToFloat(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);  // inf / NaN
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {
    // Subnormal half: normalize into a float32 normal.
    int e = -1;
    do {
      ++e;
      mant <<= 1;
    } while ((mant & 0x400) == 0);
    bits = sign | uint32_t(112 - e) << 23 | ((mant & 0x3ff) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t FloatToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint16_t sign = uint16_t((x >> 16) & 0x8000);
  uint32_t absx = x & 0x7fffffffu;
  if (absx >= 0x7f800000u) return sign | (absx > 0x7f800000u ? 0x7e00 : 0x7c00);  // NaN / inf
  if (absx >= 0x477ff000u) return sign | 0x7c00;  // rounds to >= 65520: overflow to inf
  if (absx < 0x38800000u) {
    // Result is subnormal (or zero): shift the mantissa with the implicit bit, round to even.
    if (absx < 0x33000000u) return sign;  // below half of the smallest subnormal
    uint32_t e = absx >> 23;
    uint32_t mant = (absx & 0x7fffff) | 0x800000;
    uint32_t shift = 126 - e;  // 113 - e + 13
    uint32_t half = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t midpoint = 1u << (shift - 1);
    if (rem > midpoint || (rem == midpoint && (half & 1))) ++half;
    return sign | uint16_t(half);
  }
  uint32_t rounded = absx + 0xfff + ((absx >> 13) & 1);  // round to nearest even at bit 13
  return sign | uint16_t((rounded - 0x38000000u) >> 13);
}

float BFloat16ToFloat(uint16_t b) {
  uint32_t bits = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t FloatToBFloat16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return uint16_t((x >> 16) | 0x40);  // quiet NaN
  x += 0x7fff + ((x >> 16) & 1);
  return uint16_t(x >> 16);
}

namespace {

double LoadDouble(const void* src, crb_dtype dtype, int64_t i) {
  switch (dtype) {
    case CRB_F32: return static_cast<const float*>(src)[i];
    case CRB_F64: return static_cast<const double*>(src)[i];
    case CRB_F16: return HalfToFloat(static_cast<const uint16_t*>(src)[i]);
    case CRB_BF16: return BFloat16ToFloat(static_cast<const uint16_t*>(src)[i]);
    case CRB_I32: return static_cast<const int32_t*>(src)[i];
    case CRB_I64: return double(static_cast<const int64_t*>(src)[i]);
    case CRB_U8: return static_cast<const uint8_t*>(src)[i];
  }
  return 0;
}

int64_t LoadInt(const void* src, crb_dtype dtype, int64_t i) {
  switch (dtype) {
    case CRB_I32: return static_cast<const int32_t*>(src)[i];
    case CRB_I64: return static_cast<const int64_t*>(src)[i];
    case CRB_U8: return static_cast<const uint8_t*>(src)[i];
    default: break;
  }
  double v = LoadDouble(src, dtype, i);
  if (std::isnan(v)) return 0;
  if (v >= 9.2233720368547758e18) return std::numeric_limits<int64_t>::max();
  if (v <= -9.2233720368547758e18) return std::numeric_limits<int64_t>::min();
  return int64_t(v);  // truncates toward zero
}

void StoreFloat(void* dst, crb_dtype dtype, int64_t i, double v) {
  switch (dtype) {
    case CRB_F32: static_cast<float*>(dst)[i] = float(v); break;
    case CRB_F64: static_cast<double*>(dst)[i] = v; break;
    case CRB_F16: static_cast<uint16_t*>(dst)[i] = FloatToHalf(float(v)); break;
    case CRB_BF16: static_cast<uint16_t*>(dst)[i] = FloatToBFloat16(float(v)); break;
    default: break;
  }
}

void StoreInt(void* dst, crb_dtype dtype, int64_t i, int64_t v) {
  switch (dtype) {
    // Narrowing wraps like a C cast (and like torch's integer casts).
    case CRB_I32: static_cast<int32_t*>(dst)[i] = int32_t(uint32_t(uint64_t(v))); break;
    case CRB_I64: static_cast<int64_t*>(dst)[i] = v; break;
    case CRB_U8: static_cast<uint8_t*>(dst)[i] = uint8_t(uint64_t(v)); break;
    default: break;
  }
}

}  // namespace

void ConvertHost(void* dst, crb_dtype dst_dtype, const void* src, crb_dtype src_dtype, int64_t numel) {
  if (numel <= 0) return;
  if (dst_dtype == src_dtype) {
    std::memmove(dst, src, size_t(numel) * DTypeSize(dst_dtype));
    return;
  }
  if (IsFloatDType(dst_dtype)) {
    for (int64_t i = 0; i < numel; ++i) StoreFloat(dst, dst_dtype, i, LoadDouble(src, src_dtype, i));
  } else {
    for (int64_t i = 0; i < numel; ++i) StoreInt(dst, dst_dtype, i, LoadInt(src, src_dtype, i));
  }
}

}  // namespace crb
