// What the gloo (dist.cc) and NCCL (dist_nccl.cc) bindings share: wrapped handles, option
// fields, the reduction op, and the checks on a collective's tensors (the same rules for both
// libraries, written once).
#pragma once

#include "napi_config.h"

#include <string>
#include <vector>

#include "../gloo/crb_gloo.h"
#include "errors.h"
#include "op_call.h"

namespace crb {

// A wrapped, type-tagged plain object owning `data`; deleted when the object is collected. The
// finalizer touches no JS (Note [handles are freed in GC] in tensor_handle.h).
template <typename T>
Napi::Object Wrap(Napi::Env env, T* data, const napi_type_tag& tag) {
  Napi::Object object = Napi::Object::New(env);
  auto finalize = [](node_api_basic_env, void* p, void*) { delete static_cast<T*>(p); };
  if (napi_wrap(env, object, data, finalize, nullptr, nullptr) != napi_ok) {
    delete data;
    throw Napi::Error::New(env, "cannot wrap a distributed handle");
  }
  napi_type_tag_object(env, object, &tag);
  return object;
}

template <typename T>
T* Unwrap(const Napi::Value& value, const napi_type_tag& tag) {
  if (!value.IsObject()) return nullptr;
  bool tagged = false;
  if (napi_check_object_type_tag(value.Env(), value, &tag, &tagged) != napi_ok || !tagged) return nullptr;
  void* data = nullptr;
  if (napi_unwrap(value.Env(), value, &data) != napi_ok) return nullptr;
  return static_cast<T*>(data);
}

// o[key], an integer in [min, max]; errors name `name`.
int64_t IntField(OpCall& call, const Napi::Object& o, const char* key, const std::string& name, int64_t min,
                 int64_t max);

// 'sum' | 'avg' | 'max' | 'min' | 'product' as the libraries' op; avg only for float tensors.
crb_gloo_reduce ReduceArg(OpCall& call, size_t index, crb_dtype dtype, const char* tensor_name, size_t tensor_index);

// A live tensor on `device` of a dtype its library moves: gloo (kCpu) has no float16/bfloat16.
TensorHandle* DistTensor(OpCall& call, const Napi::Value& value, const std::string& name, Device device);

// Argument `index`: a non-empty array of such tensors, all of one dtype.
std::vector<TensorHandle*> DistTensorList(OpCall& call, size_t index, Device device);

// allGather: `out` is `input`'s dtype, layout and shape with dim 0 world_size times larger
// ([world_size] for a scalar input).
void CheckGatherArgs(OpCall& call, TensorHandle* out, TensorHandle* input, int world_size);

}  // namespace crb
