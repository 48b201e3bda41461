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

// Element access per dtype. Floats pass through double; integers through int64 so int64 values
// survive exactly. The (src, dst) pair is dispatched once per call, not per element.
struct F32 { using T = float; static constexpr bool kFloat = true; static double Get(const T* p, int64_t i) { return p[i]; } static void Put(T* p, int64_t i, double v) { p[i] = float(v); } };
struct F64 { using T = double; static constexpr bool kFloat = true; static double Get(const T* p, int64_t i) { return p[i]; } static void Put(T* p, int64_t i, double v) { p[i] = v; } };
struct F16 { using T = uint16_t; static constexpr bool kFloat = true; static double Get(const T* p, int64_t i) { return HalfToFloat(p[i]); } static void Put(T* p, int64_t i, double v) { p[i] = FloatToHalf(float(v)); } };
struct BF16 { using T = uint16_t; static constexpr bool kFloat = true; static double Get(const T* p, int64_t i) { return BFloat16ToFloat(p[i]); } static void Put(T* p, int64_t i, double v) { p[i] = FloatToBFloat16(float(v)); } };
// Narrowing integer stores wrap like a C cast (and like torch's integer casts).
struct I32 { using T = int32_t; static constexpr bool kFloat = false; static int64_t Get(const T* p, int64_t i) { return p[i]; } static void Put(T* p, int64_t i, int64_t v) { p[i] = int32_t(uint32_t(uint64_t(v))); } };
struct I64 { using T = int64_t; static constexpr bool kFloat = false; static int64_t Get(const T* p, int64_t i) { return p[i]; } static void Put(T* p, int64_t i, int64_t v) { p[i] = v; } };
struct U8 { using T = uint8_t; static constexpr bool kFloat = false; static int64_t Get(const T* p, int64_t i) { return p[i]; } static void Put(T* p, int64_t i, int64_t v) { p[i] = uint8_t(uint64_t(v)); } };

// Float -> integer truncates toward zero and saturates; NaN -> 0.
int64_t FloatToInt(double v) {
  if (std::isnan(v)) return 0;
  if (v >= 9.2233720368547758e18) return std::numeric_limits<int64_t>::max();
  if (v <= -9.2233720368547758e18) return std::numeric_limits<int64_t>::min();
  return int64_t(v);
}

template <typename Src, typename Dst>
void ConvertLoop(void* dst_raw, const void* src_raw, int64_t numel) {
  auto* dst = static_cast<typename Dst::T*>(dst_raw);
  const auto* src = static_cast<const typename Src::T*>(src_raw);
  for (int64_t i = 0; i < numel; ++i) {
    if constexpr (Dst::kFloat) {
      Dst::Put(dst, i, double(Src::Get(src, i)));
    } else if constexpr (Src::kFloat) {
      Dst::Put(dst, i, FloatToInt(Src::Get(src, i)));
    } else {
      Dst::Put(dst, i, Src::Get(src, i));
    }
  }
}

template <typename Src>
void ConvertFrom(void* dst, crb_dtype dst_dtype, const void* src, int64_t numel) {
  switch (dst_dtype) {
    case CRB_F32: return ConvertLoop<Src, F32>(dst, src, numel);
    case CRB_F64: return ConvertLoop<Src, F64>(dst, src, numel);
    case CRB_F16: return ConvertLoop<Src, F16>(dst, src, numel);
    case CRB_BF16: return ConvertLoop<Src, BF16>(dst, src, numel);
    case CRB_I32: return ConvertLoop<Src, I32>(dst, src, numel);
    case CRB_I64: return ConvertLoop<Src, I64>(dst, src, numel);
    case CRB_U8: return ConvertLoop<Src, U8>(dst, src, numel);
  }
}

}  // namespace

void ConvertHost(void* dst, crb_dtype dst_dtype, const void* src, crb_dtype src_dtype, int64_t numel) {
  if (numel <= 0) return;
  if (dst_dtype == src_dtype) {
    std::memmove(dst, src, size_t(numel) * crb_dtype_size(dst_dtype));
    return;
  }
  switch (src_dtype) {
    case CRB_F32: return ConvertFrom<F32>(dst, dst_dtype, src, numel);
    case CRB_F64: return ConvertFrom<F64>(dst, dst_dtype, src, numel);
    case CRB_F16: return ConvertFrom<F16>(dst, dst_dtype, src, numel);
    case CRB_BF16: return ConvertFrom<BF16>(dst, dst_dtype, src, numel);
    case CRB_I32: return ConvertFrom<I32>(dst, dst_dtype, src, numel);
    case CRB_I64: return ConvertFrom<I64>(dst, dst_dtype, src, numel);
    case CRB_U8: return ConvertFrom<U8>(dst, dst_dtype, src, numel);
  }
}

}  // namespace crb
