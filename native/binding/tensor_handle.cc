#include "tensor_handle.h"

#include <new>

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

TensorHandle::TensorHandle(std::shared_ptr<Storage> storage, Shape shape, crb_dtype dtype, bool channels_last)
    : storage_(std::move(storage)),
      shape_(std::move(shape)),
      dtype_(dtype),
      device_(storage_->device()),
      channels_last_(channels_last),
      numel_(ShapeNumel(shape_)) {}

// Runs during garbage collection (Note [handles are freed in GC]): no JS, no napi_ref, no
// device synchronization; Storage's destructor frees through the backend's cache and adjusts
// V8's external memory count, both allowed here.
void TensorHandle::Finalize(node_api_basic_env /*env*/, void* data, void* /*hint*/) {
  delete static_cast<TensorHandle*>(data);
}

napi_value TensorHandle::Construct(napi_env env, napi_callback_info cbinfo) {
  PendingHandle* pending = pending_handle;
  pending_handle = nullptr;
  napi_value self = nullptr;
  if (napi_get_cb_info(env, cbinfo, nullptr, nullptr, &self, nullptr) != napi_ok) return nullptr;
  if (!pending) {
    napi_throw_type_error(env, nullptr, "NativeHandle objects are created by the addon, not with new");
    return nullptr;
  }
  auto* handle = new (std::nothrow)
      TensorHandle(std::move(pending->storage), std::move(pending->shape), pending->dtype, pending->channels_last);
  if (!handle) {
    napi_throw_error(env, nullptr, "out of memory for a tensor handle");
    return nullptr;
  }
  // No result reference: the runtime owns (and deletes) the wrap's reference with the object.
  if (napi_wrap(env, self, handle, Finalize, nullptr, nullptr) != napi_ok) {
    delete handle;
    return nullptr;  // napi_wrap left an exception pending
  }
  napi_type_tag_object(env, self, &kTensorTypeTag);
  return self;
}

template <Napi::Value (TensorHandle::*Method)(const Napi::CallbackInfo&)>
napi_value TensorHandle::Call(napi_env env, napi_callback_info cbinfo) {
  try {
    Napi::CallbackInfo info(env, cbinfo);
    TensorHandle* self = FromValue(info.This());
    if (!self) throw Napi::TypeError::New(env, "Illegal invocation: not a NativeHandle");
    return (self->*Method)(info);
  } catch (const Napi::Error& e) {
    e.ThrowAsJavaScriptException();
    return nullptr;
  }
}

void TensorHandle::Register(Napi::Env env) {
  const auto getter = [](const char* name, napi_callback cb) {
    return napi_property_descriptor{name, nullptr, nullptr, cb, nullptr, nullptr, napi_default, nullptr};
  };
  const napi_property_descriptor props[] = {
      getter("shape", Call<&TensorHandle::GetShape>),
      getter("dtype", Call<&TensorHandle::GetDType>),
      getter("device", Call<&TensorHandle::GetDevice>),
      getter("channelsLast", Call<&TensorHandle::GetChannelsLast>),
      getter("numel", Call<&TensorHandle::GetNumel>),
      getter("nbytes", Call<&TensorHandle::GetNBytes>),
      getter("disposed", Call<&TensorHandle::GetDisposed>),
      {"dispose", nullptr, Call<&TensorHandle::Dispose>, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_value cls = nullptr;
  napi_status status = napi_define_class(env, "NativeHandle", NAPI_AUTO_LENGTH, Construct, nullptr,
                                         sizeof props / sizeof props[0], props, &cls);
  NAPI_THROW_IF_FAILED_VOID(env, status);
  GetAddonData(env).tensor_constructor = Napi::Persistent(Napi::Function(env, cls));
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
  void* data = nullptr;
  if (napi_unwrap(value.Env(), object, &data) != napi_ok) return nullptr;
  return static_cast<TensorHandle*>(data);
}

Napi::Value TensorHandle::GetShape(const Napi::CallbackInfo& info) {
  Napi::Array array = Napi::Array::New(info.Env(), shape_.size());
  for (size_t i = 0; i < shape_.size(); ++i) array.Set(uint32_t(i), Napi::Number::New(info.Env(), double(shape_[i])));
  return array;
}

Napi::Value TensorHandle::GetDType(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), crb_dtype_name(dtype_));
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
