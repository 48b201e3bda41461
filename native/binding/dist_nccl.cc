// Collectives on CUDA tensors over NCCL: ncclInfo, ncclUniqueId, ncclInit, ncclAllReduce,
// ncclAllReduceCoalesced, ncclBroadcast, ncclAllGather, ncclWait / ncclWaitSync /
// ncclIsCompleted and ncclDestroy. NCCL lives in libcrb_nccl.so (native/nccl/), loaded the
// first time one of these is called; every collective is queued on the CUDA backend's stream,
// which libcrb_cuda.so hands out through crb_cuda_interop. The rendezvous (rank 0's unique id
// reaching every rank) goes over the gloo group, in lib/distributed/process-group.ts.
//
// Note [NCCL works keep no storage]
// A gloo work holds its tensors' Storage until it completes (Note [who keeps a collective's
// tensors alive] in dist.cc). An NCCL work does not need to: its collective runs on the backend's
// one stream, and the caching allocator hands a freed block to the next op on that same stream
// (Note [stream-ordered reuse] in native/cuda/allocator.h), so whatever reuses a tensor disposed
// mid-collective runs after the collective; returning memory to the driver synchronizes.
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "../core/nccl_loader.h"
#include "backends.h"
#include "dist_common.h"
#include "errors.h"
#include "exports.h"
#include "op_call.h"

namespace crb {
namespace {

constexpr napi_type_tag kCommTag = {0x637262636f6d6d00ULL, 0x4e43434c9a3b2c1dULL};
constexpr napi_type_tag kNcclWorkTag = {0x6372626e77726b00ULL, 0x4e43434c5e6f7a8bULL};

const NcclLoadResult& Nccl() { return load_nccl_library(AddonDirectory()); }

const crb_nccl_api_table* NcclOrThrow(Napi::Env env, const char* fn) {
  const NcclLoadResult& n = Nccl();
  if (!n.api) ThrowError(env, std::string(fn) + ": NCCL is not available: " + n.reason);
  return n.api;
}

// 23007 -> "2.30.7" (NCCL >= 2.9: 10000 * major + 100 * minor + patch)
std::string NcclVersionString(int v) {
  return std::to_string(v / 10000) + "." + std::to_string((v % 10000) / 100) + "." + std::to_string(v % 100);
}

// Owns one crb_nccl_comm.
class CommOwner {
 public:
  CommOwner(const crb_nccl_api_table* api, crb_nccl_comm* comm, int rank, int size)
      : api_(api), comm_(comm), rank_(rank), size_(size) {}
  ~CommOwner() { api_->comm_release(comm_); }
  CommOwner(const CommOwner&) = delete;
  CommOwner& operator=(const CommOwner&) = delete;
  const crb_nccl_api_table* api() const { return api_; }
  crb_nccl_comm* get() const { return comm_; }
  int rank() const { return rank_; }
  int size() const { return size_; }

 private:
  const crb_nccl_api_table* api_;
  crb_nccl_comm* comm_;
  const int rank_, size_;
};

// Owns one crb_nccl_work (which holds its communicator itself).
class NcclWorkRef {
 public:
  NcclWorkRef(const crb_nccl_api_table* api, crb_nccl_work* work) : api_(api), work_(work) {}
  ~NcclWorkRef() { api_->work_release(work_); }
  NcclWorkRef(const NcclWorkRef&) = delete;
  NcclWorkRef& operator=(const NcclWorkRef&) = delete;
  crb_nccl_status Wait(crb_nccl_error* error) const { return api_->work_wait(work_, error); }
  bool Completed() const { return api_->work_is_completed(work_) != 0; }

