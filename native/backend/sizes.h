// Note [tensor size limits]
// The one place that says how large a tensor may be, and the overflow-safe computation of its
// element count and byte size. The addon checks every shape it is given (empty, full, ...) and
// every output shape it computes (conv, pooling, image resize, ...) with crb_check_shape before
// it allocates, so no kernel ever sees a size that wrapped around; both allocators refuse
// requests above CRB_MAX_ALLOC_BYTES so their size-class rounding cannot overflow either.
//
// - every dimension is at most CRB_MAX_DIM (2^31 - 1): the descriptors carry int fields;
// - numel is at most CRB_MAX_NUMEL (2^53): it stays exact as a JS number, and numel * 8 bytes
//   stays far below 2^63, so byte sizes and int64 element offsets in the kernels cannot wrap;
// - a 2-D plane (h * w) that a kernel indexes with int32 (conv taps, max-pool indices) is at
//   most CRB_MAX_PLANE (2^31 - 1) elements.
// A shape beyond these limits is impossible (RangeError); one within them that does not fit in
// memory is an allocation failure (OutOfMemoryError).
//
// Plain C inline functions, so nvcc and node-gyp builds share the same definitions.
#ifndef CRB_BACKEND_SIZES_H
#define CRB_BACKEND_SIZES_H

#include <stddef.h>
#include <stdint.h>

#include "names.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CRB_MAX_DIM INT64_C(2147483647)
#define CRB_MAX_NUMEL (INT64_C(1) << 53)
#define CRB_MAX_PLANE INT64_C(2147483647)
// Largest request either allocator accepts (more than any machine has; keeps rounding exact).
#define CRB_MAX_ALLOC_BYTES ((size_t)1 << 56)

typedef enum crb_size_status {
  CRB_SIZE_OK = 0,
  CRB_SIZE_NEGATIVE_DIM = 1,  // a dimension below 0
  CRB_SIZE_DIM_TOO_LARGE = 2, // a dimension above CRB_MAX_DIM
  CRB_SIZE_TOO_MANY = 3       // numel above CRB_MAX_NUMEL
} crb_size_status;

// numel and bytes of a shape, without overflow: CRB_SIZE_NEGATIVE_DIM or CRB_SIZE_TOO_MANY, and
// no limit on single dimensions (an allocation such as a backend's reserve bytes may be 1-D).
// On failure *numel / *bytes are 0 and *bad_dim (when not null) is the offending dimension.
static inline crb_size_status crb_check_numel(const int64_t* dims, size_t rank, crb_dtype dtype, int64_t* numel,
                                              uint64_t* bytes, size_t* bad_dim) {
  int64_t n = 1;
  size_t i;
  if (numel) *numel = 0;
  if (bytes) *bytes = 0;
  for (i = 0; i < rank; ++i) {
    if (dims[i] < 0) {
      if (bad_dim) *bad_dim = i;
      return CRB_SIZE_NEGATIVE_DIM;
    }
  }
  // A zero anywhere makes the product 0, whatever the other dimensions are.
  for (i = 0; i < rank; ++i)
    if (dims[i] == 0) n = 0;
  // n <= 2^53 before each step; n * d could overflow int64, so compare by division.
  for (i = 0; n != 0 && i < rank; ++i) {
    if (dims[i] > CRB_MAX_NUMEL / n) {
      if (bad_dim) *bad_dim = i;
      return CRB_SIZE_TOO_MANY;
    }
    n *= dims[i];
  }
  if (numel) *numel = n;
  if (bytes) *bytes = (uint64_t)n * (uint64_t)crb_dtype_size(dtype);  // <= 2^56
  return CRB_SIZE_OK;
}

// crb_check_numel, and every dimension at most CRB_MAX_DIM (CRB_SIZE_DIM_TOO_LARGE): the rule
// for shapes given to the addon and for the outputs ops compute.
static inline crb_size_status crb_check_shape(const int64_t* dims, size_t rank, crb_dtype dtype, int64_t* numel,
                                              uint64_t* bytes, size_t* bad_dim) {
  size_t i;
  for (i = 0; i < rank; ++i) {
    if (dims[i] > CRB_MAX_DIM) {
      if (numel) *numel = 0;
      if (bytes) *bytes = 0;
      if (bad_dim) *bad_dim = i;
      return CRB_SIZE_DIM_TOO_LARGE;
    }
  }
  return crb_check_numel(dims, rank, dtype, numel, bytes, bad_dim);
}

#ifdef __cplusplus
}
#endif

#endif  // CRB_BACKEND_SIZES_H
