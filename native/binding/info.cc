// backendInfo, capabilities, setOption, memoryStats, emptyCache, synchronize.
#include <cstring>
#include <vector>

#include "backends.h"
#include "exports.h"
#include "op_call.h"

namespace crb {

namespace {

// The kernels the CPU backend dispatches to (its gemm checks the same features).
const char* CpuSimdLevel() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma"))
    return "avx512";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "avx2";
  return "sse2";
}

Napi::Object DeviceInfoObject(Napi::Env env, int index, const crb_device_info& d) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("index", index);
  o.Set("name", std::string(d.name, strnlen(d.name, sizeof d.name)));
  o.Set("computeCapability", std::to_string(d.compute_major) + "." + std::to_string(d.compute_minor));
  o.Set("totalMemory", double(d.total_memory));
  o.Set("freeMemory", double(d.free_memory));
  o.Set("multiprocessors", d.multiprocessors);
  o.Set("driverVersion", CudaVersionString(d.driver_version));
  o.Set("runtimeVersion", CudaVersionString(d.runtime_version));
  o.Set("cudnnVersion", CudnnVersionString(d.cudnn_version));
  o.Set("cudnnCompiledVersion", CudnnVersionString(d.cudnn_compiled_version));
  return o;
}

// What the backend computes natively (crb_capabilities), as lib/native.ts BackendCapabilities.
Napi::Object CapabilitiesObject(Napi::Env env, const crb_capabilities& c) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("channelsLast", (c.layouts & CRB_LAYOUT_BIT(CRB_NHWC)) != 0);
  o.Set("maxPoolKeepsIndices", c.maxpool_keeps_indices != 0);
  o.Set("fusedBnAddRelu", c.fused_bn_add_relu != 0);
  o.Set("fusedBnRelu", c.fused_bn_relu != 0);
  o.Set("hostVisibleMemory", c.host_visible_memory != 0);
  return o;
}

Napi::Value BackendInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object result = Napi::Object::New(env);

  const crb_backend* cpu = BackendFor(env, Device::kCpu, "backendInfo");
  Napi::Object cpu_info = Napi::Object::New(env);
  crb_device_info cpu_device{};
  CheckStatus(env, cpu, cpu->device_info(0, &cpu_device), "backendInfo", "device_info", Device::kCpu,
              [] { return std::string(); });
  cpu_info.Set("available", true);
  cpu_info.Set("threads", cpu_device.multiprocessors);
  cpu_info.Set("simd", CpuSimdLevel());
  cpu_info.Set("abiVersion", double(cpu->abi_version));
  cpu_info.Set("capabilities", CapabilitiesObject(env, cpu->capabilities));
  result.Set("cpu", cpu_info);

  const CudaAvailability& cuda = CudaBackendAvailability();
  Napi::Object cuda_info = Napi::Object::New(env);
  cuda_info.Set("available", cuda.backend != nullptr);
  if (!cuda.backend) {
    cuda_info.Set("reason", cuda.reason);
    if (!cuda.hint.empty()) cuda_info.Set("hint", cuda.hint);
  }
  if (!cuda.library.empty()) cuda_info.Set("library", cuda.library);
  // backendInfo is the diagnostic of last resort, so a device that cannot be queried becomes
  // an attempt entry rather than an exception.
  std::vector<CudaLoadAttempt> attempt_list = cuda.attempts;
  Napi::Array devices = Napi::Array::New(env);
  if (cuda.backend) {
    int count = cuda.backend->device_count();
    for (int i = 0; i < count; ++i) {
      crb_device_info d{};
      crb_status status = cuda.backend->device_info(i, &d);
      if (status != CRB_OK) {
        crb_error error = CaptureBackendError(cuda.backend, status, "device_info");
        attempt_list.push_back({"device_info " + std::to_string(i), std::string(error.status) + ": " + error.message});
        continue;
      }
      devices.Set(devices.Length(), DeviceInfoObject(env, i, d));
    }
    cuda_info.Set("abiVersion", double(cuda.backend->abi_version));
    cuda_info.Set("capabilities", CapabilitiesObject(env, cuda.backend->capabilities));
  }
  Napi::Array attempts = Napi::Array::New(env, attempt_list.size());
  for (size_t i = 0; i < attempt_list.size(); ++i) {
    Napi::Object a = Napi::Object::New(env);
    a.Set("what", attempt_list[i].what);
    a.Set("result", attempt_list[i].result);
    attempts.Set(uint32_t(i), a);
  }
  cuda_info.Set("attempts", attempts);
  cuda_info.Set("devices", devices);
  result.Set("cuda", cuda_info);
  return result;
}

