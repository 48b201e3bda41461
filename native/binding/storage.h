// A block of backend memory shared by a tensor handle and its views (std::shared_ptr). It is
// freed through its backend when the last owner lets go: dispose(), garbage collection, or the
// end of an async read that held it. Freeing never synchronizes the device.
#pragma once

#include "napi_config.h"

#include <cstddef>
#include <memory>

#include "../backend/backend_api.h"
#include "../core/dtype.h"

namespace crb {

class Storage {
 public:
  Storage(const crb_backend* backend, Device device, void* ptr, size_t nbytes, napi_env accounting_env);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  const crb_backend* backend() const { return backend_; }
  Device device() const { return device_; }
  void* data() const { return ptr_; }
  size_t nbytes() const { return nbytes_; }

 private:
  const crb_backend* backend_;
  Device device_;
  void* ptr_;
  size_t nbytes_;
  napi_env accounting_env_;  // host-memory blocks are reported to V8 so GC feels their weight
};

// Allocates `nbytes` (0 gives a null pointer without calling the backend) into *out.
crb_status AllocateStorage(Napi::Env env, const crb_backend* backend, Device device, size_t nbytes,
                           std::shared_ptr<Storage>* out);

}  // namespace crb
