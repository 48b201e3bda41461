// Times every conv shape of ResNet-18 on 28x28 Fashion-MNIST (batch N): forward, backward data,
// backward filter, with GFLOP/s. CRB_BENCH_CPUTIME=1 CRB_NUM_THREADS=1 for CPU-time numbers.
// CRB_BENCH_SET=block: the issue #14 ResidualBlock convs instead (64->64 at 56x56, 128->256 s2 at
// 28x28); CRB_BENCH_LAYOUT=nhwc for channels-last.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <functional>
#include <time.h>
#include <vector>

#include "../../backend/backend_api.h"

static double now() {
  static const bool cpu = getenv("CRB_BENCH_CPUTIME") != nullptr;
  timespec ts;
  clock_gettime(cpu ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double best_of(int reps, const std::function<void()>& f) {
  f();
  double best = 1e9;
  for (int i = 0; i < reps; ++i) {
    double t = now();
    f();
    best = std::min(best, now() - t);
  }
  return best;
}

int main(int argc, char** argv) {
  const crb_backend* be = crb_cpu_backend();
  const int N = argc > 1 ? atoi(argv[1]) : 256, reps = argc > 2 ? atoi(argv[2]) : 3;
  struct L { int c, h, k, r, stride, pad, count; } layers[] = {
      {1, 28, 64, 7, 2, 3, 1},   {64, 7, 64, 3, 1, 1, 4},   {64, 7, 128, 3, 2, 1, 1}, {64, 7, 128, 1, 2, 0, 1},
      {128, 4, 128, 3, 1, 1, 3}, {128, 4, 256, 3, 2, 1, 1}, {128, 4, 256, 1, 2, 0, 1}, {256, 2, 256, 3, 1, 1, 3},
      {256, 2, 512, 3, 2, 1, 1}, {256, 2, 512, 1, 2, 0, 1}, {512, 1, 512, 3, 1, 1, 3}};
  const L block_layers[] = {{64, 56, 64, 3, 1, 1, 2}, {128, 28, 256, 3, 2, 1, 1}, {256, 14, 256, 3, 1, 1, 1},
                            {128, 28, 256, 1, 2, 0, 1}};
  const bool block = getenv("CRB_BENCH_SET") && !strcmp(getenv("CRB_BENCH_SET"), "block");
  const crb_layout layout = getenv("CRB_BENCH_LAYOUT") && !strcmp(getenv("CRB_BENCH_LAYOUT"), "nhwc") ? CRB_NHWC : CRB_NCHW;
  std::vector<L> set = block ? std::vector<L>(std::begin(block_layers), std::end(block_layers))
                             : std::vector<L>(std::begin(layers), std::end(layers));
  double total = 0;
  const char* only = getenv("CRB_BENCH_ONLY");  // index of one layer to time
  int index = -1;
  for (auto& l : set) {
    if (only && ++index != atoi(only)) continue;
    const int oh = (l.h + 2 * l.pad - l.r) / l.stride + 1;
    crb_conv2d_desc d = {N, l.c, l.h, l.h, l.k, l.r, l.r, l.stride, l.stride, l.pad, l.pad, 1, 1, 1, oh, oh, CRB_F32, layout};
    std::vector<float> x(size_t(N) * l.c * l.h * l.h, 0.5f), w(size_t(l.k) * l.c * l.r * l.r, 0.1f),
        y(size_t(N) * l.k * oh * oh), dy(y.size(), 0.2f), dx(x.size()), dw(w.size());
    const double flops = 2.0 * N * l.k * oh * oh * l.c * l.r * l.r;
    double tf = best_of(reps, [&] { be->conv2d_forward(&d, x.data(), w.data(), nullptr, y.data()); });
    double td = best_of(reps, [&] { be->conv2d_backward_data(&d, dy.data(), w.data(), dx.data()); });
    double tw = best_of(reps, [&] { be->conv2d_backward_filter(&d, x.data(), dy.data(), dw.data()); });
    printf("c%3d %2dx%-2d k%3d %dx%d s%d: fwd %6.2f ms %5.1f GF/s  bwd-data %6.2f ms %5.1f  bwd-filter %6.2f ms %5.1f  (x%d)\n",
           l.c, l.h, l.h, l.k, l.r, l.r, l.stride, tf * 1e3, flops / tf / 1e9, td * 1e3, flops / td / 1e9, tw * 1e3,
           flops / tw / 1e9, l.count);
    total += (tf + td + tw) * l.count;
  }
  printf("all convs fwd+bwd: %.1f ms per batch of %d\n", total * 1e3, N);
  return 0;
}