// capabilities(device): throws, as every op does, when CUDA is not available.
Napi::Value Capabilities(const Napi::CallbackInfo& info) {
  OpCall call(info, "capabilities");
  call.DeviceArg(0, "device");
  return CapabilitiesObject(call.env(), call.backend()->capabilities);
}

// setOption(device, name, value)
Napi::Value SetOption(const Napi::CallbackInfo& info) {
  OpCall call(info, "setOption");
  call.DeviceArg(0, "device");
  Napi::Value name_value = call.Arg(1);
  const char* names = "one of allowTF32, cudnnBenchmark, deterministic, numThreads, matmulAllowTF32";
  if (!name_value.IsString()) call.TypeErr("name", names, DescribeValue(name_value));
  std::string name = name_value.As<Napi::String>().Utf8Value();
  crb_option option;
  if (name == "allowTF32") option = CRB_OPT_ALLOW_TF32;
  else if (name == "cudnnBenchmark") option = CRB_OPT_CUDNN_BENCHMARK;
  else if (name == "deterministic") option = CRB_OPT_DETERMINISTIC;
  else if (name == "numThreads") option = CRB_OPT_NUM_THREADS;
  else if (name == "matmulAllowTF32") option = CRB_OPT_MATMUL_ALLOW_TF32;
  else call.RangeErr("name", names, DescribeValue(name_value));
  Napi::Value value_value = call.Arg(2);
  int64_t value;
  if (value_value.IsBoolean()) {
    value = value_value.As<Napi::Boolean>().Value() ? 1 : 0;
  } else {
    value = call.Integer(2, "value", INT32_MIN, INT32_MAX);
  }
  const crb_backend* backend = call.backend();
  call.Check(backend->set_option(option, value), "set_option");
  return call.env().Undefined();
}

Napi::Value MemoryStats(const Napi::CallbackInfo& info) {
  OpCall call(info, "memoryStats");
  call.DeviceArg(0, "device");
  crb_memory_stats stats{};
  call.Check(call.backend()->memory_stats(&stats), "memory_stats");
  Napi::Object o = Napi::Object::New(call.env());
  o.Set("allocated", double(stats.allocated));
  o.Set("reserved", double(stats.reserved));
  o.Set("peakAllocated", double(stats.peak_allocated));
  o.Set("allocCount", double(stats.alloc_count));
  o.Set("cacheHits", double(stats.cache_hits));
  return o;
}

Napi::Value EmptyCache(const Napi::CallbackInfo& info) {
  OpCall call(info, "emptyCache");
  call.DeviceArg(0, "device");
  call.Check(call.backend()->empty_cache(), "empty_cache");
  return call.env().Undefined();
}

Napi::Value Synchronize(const Napi::CallbackInfo& info) {
  OpCall call(info, "synchronize");
  call.DeviceArg(0, "device");
  call.Check(call.backend()->synchronize(), "synchronize");
  return call.env().Undefined();
}

}  // namespace

// This file's rows of functions.def.
const js::Function js::setErrorClasses = SetErrorClasses;
const js::Function js::backendInfo = BackendInfo;
const js::Function js::capabilities = Capabilities;
const js::Function js::setOption = SetOption;
const js::Function js::memoryStats = MemoryStats;
const js::Function js::emptyCache = EmptyCache;
const js::Function js::synchronize = Synchronize;

}  // namespace crb
