# The addon: N-API binding + the CPU backend (static libraries) + the CUDA loader. CUDA itself is
# never linked: libcrb_cuda.so (CMakeLists.txt) is dlopen'ed at run time from next to the .node
# file ($ORIGIN), so the addon loads on machines without CUDA. Source files are listed once, in
# native/sources.json.
{
  "target_defaults": {
    # node-addon-api turns on its exception mode itself once -fno-exceptions is gone. Node's
    # common.gypi adds -std=gnu++17 after these flags; drop it so -std=c++17 holds.
    "cflags!": ["-fno-exceptions"],
    "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
    "cflags": ["-O3"],
    "cflags_cc": ["-std=c++17"]
  },
  "targets": [
    {
      "target_name": "cudnn_resblock",
      "dependencies": ["crb_cpu"],
      "sources": ["<!@(node -p \"require('./native/sources.json').addon.join(' ')\")"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      # NAPI_EXPERIMENTAL: basic finalizers run during GC; see Note [experimental Node-API] in
      # native/binding/napi_config.h (the binary still imports only Node-API 8 functions).
      "defines": ["NAPI_EXPERIMENTAL", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags": ["-fvisibility=hidden"],
      "ldflags": ["-Wl,-rpath,'$$ORIGIN'"],
      "libraries": ["-ldl", "-pthread"]
    },
    # The CPU backend. crb_cpu_avx2 / crb_cpu_avx512 hold the hot kernels built with -mavx2 /
    # -mavx512*; they are only called after __builtin_cpu_supports says the CPU has the
    # instructions, so the addon itself stays baseline x86-64 and runs everywhere.
    {
      "target_name": "crb_cpu",
      "type": "static_library",
      "dependencies": ["crb_cpu_avx2", "crb_cpu_avx512", "crb_cpu_bn_avx2", "crb_cpu_bn_avx512"],
      "sources": ["<!@(node -p \"require('./native/sources.json').cpu.join(' ')\")"],
      "cflags": ["-fPIC", "-pthread"],
      "link_settings": {"libraries": ["-lpthread"]}
    },
    {
      "target_name": "crb_cpu_avx2",
      "type": "static_library",
      "sources": ["<!@(node -p \"require('./native/sources.json').cpu_avx2.join(' ')\")"],
      "cflags": ["-fPIC", "-mavx2", "-mfma"]
    },
    {
      "target_name": "crb_cpu_avx512",
      "type": "static_library",
      "sources": ["<!@(node -p \"require('./native/sources.json').cpu_avx512.join(' ')\")"],
      "cflags": ["-fPIC", "-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mfma"]
    },
    # The batch norm kernels per ISA, without FMA contraction: every variant rounds as the
    # baseline does, and the fused ReLU's recomputed mask stays exactly the forward's.
    {
      "target_name": "crb_cpu_bn_avx2",
      "type": "static_library",
      "sources": ["<!@(node -p \"require('./native/sources.json').cpu_bn_avx2.join(' ')\")"],
      "cflags": ["-fPIC", "-pthread", "-mavx2", "-ffp-contract=off"]
    },
    {
      "target_name": "crb_cpu_bn_avx512",
      "type": "static_library",
      "sources": ["<!@(node -p \"require('./native/sources.json').cpu_bn_avx512.join(' ')\")"],
      "cflags": ["-fPIC", "-pthread", "-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-ffp-contract=off"]
    }
  ]
}
