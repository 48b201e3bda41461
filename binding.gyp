# The addon: N-API binding + CPU backend (static libraries from native/cpu/cpu.gypi) + the CUDA
# loader. CUDA itself is never linked: libcrb_cuda.so is dlopen'ed at run time from next to the
# .node file ($ORIGIN), so the addon loads on machines without CUDA.
{
  "includes": ["native/cpu/cpu.gypi"],
  "targets": [
    {
      "target_name": "cudnn_resblock",
      "dependencies": ["crb_cpu"],
      "sources": [
        "native/binding/addon.cc",
        "native/binding/addon_data.cc",
        "native/binding/backends.cc",
        "native/binding/creation.cc",
        "native/binding/errors.cc",
        "native/binding/info.cc",
        "native/binding/op_call.cc",
        "native/binding/ops_batchnorm.cc",
        "native/binding/ops_conv.cc",
        "native/binding/ops_elementwise.cc",
        "native/binding/ops_images.cc",
        "native/binding/ops_linear.cc",
        "native/binding/ops_loss.cc",
        "native/binding/ops_pooling.cc",
        "native/binding/ops_sgd.cc",
        "native/binding/random.cc",
        "native/binding/read.cc",
        "native/binding/storage.cc",
        "native/binding/tensor_handle.cc",
        "native/binding/transfer.cc",
        "native/core/cuda_loader.cc",
        "native/core/dtype.cc",
        "native/core/host_convert.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      # NAPI_EXPERIMENTAL: basic finalizers run during GC; see Note [experimental Node-API] in
      # native/binding/napi_config.h (the binary still imports only Node-API 8 functions).
      "defines": ["NAPI_EXPERIMENTAL", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags": ["-O3", "-fvisibility=hidden"],
      "cflags_cc": ["-std=c++17"],
      "ldflags": ["-Wl,-rpath,'$$ORIGIN'"],
      "libraries": ["-ldl", "-pthread"]
    }
  ]
}