 private:
  const crb_nccl_api_table* api_;
  crb_nccl_work* work_;
};

struct CommHandle {
  std::shared_ptr<CommOwner> comm;
};

struct NcclWorkHandle {
  std::shared_ptr<NcclWorkRef> work;
};

const std::shared_ptr<CommOwner>& CommArg(OpCall& call, size_t index) {
  auto* h = Unwrap<CommHandle>(call.Arg(index), kCommTag);
  if (!h) call.TypeErr("comm", "an NCCL communicator handle (from ncclInit)", DescribeValue(call.Arg(index)));
  return h->comm;
}

const std::shared_ptr<NcclWorkRef>& NcclWorkArg(OpCall& call, size_t index) {
  auto* h = Unwrap<NcclWorkHandle>(call.Arg(index), kNcclWorkTag);
  if (!h) call.TypeErr("work", "an NCCL work handle (from an nccl* collective)", DescribeValue(call.Arg(index)));
  return h->work;
}

// Starts a collective: `enqueue` calls the library (Note [NCCL works keep no storage]).
template <typename Enqueue>
Napi::Value Submit(OpCall& call, const std::shared_ptr<CommOwner>& comm, Enqueue&& enqueue) {
  crb_nccl_work* raw = nullptr;
  crb_nccl_error error{};
  CheckNccl(call.env(), enqueue(&raw, &error), error);
  return Wrap(call.env(), new NcclWorkHandle{std::make_shared<NcclWorkRef>(comm->api(), raw)}, kNcclWorkTag);
}

Napi::Value NcclInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const NcclLoadResult& n = Nccl();
  Napi::Object out = Napi::Object::New(env);
  out.Set("available", Napi::Boolean::New(env, n.api != nullptr));
  if (!n.api) out.Set("reason", Napi::String::New(env, n.reason));
  if (!n.library_path.empty()) out.Set("library", Napi::String::New(env, n.library_path));
  if (n.api) {
    out.Set("nccl", Napi::String::New(env, NcclVersionString(n.api->nccl_version)));
    out.Set("ncclCompiled", Napi::String::New(env, NcclVersionString(n.api->nccl_compiled_version)));
    if (!n.nccl_library.empty()) out.Set("ncclLibrary", Napi::String::New(env, n.nccl_library));
  }
  return out;
}

// ncclUniqueId(): rank 0's 128 bytes for ncclInit, as a Uint8Array.
Napi::Value NcclUniqueId(const Napi::CallbackInfo& info) {
  OpCall call(info, "ncclUniqueId");
  const crb_nccl_api_table* api = NcclOrThrow(call.env(), "ncclUniqueId");
  Napi::Uint8Array id = Napi::Uint8Array::New(call.env(), CRB_NCCL_UNIQUE_ID_BYTES);
  crb_nccl_error error{};
  CheckNccl(call.env(), api->get_unique_id(id.Data(), &error), error);
  return id;
}

// ncclInit({id, rank, worldSize, device, timeoutMs}): blocks until every rank joined. `device`
// must be the one the CUDA backend runs on, as the collectives use its stream.
Napi::Value NcclInit(const Napi::CallbackInfo& info) {
  OpCall call(info, "ncclInit");
  Napi::Env env = call.env();
  if (!call.Arg(0).IsObject()) call.TypeErr("o", "an options object", DescribeValue(call.Arg(0)));
  Napi::Object o = call.Arg(0).As<Napi::Object>();
  Napi::Value id = o.Get("id");
  if (!id.IsTypedArray() || id.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
      id.As<Napi::Uint8Array>().ElementLength() != CRB_NCCL_UNIQUE_ID_BYTES)
    call.TypeErr("o.id", "a Uint8Array of 128 bytes (from rank 0's ncclUniqueId)", DescribeValue(id));
  const int64_t world = IntField(call, o, "worldSize", "o.worldSize", 1, 1 << 20);
  const int64_t rank = IntField(call, o, "rank", "o.rank", 0, world - 1);
  const int64_t wanted = IntField(call, o, "device", "o.device", 0, 1 << 16);
  const int64_t timeout = IntField(call, o, "timeoutMs", "o.timeoutMs", 1, int64_t(1) << 40);

  const crb_nccl_api_table* api = NcclOrThrow(env, "ncclInit");
  const crb_backend* cuda = BackendFor(env, Device::kCuda, "ncclInit");
  const CudaAvailability& available = CudaBackendAvailability();
  if (!available.interop)
    ThrowError(env, "ncclInit: the CUDA backend " + available.library +
                        " does not hand out its stream (no crb_cuda_interop, version " +
                        std::to_string(CRB_CUDA_INTEROP_VERSION) + "): rebuild it with `npm run build:cuda`");
  void* stream = nullptr;
  int device = -1;
  CheckStatus(env, cuda, available.interop->stream(&stream, &device), "ncclInit", "stream", Device::kCuda,
              [] { return std::string(); });
  if (device != wanted)
    ThrowError(env, "ncclInit: the CUDA backend runs on device " + std::to_string(device) + ", not device " +
                        std::to_string(wanted) +
                        ": it picks its device once, at its first use ($CRB_CUDA_DEVICE), so call initProcessGroup "
                        "before anything uses CUDA, or pass options.device " + std::to_string(device));
  crb_nccl_options options{};
  options.unique_id = id.As<Napi::Uint8Array>().Data();
  options.rank = int32_t(rank);
  options.world_size = int32_t(world);
  options.device = device;
  options.stream = stream;
  options.timeout_ms = timeout;
  crb_nccl_comm* raw = nullptr;
  crb_nccl_error error{};
  CheckNccl(env, api->comm_create(&options, &raw, &error), error);
  Napi::Object object = Wrap(env, new CommHandle{std::make_shared<CommOwner>(api, raw, int(rank), int(world))}, kCommTag);
  object.DefineProperties({
      Napi::PropertyDescriptor::Value("rank", Napi::Number::New(env, double(rank)), napi_enumerable),
      Napi::PropertyDescriptor::Value("worldSize", Napi::Number::New(env, double(world)), napi_enumerable),
      Napi::PropertyDescriptor::Value("device", Napi::Number::New(env, double(device)), napi_enumerable),
  });
  return object;
}

// ncclAllReduce(comm, t, op): in place, op 'sum' | 'avg' | 'max' | 'min' | 'product'.
Napi::Value NcclAllReduce(const Napi::CallbackInfo& info) {
  OpCall call(info, "ncclAllReduce");
  const std::shared_ptr<CommOwner>& comm = CommArg(call, 0);
  TensorHandle* t = DistTensor(call, call.Arg(1), "t", Device::kCuda);
  const crb_gloo_reduce op = ReduceArg(call, 2, t->dtype(), "t", 1);
  return Submit(call, comm, [&](crb_nccl_work** out, crb_nccl_error* e) {
    return comm->api()->all_reduce(comm->get(), t->data(), size_t(t->numel()), t->dtype(), op, out, e);
  });
}

// ncclAllReduceCoalesced(comm, tensors, op): every tensor (one dtype) in place, in one NCCL group.
Napi::Value NcclAllReduceCoalesced(const Napi::CallbackInfo& info) {
  OpCall call(info, "ncclAllReduceCoalesced");
  const std::shared_ptr<CommOwner>& comm = CommArg(call, 0);
  const std::vector<TensorHandle*> tensors = DistTensorList(call, 1, Device::kCuda);
  std::vector<void*> datas;
  std::vector<size_t> counts;
  for (TensorHandle* t : tensors) {
    datas.push_back(t->data());
    counts.push_back(size_t(t->numel()));
  }
  const crb_dtype dtype = tensors[0]->dtype();
  const crb_gloo_reduce op = ReduceArg(call, 2, dtype, "tensors", 1);
  return Submit(call, comm, [&](crb_nccl_work** out, crb_nccl_error* e) {
    return comm->api()->all_reduce_coalesced(comm->get(), datas.data(), counts.data(), datas.size(), dtype, op, out, e);
  });
}

// ncclBroadcast(comm, t, root): in place.
Napi::Value NcclBroadcast(const Napi::CallbackInfo& info) {
  OpCall call(info, "ncclBroadcast");
  const std::shared_ptr<CommOwner>& comm = CommArg(call, 0);
  TensorHandle* t = DistTensor(call, call.Arg(1), "t", Device::kCuda);
  const int root = int(call.Integer(2, "root", 0, comm->size() - 1));
  return Submit(call, comm, [&](crb_nccl_work** out, crb_nccl_error* e) {
    return comm->api()->broadcast(comm->get(), t->data(), size_t(t->numel()), t->dtype(), root, out, e);
  });
}

// ncclAllGather(comm, out, input): as distAllGather, on CUDA tensors.
Napi::Value NcclAllGather(const Napi::CallbackInfo& info) {
  OpCall call(info, "ncclAllGather");
  const std::shared_ptr<CommOwner>& comm = CommArg(call, 0);
  TensorHandle* out = DistTensor(call, call.Arg(1), "out", Device::kCuda);
  TensorHandle* input = DistTensor(call, call.Arg(2), "input", Device::kCuda);
  CheckGatherArgs(call, out, input, comm->size());
  return Submit(call, comm, [&](crb_nccl_work** w, crb_nccl_error* e) {
    return comm->api()->all_gather(comm->get(), out->data(), input->data(), size_t(input->numel()), input->dtype(), w, e);
  });
}

// Waits on a libuv pool thread (work_wait polls the event, the async error and the timeout);
// settles on the main thread.
class WaitWorker : public Napi::AsyncWorker {
 public:
  WaitWorker(Napi::Env env, std::shared_ptr<NcclWorkRef> work)
      : Napi::AsyncWorker(env, "cudnn-resblock:ncclWait"), deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)) {}
  Napi::Promise Promise() const { return deferred_.Promise(); }
  void Execute() override { status_ = work_->Wait(&error_); }
  void OnOK() override {
    if (status_ == CRB_NCCL_OK) deferred_.Resolve(Env().Undefined());
    else deferred_.Reject(MakeDistError(Env(), error_));
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<NcclWorkRef> work_;
  crb_nccl_status status_ = CRB_NCCL_OK;
  crb_nccl_error error_{};
};

