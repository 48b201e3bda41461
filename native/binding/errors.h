// Every error the addon throws is made here. Bad input becomes a TypeError/RangeError whose
// message names the function, the argument, what was expected and what was received; a backend
// failure becomes an instance of the class lib/errors.ts handed to setErrorClasses
// (OutOfMemoryError, CudaError, CudnnError, BackendError) carrying op, status, code and device;
// a failed rendezvous or collective (gloo or NCCL) becomes a DistError carrying op, rank,
// worldSize, peer, code.
#pragma once

#include "napi_config.h"

#include <string>

#include "../backend/backend_api.h"
#include "../core/dtype.h"
#include "../gloo/crb_gloo.h"
#include "../nccl/crb_nccl.h"

namespace crb {

// `fn: argument "arg" expected <expected>, received <received>`
std::string ArgMessage(const char* fn, const std::string& arg, const std::string& expected,
                       const std::string& received);
[[noreturn]] void ThrowTypeError(Napi::Env env, const std::string& message);
[[noreturn]] void ThrowRangeError(Napi::Env env, const std::string& message);
[[noreturn]] void ThrowError(Napi::Env env, const std::string& message);

// A short description of a JS value for the "received" part of a message.
std::string DescribeValue(const Napi::Value& value);

// The backend's error for a failed call, copied (last_error() is per thread, so a worker thread
// captures it where the call failed and the main thread builds the JS error from the copy).
crb_error CaptureBackendError(const crb_backend* backend, crb_status status, const char* abi_op);

// Builds the JS error object for a backend failure. `details` lists the shapes involved.
Napi::Object MakeBackendError(Napi::Env env, const crb_error& error, const char* fn, Device device,
                              const std::string& details);

// THE check every backend call goes through: returns on CRB_OK, otherwise throws the typed
// error. `details` is only evaluated on failure.
template <typename Details>
inline void CheckStatus(Napi::Env env, const crb_backend* backend, crb_status status, const char* fn,
                        const char* abi_op, Device device, Details&& details) {
  if (status == CRB_OK) return;
  crb_error error = CaptureBackendError(backend, status, abi_op);
  throw Napi::Error(env, MakeBackendError(env, error, fn, device, details()));
}

// The JS error for a failed call into libcrb_gloo.so: a DistError (message, op, rank, worldSize,
// peer when gloo named one, code).
Napi::Object MakeDistError(Napi::Env env, const crb_gloo_error& error);

// THE check every call into libcrb_gloo.so goes through: returns on CRB_GLOO_OK, otherwise
// throws the DistError.
inline void CheckGloo(Napi::Env env, crb_gloo_status status, const crb_gloo_error& error) {
  if (status == CRB_GLOO_OK) return;
  throw Napi::Error(env, MakeDistError(env, error));
}

// The DistError for a failed call into libcrb_nccl.so; `code` is NCCL's or CUDA's own name
// ("ncclRemoteError", "cudaErrorIllegalAddress") or "timeout".
Napi::Object MakeDistError(Napi::Env env, const crb_nccl_error& error);

// THE check every call into libcrb_nccl.so goes through.
inline void CheckNccl(Napi::Env env, crb_nccl_status status, const crb_nccl_error& error) {
  if (status == CRB_NCCL_OK) return;
  throw Napi::Error(env, MakeDistError(env, error));
}

// setErrorClasses({BackendError, CudaError, CudnnError, OutOfMemoryError, DistError?})
Napi::Value SetErrorClasses(const Napi::CallbackInfo& info);

}  // namespace crb
