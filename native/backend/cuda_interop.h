// A side interface of libcrb_cuda.so for libraries that queue work on the CUDA backend's stream
// (libcrb_nccl.so's collectives): the stream and the device every op runs on. Kept out of the
// op table (backend_api.h) because the CPU backend has nothing to put there; versioned on its
// own so the op table's ABI does not move when this grows.
#ifndef CRB_CUDA_INTEROP_H
#define CRB_CUDA_INTEROP_H

#include <stdint.h>

#include "backend_api.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CRB_CUDA_INTEROP_VERSION 1
#define CRB_CUDA_INTEROP_ENTRY_POINT "crb_cuda_interop"

typedef struct crb_cuda_interop_table {
  uint32_t version;  // CRB_CUDA_INTEROP_VERSION
  // The backend's one stream (a cudaStream_t) and its device; initializes the backend if it
  // was not yet. Work queued there is ordered with every op, and the caching allocator's reuse
  // of freed blocks stays safe (Note [stream-ordered reuse] in native/cuda/allocator.h).
  crb_status (*stream)(void** stream, int* device);
} crb_cuda_interop_table;

typedef const crb_cuda_interop_table* (*crb_cuda_interop_fn)(void);

#ifdef __cplusplus
}
#endif

#endif  // CRB_CUDA_INTEROP_H
