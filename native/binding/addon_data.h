// Per-environment state (main thread and each worker thread get their own): the handle class,
// the JS error classes and the random generator. Backends are process-wide (backends.h).
#pragma once

#include "napi_config.h"

#include "random.h"

namespace crb {

struct AddonData {
  Napi::FunctionReference tensor_constructor;
  Napi::FunctionReference backend_error;
  Napi::FunctionReference cuda_error;
  Napi::FunctionReference cudnn_error;
  Napi::FunctionReference oom_error;
  Napi::FunctionReference dist_error;
  // The typed-array constructor each dtype reads into, by crb_dtype: see Note [reads never abort].
  Napi::FunctionReference host_array_constructors[7];
  HostGenerator generator;
};

// Creates the environment's AddonData on first use; Node deletes it with the environment.
AddonData& GetAddonData(Napi::Env env);

}  // namespace crb
