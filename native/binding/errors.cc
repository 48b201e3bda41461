#include "errors.h"

#include <cmath>
#include <cstdio>
#include <cstring>

#include "../backend/names.h"
#include "addon_data.h"
#include "tensor_handle.h"

namespace crb {

std::string ArgMessage(const char* fn, const std::string& arg, const std::string& expected,
                       const std::string& received) {
  return std::string(fn) + ": argument \"" + arg + "\" expected " + expected + ", received " + received;
}

void ThrowTypeError(Napi::Env env, const std::string& message) { throw Napi::TypeError::New(env, message); }
void ThrowRangeError(Napi::Env env, const std::string& message) { throw Napi::RangeError::New(env, message); }
void ThrowError(Napi::Env env, const std::string& message) { throw Napi::Error::New(env, message); }

namespace {

std::string NumberToString(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  // Prefer the short form when it round-trips (3 rather than 3.0000000000000000).
  char shortbuf[64];
  std::snprintf(shortbuf, sizeof shortbuf, "%.15g", v);
  return std::strtod(shortbuf, nullptr) == v ? shortbuf : buf;
}

const char* TypedArrayName(napi_typedarray_type type) {
  switch (type) {
    case napi_int8_array: return "Int8Array";
    case napi_uint8_array: return "Uint8Array";
    case napi_uint8_clamped_array: return "Uint8ClampedArray";
    case napi_int16_array: return "Int16Array";
    case napi_uint16_array: return "Uint16Array";
    case napi_int32_array: return "Int32Array";
    case napi_uint32_array: return "Uint32Array";
    case napi_float32_array: return "Float32Array";
    case napi_float64_array: return "Float64Array";
    case napi_bigint64_array: return "BigInt64Array";
    case napi_biguint64_array: return "BigUint64Array";
    default: return "TypedArray";
  }
}

}  // namespace

std::string DescribeValue(const Napi::Value& value) {
  switch (value.Type()) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return value.As<Napi::Boolean>().Value() ? "true" : "false";
    case napi_number: return "number " + NumberToString(value.As<Napi::Number>().DoubleValue());
    case napi_bigint: return "bigint";
    case napi_string: {
      std::string s = value.As<Napi::String>().Utf8Value();
      if (s.size() > 40) s = s.substr(0, 40) + "...";
      return "string \"" + s + "\"";
    }
    case napi_function: return "function";
    case napi_symbol: return "symbol";
    default: break;
  }
  if (value.IsTypedArray()) {
    auto ta = value.As<Napi::TypedArray>();
    return std::string(TypedArrayName(ta.TypedArrayType())) + "(" + std::to_string(ta.ElementLength()) + ")";
  }
  if (value.IsArray()) return "array of length " + std::to_string(value.As<Napi::Array>().Length());
  if (TensorHandle* t = TensorHandle::FromValue(value)) {
    if (t->disposed()) return "a disposed tensor";
    return std::string("a ") + DeviceName(t->device()) + " " + crb_dtype_name(t->dtype()) + " tensor " +
           ShapeToString(t->shape());
  }
  return "object";
}

crb_error CaptureBackendError(const crb_backend* backend, crb_status status, const char* abi_op) {
  crb_error copy;
  std::memset(&copy, 0, sizeof copy);
  const crb_error* last = backend && backend->last_error ? backend->last_error() : nullptr;
  // The status returned is the truth; a last_error with another code is stale.
  if (last && last->code == status) copy = *last;
  copy.code = status;
  if (copy.op[0] == '\0') std::snprintf(copy.op, sizeof copy.op, "%s", abi_op);
  if (copy.status[0] == '\0') std::snprintf(copy.status, sizeof copy.status, "%s", crb_status_name(status));
  copy.op[sizeof copy.op - 1] = '\0';
  copy.status[sizeof copy.status - 1] = '\0';
  copy.message[sizeof copy.message - 1] = '\0';
  return copy;
}

