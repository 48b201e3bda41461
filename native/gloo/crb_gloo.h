// The C ABI between the addon and libcrb_gloo.so, the data-parallel library over gloo (built by
// CMake from native/gloo/, dlopen'ed by native/core/gloo_loader.cc the first time a process
// group is made or distInfo() asks). Plain C, so the two sides may be built by different
// toolchains; the addon checks crb_gloo_abi_version() before it calls anything else.
//
// Conventions
// - A process group runs its collectives on one worker thread, in submission order; each
//   enqueue returns a work at once. Every rank must enqueue the same collectives in the same
//   order (gloo matches them by tag, which counts up per group).
// - Collectives work in place on host memory the caller keeps alive until the work completes.
// - A failure fills a crb_gloo_error whose `message` is the whole sentence for the user
//   ("allReduce (float32, 10 elements) on rank 0 of 2: connection closed by peer rank 1 (...)").
// - After a failed collective the group is unusable: later works fail at once, naming the first
//   failure (gloo's pairs cannot recover from a lost peer).
#ifndef CRB_GLOO_H
#define CRB_GLOO_H

#include <stddef.h>
#include <stdint.h>

#include "../backend/backend_api.h"  // crb_dtype

#ifdef __cplusplus
extern "C" {
#endif

#define CRB_GLOO_ABI_VERSION 2  // 2: all_reduce_coalesced
#define CRB_GLOO_ENTRY_POINT "crb_gloo_api"  // unversioned: crb_gloo_abi_version() says which ABI

typedef struct crb_gloo_pg crb_gloo_pg;
typedef struct crb_gloo_work crb_gloo_work;

typedef enum crb_gloo_status {
  CRB_GLOO_OK = 0,
  CRB_GLOO_ERR_INVALID = 1,    // bad argument that slipped past the addon's checks
  CRB_GLOO_ERR_TIMEOUT = 2,    // rendezvous or a collective ran past the group's timeout
  CRB_GLOO_ERR_IO = 3,         // a peer closed its connection, or the store is unreachable
  CRB_GLOO_ERR_DESTROYED = 4,  // the group was destroyed before the work ran
  CRB_GLOO_ERR_INTERNAL = 5
} crb_gloo_status;

static inline const char* crb_gloo_status_name(crb_gloo_status code) {
  switch (code) {
    case CRB_GLOO_OK: return "CRB_GLOO_OK";
    case CRB_GLOO_ERR_INVALID: return "CRB_GLOO_ERR_INVALID";
    case CRB_GLOO_ERR_TIMEOUT: return "CRB_GLOO_ERR_TIMEOUT";
    case CRB_GLOO_ERR_IO: return "CRB_GLOO_ERR_IO";
    case CRB_GLOO_ERR_DESTROYED: return "CRB_GLOO_ERR_DESTROYED";
    case CRB_GLOO_ERR_INTERNAL: return "CRB_GLOO_ERR_INTERNAL";
  }
  return "CRB_GLOO_ERR_UNKNOWN";
}

typedef enum crb_gloo_store_kind {
  CRB_GLOO_STORE_TCP = 0,  // rank 0 serves a key-value store at host:port, the others connect
  CRB_GLOO_STORE_FILE = 1  // gloo's FileStore in a directory every rank sees
} crb_gloo_store_kind;

typedef enum crb_gloo_reduce {
  CRB_GLOO_SUM = 0,
  CRB_GLOO_AVG = 1,  // sum, then divided by the world size (float dtypes only)
  CRB_GLOO_MAX = 2,
  CRB_GLOO_MIN = 3,
  CRB_GLOO_PRODUCT = 4
} crb_gloo_reduce;

typedef struct crb_gloo_error {
  crb_gloo_status code;
  char op[32];         // "rendezvous", "allReduce", "broadcast", "allGather", "barrier"
  char message[1024];  // the whole sentence
  int32_t rank;
  int32_t world_size;
  int32_t peer;        // the peer gloo blamed, or -1
} crb_gloo_error;

typedef struct crb_gloo_options {
  int32_t rank;
  int32_t world_size;
  crb_gloo_store_kind store;
  const char* host;    // TCP store: rank 0's address
  int32_t port;        // TCP store: rank 0 listens here
  const char* path;    // file store: the shared directory
  int64_t timeout_ms;  // rendezvous and every collective
  const char* prefix;  // keys of this group in the store
} crb_gloo_options;

typedef void (*crb_gloo_done_fn)(void* user);

typedef struct crb_gloo_api_table {
  uint32_t abi_version;
  const char* gloo_version;  // "0.5.0", gloo's GLOO_VERSION_* at build time

  // Blocks until every rank joined (or the timeout); *out is then a running group.
  crb_gloo_status (*pg_create)(const crb_gloo_options* options, crb_gloo_pg** out, crb_gloo_error* error);
  // Idempotent: fails the queued works with CRB_GLOO_ERR_DESTROYED, waits for the running one
  // (at most the timeout), joins the worker thread and closes the connections.
  void (*pg_shutdown)(crb_gloo_pg* pg);
  // pg_shutdown, then frees. Works outlive their group.
  void (*pg_release)(crb_gloo_pg* pg);

  // Enqueue; on CRB_GLOO_OK *out is a new work the caller releases.
  crb_gloo_status (*all_reduce)(crb_gloo_pg* pg, void* data, size_t count, crb_dtype dtype, crb_gloo_reduce op,
                                crb_gloo_work** out, crb_gloo_error* error);
  // n buffers of one dtype reduced as one: packed into one buffer, one all-reduce, unpacked
  // (DDP's bucket; torch's allreduce_coalesced).
  crb_gloo_status (*all_reduce_coalesced)(crb_gloo_pg* pg, void* const* datas, const size_t* counts, size_t n,
                                          crb_dtype dtype, crb_gloo_reduce op, crb_gloo_work** out,
                                          crb_gloo_error* error);
  crb_gloo_status (*broadcast)(crb_gloo_pg* pg, void* data, size_t count, crb_dtype dtype, int32_t root,
                               crb_gloo_work** out, crb_gloo_error* error);
  // output: world_size * count elements, rank r's input at offset r * count.
  crb_gloo_status (*all_gather)(crb_gloo_pg* pg, void* output, const void* input, size_t count, crb_dtype dtype,
                                crb_gloo_work** out, crb_gloo_error* error);
  crb_gloo_status (*barrier)(crb_gloo_pg* pg, crb_gloo_work** out, crb_gloo_error* error);

  // Blocks until the work is done; its result (CRB_GLOO_OK or the failure, copied to *error).
  crb_gloo_status (*work_wait)(crb_gloo_work* work, crb_gloo_error* error);
  int (*work_is_completed)(const crb_gloo_work* work);
  // Calls fn(user) once the work is done: from the worker thread, or on this thread at once if
  // it already is.
  void (*work_on_done)(crb_gloo_work* work, crb_gloo_done_fn fn, void* user);
  void (*work_release)(crb_gloo_work* work);
} crb_gloo_api_table;

typedef uint32_t (*crb_gloo_abi_version_fn)(void);
typedef const crb_gloo_api_table* (*crb_gloo_entry_fn)(void);

#ifdef __cplusplus
}  // extern "C"
#endif

#endif  // CRB_GLOO_H
