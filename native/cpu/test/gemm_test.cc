// GEMM check against a naive product, plus a timing of the conv-shaped case.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <algorithm>
#include <random>
#include <vector>

#include "../gemm.h"

using namespace crb_cpu;

template <class T>
double check(int m, int n, int k, bool ta, bool tb, T beta) {
  std::mt19937 rng(m * 131 + n * 7 + k);
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<T> a(m * k), b(k * n), c(m * n), ref(m * n);
  for (auto& v : a) v = u(rng);
  for (auto& v : b) v = u(rng);
  for (auto& v : c) v = u(rng);
  ref = c;
  MatRef<T> A = ta ? transposed(a.data(), (int64_t)m) : row_major(a.data(), (int64_t)k);
  MatRef<T> B = tb ? transposed(b.data(), (int64_t)k) : row_major(b.data(), (int64_t)n);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      double s = 0;
      for (int p = 0; p < k; ++p) s += (double)A.at(i, p) * B.at(p, j);
      ref[i * n + j] = T(1.5 * s + (double)beta * ref[i * n + j]);
    }
  gemm<T>(m, n, k, T(1.5), A, B, beta, c.data(), n, true);
  double err = 0;
  for (int i = 0; i < m * n; ++i) err = std::max(err, std::fabs((double)c[i] - ref[i]) / (1 + std::fabs((double)ref[i])));
  return err;
}

int main() {
  printf("isa %s\n", gemm_isa());
  int shapes[][3] = {{1, 1, 1}, {7, 13, 5}, {64, 3136, 576}, {33, 65, 300}, {100, 10, 512}, {5, 1000, 7}, {129, 257, 513}};
  double worst = 0;
  for (auto& s : shapes)
    for (int t = 0; t < 4; ++t) {
      double e1 = check<float>(s[0], s[1], s[2], t & 1, t & 2, 0.f);
      double e2 = check<float>(s[0], s[1], s[2], t & 1, t & 2, 0.5f);
      double e3 = check<double>(s[0], s[1], s[2], t & 1, t & 2, 0.0);
      double e4 = check<double>(s[0], s[1], s[2], t & 1, t & 2, -1.0);
      printf("%4d %5d %4d t%d  f32 %.2e %.2e  f64 %.2e %.2e\n", s[0], s[1], s[2], t, e1, e2, e3, e4);
      worst = std::max({worst, e1 * 1e-5, e2 * 1e-5, e3, e4});
    }
  int m = 64, n = 3136, k = 576;
  std::vector<float> a(m * k, 0.5f), b(k * n, 0.25f), c(m * n);
  for (int par = 0; par < 2; ++par) {
    for (int rep = 0; rep < 3; ++rep) {
      auto t0 = std::chrono::steady_clock::now();
      int iters = 20;
      for (int i = 0; i < iters; ++i)
        gemm<float>(m, n, k, 1.f, row_major(a.data(), k), row_major(b.data(), n), 0.f, c.data(), n, par);
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      printf("f32 64x3136x576 %s: %.1f GFLOP/s\n", par ? "parallel" : "1 thread", 2.0 * m * n * k * iters / s / 1e9);
    }
  }
  return 0;
}
