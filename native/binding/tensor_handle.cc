#include "tensor_handle.h"

#include "addon_data.h"
#include "errors.h"

namespace crb {

namespace {

constexpr napi_type_tag kTensorTypeTag = {0x63726274656e736fULL, 0x7231a9e45c0d2b17ULL};

// Handles are only made by the addon: New() parks the fields here for the constructor, so a
// `new handle.constructor()` from JS finds nothing and throws.
struct PendingHandle {
  std::shared_ptr<Storage> storage;
  Shape shape;
  crb_dtype dtype;
  bool channels_last;
};
thread_local PendingHandle* pending_handle = nullptr;

}  // namespace

void TensorHandle::Register(Napi::Env env) {
  Napi::Function cls = DefineClass(
      env, "NativeHandle",
      {
          InstanceAccessor<&TensorHandle::GetShape>("shape"),
          InstanceAccessor<&TensorHandle::GetDType>("dtype"),
          InstanceAccessor<&TensorHandle::GetDevice>("device"),
          InstanceAccessor<&TensorHandle::GetChannelsLast>("channelsLast"),
          InstanceAccessor<&TensorHandle::GetNumel>("numel"),
          InstanceAccessor<&TensorHandle::GetNBytes>("nbytes"),
          InstanceAccessor<&TensorHandle::GetDisposed>("disposed"),
          InstanceMethod<&TensorHandle::Dispose>("dispose"),
      });
  GetAddonData(env).tensor_constructor = Napi::Persistent(cls);
}

TensorHandle::TensorHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorHandle>(info) {
  PendingHandle* pending = pending_handle;
  pending_handle = nullptr;
  if (!pending) ThrowTypeError(info.Env(), "NativeHandle objects are created by the addon, not with new");
  storage_ = std::move(pending->storage);
  shape_ = std::move(pending->shape);
  dtype_ = pending->dtype;
  device_ = storage_->device();
  channels_last_ = pending->channels_last;
  numel_ = ShapeNumel(shape_);
  info.This().As<Napi::Object>().TypeTag(&kTensorTypeTag);
}

Napi::Object TensorHandle::New(Napi::Env env, std::shared_ptr<Storage> storage, Shape shape, crb_dtype dtype,
                               bool channels_last) {
  PendingHandle pending{std::move(storage), std::move(shape), dtype, channels_last};
  pending_handle = &pending;
  try {
    Napi::Object object = GetAddonData(env).tensor_constructor.New({});
    pending_handle = nullptr;
    return object;
  } catch (...) {
    pending_handle = nullptr;
    throw;
  }
}

TensorHandle* TensorHandle::FromValue(const Napi::Value& value) {
  if (!value.IsObject()) return nullptr;
  Napi::Object object = value.As<Napi::Object>();
  if (!object.CheckTypeTag(&kTensorTypeTag)) return nullptr;
  return TensorHandle::Unwrap(object);
}

Napi::Value TensorHandle::GetShape(const Napi::CallbackInfo& info) {
  Napi::Array array = Napi::Array::New(info.Env(), shape_.size());
  for (size_t i = 0; i < shape_.size(); ++i) array.Set(uint32_t(i), Napi::Number::New(info.Env(), double(shape_[i])));
  return array;
}

Napi::Value TensorHandle::GetDType(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), DTypeName(dtype_));
}

Napi::Value TensorHandle::GetDevice(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), DeviceName(device_));
}

Napi::Value TensorHandle::GetChannelsLast(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), channels_last_);
}

Napi::Value TensorHandle::GetNumel(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), double(numel_));
}

Napi::Value TensorHandle::GetNBytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), double(nbytes()));
}

Napi::Value TensorHandle::GetDisposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), disposed());
}

Napi::Value TensorHandle::Dispose(const Napi::CallbackInfo& info) {
  storage_.reset();  // the block is freed here unless a view or an in-flight read still holds it
  return info.Env().Undefined();
}

}  // namespace crb
