// Data-parallel process groups over gloo: distInfo, distInit, the collectives (distAllReduce,
// distBroadcast, distAllGather, distBarrier), distWait / distWaitSync / distIsCompleted and
// distDestroy. Everything gloo lives in libcrb_gloo.so (native/gloo/), loaded the first time
// one of these is called.
//
// Note [who keeps a collective's tensors alive]
// A collective writes into its tensors on the group's worker thread until its work completes,
// whatever JS does meanwhile (dispose(), dropping the work handle). So the group (PgOwner), not
// the work handle, holds the tensors' Storage of every work in flight, and lets go of them on
// the main thread (Storage's destructor reports to V8) once the work has completed: when a work
// is awaited or polled, at the next enqueue, and after shutdown joined the worker. Work handles
// hold their group, so a group is only collected once no handle to it or its works is left;
// its finalizer then shuts it down (waiting for a running collective, at most the timeout).
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "../core/gloo_loader.h"
#include "backends.h"
#include "dist_common.h"
#include "errors.h"
#include "exports.h"
#include "op_call.h"

namespace crb {
namespace {

constexpr napi_type_tag kProcessGroupTag = {0x6372627067726f75ULL, 0x70a4c1e93b5d2f01ULL};
constexpr napi_type_tag kWorkTag = {0x637262776f726b00ULL, 0x1f2e3d4c5b6a7988ULL};

const GlooLoadResult& Gloo() { return load_gloo_library(AddonDirectory()); }

const crb_gloo_api_table* GlooOrThrow(Napi::Env env, const char* fn) {
  const GlooLoadResult& g = Gloo();
  if (!g.api) ThrowError(env, std::string(fn) + ": distributed training is not available: " + g.reason);
  return g.api;
}

// Owns one crb_gloo_work.
class WorkRef {
 public:
  WorkRef(const crb_gloo_api_table* api, crb_gloo_work* work) : api_(api), work_(work) {}
  ~WorkRef() { api_->work_release(work_); }
  WorkRef(const WorkRef&) = delete;
  WorkRef& operator=(const WorkRef&) = delete;
  crb_gloo_work* get() const { return work_; }
  bool completed() const { return api_->work_is_completed(work_) != 0; }

 private:
  const crb_gloo_api_table* api_;
  crb_gloo_work* work_;
};

// Owns one crb_gloo_pg and the storage of its works in flight (see the Note above).
class PgOwner {
 public:
  PgOwner(const crb_gloo_api_table* api, crb_gloo_pg* pg, int rank, int size)
      : api_(api), pg_(pg), rank_(rank), size_(size) {}
  ~PgOwner() {
    api_->pg_release(pg_);  // joins the worker: every work is done, so in_flight_ may go
  }
  PgOwner(const PgOwner&) = delete;
  PgOwner& operator=(const PgOwner&) = delete;

  const crb_gloo_api_table* api() const { return api_; }
  crb_gloo_pg* get() const { return pg_; }
  int rank() const { return rank_; }
  int size() const { return size_; }

  void Track(std::shared_ptr<WorkRef> work, std::vector<std::shared_ptr<Storage>> keep) {
    Prune();
    in_flight_.push_back({std::move(work), std::move(keep)});
  }
  void Prune() {
    std::vector<InFlight> still;
    for (auto& f : in_flight_)
      if (!f.work->completed()) still.push_back(std::move(f));
    in_flight_.swap(still);
  }
  void Shutdown() {
    api_->pg_shutdown(pg_);  // idempotent
    Prune();
  }

