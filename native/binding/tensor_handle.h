// The JS object behind a tensor: shape, dtype and memory format over a shared Storage. Objects
// are type-tagged so an argument can be proven to be one of ours before it is unwrapped.
//
// Note [handles are freed in GC]
// A handle is a plain napi_wrap (no napi_ref of our own, unlike Napi::ObjectWrap) whose
// finalizer is a basic one: it only deletes the C++ object and frees its Storage through the
// backend, never touching JS. The addon is built with NAPI_EXPERIMENTAL, under which Node runs
// such finalizers during garbage collection itself (seen on 20.20, 22.22 and 24.22); otherwise
// they wait for the event loop to turn, and a synchronous training loop piles up every dropped
// handle (and, without dispose(), its memory) until it ends: 2,000 steps of the small network
// of test/34 grew RSS by ~32 MB, now ~2 MB. Note [experimental Node-API] in napi_config.h says
// why that build is safe.
#pragma once

#include "napi_config.h"

#include <memory>

#include "../core/dtype.h"
#include "storage.h"

namespace crb {

class TensorHandle {
 public:
  static void Register(Napi::Env env);
  // Wraps `storage` in a new handle object.
  static Napi::Object New(Napi::Env env, std::shared_ptr<Storage> storage, Shape shape, crb_dtype dtype,
                          bool channels_last);
  // The handle behind `value`, or null when `value` is not a tensor handle of this addon.
  static TensorHandle* FromValue(const Napi::Value& value);

  TensorHandle(const TensorHandle&) = delete;
  TensorHandle& operator=(const TensorHandle&) = delete;

  bool disposed() const { return !storage_; }
  const Shape& shape() const { return shape_; }
  crb_dtype dtype() const { return dtype_; }
  Device device() const { return device_; }
  bool channels_last() const { return channels_last_; }
  crb_layout layout() const { return channels_last_ ? CRB_NHWC : CRB_NCHW; }
  int64_t numel() const { return numel_; }
  size_t nbytes() const { return size_t(numel_) * crb_dtype_size(dtype_); }
  void* data() const { return storage_->data(); }
  const std::shared_ptr<Storage>& storage() const { return storage_; }
  int64_t dim(size_t i) const { return shape_[i]; }
  size_t rank() const { return shape_.size(); }

 private:
  TensorHandle(std::shared_ptr<Storage> storage, Shape shape, crb_dtype dtype, bool channels_last);

  static napi_value Construct(napi_env env, napi_callback_info cbinfo);
  static void Finalize(node_api_basic_env env, void* data, void* hint);
  template <Napi::Value (TensorHandle::*Method)(const Napi::CallbackInfo&)>
  static napi_value Call(napi_env env, napi_callback_info cbinfo);

  Napi::Value GetShape(const Napi::CallbackInfo& info);
  Napi::Value GetDType(const Napi::CallbackInfo& info);
  Napi::Value GetDevice(const Napi::CallbackInfo& info);
  Napi::Value GetChannelsLast(const Napi::CallbackInfo& info);
  Napi::Value GetNumel(const Napi::CallbackInfo& info);
  Napi::Value GetNBytes(const Napi::CallbackInfo& info);
  Napi::Value GetDisposed(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);

  std::shared_ptr<Storage> storage_;
  Shape shape_;
  crb_dtype dtype_ = CRB_F32;
  Device device_ = Device::kCpu;
  bool channels_last_ = false;
  int64_t numel_ = 0;
};

}  // namespace crb
