// Registers the addon's exports; each feature lives in its own file (exports.h).
#include "napi_config.h"

#include "exports.h"
#include "tensor_handle.h"

namespace crb {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  TensorHandle::Register(env);
  RegisterInfo(env, exports);
  RegisterRandom(env, exports);
  RegisterCreation(env, exports);
  RegisterRead(env, exports);
  RegisterTransfer(env, exports);
  RegisterElementwise(env, exports);
  RegisterConv(env, exports);
  RegisterBatchNorm(env, exports);
  RegisterPooling(env, exports);
  RegisterLinear(env, exports);
  RegisterLoss(env, exports);
  RegisterOptim(env, exports);
  RegisterImages(env, exports);
  return exports;
}

}  // namespace crb

// NODE_API_MODULE pastes the name into an identifier, so it needs an unqualified function.
static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return crb::Init(env, exports); }

NODE_API_MODULE(cudnn_resblock, InitAddon)
