#include "storage.h"

namespace crb {

Storage::Storage(const crb_backend* backend, Device device, void* ptr, size_t nbytes, napi_env accounting_env)
    : backend_(backend), device_(device), ptr_(ptr), nbytes_(nbytes), accounting_env_(accounting_env) {
  if (accounting_env_ && nbytes_) Napi::MemoryManagement::AdjustExternalMemory(accounting_env_, int64_t(nbytes_));
}

Storage::~Storage() {
  // A failed free cannot be reported from here (finalizers must not throw); the backend keeps
  // its own record of it.
  if (ptr_) backend_->dealloc(ptr_);
  if (accounting_env_ && nbytes_) Napi::MemoryManagement::AdjustExternalMemory(accounting_env_, -int64_t(nbytes_));
}

crb_status AllocateStorage(Napi::Env env, const crb_backend* backend, Device device, size_t nbytes,
                           std::shared_ptr<Storage>* out) {
  void* ptr = nullptr;
  if (nbytes) {
    crb_status status = backend->alloc(nbytes, &ptr);
    if (status != CRB_OK) return status;
  }
  try {
    napi_env accounting = backend->capabilities.host_visible_memory ? napi_env(env) : nullptr;
    *out = std::make_shared<Storage>(backend, device, ptr, nbytes, accounting);
  } catch (...) {
    if (ptr) backend->dealloc(ptr);
    throw;
  }
  return CRB_OK;
}

}  // namespace crb
