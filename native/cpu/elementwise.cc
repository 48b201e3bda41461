// Elementwise ops: fill, cast (every dtype pair, round-to-nearest-even into float16/bfloat16),
// add, axpby, sum. Arithmetic ops take float32, float64, int32 and int64.
#include <cmath>
#include <cstring>
#include <limits>

#include "dtype.h"
#include "ops.h"
#include "threadpool.h"

namespace crb_cpu {

namespace {
constexpr int64_t kGrain = 1 << 15;

struct Half {
  uint16_t bits;
};
struct BFloat16 {
  uint16_t bits;
};

inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// IEEE binary16 from float, round to nearest even (what c10::Half does), with subnormals.
inline uint16_t float_to_half(float f) {
  const uint32_t x = float_bits(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) return uint16_t(sign | (abs > 0x7f800000u ? 0x7e00u : 0x7c00u));  // NaN / inf
  if (abs >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // rounds to >= 65520: overflow to inf
  if (abs < 0x38800000u) {
    // subnormal half (or zero): scale so the 10 mantissa bits land in the integer part
    const float scaled = bits_float(abs) * 16777216.0f;  // 2^24, exact
    // nearbyint rounds half to even under the default rounding mode
    return uint16_t(sign | uint32_t(std::nearbyint(scaled)));
  }
  const uint32_t mant_odd = (abs >> 13) & 1u;
  const uint32_t rounded = abs + 0xfffu + mant_odd;  // round to nearest even at bit 13
  return uint16_t(sign | ((rounded - 0x38000000u) >> 13));
}

inline float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  if (exp == 0) {
    const float v = float(mant) * (1.0f / 16777216.0f);  // mant * 2^-24
    return sign ? -v : v;
  }
  if (exp == 31) return bits_float(sign | 0x7f800000u | (mant << 13));
  return bits_float(sign | ((exp + 112u) << 23) | (mant << 13));
}

inline uint16_t float_to_bf16(float f) {
  const uint32_t x = float_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return 0x7fc0u;  // NaN stays NaN
  return uint16_t((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

inline float bf16_to_float(uint16_t b) { return bits_float(uint32_t(b) << 16); }

// Every value goes through double (exact for all types here) except float16/bfloat16, which go
// through float like PyTorch's conversions.
template <class T>
inline double to_double(T v) { return double(v); }
template <>
inline double to_double(Half v) { return half_to_float(v.bits); }
template <>
inline double to_double(BFloat16 v) { return bf16_to_float(v.bits); }

template <class T>
inline T from_double(double v) {
  if constexpr (std::is_integral<T>::value) {
    // float -> integer truncates toward zero like PyTorch; NaN and out-of-range values are
    // undefined there, here they become 0 / wrap instead of invoking UB.
    if (std::isnan(v)) return T(0);
    if (std::is_same<T, uint8_t>::value) {
      if (v <= -9.2e18 || v >= 9.2e18) return T(0);
      return T(uint8_t(int64_t(v)));
    }
    if (v <= double(std::numeric_limits<T>::min())) return std::numeric_limits<T>::min();
    if (v >= double(std::numeric_limits<T>::max())) return std::numeric_limits<T>::max();
    return T(v);
  } else {
    return T(v);
  }
}
template <>
inline Half from_double(double v) { return {float_to_half(float(v))}; }
template <>
inline BFloat16 from_double(double v) { return {float_to_bf16(float(v))}; }

template <class Fn>
crb_status dispatch_any(crb_dtype dtype, const char* op, Fn&& fn) {
  switch (dtype) {
    case CRB_F32: return fn(float{});
    case CRB_F64: return fn(double{});
    case CRB_F16: return fn(Half{});
    case CRB_BF16: return fn(BFloat16{});
    case CRB_I32: return fn(int32_t{});
    case CRB_I64: return fn(int64_t{});
    case CRB_U8: return fn(uint8_t{});
  }
  return fail(CRB_ERR_INVALID, op, "unknown dtype %d", (int)dtype);
}

template <class Fn>
crb_status dispatch_arith(crb_dtype dtype, const char* op, Fn&& fn) {
  switch (dtype) {
    case CRB_F32: return fn(float{});
    case CRB_F64: return fn(double{});
    case CRB_I32: return fn(int32_t{});
    case CRB_I64: return fn(int64_t{});
    default:
      return fail(CRB_ERR_UNSUPPORTED, op, "dtype %s is not supported (float32, float64, int32 or int64)",
                  crb_dtype_name(dtype));
  }
}

crb_status check_numel(int64_t numel, const char* op) {
  if (numel < 0) return fail(CRB_ERR_INVALID, op, "numel must be >= 0, got %lld", (long long)numel);
  return CRB_OK;
}

template <class D, class S>
void cast_loop(D* dst, const S* src, int64_t numel) {
  // pointers captured by value: see relu.cc (-fno-strict-aliasing would reload them per element)
  parallel_for(numel, kGrain, [dst, src](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) {
      if constexpr (std::is_same<D, float>::value && std::is_same<S, Half>::value) {
        dst[i] = half_to_float(src[i].bits);
      } else if constexpr (std::is_same<D, float>::value && std::is_same<S, BFloat16>::value) {
        dst[i] = bf16_to_float(src[i].bits);
      } else if constexpr (std::is_same<D, Half>::value && std::is_same<S, float>::value) {
        dst[i].bits = float_to_half(src[i]);
      } else if constexpr (std::is_same<D, BFloat16>::value && std::is_same<S, float>::value) {
        dst[i].bits = float_to_bf16(src[i]);
      } else if constexpr (std::is_arithmetic<D>::value && std::is_arithmetic<S>::value &&
                           std::is_floating_point<S>::value == std::is_floating_point<D>::value) {
        dst[i] = D(src[i]);  // float<->float and int<->int: plain C++ conversion, like PyTorch
      } else {
        dst[i] = from_double<D>(to_double<S>(src[i]));
      }
    }
  });
}

}  // namespace

crb_status fill(void* dst, int64_t numel, crb_dtype dtype, double value) {
  if (crb_status st = check_numel(numel, "fill")) return st;
  return dispatch_any(dtype, "fill", [&](auto zero) {
    using T = decltype(zero);
    const T v = from_double<T>(value);
    T* p = static_cast<T*>(dst);
    parallel_for(numel, kGrain, [p, v](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i) p[i] = v;
    });
    return CRB_OK;
  });
}

crb_status cast(void* dst, crb_dtype dst_dtype, const void* src, crb_dtype src_dtype, int64_t numel) {
  if (crb_status st = check_numel(numel, "cast")) return st;
  return dispatch_any(dst_dtype, "cast", [&](auto dzero) {
    using D = decltype(dzero);
    return dispatch_any(src_dtype, "cast", [&](auto szero) {
      using S = decltype(szero);
      if constexpr (std::is_same<D, S>::value) {
        std::memmove(dst, src, size_t(numel) * sizeof(D));
      } else {
        cast_loop<D, S>(static_cast<D*>(dst), static_cast<const S*>(src), numel);
      }
      return CRB_OK;
    });
  });
}

crb_status add(void* out, const void* a, const void* b, int64_t numel, crb_dtype dtype) {
  if (crb_status st = check_numel(numel, "add")) return st;
  return dispatch_arith(dtype, "add", [&](auto zero) {
    using T = decltype(zero);
    T* o = static_cast<T*>(out);
    const T* x = static_cast<const T*>(a);
    const T* y = static_cast<const T*>(b);
    parallel_for(numel, kGrain, [o, x, y](int64_t s, int64_t e, int) {
      T* const out = o;  // locals, not closure members: see relu.cc
      const T* const lhs = x;
      const T* const rhs = y;
      for (int64_t i = s; i < e; ++i) out[i] = lhs[i] + rhs[i];
    });
    return CRB_OK;
  });
}

crb_status axpby(void* y, const void* x, double alpha, double beta, int64_t numel, crb_dtype dtype) {
  if (crb_status st = check_numel(numel, "axpby")) return st;
  return dispatch_arith(dtype, "axpby", [&](auto zero) {
    using T = decltype(zero);
    T* yy = static_cast<T*>(y);
    const T* xx = static_cast<const T*>(x);
    const T a = T(alpha), b = T(beta);
    parallel_for(numel, kGrain, [yy, xx, a, b, beta](int64_t s, int64_t e, int) {
      T* const out = yy;  // locals, not closure members: see relu.cc
      const T* const in = xx;
      const T ca = a, cb = b;
      if (beta == 0) {
        for (int64_t i = s; i < e; ++i) out[i] = ca * in[i];  // y may hold garbage: never read it
      } else {
        for (int64_t i = s; i < e; ++i) out[i] = ca * in[i] + cb * out[i];
      }
    });
    return CRB_OK;
  });
}

crb_status sum(void* out, const void* x, int64_t numel, crb_dtype dtype) {
  if (crb_status st = check_numel(numel, "sum")) return st;
  return dispatch_arith(dtype, "sum", [&](auto zero) {
    using T = decltype(zero);
    using Acc = typename std::conditional<std::is_floating_point<T>::value, double, int64_t>::type;
    const T* p = static_cast<const T*>(x);
    Acc parts[1024] = {};
    parallel_for(numel, kGrain, [p, &parts](int64_t s, int64_t e, int thread) {
      Acc total = 0;
      for (int64_t i = s; i < e; ++i) total += p[i];  // float32 widened to double: no drift
      parts[thread] = total;
    });
    Acc total = 0;
    for (int t = 0; t < num_threads() && t < 1024; ++t) total += parts[t];
    *static_cast<T*>(out) = T(total);
    return CRB_OK;
  });
}

}  // namespace crb_cpu
