// Registers the addon's exports, one per row of functions.def; each feature lives in its own
// file (exports.h).
#include "napi_config.h"

#include "exports.h"
#include "tensor_handle.h"

namespace crb {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  TensorHandle::Register(env);
  CacheHostArrayConstructors(env);
#define CRB_JS(name) exports.Set(#name, Napi::Function::New(env, js::name, #name));
#include "functions.def"
#undef CRB_JS
  return exports;
}

}  // namespace crb

// NODE_API_MODULE pastes the name into an identifier, so it needs an unqualified function.
static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return crb::Init(env, exports); }

NODE_API_MODULE(cudnn_resblock, InitAddon)
