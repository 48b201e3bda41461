// The C ABI between the addon and libcrb_nccl.so, the collectives on CUDA tensors over NCCL
// (built by CMakeLists.txt from native/nccl/ when NCCL's headers are found, dlopen'ed by
// native/core/nccl_loader.cc the first time an NCCL group is made or ncclInfo() asks). Plain C,
// as crb_gloo.h; the addon checks crb_nccl_abi_version() before it calls anything else.
//
// Conventions
// - A communicator belongs to one device and queues every collective on one stream, the CUDA
//   backend's (crb_cuda_interop), so collectives are ordered with the ops that produce and
//   consume their tensors. Every rank must issue the same collectives in the same order.
// - Collectives work in place on device memory; an enqueue returns a work at once: a CUDA
//   event recorded after the collective.
// - Waiting on a work polls its event, the communicator's asynchronous error and the group's
//   timeout; an error or a timeout aborts the communicator (ncclCommAbort), after which every
//   call fails at once naming the first failure, as NCCL cannot resume an aborted one.
// - A failure fills a crb_nccl_error whose `message` is the whole sentence for the user
//   ("allReduce (float32, 10 elements) on rank 0 of 2: ncclRemoteError: ...").
#ifndef CRB_NCCL_H
#define CRB_NCCL_H

#include <stddef.h>
#include <stdint.h>

#include "../backend/backend_api.h"  // crb_dtype
#include "../gloo/crb_gloo.h"        // crb_gloo_reduce: one set of reduction ops for both libraries

#ifdef __cplusplus
extern "C" {
#endif

#define CRB_NCCL_ABI_VERSION 1
#define CRB_NCCL_ENTRY_POINT "crb_nccl_api"  // unversioned: crb_nccl_abi_version() says which ABI
#define CRB_NCCL_UNIQUE_ID_BYTES 128         // NCCL_UNIQUE_ID_BYTES

typedef struct crb_nccl_comm crb_nccl_comm;
typedef struct crb_nccl_work crb_nccl_work;

typedef enum crb_nccl_status {
  CRB_NCCL_OK = 0,
  CRB_NCCL_ERR_INVALID = 1,  // bad argument that slipped past the addon's checks
  CRB_NCCL_ERR_TIMEOUT = 2,  // init or a collective ran past the group's timeout (now aborted)
  CRB_NCCL_ERR_NCCL = 3,     // an NCCL call failed, or the communicator reported an async error
  CRB_NCCL_ERR_CUDA = 4,     // a CUDA runtime call failed
  CRB_NCCL_ERR_ABORTED = 5   // the communicator was aborted or destroyed earlier
} crb_nccl_status;

typedef struct crb_nccl_error {
  crb_nccl_status status;
  char op[32];         // "ncclGetUniqueId", "init", "allReduce", "allReduceCoalesced", "broadcast", "allGather"
  char code[48];       // the library's own name: "ncclRemoteError", "cudaErrorIllegalAddress", "timeout"
  char message[1024];  // the whole sentence
  int32_t rank;        // -1 when not in a group yet
  int32_t world_size;
} crb_nccl_error;

typedef struct crb_nccl_options {
  const uint8_t* unique_id;  // CRB_NCCL_UNIQUE_ID_BYTES from rank 0's get_unique_id
  int32_t rank;
  int32_t world_size;
  int32_t device;      // the CUDA device of the stream
  void* stream;        // a cudaStream_t every collective is queued on
  int64_t timeout_ms;  // init and every collective
} crb_nccl_options;

typedef struct crb_nccl_api_table {
  uint32_t abi_version;
  int nccl_version;           // ncclGetVersion() of the libnccl.so.2 loaded (e.g. 23007 for 2.30.7)
  int nccl_compiled_version;  // NCCL_VERSION_CODE of the headers built against

  crb_nccl_status (*get_unique_id)(uint8_t* out, crb_nccl_error* error);
  // Blocks until every rank joined (or the timeout); *out is then a communicator.
  crb_nccl_status (*comm_create)(const crb_nccl_options* options, crb_nccl_comm** out, crb_nccl_error* error);
  // Idempotent: flushes and destroys the NCCL communicator (aborts it when it failed or the flush
  // runs past the timeout); later enqueues fail with CRB_NCCL_ERR_ABORTED.
  void (*comm_shutdown)(crb_nccl_comm* comm);
  // comm_shutdown, then frees. Works outlive their communicator.
  void (*comm_release)(crb_nccl_comm* comm);

  // Enqueue on the stream; on CRB_NCCL_OK *out is a new work the caller releases.
  crb_nccl_status (*all_reduce)(crb_nccl_comm* comm, void* data, size_t count, crb_dtype dtype, crb_gloo_reduce op,
                                crb_nccl_work** out, crb_nccl_error* error);
  // n buffers of one dtype, one ncclAllReduce each inside one ncclGroupStart/End (DDP's bucket).
  crb_nccl_status (*all_reduce_coalesced)(crb_nccl_comm* comm, void* const* datas, const size_t* counts, size_t n,
                                          crb_dtype dtype, crb_gloo_reduce op, crb_nccl_work** out,
                                          crb_nccl_error* error);
  crb_nccl_status (*broadcast)(crb_nccl_comm* comm, void* data, size_t count, crb_dtype dtype, int32_t root,
                               crb_nccl_work** out, crb_nccl_error* error);
  // output: world_size * count elements, rank r's input at offset r * count.
  crb_nccl_status (*all_gather)(crb_nccl_comm* comm, void* output, const void* input, size_t count, crb_dtype dtype,
                                crb_nccl_work** out, crb_nccl_error* error);

  // Polls once: 1 when the work is done (succeeded, or failed: work_wait then says how), else 0.
  int (*work_is_completed)(crb_nccl_work* work);
  // Blocks the calling thread until the work is done; its result (the failure copied to *error).
  crb_nccl_status (*work_wait)(crb_nccl_work* work, crb_nccl_error* error);
  void (*work_release)(crb_nccl_work* work);
} crb_nccl_api_table;

typedef uint32_t (*crb_nccl_abi_version_fn)(void);
typedef const crb_nccl_api_table* (*crb_nccl_entry_fn)(void);

#ifdef __cplusplus
}  // extern "C"
#endif

#endif  // CRB_NCCL_H