 private:
  struct InFlight {
    std::shared_ptr<WorkRef> work;
    std::vector<std::shared_ptr<Storage>> keep;
  };
  const crb_gloo_api_table* api_;
  crb_gloo_pg* pg_;
  const int rank_, size_;
  std::vector<InFlight> in_flight_;
};

struct PgHandle {
  std::shared_ptr<PgOwner> pg;
};

struct WorkHandle {
  std::shared_ptr<PgOwner> pg;
  std::shared_ptr<WorkRef> work;
};

const std::shared_ptr<PgOwner>& PgArg(OpCall& call, size_t index) {
  auto* h = Unwrap<PgHandle>(call.Arg(index), kProcessGroupTag);
  if (!h) call.TypeErr("pg", "a process group handle (from distInit)", DescribeValue(call.Arg(index)));
  return h->pg;
}

WorkHandle& WorkArg(OpCall& call, size_t index) {
  auto* h = Unwrap<WorkHandle>(call.Arg(index), kWorkTag);
  if (!h) call.TypeErr("work", "a work handle (from a dist* collective)", DescribeValue(call.Arg(index)));
  return *h;
}

// Starts a collective: `enqueue` calls the library; the work's tensors are tracked by the group.
Napi::Value Submit(OpCall& call, const std::shared_ptr<PgOwner>& pg, std::vector<TensorHandle*> tensors,
                   const std::function<crb_gloo_status(crb_gloo_work**, crb_gloo_error*)>& enqueue) {
  crb_gloo_work* raw = nullptr;
  crb_gloo_error error{};
  CheckGloo(call.env(), enqueue(&raw, &error), error);
  auto work = std::make_shared<WorkRef>(pg->api(), raw);
  std::vector<std::shared_ptr<Storage>> keep;
  for (TensorHandle* t : tensors) keep.push_back(t->storage());
  pg->Track(work, std::move(keep));
  return Wrap(call.env(), new WorkHandle{pg, work}, kWorkTag);
}

Napi::Value DistInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const GlooLoadResult& g = Gloo();
  Napi::Object out = Napi::Object::New(env);
  out.Set("available", Napi::Boolean::New(env, g.api != nullptr));
  if (!g.api) out.Set("reason", Napi::String::New(env, g.reason));
  if (!g.library_path.empty()) out.Set("library", Napi::String::New(env, g.library_path));
  if (g.api) out.Set("gloo", Napi::String::New(env, g.api->gloo_version));
  return out;
}

std::string StringField(OpCall& call, const Napi::Object& o, const char* key, const std::string& name) {
  Napi::Value v = o.Get(key);
  if (!v.IsString() || v.As<Napi::String>().Utf8Value().empty())
    call.TypeErr(name, "a non-empty string", DescribeValue(v));
  return v.As<Napi::String>().Utf8Value();
}

// distInit({rank, worldSize, store: {kind: 'tcp', host, port} | {kind: 'file', path}, timeoutMs,
// prefix?}): blocks until every rank joined.
Napi::Value DistInit(const Napi::CallbackInfo& info) {
  OpCall call(info, "distInit");
  Napi::Env env = call.env();
  if (!call.Arg(0).IsObject()) call.TypeErr("o", "an options object", DescribeValue(call.Arg(0)));
  Napi::Object o = call.Arg(0).As<Napi::Object>();
  const int64_t world = IntField(call, o, "worldSize", "o.worldSize", 1, 1 << 20);
  const int64_t rank = IntField(call, o, "rank", "o.rank", 0, world - 1);
  const int64_t timeout = IntField(call, o, "timeoutMs", "o.timeoutMs", 1, int64_t(1) << 40);
  if (!o.Get("store").IsObject()) call.TypeErr("o.store", "{kind: 'tcp' | 'file', ...}", DescribeValue(o.Get("store")));
  Napi::Object store = o.Get("store").As<Napi::Object>();
  const std::string kind = store.Get("kind").IsString() ? store.Get("kind").As<Napi::String>().Utf8Value() : "";
  crb_gloo_options options{};
  options.rank = int32_t(rank);
  options.world_size = int32_t(world);
  options.timeout_ms = timeout;
  std::string host, path, prefix;
  if (kind == "tcp") {
    options.store = CRB_GLOO_STORE_TCP;
    host = StringField(call, store, "host", "o.store.host");
    options.port = int32_t(IntField(call, store, "port", "o.store.port", 1, 65535));
  } else if (kind == "file") {
    options.store = CRB_GLOO_STORE_FILE;
    path = StringField(call, store, "path", "o.store.path");
  } else {
    call.RangeErr("o.store.kind", "\"tcp\" or \"file\"", DescribeValue(store.Get("kind")));
  }
  if (!o.Get("prefix").IsUndefined()) prefix = StringField(call, o, "prefix", "o.prefix");
  options.host = host.c_str();
  options.path = path.c_str();
  options.prefix = prefix.c_str();

  const crb_gloo_api_table* api = GlooOrThrow(env, "distInit");
  crb_gloo_pg* raw = nullptr;
  crb_gloo_error error{};
  CheckGloo(env, api->pg_create(&options, &raw, &error), error);
  auto* h = new PgHandle{std::make_shared<PgOwner>(api, raw, int(rank), int(world))};
  Napi::Object object = Wrap(env, h, kProcessGroupTag);
  object.DefineProperties({
      Napi::PropertyDescriptor::Value("rank", Napi::Number::New(env, double(rank)), napi_enumerable),
      Napi::PropertyDescriptor::Value("worldSize", Napi::Number::New(env, double(world)), napi_enumerable),
  });
  return object;
}

// distAllReduce(pg, t, op): in place, op 'sum' | 'avg' | 'max' | 'min' | 'product'.
Napi::Value DistAllReduce(const Napi::CallbackInfo& info) {
  OpCall call(info, "distAllReduce");
  const std::shared_ptr<PgOwner>& pg = PgArg(call, 0);
  TensorHandle* t = DistTensor(call, call.Arg(1), "t", Device::kCpu);
  const crb_gloo_reduce op = ReduceArg(call, 2, t->dtype(), "t", 1);
  void* data = t->data();
  const size_t count = size_t(t->numel());
  const crb_dtype dtype = t->dtype();
  return Submit(call, pg, {t}, [&](crb_gloo_work** out, crb_gloo_error* e) {
    return pg->api()->all_reduce(pg->get(), data, count, dtype, op, out, e);
  });
}

// distAllReduceCoalesced(pg, tensors, op): every tensor (one dtype) in place, as one all-reduce.
Napi::Value DistAllReduceCoalesced(const Napi::CallbackInfo& info) {
  OpCall call(info, "distAllReduceCoalesced");
  const std::shared_ptr<PgOwner>& pg = PgArg(call, 0);
  const std::vector<TensorHandle*> tensors = DistTensorList(call, 1, Device::kCpu);
  std::vector<void*> datas;
  std::vector<size_t> counts;
  for (TensorHandle* t : tensors) {
    datas.push_back(t->data());
    counts.push_back(size_t(t->numel()));
  }
  const crb_dtype dtype = tensors[0]->dtype();
  const crb_gloo_reduce op = ReduceArg(call, 2, dtype, "tensors", 1);
  return Submit(call, pg, tensors, [&](crb_gloo_work** out, crb_gloo_error* e) {
    return pg->api()->all_reduce_coalesced(pg->get(), datas.data(), counts.data(), datas.size(), dtype, op, out, e);
  });
}

// distBroadcast(pg, t, root): in place.
Napi::Value DistBroadcast(const Napi::CallbackInfo& info) {
  OpCall call(info, "distBroadcast");
  const std::shared_ptr<PgOwner>& pg = PgArg(call, 0);
  TensorHandle* t = DistTensor(call, call.Arg(1), "t", Device::kCpu);
  const int root = int(call.Integer(2, "root", 0, pg->size() - 1));
  void* data = t->data();
  const size_t count = size_t(t->numel());
  const crb_dtype dtype = t->dtype();
  return Submit(call, pg, {t}, [&](crb_gloo_work** out, crb_gloo_error* e) {
    return pg->api()->broadcast(pg->get(), data, count, dtype, root, out, e);
  });
}

// distAllGather(pg, out, input): out is input's shape with dim 0 worldSize times larger (shape
// [worldSize] for a scalar input), rank r's input at out[r * input.shape[0] ...].
Napi::Value DistAllGather(const Napi::CallbackInfo& info) {
  OpCall call(info, "distAllGather");
  const std::shared_ptr<PgOwner>& pg = PgArg(call, 0);
  TensorHandle* out = DistTensor(call, call.Arg(1), "out", Device::kCpu);
  TensorHandle* input = DistTensor(call, call.Arg(2), "input", Device::kCpu);
  CheckGatherArgs(call, out, input, pg->size());
  void* dst = out->data();
  const void* src = input->data();
  const size_t count = size_t(input->numel());
  const crb_dtype dtype = input->dtype();
  return Submit(call, pg, {out, input}, [&](crb_gloo_work** w, crb_gloo_error* e) {
    return pg->api()->all_gather(pg->get(), dst, src, count, dtype, w, e);
  });
}

Napi::Value DistBarrier(const Napi::CallbackInfo& info) {
  OpCall call(info, "distBarrier");
  const std::shared_ptr<PgOwner>& pg = PgArg(call, 0);
  return Submit(call, pg, {}, [&](crb_gloo_work** out, crb_gloo_error* e) {
    return pg->api()->barrier(pg->get(), out, e);
  });
}

// The work's result as a JS value: undefined, or the DistError (not thrown).
Napi::Value Outcome(Napi::Env env, const WorkHandle& w) {
  crb_gloo_error error{};
  const crb_gloo_status status = w.pg->api()->work_wait(w.work->get(), &error);
  w.pg->Prune();
  return status == CRB_GLOO_OK ? env.Undefined() : Napi::Value(MakeDistError(env, error));
}

// One pending distWait: settled on the main thread by a thread-safe function the worker calls.
struct Waiter {
  Napi::Promise::Deferred deferred;
  WorkHandle work;
};

void SettleOnMainThread(Napi::Env env, Napi::Function, Waiter* waiter, std::nullptr_t*) {
  if (env == nullptr) return;  // the environment is shutting down
  Napi::Value outcome = Outcome(env, waiter->work);
  if (outcome.IsUndefined()) waiter->deferred.Resolve(outcome);
  else waiter->deferred.Reject(outcome);
}

using SettleFn = Napi::TypedThreadSafeFunction<Waiter, std::nullptr_t, SettleOnMainThread>;

// Holds the thread-safe function between work_on_done and the worker's call.
struct Notifier {
  SettleFn tsfn;
};

// distWait(work): a Promise settled on the main thread; the event loop never blocks on it.
Napi::Value DistWait(const Napi::CallbackInfo& info) {
  OpCall call(info, "distWait");
  WorkHandle& w = WorkArg(call, 0);
  Napi::Env env = call.env();
  auto deferred = Napi::Promise::Deferred::New(env);
  if (w.work->completed()) {
    Napi::Value outcome = Outcome(env, w);
    if (outcome.IsUndefined()) deferred.Resolve(outcome);
    else deferred.Reject(outcome);
    return deferred.Promise();
  }
  auto* waiter = new Waiter{deferred, w};
  // Ref'd until settled, so the process stays up while a collective is awaited.
  SettleFn tsfn = SettleFn::New(env, "cudnn-resblock:distWait", 0, 1, waiter,
                                [](Napi::Env, void*, Waiter* done) { delete done; });
  auto* notifier = new Notifier{tsfn};
  w.pg->api()->work_on_done(
      w.work->get(),
      [](void* user) {
        std::unique_ptr<Notifier> n(static_cast<Notifier*>(user));
        n->tsfn.NonBlockingCall(nullptr);
        n->tsfn.Release();
      },
      notifier);
  return deferred.Promise();
}

// distWaitSync(work): blocks this thread until the work is done; throws its DistError.
Napi::Value DistWaitSync(const Napi::CallbackInfo& info) {
  OpCall call(info, "distWaitSync");
  Napi::Value outcome = Outcome(call.env(), WorkArg(call, 0));
  if (!outcome.IsUndefined()) throw Napi::Error(call.env(), outcome);
  return call.env().Undefined();
}

Napi::Value DistIsCompleted(const Napi::CallbackInfo& info) {
  OpCall call(info, "distIsCompleted");
  WorkHandle& w = WorkArg(call, 0);
  const bool done = w.work->completed();
  if (done) w.pg->Prune();
  return Napi::Boolean::New(call.env(), done);
}

// distDestroy(pg): idempotent; queued works fail with "process group destroyed".
Napi::Value DistDestroy(const Napi::CallbackInfo& info) {
  OpCall call(info, "distDestroy");
  PgArg(call, 0)->Shutdown();
  return call.env().Undefined();
}

}  // namespace

// This file's rows of functions.def.
const js::Function js::distInfo = DistInfo;
const js::Function js::distInit = DistInit;
const js::Function js::distAllReduce = DistAllReduce;
const js::Function js::distAllReduceCoalesced = DistAllReduceCoalesced;
const js::Function js::distBroadcast = DistBroadcast;
const js::Function js::distAllGather = DistAllGather;
const js::Function js::distBarrier = DistBarrier;
const js::Function js::distWait = DistWait;
const js::Function js::distWaitSync = DistWaitSync;
const js::Function js::distIsCompleted = DistIsCompleted;
const js::Function js::distDestroy = DistDestroy;

}  // namespace crb
