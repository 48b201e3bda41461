// readSync / read. read: read_begin on the main thread (so the copy is ordered after the work
// queued so far), read_finish on a worker thread, the typed array resolved on the main thread.
#include "read.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include "../core/host_convert.h"
#include "addon_data.h"
#include "exports.h"
#include "op_call.h"

namespace crb {

crb_status ReadToHost(const crb_backend* backend, const void* src, size_t nbytes, void* host_dst,
                      const char** abi_op) {
  if (nbytes == 0) return CRB_OK;
  crb_read* pending = nullptr;
  *abi_op = "read_begin";
  crb_status status = backend->read_begin(src, nbytes, &pending);
  if (status != CRB_OK) return status;
  *abi_op = "read_finish";
  return backend->read_finish(pending, host_dst);
}

namespace {

// Note [reads never abort]
// A read that fits in backend memory may not fit in a JS typed array. napi_create_arraybuffer
// (under Napi::ArrayBuffer::New) ends in v8::ArrayBuffer::New, which kills the process when the
// allocation fails ("ArrayBuffer::New Allocation failed"), and v8::Float32Array::New aborts on a
// length above the typed-array limit. The JS constructors check both and throw a RangeError
// instead, so reads allocate through them (captured at load, before user code can replace them)
// and turn that RangeError into OutOfMemoryError: from readSync it is thrown, from read the
// Promise rejects. Host staging (float16 widening) is allocated without throwing for the same
// reason. The typed-array limit is V8's own (buffer.constants.MAX_LENGTH elements: 2^32 on
// Node 20); CRB_TEST_MAX_ARRAY_LENGTH, read once at load, lowers it so tests need no memory.

bool IsHalf(crb_dtype dtype) { return dtype == CRB_F16 || dtype == CRB_BF16; }

const char* HostArrayName(crb_dtype dtype) {
  switch (dtype) {
    case CRB_F32:
    case CRB_F16:
    case CRB_BF16: return "Float32Array";
    case CRB_F64: return "Float64Array";
    case CRB_I32: return "Int32Array";
    case CRB_I64: return "BigInt64Array";
    case CRB_U8: return "Uint8Array";
  }
  return "Uint8Array";
}

size_t HostElementSize(crb_dtype dtype) { return IsHalf(dtype) ? 4 : crb_dtype_size(dtype); }

// The test hook: 0 when unset (V8's own limit applies).
uint64_t TestMaxArrayLength() {
  static const uint64_t limit = [] {
    const char* v = std::getenv("CRB_TEST_MAX_ARRAY_LENGTH");
    return v ? uint64_t(std::strtoull(v, nullptr, 10)) : uint64_t(0);
  }();
  return limit;
}

// A new typed array of `numel` elements for `dtype`, or the reason there is none (*why).
bool NewHostArray(Napi::Env env, crb_dtype dtype, size_t numel, Napi::TypedArray* out, std::string* why) {
  const char* name = HostArrayName(dtype);
  const std::string what = std::string(name) + " of " + std::to_string(numel) + " elements (" +
                           std::to_string(uint64_t(numel) * HostElementSize(dtype)) + " bytes)";
  uint64_t test_limit = TestMaxArrayLength();
  if (test_limit && numel > test_limit) {
    *why = "cannot read into a " + what + ": more than the typed-array limit of " + std::to_string(test_limit) +
           " elements (CRB_TEST_MAX_ARRAY_LENGTH)";
    return false;
  }
  Napi::FunctionReference& ctor = GetAddonData(env).host_array_constructors[dtype];
  try {
    *out = ctor.New({Napi::Number::New(env, double(numel))}).As<Napi::TypedArray>();
    return true;
  } catch (const Napi::Error& e) {  // RangeError: invalid length, or the allocation failed
    *why = "cannot read into a " + what + ": " + e.Message();
    return false;
  }
}

// A host-side allocation failure, as the backend would describe it (OutOfMemoryError in JS).
crb_error HostOom(const std::string& why) {
  crb_error error{};
  error.code = CRB_ERR_OOM;
  std::snprintf(error.op, sizeof error.op, "%s", "host array");
  std::snprintf(error.status, sizeof error.status, "%s", "CRB_ERR_OOM");
  std::snprintf(error.message, sizeof error.message, "%s", why.c_str());
  return error;
}

Napi::Object HostOomError(Napi::Env env, const char* fn, const TensorHandle* h, const std::string& why) {
  return MakeBackendError(env, HostOom(why), fn, h->device(),
                          "h: " + std::string(crb_dtype_name(h->dtype())) + " " + ShapeToString(h->shape()));
}

// Finishes the read of `nbytes` of float16/bfloat16 and widens it into float32 at dst. A failed
// staging allocation sets *no_staging (the read is still released).
crb_status WidenHalves(const crb_backend* backend, crb_read* pending, crb_dtype dtype, size_t nbytes, void* dst,
                       int64_t numel, bool* no_staging) {
  std::unique_ptr<uint8_t[]> raw(new (std::nothrow) uint8_t[nbytes ? nbytes : 1]);
  if (!raw) {
    *no_staging = true;
    backend->read_finish(pending, nullptr);
    return CRB_ERR_OOM;
  }
  crb_status status = backend->read_finish(pending, raw.get());
  if (status == CRB_OK) ConvertHost(dst, CRB_F32, raw.get(), dtype, numel);
  return status;
}

std::string NoStaging(size_t nbytes) {
  return "cannot allocate " + std::to_string(nbytes) + " bytes of host staging to widen float16/bfloat16";
}

Napi::Value ReadSync(const Napi::CallbackInfo& info) {
  OpCall call(info, "readSync");
  TensorHandle* h = call.Tensor(0, "h");
  const crb_backend* backend = call.backend();
  size_t numel = size_t(h->numel());
  Napi::TypedArray array;
  std::string why;
  if (!NewHostArray(call.env(), h->dtype(), numel, &array, &why))
    throw Napi::Error(call.env(), HostOomError(call.env(), "readSync", h, why));
  if (numel == 0) return array;
  void* dst = static_cast<uint8_t*>(array.ArrayBuffer().Data()) + array.ByteOffset();
  crb_read* pending = nullptr;
  call.Check(backend->read_begin(h->data(), h->nbytes(), &pending), "read_begin");
  bool no_staging = false;
  crb_status status = IsHalf(h->dtype())
                          ? WidenHalves(backend, pending, h->dtype(), h->nbytes(), dst, int64_t(numel), &no_staging)
                          : backend->read_finish(pending, dst);
  if (no_staging) throw Napi::Error(call.env(), HostOomError(call.env(), "readSync", h, NoStaging(h->nbytes())));
  call.Check(status, "read_finish");
  return array;
}

// Holds the storage (so dispose() during the read frees nothing) and the destination array.
class ReadWorker : public Napi::AsyncWorker {
 public:
  ReadWorker(Napi::Env env, Napi::Promise::Deferred deferred, const crb_backend* backend, TensorHandle* h,
             crb_read* pending, Napi::TypedArray array)
      : Napi::AsyncWorker(env, "cudnn-resblock:read"),
        deferred_(deferred),
        backend_(backend),
        storage_(h->storage()),
        dtype_(h->dtype()),
        device_(h->device()),
        numel_(h->numel()),
        nbytes_(h->nbytes()),
        shape_(h->shape()),
        pending_(pending),
        array_ref_(Napi::Persistent(Napi::Object(array))),
        dst_(static_cast<uint8_t*>(array.ArrayBuffer().Data()) + array.ByteOffset()) {}

