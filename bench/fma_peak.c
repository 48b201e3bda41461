/* The machine's measured FMA peak, for the benchmarks' "% of peak" columns: each of THREADS
 * threads runs independent fused multiply-add chains (enough accumulators to cover the FMA
 * latency on every FMA port) on the widest vectors the CPU has, for about SECONDS.
 * Usage: fma_peak THREADS [SECONDS] -> prints {"gflops": G, "isa": "avx512"|"avx2"} as JSON.
 * Built by bench/helpers.mjs (cc -O2 -pthread); not part of the package. */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { ACC = 16, ITERS = 1 << 20 };
static double seconds_wanted = 0.5;
static int use_avx512;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

/* flops per call: ITERS * ACC * lanes * 2 */
__attribute__((target("avx512f"))) static float run512(float seed) {
  __m512 acc[ACC], a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(seed * 1e-7f);
#pragma GCC unroll 16
  for (int i = 0; i < ACC; ++i) acc[i] = _mm512_set1_ps(seed + i);
  for (long it = 0; it < ITERS; ++it)
#pragma GCC unroll 16
    for (int i = 0; i < ACC; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  float out = 0;
  for (int i = 0; i < ACC; ++i) out += _mm512_reduce_add_ps(acc[i]);
  return out;
}

__attribute__((target("avx2,fma"))) static float run256(float seed) {
  __m256 acc[ACC], a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(seed * 1e-7f);
#pragma GCC unroll 16
  for (int i = 0; i < ACC; ++i) acc[i] = _mm256_set1_ps(seed + i);
  for (long it = 0; it < ITERS; ++it)
#pragma GCC unroll 16
    for (int i = 0; i < ACC; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  float lanes[8], out = 0;
  for (int i = 0; i < ACC; ++i) {
    _mm256_storeu_ps(lanes, acc[i]);
    for (int j = 0; j < 8; ++j) out += lanes[j];
  }
  return out;
}

typedef struct { double flops, secs; float sink; } Work;

static void* worker(void* arg) {
  Work* w = arg;
  const double lanes = use_avx512 ? 16 : 8, t0 = now();
  w->flops = 0;
  do {
    w->sink += use_avx512 ? run512(1.0f + w->sink * 1e-30f) : run256(1.0f + w->sink * 1e-30f);
    w->flops += (double)ITERS * ACC * lanes * 2;
  } while (now() - t0 < seconds_wanted);
  w->secs = now() - t0;
  return NULL;
}

int main(int argc, char** argv) {
  const int threads = argc > 1 ? atoi(argv[1]) : 1;
  if (argc > 2) seconds_wanted = atof(argv[2]);
  __builtin_cpu_init();
  use_avx512 = __builtin_cpu_supports("avx512f");
  if (!use_avx512 && !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) {
    printf("{\"gflops\": null, \"isa\": \"none\"}\n");
    return 0;
  }
  pthread_t tid[256];
  Work work[256] = {{0}};
  double total = 0;
  for (int i = 0; i < threads && i < 256; ++i) pthread_create(&tid[i], NULL, worker, &work[i]);
  for (int i = 0; i < threads && i < 256; ++i) {
    pthread_join(tid[i], NULL);
    total += work[i].flops / work[i].secs;
  }
  printf("{\"gflops\": %.1f, \"isa\": \"%s\", \"sink\": %g}\n", total / 1e9, use_avx512 ? "avx512" : "avx2",
         (double)work[0].sink);
  return 0;
}