// ncclWait(work): a Promise; the event loop never blocks on the GPU.
Napi::Value NcclWait(const Napi::CallbackInfo& info) {
  OpCall call(info, "ncclWait");
  auto* worker = new WaitWorker(call.env(), NcclWorkArg(call, 0));  // deletes itself once settled
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

// ncclWaitSync(work): blocks this thread until the work is done; throws its DistError.
Napi::Value NcclWaitSync(const Napi::CallbackInfo& info) {
  OpCall call(info, "ncclWaitSync");
  crb_nccl_error error{};
  CheckNccl(call.env(), NcclWorkArg(call, 0)->Wait(&error), error);
  return call.env().Undefined();
}

// ncclIsCompleted(work): one poll; true also when it failed (a wait then says how).
Napi::Value NcclIsCompleted(const Napi::CallbackInfo& info) {
  OpCall call(info, "ncclIsCompleted");
  return Napi::Boolean::New(call.env(), NcclWorkArg(call, 0)->Completed());
}

// ncclDestroy(comm): idempotent; flushes, then destroys (aborts after a failure).
Napi::Value NcclDestroy(const Napi::CallbackInfo& info) {
  OpCall call(info, "ncclDestroy");
  const std::shared_ptr<CommOwner>& comm = CommArg(call, 0);
  comm->api()->comm_shutdown(comm->get());
  return call.env().Undefined();
}

}  // namespace

// This file's rows of functions.def.
const js::Function js::ncclInfo = NcclInfo;
const js::Function js::ncclUniqueId = NcclUniqueId;
const js::Function js::ncclInit = NcclInit;
const js::Function js::ncclAllReduce = NcclAllReduce;
const js::Function js::ncclAllReduceCoalesced = NcclAllReduceCoalesced;
const js::Function js::ncclBroadcast = NcclBroadcast;
const js::Function js::ncclAllGather = NcclAllGather;
const js::Function js::ncclWait = NcclWait;
const js::Function js::ncclWaitSync = NcclWaitSync;
const js::Function js::ncclIsCompleted = NcclIsCompleted;
const js::Function js::ncclDestroy = NcclDestroy;

}  // namespace crb
