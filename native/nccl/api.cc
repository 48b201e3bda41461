// The C table of libcrb_nccl.so (crb_nccl.h) over Communicator, and its two exported symbols.
// Nothing here throws: every failure is a crb_nccl_status with the error filled in.
#include <cstring>
#include <thread>

#include "../backend/names.h"
#include "communicator.h"

struct crb_nccl_comm {
  std::shared_ptr<crb_nccl::Communicator> comm;
};

namespace crb_nccl {
namespace {

bool NcclType(crb_dtype dtype, ncclDataType_t* out) {
  switch (dtype) {
    case CRB_F32: *out = ncclFloat32; return true;
    case CRB_F64: *out = ncclFloat64; return true;
    case CRB_F16: *out = ncclFloat16; return true;
    case CRB_BF16: *out = ncclBfloat16; return true;
    case CRB_I32: *out = ncclInt32; return true;
    case CRB_I64: *out = ncclInt64; return true;
    case CRB_U8: *out = ncclUint8; return true;
  }
  return false;
}

bool NcclOp(crb_gloo_reduce op, ncclRedOp_t* out) {
  switch (op) {
    case CRB_GLOO_SUM: *out = ncclSum; return true;
    case CRB_GLOO_AVG: *out = ncclAvg; return true;  // NCCL divides by the world size itself
    case CRB_GLOO_MAX: *out = ncclMax; return true;
    case CRB_GLOO_MIN: *out = ncclMin; return true;
    case CRB_GLOO_PRODUCT: *out = ncclProd; return true;
  }
  return false;
}

OpContext Context(const crb_nccl_comm* c, const char* op, std::string details) {
  return OpContext{op, std::move(details), c->comm->rank(), c->comm->world_size()};
}

std::string Elements(crb_dtype dtype, size_t count) {
  return std::string(crb_dtype_name(dtype)) + ", " + std::to_string(count) + " elements";
}

// Enqueues `issue` and hands back its work.
crb_nccl_status Submit(crb_nccl_comm* c, OpContext ctx, const std::function<ncclResult_t(ncclComm_t, cudaStream_t)>& issue,
                       crb_nccl_work** out, crb_nccl_error* error) {
  auto work = std::make_unique<crb_nccl_work>();
  work->comm = c->comm;
  work->ctx = std::move(ctx);
  work->start = Clock::now();
  if (const crb_nccl_status s = c->comm->Enqueue(work->ctx, issue, &work->done, error); s != CRB_NCCL_OK) return s;
  *out = work.release();
  return CRB_NCCL_OK;
}

crb_nccl_status GetUniqueId(uint8_t* out, crb_nccl_error* error) {
  const OpContext ctx{"ncclGetUniqueId", "", -1, 0};
  ncclUniqueId id;
  CRB_NCCL_CHECK(ctx, error, nullptr, ncclGetUniqueId(&id));
  std::memcpy(out, id.internal, CRB_NCCL_UNIQUE_ID_BYTES);
  return CRB_NCCL_OK;
}

crb_nccl_status CommCreate(const crb_nccl_options* options, crb_nccl_comm** out, crb_nccl_error* error) {
  std::shared_ptr<Communicator> comm;
  if (const crb_nccl_status s = Communicator::Create(*options, &comm, error); s != CRB_NCCL_OK) return s;
  *out = new crb_nccl_comm{std::move(comm)};
  return CRB_NCCL_OK;
}

void CommShutdown(crb_nccl_comm* c) { c->comm->Shutdown(); }

void CommRelease(crb_nccl_comm* c) {
  c->comm->Shutdown();
  delete c;
}

crb_nccl_status AllReduce(crb_nccl_comm* c, void* data, size_t count, crb_dtype dtype, crb_gloo_reduce op,
                          crb_nccl_work** out, crb_nccl_error* error) {
  OpContext ctx = Context(c, "allReduce", Elements(dtype, count));
  ncclDataType_t type;
  ncclRedOp_t red;
  if (!NcclType(dtype, &type) || !NcclOp(op, &red)) return ctx.Fail(error, CRB_NCCL_ERR_INVALID, "invalid", "bad dtype or op");
  return Submit(c, std::move(ctx), [&](ncclComm_t comm, cudaStream_t stream) {
    return ncclAllReduce(data, data, count, type, red, comm, stream);
  }, out, error);
}

crb_nccl_status AllReduceCoalesced(crb_nccl_comm* c, void* const* datas, const size_t* counts, size_t n,
                                   crb_dtype dtype, crb_gloo_reduce op, crb_nccl_work** out, crb_nccl_error* error) {
  size_t total = 0;
  for (size_t i = 0; i < n; i++) total += counts[i];
  OpContext ctx = Context(c, "allReduceCoalesced",
                          std::to_string(n) + " " + crb_dtype_name(dtype) + " tensors, " + std::to_string(total) + " elements");
  ncclDataType_t type;
  ncclRedOp_t red;
  if (n == 0 || !NcclType(dtype, &type) || !NcclOp(op, &red))
    return ctx.Fail(error, CRB_NCCL_ERR_INVALID, "invalid", "no tensors, or bad dtype or op");
  return Submit(c, std::move(ctx), [&](ncclComm_t comm, cudaStream_t stream) {
    // One group: NCCL fuses the n all-reduces into as few kernels as it can. The group is
    // always closed, and the first failure is the one reported.
    ncclResult_t first = ncclGroupStart();
    for (size_t i = 0; i < n && (first == ncclSuccess || first == ncclInProgress); i++)
      first = ncclAllReduce(datas[i], datas[i], counts[i], type, red, comm, stream);
    const ncclResult_t end = ncclGroupEnd();
    return first == ncclSuccess || first == ncclInProgress ? end : first;
  }, out, error);
}

crb_nccl_status Broadcast(crb_nccl_comm* c, void* data, size_t count, crb_dtype dtype, int32_t root,
                          crb_nccl_work** out, crb_nccl_error* error) {
  OpContext ctx = Context(c, "broadcast", Elements(dtype, count) + ", root " + std::to_string(root));
  ncclDataType_t type;
  if (!NcclType(dtype, &type) || root < 0 || root >= c->comm->world_size())
    return ctx.Fail(error, CRB_NCCL_ERR_INVALID, "invalid", "bad dtype or root");
  return Submit(c, std::move(ctx), [&](ncclComm_t comm, cudaStream_t stream) {
    return ncclBroadcast(data, data, count, type, root, comm, stream);
  }, out, error);
}

crb_nccl_status AllGather(crb_nccl_comm* c, void* output, const void* input, size_t count, crb_dtype dtype,
                          crb_nccl_work** out, crb_nccl_error* error) {
  OpContext ctx = Context(c, "allGather", Elements(dtype, count) + " per rank");
  ncclDataType_t type;
  if (!NcclType(dtype, &type)) return ctx.Fail(error, CRB_NCCL_ERR_INVALID, "invalid", "bad dtype");
  return Submit(c, std::move(ctx), [&](ncclComm_t comm, cudaStream_t stream) {
    return ncclAllGather(input, output, count, type, comm, stream);
  }, out, error);
}

// One poll of the event, then of the communicator's health and the timeout (what torch's
// watchdog checks). Called with w->mu held.
void PollLocked(crb_nccl_work* w) {
  if (w->completed) return;
  const cudaError_t q = cudaEventQuery(w->done.get());
  if (q == cudaSuccess) {
    w->completed = true;
    return;
  }
  if (q != cudaErrorNotReady) {
    w->status = w->ctx.CudaFailure(&w->error, "cudaEventQuery", q);
  } else if (w->comm->CheckHealth(w->ctx, &w->error) != CRB_NCCL_OK) {
    w->status = w->error.status;
  } else if (Clock::now() - w->start > std::chrono::milliseconds(w->comm->timeout_ms())) {
    w->status = w->ctx.Fail(&w->error, CRB_NCCL_ERR_TIMEOUT, "timeout",
                            "not complete within the group's timeout of " + std::to_string(w->comm->timeout_ms()) +
                                " ms (a peer that left, hangs, or issued a different collective); the communicator was aborted");
  } else {
    return;
  }
  w->comm->Abort(w->error.message);
  w->completed = true;
}

int WorkIsCompleted(crb_nccl_work* w) {
  std::lock_guard<std::mutex> lock(w->mu);
  PollLocked(w);
  return w->completed ? 1 : 0;
}

crb_nccl_status WorkWait(crb_nccl_work* w, crb_nccl_error* error) {
  // cudaEventQuery reads the event's own context; the device is set only so that a thread new
  // to CUDA does not create a context on device 0.
  if (cudaSetDevice(w->comm->device()) != cudaSuccess) (void)cudaGetLastError();
  for (auto pause = std::chrono::microseconds(20);; pause = std::min(pause * 2, std::chrono::microseconds(1000))) {
    {
      std::lock_guard<std::mutex> lock(w->mu);
      PollLocked(w);
      if (w->completed) {
        if (w->status != CRB_NCCL_OK) *error = w->error;
        return w->status;
      }
    }
    std::this_thread::sleep_for(pause);
  }
}

void WorkRelease(crb_nccl_work* w) { delete w; }

}  // namespace
}  // namespace crb_nccl