Napi::Object MakeBackendError(Napi::Env env, const crb_error& error, const char* fn, Device device,
                              const std::string& details) {
  std::string message = std::string(fn) + ": " + error.op + " failed on " + DeviceName(device) + " (" +
                        error.status + ")";
  if (error.message[0]) message += std::string(": ") + error.message;
  if (!details.empty()) message += " [" + details + "]";

  AddonData& data = GetAddonData(env);
  Napi::FunctionReference* cls = &data.backend_error;
  if (error.code == CRB_ERR_OOM) cls = &data.oom_error;
  else if (error.code == CRB_ERR_CUDA) cls = &data.cuda_error;
  else if (error.code == CRB_ERR_CUDNN) cls = &data.cudnn_error;

  Napi::Object props = Napi::Object::New(env);
  props.Set("op", Napi::String::New(env, error.op));
  props.Set("status", Napi::String::New(env, error.status));
  props.Set("code", Napi::String::New(env, crb_status_name(error.code)));
  props.Set("device", Napi::String::New(env, DeviceName(device)));

  Napi::Object object;
  if (!cls->IsEmpty()) {
    // The classes take (message, props); the properties are also set afterwards so a class
    // with a plain (message) constructor still carries them.
    object = cls->New({Napi::String::New(env, message), props});
  } else {
    object = Napi::Error::New(env, message).Value();
  }
  for (const char* key : {"op", "status", "code", "device"}) object.Set(key, props.Get(key));
  return object;
}

namespace {

// The DistError of either library: message, op, code, and rank, worldSize, peer when known (< 0
// or 0: unknown).
Napi::Object DistErrorObject(Napi::Env env, const char* message, const char* op, const char* code, int rank,
                             int world_size, int peer) {
  Napi::Object props = Napi::Object::New(env);
  props.Set("op", Napi::String::New(env, op));
  props.Set("code", Napi::String::New(env, code));
  if (rank >= 0) props.Set("rank", Napi::Number::New(env, rank));
  if (world_size > 0) props.Set("worldSize", Napi::Number::New(env, world_size));
  if (peer >= 0) props.Set("peer", Napi::Number::New(env, peer));
  Napi::FunctionReference& cls = GetAddonData(env).dist_error;
  Napi::Object object =
      cls.IsEmpty() ? Napi::Error::New(env, message).Value() : cls.New({Napi::String::New(env, message), props});
  // As for backend errors: a class with a plain (message) constructor still carries them.
  for (const char* key : {"op", "code", "rank", "worldSize", "peer"})
    if (props.Has(key)) object.Set(key, props.Get(key));
  return object;
}

}  // namespace

Napi::Object MakeDistError(Napi::Env env, const crb_gloo_error& error) {
  return DistErrorObject(env, error.message, error.op, crb_gloo_status_name(error.code), error.rank, error.world_size,
                         error.peer);
}

Napi::Object MakeDistError(Napi::Env env, const crb_nccl_error& error) {
  return DistErrorObject(env, error.message, error.op, error.code, error.rank, error.world_size, -1);
}

Napi::Value SetErrorClasses(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* fn = "setErrorClasses";
  if (info.Length() < 1 || !info[0].IsObject() || info[0].IsArray())
    ThrowTypeError(env, ArgMessage(fn, "classes", "an object of error classes",
                                   DescribeValue(info.Length() ? info[0] : env.Undefined())));
  Napi::Object classes = info[0].As<Napi::Object>();
  AddonData& data = GetAddonData(env);
  struct Slot {
    const char* name;
    Napi::FunctionReference* ref;
  } slots[] = {{"BackendError", &data.backend_error},
               {"CudaError", &data.cuda_error},
               {"CudnnError", &data.cudnn_error},
               {"OutOfMemoryError", &data.oom_error}};
  for (const Slot& slot : slots) {
    Napi::Value v = classes.Get(slot.name);
    if (!v.IsFunction())
      ThrowTypeError(env, ArgMessage(fn, std::string("classes.") + slot.name, "a class", DescribeValue(v)));
  }
  Napi::Value dist = classes.Get("DistError");
  if (!dist.IsUndefined() && !dist.IsFunction())
    ThrowTypeError(env, ArgMessage(fn, "classes.DistError", "a class or undefined", DescribeValue(dist)));
  for (const Slot& slot : slots) *slot.ref = Napi::Persistent(classes.Get(slot.name).As<Napi::Function>());
  if (dist.IsFunction()) data.dist_error = Napi::Persistent(dist.As<Napi::Function>());
  return env.Undefined();
}

}  // namespace crb
