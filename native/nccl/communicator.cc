#include "communicator.h"

#include <cstdio>
#include <cstring>
#include <thread>

namespace crb_nccl {

const char* NcclResultName(ncclResult_t result) {
  switch (result) {
    case ncclSuccess: return "ncclSuccess";
    case ncclUnhandledCudaError: return "ncclUnhandledCudaError";
    case ncclSystemError: return "ncclSystemError";
    case ncclInternalError: return "ncclInternalError";
    case ncclInvalidArgument: return "ncclInvalidArgument";
    case ncclInvalidUsage: return "ncclInvalidUsage";
    case ncclRemoteError: return "ncclRemoteError";
    case ncclInProgress: return "ncclInProgress";
    default: return "ncclUnknownResult";
  }
}

crb_nccl_status OpContext::Fail(crb_nccl_error* error, crb_nccl_status status, const char* code,
                                const std::string& what) const {
  std::memset(error, 0, sizeof *error);
  error->status = status;
  error->rank = rank;
  error->world_size = world_size;
  snprintf(error->op, sizeof error->op, "%s", op);
  snprintf(error->code, sizeof error->code, "%s", code);
  std::string where = details.empty() ? std::string(op) : std::string(op) + " (" + details + ")";
  if (rank >= 0) where += " on rank " + std::to_string(rank) + " of " + std::to_string(world_size);
  snprintf(error->message, sizeof error->message, "%s: %s", where.c_str(), what.c_str());
  return status;
}

crb_nccl_status OpContext::NcclFailure(crb_nccl_error* error, const char* call, ncclResult_t result,
                                       ncclComm_t comm) const {
  std::string what = std::string(call) + " failed: " + ncclGetErrorString(result) + " (" + NcclResultName(result) + ")";
  // NCCL's own account of the failure (which peer, which transport); may be empty.
  const char* last = ncclGetLastError(comm);
  if (last && *last) what += "; NCCL says: " + std::string(last);
  return Fail(error, CRB_NCCL_ERR_NCCL, NcclResultName(result), what);
}

crb_nccl_status OpContext::CudaFailure(crb_nccl_error* error, const char* call, cudaError_t result) const {
  (void)cudaGetLastError();  // a sticky launch error would fail the next, unrelated call
  return Fail(error, CRB_NCCL_ERR_CUDA, cudaGetErrorName(result),
              std::string(call) + " failed: " + cudaGetErrorString(result) + " (" + cudaGetErrorName(result) + ")");
}

crb_nccl_status Event::Create(const OpContext& ctx, crb_nccl_error* error) {
  CRB_CUDA_RT_CHECK(ctx, error, cudaEventCreateWithFlags(&event_, cudaEventDisableTiming));
  return CRB_NCCL_OK;
}

crb_nccl_status Communicator::Create(const crb_nccl_options& o, std::shared_ptr<Communicator>* out,
                                     crb_nccl_error* error) {
  const OpContext ctx{"init", "device " + std::to_string(o.device), o.rank, o.world_size};
  if (!o.unique_id || !o.stream || o.world_size < 1 || o.rank < 0 || o.rank >= o.world_size || o.timeout_ms < 1)
    return ctx.Fail(error, CRB_NCCL_ERR_INVALID, "invalid", "invalid options (unique id, stream, rank, world size, timeout)");
  // NCCL binds the communicator to the calling thread's current device.
  CRB_CUDA_RT_CHECK(ctx, error, cudaSetDevice(o.device));
  ncclUniqueId id;
  static_assert(sizeof id.internal == CRB_NCCL_UNIQUE_ID_BYTES, "NCCL_UNIQUE_ID_BYTES changed");
  std::memcpy(id.internal, o.unique_id, CRB_NCCL_UNIQUE_ID_BYTES);
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;  // Note [non-blocking communicator]
  ncclComm_t raw = nullptr;
  const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(o.timeout_ms);
  const ncclResult_t r = ncclCommInitRankConfig(&raw, o.world_size, id, o.rank, &config);
  if (r != ncclSuccess && r != ncclInProgress) {
    ctx.NcclFailure(error, "ncclCommInitRankConfig", r, raw);
    if (raw) ncclCommAbort(raw);
    return error->status;
  }
  std::shared_ptr<Communicator> comm(new Communicator(raw, o));
  {
    std::lock_guard<std::mutex> lock(comm->mu_);
    if (const crb_nccl_status s = comm->SettleLocked(ctx, deadline, error); s != CRB_NCCL_OK) return s;
  }
  *out = std::move(comm);
  return CRB_NCCL_OK;
}

crb_nccl_status Communicator::SettleLocked(const OpContext& ctx, Clock::time_point deadline, crb_nccl_error* error) {
  for (auto pause = std::chrono::microseconds(20);; pause = std::min(pause * 2, std::chrono::microseconds(1000))) {
    ncclResult_t state = ncclSuccess;
    const ncclResult_t r = ncclCommGetAsyncError(comm_, &state);
    if (r != ncclSuccess) {
      ctx.NcclFailure(error, "ncclCommGetAsyncError", r, comm_);
      AbortLocked(error->message);
      return error->status;
    }
    if (state == ncclSuccess) return CRB_NCCL_OK;
    if (state != ncclInProgress) {
      ctx.NcclFailure(error, "the communicator", state, comm_);
      AbortLocked(error->message);
      return error->status;
    }
    if (Clock::now() > deadline) {
      ctx.Fail(error, CRB_NCCL_ERR_TIMEOUT, "timeout",
               "not done within the group's timeout of " + std::to_string(timeout_ms_) +
                   " ms (a rank that did not join, or a peer that hangs); the communicator was aborted");
      AbortLocked(error->message);
      return error->status;
    }
    std::this_thread::sleep_for(pause);
  }
}

crb_nccl_status Communicator::UnusableLocked(const OpContext& ctx, crb_nccl_error* error) const {
  return ctx.Fail(error, CRB_NCCL_ERR_ABORTED, "aborted", "the NCCL communicator is gone: " + failure_);
}

crb_nccl_status Communicator::Enqueue(const OpContext& ctx,
                                      const std::function<ncclResult_t(ncclComm_t, cudaStream_t)>& issue, Event* done,
                                      crb_nccl_error* error) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!comm_) return UnusableLocked(ctx, error);
  auto run = [&]() -> crb_nccl_status {
    CRB_CUDA_RT_CHECK(ctx, error, cudaSetDevice(device_));
    CRB_NCCL_CHECK(ctx, error, comm_, issue(comm_, stream_));
    if (const crb_nccl_status s = SettleLocked(ctx, Clock::now() + std::chrono::milliseconds(timeout_ms_), error);
        s != CRB_NCCL_OK)
      return s;
    if (const crb_nccl_status s = done->Create(ctx, error); s != CRB_NCCL_OK) return s;
    CRB_CUDA_RT_CHECK(ctx, error, cudaEventRecord(done->get(), stream_));
    return CRB_NCCL_OK;
  };
  const crb_nccl_status s = run();
  if (s != CRB_NCCL_OK) AbortLocked(error->message);
  return s;
}

