// libcrb_gloo.so's C ABI (crb_gloo.h): the four collectives as works on a ProcessGroup, and the
// table the addon loads. No C++ exception crosses the ABI: each becomes a crb_gloo_error.
#include <gloo/allgather.h>
#include <gloo/allreduce.h>
#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/config.h>
#include <gloo/math.h>

#include <cstdio>
#include <cstring>
#include <vector>
#include <type_traits>

#include "../backend/names.h"
#include "crb_gloo.h"
#include "process_group.h"

struct crb_gloo_pg {
  std::unique_ptr<crb::gloo_pg::ProcessGroup> pg;
};

struct crb_gloo_work {
  std::shared_ptr<crb::gloo_pg::Work> work;
};

namespace crb::gloo_pg {
namespace {

void Fill(crb_gloo_error* error, const Failure& f, int rank, int size) {
  if (!error) return;
  std::memset(error, 0, sizeof *error);
  error->code = f.code;
  std::snprintf(error->op, sizeof error->op, "%s", f.op.c_str());
  std::snprintf(error->message, sizeof error->message, "%s", f.message.c_str());
  error->rank = rank;
  error->world_size = size;
  error->peer = f.peer;
}

crb_gloo_status Invalid(crb_gloo_error* error, const ProcessGroup* pg, const char* op, const std::string& why) {
  Fill(error, Failure{CRB_GLOO_ERR_INVALID, op, std::string(op) + ": " + why, -1}, pg ? pg->rank() : -1,
       pg ? pg->size() : -1);
  return CRB_GLOO_ERR_INVALID;
}

// Calls f(T*) with the element type of `dtype`; false for one gloo cannot reduce.
template <typename F>
bool WithType(crb_dtype dtype, F&& f) {
  switch (dtype) {
    case CRB_F32: f(static_cast<float*>(nullptr)); return true;
    case CRB_F64: f(static_cast<double*>(nullptr)); return true;
    case CRB_I32: f(static_cast<int32_t*>(nullptr)); return true;
    case CRB_I64: f(static_cast<int64_t*>(nullptr)); return true;
    case CRB_U8: f(static_cast<uint8_t*>(nullptr)); return true;
    case CRB_F16:
    case CRB_BF16: return false;
  }
  return false;
}

template <typename T>
::gloo::AllreduceOptions::Func ReduceFunction(crb_gloo_reduce op) {
  using Fn = void (*)(void*, const void*, const void*, size_t);
  switch (op) {
    case CRB_GLOO_MAX: return static_cast<Fn>(&::gloo::max<T>);
    case CRB_GLOO_MIN: return static_cast<Fn>(&::gloo::min<T>);
    case CRB_GLOO_PRODUCT: return static_cast<Fn>(&::gloo::product<T>);
    case CRB_GLOO_SUM:
    case CRB_GLOO_AVG: break;
  }
  return static_cast<Fn>(&::gloo::sum<T>);
}

const char* ReduceName(crb_gloo_reduce op) {
  switch (op) {
    case CRB_GLOO_SUM: return "sum";
    case CRB_GLOO_AVG: return "avg";
    case CRB_GLOO_MAX: return "max";
    case CRB_GLOO_MIN: return "min";
    case CRB_GLOO_PRODUCT: return "product";
  }
  return "?";
}

std::string Describe(const char* op, crb_dtype dtype, size_t count, const std::string& extra = "") {
  return std::string(op) + " (" + crb_dtype_name(dtype) + ", " + std::to_string(count) + " elements" + extra + ")";
}

crb_gloo_status Enqueued(crb_gloo_pg* h, std::string op, std::string what, std::function<void(uint32_t)> run,
                         crb_gloo_work** out, crb_gloo_error* error) {
  try {
    *out = new crb_gloo_work{h->pg->Enqueue(std::move(op), std::move(what), std::move(run))};
    return CRB_GLOO_OK;
  } catch (const std::exception& e) {
    Fill(error, Failure{CRB_GLOO_ERR_INTERNAL, "enqueue", e.what(), -1}, h->pg->rank(), h->pg->size());
    return CRB_GLOO_ERR_INTERNAL;
  }
}

crb_gloo_status PgCreate(const crb_gloo_options* o, crb_gloo_pg** out, crb_gloo_error* error) {
  *out = nullptr;
  if (!o || o->world_size < 1 || o->rank < 0 || o->rank >= o->world_size || o->timeout_ms <= 0 ||
      (o->store == CRB_GLOO_STORE_TCP ? (!o->host || o->port <= 0 || o->port > 65535) : !o->path))
    return Invalid(error, nullptr, "rendezvous", "bad options (rank, world size, timeout or store)");
  try {
    *out = new crb_gloo_pg{ProcessGroup::Create(*o)};
    return CRB_GLOO_OK;
  } catch (const Failure& f) {
    Fill(error, f, o->rank, o->world_size);
    return f.code;
  } catch (const std::exception& e) {
    Fill(error, Failure{CRB_GLOO_ERR_INTERNAL, "rendezvous", std::string("rendezvous: ") + e.what(), -1}, o->rank,
         o->world_size);
    return CRB_GLOO_ERR_INTERNAL;
  }
}

void PgShutdown(crb_gloo_pg* h) {
  if (h) h->pg->Shutdown();
}

void PgRelease(crb_gloo_pg* h) { delete h; }

crb_gloo_status AllReduce(crb_gloo_pg* h, void* data, size_t count, crb_dtype dtype, crb_gloo_reduce op,
                          crb_gloo_work** out, crb_gloo_error* error) {
  ProcessGroup* pg = h->pg.get();
  if (op == CRB_GLOO_AVG && dtype != CRB_F32 && dtype != CRB_F64)
    return Invalid(error, pg, "allReduce", "avg needs a float32 or float64 tensor");
  std::function<void(uint32_t)> run;
  const bool typed = WithType(dtype, [&](auto* type) {
    using T = std::remove_pointer_t<decltype(type)>;
    run = [pg, data, count, op](uint32_t tag) {
      if (count == 0) return;
      T* p = static_cast<T*>(data);
      ::gloo::AllreduceOptions opts(pg->context());
      opts.setOutput<T>(p, count);  // in place: the output is also the input
      opts.setReduceFunction(ReduceFunction<T>(op));
      opts.setTag(tag);
      opts.setTimeout(pg->timeout());
      ::gloo::allreduce(opts);
      if (op == CRB_GLOO_AVG)
        for (size_t i = 0; i < count; i++) p[i] /= T(pg->size());
    };
  });
  if (!typed) return Invalid(error, pg, "allReduce", std::string("cannot reduce ") + crb_dtype_name(dtype));
  return Enqueued(h, "allReduce", Describe("allReduce", dtype, count, std::string(", ") + ReduceName(op)), run, out,
                  error);
}

crb_gloo_status AllReduceCoalesced(crb_gloo_pg* h, void* const* datas, const size_t* counts, size_t n,
                                   crb_dtype dtype, crb_gloo_reduce op, crb_gloo_work** out, crb_gloo_error* error) {
  ProcessGroup* pg = h->pg.get();
  if (op == CRB_GLOO_AVG && dtype != CRB_F32 && dtype != CRB_F64)
    return Invalid(error, pg, "allReduce", "avg needs float32 or float64 tensors");
  std::vector<void*> buffers(datas, datas + n);
  std::vector<size_t> sizes(counts, counts + n);
  size_t total = 0;
  for (size_t c : sizes) total += c;
  std::function<void(uint32_t)> run;
  const bool typed = WithType(dtype, [&](auto* type) {
    using T = std::remove_pointer_t<decltype(type)>;
    run = [pg, buffers, sizes, total, op](uint32_t tag) {
      if (total == 0) return;
      std::vector<T> flat(total);
      size_t at = 0;
      for (size_t i = 0; i < buffers.size(); i++) {
        std::memcpy(flat.data() + at, buffers[i], sizes[i] * sizeof(T));
        at += sizes[i];
      }
      ::gloo::AllreduceOptions opts(pg->context());
      opts.setOutput<T>(flat.data(), total);
      opts.setReduceFunction(ReduceFunction<T>(op));
      opts.setTag(tag);
      opts.setTimeout(pg->timeout());
      ::gloo::allreduce(opts);
      const T scale = op == CRB_GLOO_AVG ? T(1) / T(pg->size()) : T(1);
      at = 0;
      for (size_t i = 0; i < buffers.size(); i++) {
        T* p = static_cast<T*>(buffers[i]);
        for (size_t k = 0; k < sizes[i]; k++) p[k] = op == CRB_GLOO_AVG ? flat[at + k] * scale : flat[at + k];
        at += sizes[i];
      }
    };
  });
  if (!typed) return Invalid(error, pg, "allReduce", std::string("cannot reduce ") + crb_dtype_name(dtype));
  return Enqueued(h, "allReduce",
                  Describe("allReduce", dtype, total, ", " + std::string(ReduceName(op)) + ", " + std::to_string(n) + " tensors coalesced"),
                  run, out, error);
}

crb_gloo_status Broadcast(crb_gloo_pg* h, void* data, size_t count, crb_dtype dtype, int32_t root,
                          crb_gloo_work** out, crb_gloo_error* error) {
  ProcessGroup* pg = h->pg.get();
  if (root < 0 || root >= pg->size()) return Invalid(error, pg, "broadcast", "root out of range");
  std::function<void(uint32_t)> run;
  const bool typed = WithType(dtype, [&](auto* type) {
    using T = std::remove_pointer_t<decltype(type)>;
    run = [pg, data, count, root](uint32_t tag) {
      if (count == 0) return;
      ::gloo::BroadcastOptions opts(pg->context());
      opts.setOutput<T>(static_cast<T*>(data), count);  // the root sends its output in place
      opts.setRoot(root);
      opts.setTag(tag);
      opts.setTimeout(pg->timeout());
      ::gloo::broadcast(opts);
    };
  });
  if (!typed) return Invalid(error, pg, "broadcast", std::string("cannot send ") + crb_dtype_name(dtype));
  return Enqueued(h, "broadcast", Describe("broadcast", dtype, count, ", root " + std::to_string(root)), run, out,
                  error);
}

crb_gloo_status AllGather(crb_gloo_pg* h, void* output, const void* input, size_t count, crb_dtype dtype,
                          crb_gloo_work** out, crb_gloo_error* error) {
  ProcessGroup* pg = h->pg.get();
  std::function<void(uint32_t)> run;
  const bool typed = WithType(dtype, [&](auto* type) {
    using T = std::remove_pointer_t<decltype(type)>;
    run = [pg, output, input, count](uint32_t tag) {
      if (count == 0) return;
      ::gloo::AllgatherOptions opts(pg->context());
      opts.setInput<T>(const_cast<T*>(static_cast<const T*>(input)), count);
      opts.setOutput<T>(static_cast<T*>(output), count * size_t(pg->size()));
      opts.setTag(tag);
      opts.setTimeout(pg->timeout());
      ::gloo::allgather(opts);
    };
  });
  if (!typed) return Invalid(error, pg, "allGather", std::string("cannot send ") + crb_dtype_name(dtype));
  return Enqueued(h, "allGather", Describe("allGather", dtype, count), run, out, error);
}

crb_gloo_status Barrier(crb_gloo_pg* h, crb_gloo_work** out, crb_gloo_error* error) {
  ProcessGroup* pg = h->pg.get();
  auto run = [pg](uint32_t tag) {
    ::gloo::BarrierOptions opts(pg->context());
    opts.setTag(tag);
    opts.setTimeout(pg->timeout());
    ::gloo::barrier(opts);
  };
  return Enqueued(h, "barrier", "barrier", run, out, error);
}

crb_gloo_status WorkWait(crb_gloo_work* w, crb_gloo_error* error) {
  Failure f;
  if (w->work->Wait(&f)) return CRB_GLOO_OK;
  Fill(error, f, w->work->rank(), w->work->size());
  return f.code;
}

int WorkIsCompleted(const crb_gloo_work* w) { return w->work->Completed() ? 1 : 0; }

void WorkOnDone(crb_gloo_work* w, crb_gloo_done_fn fn, void* user) { w->work->OnDone(fn, user); }

void WorkRelease(crb_gloo_work* w) { delete w; }

#define CRB_STR2(x) #x
#define CRB_STR(x) CRB_STR2(x)

const crb_gloo_api_table kTable = {
    CRB_GLOO_ABI_VERSION,
    CRB_STR(GLOO_VERSION_MAJOR) "." CRB_STR(GLOO_VERSION_MINOR) "." CRB_STR(GLOO_VERSION_PATCH),
    PgCreate,
    PgShutdown,
    PgRelease,
    AllReduce,
    AllReduceCoalesced,
    Broadcast,
    AllGather,
    Barrier,
    WorkWait,
    WorkIsCompleted,
    WorkOnDone,
    WorkRelease,
};

}  // namespace
}  // namespace crb::gloo_pg

extern "C" __attribute__((visibility("default"))) uint32_t crb_gloo_abi_version(void) { return CRB_GLOO_ABI_VERSION; }

extern "C" __attribute__((visibility("default"))) const crb_gloo_api_table* crb_gloo_api(void) {
  return &crb::gloo_pg::kTable;
}