  ~ReadWorker() override {
    // Never started (queueing failed): the read must still be finished to release it.
    if (pending_) backend_->read_finish(pending_, nullptr);
  }

 protected:
  void Execute() override {
    crb_read* pending = pending_;
    pending_ = nullptr;
    bool no_staging = false;
    crb_status status = IsHalf(dtype_) ? WidenHalves(backend_, pending, dtype_, nbytes_, dst_, numel_, &no_staging)
                                       : backend_->read_finish(pending, dst_);
    // last_error() is per thread: copy it here, where the call failed.
    if (no_staging) {
      failed_ = true;
      error_ = HostOom(NoStaging(nbytes_));
    } else if (status != CRB_OK) {
      failed_ = true;
      error_ = CaptureBackendError(backend_, status, "read_finish");
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (failed_) {
      deferred_.Reject(MakeBackendError(env, error_, "read", device_, "h: " + std::string(crb_dtype_name(dtype_)) + " " +
                                                                           ShapeToString(shape_)));
      return;
    }
    deferred_.Resolve(array_ref_.Value());
  }

  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  const crb_backend* backend_;
  std::shared_ptr<Storage> storage_;
  crb_dtype dtype_;
  Device device_;
  int64_t numel_;
  size_t nbytes_;
  Shape shape_;
  crb_read* pending_;
  Napi::ObjectReference array_ref_;
  void* dst_;
  bool failed_ = false;
  crb_error error_{};
};

// Argument errors throw (as every op does); running out of memory rejects the Promise.
Napi::Value Read(const Napi::CallbackInfo& info) {
  OpCall call(info, "read");
  TensorHandle* h = call.Tensor(0, "h");
  const crb_backend* backend = call.backend();
  Napi::Env env = call.env();
  auto deferred = Napi::Promise::Deferred::New(env);
  size_t numel = size_t(h->numel());
  Napi::TypedArray array;
  std::string why;
  if (!NewHostArray(env, h->dtype(), numel, &array, &why)) {
    deferred.Reject(HostOomError(env, "read", h, why));
    return deferred.Promise();
  }
  if (numel == 0) {
    deferred.Resolve(array);
    return deferred.Promise();
  }
  crb_read* pending = nullptr;
  crb_status status = backend->read_begin(h->data(), h->nbytes(), &pending);
  if (status != CRB_OK) {
    try {
      call.Check(status, "read_begin");
    } catch (const Napi::Error& e) {
      deferred.Reject(e.Value());
      return deferred.Promise();
    }
  }
  auto* worker = new ReadWorker(env, deferred, backend, h, pending, array);
  worker->Queue();
  return deferred.Promise();
}

}  // namespace

void CacheHostArrayConstructors(Napi::Env env) {
  AddonData& data = GetAddonData(env);
  for (crb_dtype dtype : {CRB_F32, CRB_F64, CRB_F16, CRB_BF16, CRB_I32, CRB_I64, CRB_U8})
    data.host_array_constructors[dtype] = Napi::Persistent(env.Global().Get(HostArrayName(dtype)).As<Napi::Function>());
}

// This file's rows of functions.def.
const js::Function js::readSync = ReadSync;
const js::Function js::read = Read;

}  // namespace crb