crb_nccl_status Communicator::CheckHealth(const OpContext& ctx, crb_nccl_error* error) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!comm_) return UnusableLocked(ctx, error);
  ncclResult_t state = ncclSuccess;
  CRB_NCCL_CHECK(ctx, error, comm_, ncclCommGetAsyncError(comm_, &state));
  if (state == ncclSuccess || state == ncclInProgress) return CRB_NCCL_OK;
  ctx.NcclFailure(error, "the communicator (asynchronous error)", state, comm_);
  AbortLocked(error->message);
  return error->status;
}

void Communicator::Abort(const std::string& why) {
  std::lock_guard<std::mutex> lock(mu_);
  AbortLocked(why);
}

void Communicator::AbortLocked(const std::string& why) {
  if (failure_.empty()) failure_ = "aborted after: " + why;
  if (!comm_) return;
  // Stops NCCL's kernels and proxy threads: the events of its works complete.
  ncclCommAbort(comm_);
  comm_ = nullptr;
}

void Communicator::Shutdown() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!comm_) return;
  const OpContext ctx{"destroy", "", rank_, world_size_};
  crb_nccl_error error{};
  // Finalize flushes the collectives still queued, so no peer waits on a rank that left.
  if (cudaSetDevice(device_) != cudaSuccess) {
    (void)cudaGetLastError();
    AbortLocked("cudaSetDevice failed while destroying the process group");
    return;
  }
  const ncclResult_t r = ncclCommFinalize(comm_);
  if (r != ncclSuccess && r != ncclInProgress) {
    ctx.NcclFailure(&error, "ncclCommFinalize", r, comm_);
    AbortLocked(error.message);
    return;
  }
  if (SettleLocked(ctx, Clock::now() + std::chrono::milliseconds(timeout_ms_), &error) != CRB_NCCL_OK) return;
  ncclCommDestroy(comm_);
  comm_ = nullptr;
  failure_ = "the process group was destroyed (destroyProcessGroup)";
}

}  // namespace crb_nccl
