// One pool of worker threads for the whole backend, created on first use and sized to the cores
// (CRB_NUM_THREADS overrides; CRB_OPT_NUM_THREADS resizes it). parallel_for splits a range into
// one static chunk per thread; the calling thread runs chunk 0, so a pool of 1 spawns nothing.
#ifndef CRB_CPU_THREADPOOL_H
#define CRB_CPU_THREADPOOL_H

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace crb_cpu {

class ThreadPool {
 public:
  using Task = void (*)(void* ctx, int64_t begin, int64_t end, int thread);

  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return threads_; }
  void resize(int threads);
  // Runs task on [0, n) split into `parts` static chunks (parts <= size()). Falls back to running
  // inline when called from inside a task or while another thread holds the pool.
  void run(int64_t n, int parts, Task task, void* ctx);

 private:
  void start(int threads);
  void stop();
  void worker_loop(int index, uint64_t seen);

  int threads_ = 1;
  std::vector<std::thread> workers_;
  std::mutex run_mutex_;  // one parallel region at a time
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  // The job being run; published under mutex_ and by bumping generation_.
  Task task_ = nullptr;
  void* ctx_ = nullptr;
  int64_t n_ = 0;
  int parts_ = 0;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  bool quit_ = false;
};

ThreadPool& thread_pool();
int num_threads();

// f(begin, end, thread) over [0, n), at most one chunk per thread; chunks smaller than `grain`
// are not split off, so tiny loops stay on the calling thread.
template <class F>
void parallel_for(int64_t n, int64_t grain, F&& f) {
  if (n <= 0) return;
  ThreadPool& pool = thread_pool();
  int64_t parts = grain > 0 ? (n + grain - 1) / grain : n;
  if (parts > pool.size()) parts = pool.size();
  if (parts <= 1) {
    f(int64_t(0), n, 0);
    return;
  }
  using Fn = typename std::remove_reference<F>::type;
  pool.run(n, (int)parts,
           [](void* ctx, int64_t begin, int64_t end, int thread) { (*static_cast<Fn*>(ctx))(begin, end, thread); },
           (void*)&f);
}

// f(begin, end, thread) over [0, n) in pieces of `grain`, handed out to the threads as they come
// free: when another process steals a core, the other threads take over its share instead of
// waiting for it. For loops whose pieces are big enough that one atomic add per piece is noise.
template <class F>
void parallel_for_dynamic(int64_t n, int64_t grain, F&& f) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  const int64_t pieces = (n + grain - 1) / grain;
  ThreadPool& pool = thread_pool();
  if (pieces <= 1 || pool.size() <= 1) {
    f(int64_t(0), n, 0);
    return;
  }
  std::atomic<int64_t> next{0};
  const int64_t threads = pieces < pool.size() ? pieces : pool.size();
  parallel_for(threads, 1, [&](int64_t t0, int64_t t1, int thread) {
    for (int64_t t = t0; t < t1; ++t)
      for (int64_t piece = next.fetch_add(1); piece < pieces; piece = next.fetch_add(1)) {
        const int64_t b = piece * grain, e = b + grain < n ? b + grain : n;
        f(b, e, thread);
      }
  });
}

// A per-thread buffer that only grows: packing and im2col reuse it instead of allocating per call.
// Each slot is independent, so one op can hold several at once. Returns 64-byte aligned memory,
// or null when the allocation fails.
void* scratch(int slot, size_t bytes);
constexpr int kScratchSlots = 8;

}  // namespace crb_cpu

#endif  // CRB_CPU_THREADPOOL_H
