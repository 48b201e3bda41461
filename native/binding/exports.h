// The addon's JavaScript functions, declared from the manifest (functions.def): crb::js::<name>
// is what addon.cc registers as exports.<name>. Each file defines its rows at its end, naming the
// function that implements each.
#pragma once

#include "napi_config.h"

namespace crb {

namespace js {
using Function = Napi::Value (*)(const Napi::CallbackInfo& info);
#define CRB_JS(name) extern const Function name;
#include "functions.def"
#undef CRB_JS
}  // namespace js

// Setup at load that registers no function: read.cc caches the typed-array constructors reads
// return (TensorHandle::Register, tensor_handle.h, defines the handle class).
void CacheHostArrayConstructors(Napi::Env env);

}  // namespace crb