#define CRB_EXPORT extern "C" __attribute__((visibility("default")))

// Checked by the loader before anything else (native/core/nccl_loader.cc).
CRB_EXPORT uint32_t crb_nccl_abi_version(void) { return CRB_NCCL_ABI_VERSION; }

// CRB_NCCL_ENTRY_POINT. ncclGetVersion needs no GPU, so the table is there wherever
// libnccl.so.2 loads; whether CUDA runs is the CUDA backend's question.
CRB_EXPORT const crb_nccl_api_table* crb_nccl_api(void) {
  using namespace crb_nccl;
  static const crb_nccl_api_table table = [] {
    crb_nccl_api_table t{};
    t.abi_version = CRB_NCCL_ABI_VERSION;
    if (ncclGetVersion(&t.nccl_version) != ncclSuccess) t.nccl_version = 0;
    t.nccl_compiled_version = NCCL_VERSION_CODE;
    t.get_unique_id = GetUniqueId;
    t.comm_create = CommCreate;
    t.comm_shutdown = CommShutdown;
    t.comm_release = CommRelease;
    t.all_reduce = AllReduce;
    t.all_reduce_coalesced = AllReduceCoalesced;
    t.broadcast = Broadcast;
    t.all_gather = AllGather;
    t.work_is_completed = WorkIsCompleted;
    t.work_wait = WorkWait;
    t.work_release = WorkRelease;
    return t;
  }();
  return &table;
}
