// readSync / read. read: read_begin on the main thread (so the copy is ordered after the work
// queued so far), read_finish on a worker thread, the typed array resolved on the main thread.
#include "read.h"

#include <cstring>

#include "../core/host_convert.h"
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

bool IsHalf(crb_dtype dtype) { return dtype == CRB_F16 || dtype == CRB_BF16; }

// The typed array a dtype reads back into, over `buffer`.
Napi::Value MakeTypedArray(Napi::Env env, crb_dtype dtype, Napi::ArrayBuffer buffer, size_t numel) {
  switch (dtype) {
    case CRB_F32:
    case CRB_F16:
    case CRB_BF16: return Napi::Float32Array::New(env, numel, buffer, 0);
    case CRB_F64: return Napi::Float64Array::New(env, numel, buffer, 0);
    case CRB_I32: return Napi::Int32Array::New(env, numel, buffer, 0);
    case CRB_I64: return Napi::BigInt64Array::New(env, numel, buffer, 0);
    case CRB_U8: return Napi::Uint8Array::New(env, numel, buffer, 0);
  }
  return env.Undefined();
}

size_t HostElementSize(crb_dtype dtype) { return IsHalf(dtype) ? 4 : DTypeSize(dtype); }

void WidenHalves(crb_dtype dtype, const std::vector<uint8_t>& raw, void* dst, int64_t numel) {
  ConvertHost(dst, CRB_F32, raw.data(), dtype, numel);
}

Napi::Value ReadSync(const Napi::CallbackInfo& info) {
  OpCall call(info, "readSync");
  TensorHandle* h = call.Tensor(0, "h");
  const crb_backend* backend = call.backend();
  size_t numel = size_t(h->numel());
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(call.env(), numel * HostElementSize(h->dtype()));
  const char* abi_op = "read_begin";
  if (IsHalf(h->dtype())) {
    std::vector<uint8_t> raw(h->nbytes());
    call.Check(ReadToHost(backend, h->data(), raw.size(), raw.data(), &abi_op), abi_op);
    WidenHalves(h->dtype(), raw, buffer.Data(), int64_t(numel));
  } else {
    call.Check(ReadToHost(backend, h->data(), h->nbytes(), buffer.Data(), &abi_op), abi_op);
  }
  return MakeTypedArray(call.env(), h->dtype(), buffer, numel);
}

// Holds the storage (so dispose() during the read frees nothing) and the destination buffer.
class ReadWorker : public Napi::AsyncWorker {
 public:
  ReadWorker(Napi::Env env, const crb_backend* backend, TensorHandle* h, crb_read* pending, Napi::ArrayBuffer buffer)
      : Napi::AsyncWorker(env, "cudnn-resblock:read"),
        deferred_(Napi::Promise::Deferred::New(env)),
        backend_(backend),
        storage_(h->storage()),
        dtype_(h->dtype()),
        device_(h->device()),
        numel_(h->numel()),
        shape_(h->shape()),
        pending_(pending),
        buffer_ref_(Napi::Persistent(buffer)),
        dst_(buffer.Data()) {}

  ~ReadWorker() override {
    // Never started (queueing failed): the read must still be finished to release it.
    if (pending_) {
      std::vector<uint8_t> sink(size_t(numel_) * DTypeSize(dtype_));
      backend_->read_finish(pending_, sink.data());
    }
  }

  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
    crb_read* pending = pending_;
    pending_ = nullptr;
    crb_status status;
    if (IsHalf(dtype_)) {
      std::vector<uint8_t> raw(size_t(numel_) * DTypeSize(dtype_));
      status = backend_->read_finish(pending, raw.data());
      if (status == CRB_OK) WidenHalves(dtype_, raw, dst_, numel_);
    } else {
      status = backend_->read_finish(pending, dst_);
    }
    // last_error() is per thread: copy it here, where the call failed.
    if (status != CRB_OK) {
      failed_ = true;
      error_ = CaptureBackendError(backend_, status, "read_finish");
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (failed_) {
      deferred_.Reject(MakeBackendError(env, error_, "read", device_, "h: " + std::string(DTypeName(dtype_)) + " " +
                                                                           ShapeToString(shape_)));
      return;
    }
    deferred_.Resolve(MakeTypedArray(env, dtype_, buffer_ref_.Value(), size_t(numel_)));
  }

  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  const crb_backend* backend_;
  std::shared_ptr<Storage> storage_;
  crb_dtype dtype_;
  Device device_;
  int64_t numel_;
  Shape shape_;
  crb_read* pending_;
  Napi::Reference<Napi::ArrayBuffer> buffer_ref_;
  void* dst_;
  bool failed_ = false;
  crb_error error_{};
};

Napi::Value Read(const Napi::CallbackInfo& info) {
  OpCall call(info, "read");
  TensorHandle* h = call.Tensor(0, "h");
  const crb_backend* backend = call.backend();
  size_t numel = size_t(h->numel());
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(call.env(), numel * HostElementSize(h->dtype()));
  if (numel == 0) {
    auto deferred = Napi::Promise::Deferred::New(call.env());
    deferred.Resolve(MakeTypedArray(call.env(), h->dtype(), buffer, 0));
    return deferred.Promise();
  }
  crb_read* pending = nullptr;
  call.Check(backend->read_begin(h->data(), h->nbytes(), &pending), "read_begin");
  auto* worker = new ReadWorker(call.env(), backend, h, pending, buffer);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace

void RegisterRead(Napi::Env env, Napi::Object exports) {
  exports.Set("readSync", Napi::Function::New(env, ReadSync, "readSync"));
  exports.Set("read", Napi::Function::New(env, Read, "read"));
}

}  // namespace crb
