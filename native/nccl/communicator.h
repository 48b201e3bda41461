// One NCCL communicator on one device and stream, and the works (CUDA events) of its
// collectives. Everything NCCL or CUDA is owned here: the ncclComm_t by Communicator, each
// cudaEvent_t by Event; nothing else destroys them.
//
// Note [non-blocking communicator]
// The communicator is created with config.blocking = 0, so ncclCommInitRankConfig, a first
// collective that has to connect to its peers, and ncclCommFinalize return ncclInProgress
// instead of blocking inside NCCL; Communicator::Settle polls ncclCommGetAsyncError until the
// call is done, a peer failed, or the group's timeout passes, which aborts the communicator. A
// blocking communicator would hang forever on a rank that never joins.
#ifndef CRB_NCCL_COMMUNICATOR_H
#define CRB_NCCL_COMMUNICATOR_H

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "crb_nccl.h"

namespace crb_nccl {

using Clock = std::chrono::steady_clock;

// What a failure message names: the op, its arguments, and where in the group. Every error of
// this library is made by one of its three methods.
struct OpContext {
  const char* op;
  std::string details;  // "float32, 10 elements"
  int rank = -1;
  int world_size = 0;

  crb_nccl_status Fail(crb_nccl_error* error, crb_nccl_status status, const char* code, const std::string& what) const;
  crb_nccl_status NcclFailure(crb_nccl_error* error, const char* call, ncclResult_t result, ncclComm_t comm) const;
  crb_nccl_status CudaFailure(crb_nccl_error* error, const char* call, cudaError_t result) const;
};

const char* NcclResultName(ncclResult_t result);

// THE check for ncclResult_t: ncclInProgress is not a failure (Note [non-blocking
// communicator]); the caller settles it.
#define CRB_NCCL_CHECK(ctx, error, comm, call)                                             \
  do {                                                                                     \
    const ncclResult_t crb_nccl_r_ = (call);                                               \
    if (crb_nccl_r_ != ncclSuccess && crb_nccl_r_ != ncclInProgress)                       \
      return (ctx).NcclFailure((error), #call, crb_nccl_r_, (comm));                       \
  } while (0)

// THE check for cudaError_t.
#define CRB_CUDA_RT_CHECK(ctx, error, call)                                                \
  do {                                                                                     \
    const cudaError_t crb_cuda_e_ = (call);                                                \
    if (crb_cuda_e_ != cudaSuccess) return (ctx).CudaFailure((error), #call, crb_cuda_e_); \
  } while (0)

// Owns one cudaEvent_t (timing disabled: it only marks completion).
class Event {
 public:
  Event() = default;
  ~Event() {
    if (event_) cudaEventDestroy(event_);
  }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  crb_nccl_status Create(const OpContext& ctx, crb_nccl_error* error);
  cudaEvent_t get() const { return event_; }

 private:
  cudaEvent_t event_ = nullptr;
};

class Communicator {
 public:
  // ncclCommInitRankConfig on options.device, settled within options.timeout_ms.
  static crb_nccl_status Create(const crb_nccl_options& options, std::shared_ptr<Communicator>* out,
                                crb_nccl_error* error);
  ~Communicator() { Shutdown(); }
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  int device() const { return device_; }
  int64_t timeout_ms() const { return timeout_ms_; }

  // Runs `issue` (the NCCL calls of one collective, on the stream), settles it, and records
  // `done` on the stream after it. A failure aborts the communicator: the ranks are out of step.
  crb_nccl_status Enqueue(const OpContext& ctx, const std::function<ncclResult_t(ncclComm_t, cudaStream_t)>& issue,
                          Event* done, crb_nccl_error* error);
  // A work's poll: fails (and aborts) on the communicator's asynchronous error; fails with
  // CRB_NCCL_ERR_ABORTED once aborted or destroyed.
  crb_nccl_status CheckHealth(const OpContext& ctx, crb_nccl_error* error);
  // ncclCommAbort, remembering `why` as the first failure (later calls name it).
  void Abort(const std::string& why);
  // Idempotent: flush and destroy, or abort after a failure or past the timeout.
  void Shutdown();

 private:
  Communicator(ncclComm_t comm, const crb_nccl_options& options)
      : comm_(comm), stream_(static_cast<cudaStream_t>(options.stream)), rank_(options.rank),
        world_size_(options.world_size), device_(options.device), timeout_ms_(options.timeout_ms) {}
  crb_nccl_status SettleLocked(const OpContext& ctx, Clock::time_point deadline, crb_nccl_error* error);
  crb_nccl_status UnusableLocked(const OpContext& ctx, crb_nccl_error* error) const;
  void AbortLocked(const std::string& why);

  std::mutex mu_;  // guards comm_ and failure_: works poll from other threads while JS enqueues
  ncclComm_t comm_;
  std::string failure_;  // why comm_ is gone
  const cudaStream_t stream_;
  const int rank_, world_size_, device_;
  const int64_t timeout_ms_;
};

}  // namespace crb_nccl

// One collective in flight: its event, and its outcome once polled to the end.
struct crb_nccl_work {
  std::shared_ptr<crb_nccl::Communicator> comm;
  crb_nccl::OpContext ctx;
  crb_nccl::Event done;
  crb_nccl::Clock::time_point start;
  std::mutex mu;  // a JS poll and a waiting thread may race
  bool completed = false;
  crb_nccl_status status = CRB_NCCL_OK;
  crb_nccl_error error{};
};

#endif  // CRB_NCCL_COMMUNICATOR_H
