// Times the ResidualBlock forward (and backward) of the seed model on the CPU backend:
// N=32, 64->64 channels, 56x56, conv3x3 -> BN -> ReLU -> conv3x3 -> BN -> +x -> ReLU.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <vector>

#include "../../backend/backend_api.h"

#include <time.h>
// CRB_BENCH_CPUTIME=1 (with CRB_NUM_THREADS=1): time by this thread's CPU time, which other
// processes sharing the cores do not inflate.
static double now() {
  static const bool cpu = getenv("CRB_BENCH_CPUTIME") != nullptr;
  if (cpu) {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
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

#define CHECK(x)                                                                       \
  do {                                                                                 \
    if ((x) != CRB_OK) {                                                               \
      printf("%s failed: %s\n", #x, be->last_error()->message);                        \
      exit(1);                                                                         \
    }                                                                                  \
  } while (0)

int main(int argc, char** argv) {
  const crb_backend* be = crb_cpu_backend();
  be->init();
  const int N = argc > 1 ? atoi(argv[1]) : 32, C = 64, H = 56, W = 56;
  const int reps = argc > 2 ? atoi(argv[2]) : 5;
  const size_t act = size_t(N) * C * H * W;
  std::mt19937 rng(1);
  std::normal_distribution<float> nd;
  std::vector<float> x(act), y1(act), y2(act), y3(act), out(act), w1(C * C * 9), w2(C * C * 9), b1(C), b2(C);
  for (auto& v : x) v = nd(rng);
  for (auto& v : w1) v = nd(rng) * 0.05f;
  for (auto& v : w2) v = nd(rng) * 0.05f;
  std::vector<float> g(C, 1.f), bt(C, 0.f), rm(C, 0.f), rv(C, 1.f), sm(C), si(C), sm2(C), si2(C);
  crb_conv2d_desc cd = {N, C, H, W, C, 3, 3, 1, 1, 1, 1, 1, 1, 1, H, W, CRB_F32, CRB_NCHW};
  crb_bn_desc bd = {N, C, H, W, 1e-5, 0.1, CRB_F32, CRB_NCHW};
  double t_conv = best_of(reps, [&] { CHECK(be->conv2d_forward(&cd, x.data(), w1.data(), b1.data(), y1.data())); });
  double flops = 2.0 * N * C * H * W * C * 9;
  printf("conv3x3 fwd   %7.2f ms  %6.1f GFLOP/s\n", t_conv * 1e3, flops / t_conv / 1e9);
  if (argc > 3 && argv[3][0] == 'c') return 0;  // conv only
  if (argc > 3 && argv[3][0] == 'f') {  // filter gradient only
    std::vector<float> dy(act, 0.01f), dw(C * C * 9);
    double t = best_of(reps, [&] { CHECK(be->conv2d_backward_filter(&cd, x.data(), dy.data(), dw.data())); });
    printf("conv bwd filt %7.2f ms  %6.1f GFLOP/s\n", t * 1e3, flops / t / 1e9);
    return 0;
  }
  double t_bn = best_of(reps, [&] {
    CHECK(be->batchnorm_forward_train(&bd, y1.data(), g.data(), bt.data(), y2.data(), rm.data(), rv.data(), sm.data(),
                                      si.data()));
  });
  printf("bn train fwd  %7.2f ms\n", t_bn * 1e3);
  double t_relu = best_of(reps, [&] { CHECK(be->relu_forward(y2.data(), y2.data(), act, CRB_F32)); });
  printf("relu fwd      %7.2f ms\n", t_relu * 1e3);
  double t_add = best_of(reps, [&] { CHECK(be->add(y3.data(), y2.data(), x.data(), act, CRB_F32)); });
  printf("add           %7.2f ms\n", t_add * 1e3);
  auto block = [&] {
    CHECK(be->conv2d_forward(&cd, x.data(), w1.data(), b1.data(), y1.data()));
    CHECK(be->batchnorm_forward_train(&bd, y1.data(), g.data(), bt.data(), y2.data(), rm.data(), rv.data(), sm.data(),
                                      si.data()));
    CHECK(be->relu_forward(y2.data(), y2.data(), act, CRB_F32));
    CHECK(be->conv2d_forward(&cd, y2.data(), w2.data(), b2.data(), y3.data()));
    CHECK(be->batchnorm_forward_train(&bd, y3.data(), g.data(), bt.data(), y1.data(), rm.data(), rv.data(),
                                      sm2.data(), si2.data()));
    CHECK(be->add(out.data(), y1.data(), x.data(), act, CRB_F32));
    CHECK(be->relu_forward(out.data(), out.data(), act, CRB_F32));
  };
  double t_block = best_of(reps, block);
  printf("block fwd     %7.2f ms (train-mode BN)\n", t_block * 1e3);
  auto fused = [&] {
    CHECK(be->conv2d_forward(&cd, x.data(), w1.data(), b1.data(), y1.data()));
    CHECK(be->batchnorm_forward_train(&bd, y1.data(), g.data(), bt.data(), y2.data(), rm.data(), rv.data(), sm.data(),
                                      si.data()));
    CHECK(be->relu_forward(y2.data(), y2.data(), act, CRB_F32));
    CHECK(be->conv2d_forward(&cd, y2.data(), w2.data(), b2.data(), y3.data()));
    CHECK(be->bn_add_relu_forward_train(&bd, y3.data(), x.data(), g.data(), bt.data(), out.data(), rm.data(),
                                        rv.data(), sm2.data(), si2.data(), nullptr, 0));
  };
  double t_fused = best_of(reps, fused);
  printf("block fwd     %7.2f ms (train-mode BN, fused BN+add+ReLU tail)\n", t_fused * 1e3);
  // backward pieces
  std::vector<float> dy(act, 0.01f), dx(act), dw(C * C * 9), db(C);
  double t_bd = best_of(reps, [&] { CHECK(be->conv2d_backward_data(&cd, dy.data(), w1.data(), dx.data())); });
  printf("conv bwd data %7.2f ms  %6.1f GFLOP/s\n", t_bd * 1e3, flops / t_bd / 1e9);
  double t_bf = best_of(reps, [&] { CHECK(be->conv2d_backward_filter(&cd, x.data(), dy.data(), dw.data())); });
  printf("conv bwd filt %7.2f ms  %6.1f GFLOP/s\n", t_bf * 1e3, flops / t_bf / 1e9);
  double t_bnb = best_of(reps, [&] {
    CHECK(be->batchnorm_backward_train(&bd, y1.data(), dy.data(), g.data(), sm.data(), si.data(), dx.data(), db.data(),
                                       db.data()));
  });
  printf("bn train bwd  %7.2f ms\n", t_bnb * 1e3);
  return 0;
}
