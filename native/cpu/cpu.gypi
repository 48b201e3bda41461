# The CPU backend as static libraries, included by the addon's binding.gyp:
#   "includes": ["native/cpu/cpu.gypi"]
# and linked by adding ONE dependency to the addon target:
#   "dependencies": ["crb_cpu"]
# crb_cpu depends on crb_cpu_avx2 and crb_cpu_avx512 (hot kernels built with -mavx2 / -mavx512*),
# which gyp links in too. Those are only called after __builtin_cpu_supports says the CPU has the
# instructions, so the addon itself stays baseline x86-64 and runs everywhere.
# Paths here are relative to this file (gyp rebases them).
{
  "targets": [
    {
      "target_name": "crb_cpu",
      "type": "static_library",
      "dependencies": ["crb_cpu_avx2", "crb_cpu_avx512"],
      "sources": [
        "backend.cc",
        "errors.cc",
        "threadpool.cc",
        "memory.cc",
        "elementwise.cc",
        "relu.cc",
        "conv2d.cc",
        "batchnorm.cc",
        "pooling.cc",
        "linear.cc",
        "cross_entropy.cc",
        "sgd.cc",
        "images.cc",
        "layout.cc",
        "gemm.cc"
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags": ["-O3", "-fPIC", "-pthread"],
      "cflags_cc": ["-std=c++17"],
      "link_settings": {"libraries": ["-lpthread"]}
    },
    {
      "target_name": "crb_cpu_avx2",
      "type": "static_library",
      "sources": ["gemm_avx2.cc"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags": ["-O3", "-fPIC", "-mavx2", "-mfma"],
      "cflags_cc": ["-std=c++17"]
    },
    {
      "target_name": "crb_cpu_avx512",
      "type": "static_library",
      "sources": ["gemm_avx512.cc"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags": ["-O3", "-fPIC", "-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mfma"],
      "cflags_cc": ["-std=c++17"]
    }
  ]
}
