#include "threadpool.h"

#include <cstdlib>
#include <new>

namespace crb_cpu {

namespace {
thread_local bool tls_in_task = false;

int default_threads() {
  if (const char* env = std::getenv("CRB_NUM_THREADS")) {
    int v = std::atoi(env);
    if (v >= 1 && v <= 1024) return v;
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : (int)hw;
}

struct ScratchBuffers {
  void* ptr[kScratchSlots] = {};
  size_t size[kScratchSlots] = {};
  ~ScratchBuffers() {
    for (int i = 0; i < kScratchSlots; ++i) std::free(ptr[i]);
  }
};
thread_local ScratchBuffers tls_scratch;
}  // namespace

void* scratch(int slot, size_t bytes) {
  ScratchBuffers& s = tls_scratch;
  if (bytes <= s.size[slot]) return s.ptr[slot];
  std::free(s.ptr[slot]);
  s.ptr[slot] = nullptr;
  s.size[slot] = 0;
  size_t rounded = (bytes + 63) / 64 * 64;
  rounded += rounded / 4;  // grow with headroom so slowly growing shapes do not reallocate each call
  rounded = (rounded + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded);
  if (!p) return nullptr;
  s.ptr[slot] = p;
  s.size[slot] = rounded;
  return p;
}

ThreadPool::ThreadPool(int threads) { start(threads); }

ThreadPool::~ThreadPool() { stop(); }

void ThreadPool::start(int threads) {
  threads_ = threads < 1 ? 1 : threads;
  quit_ = false;
  workers_.reserve(threads_ - 1);
  // A worker must not miss a job published before its thread got to run: it starts from the
  // generation current now, not from whatever it reads later.
  const uint64_t gen = generation_.load();
  for (int i = 1; i < threads_; ++i) workers_.emplace_back([this, i, gen] { worker_loop(i, gen); });
}

void ThreadPool::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    quit_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
}

void ThreadPool::resize(int threads) {
  std::lock_guard<std::mutex> guard(run_mutex_);
  if (threads == threads_) return;
  stop();
  start(threads);
}

void ThreadPool::worker_loop(int index, uint64_t seen) {
  for (;;) {
    // Spin briefly: ops come back to back, and a condition variable wake costs tens of µs.
    uint64_t gen = generation_.load(std::memory_order_acquire);
    for (int spin = 0; gen == seen && spin < 4000; ++spin) {
      __builtin_ia32_pause();
      gen = generation_.load(std::memory_order_acquire);
    }
    if (gen == seen) {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return quit_ || generation_.load(std::memory_order_acquire) != seen; });
      if (quit_) return;
      gen = generation_.load(std::memory_order_acquire);
    }
    Task task;
    void* ctx;
    int64_t n;
    int parts;
    {
      // The generation and the job it names are published together under the mutex.
      std::lock_guard<std::mutex> lock(mutex_);
      if (quit_) return;
      seen = generation_.load(std::memory_order_acquire);
      task = task_;
      ctx = ctx_;
      n = n_;
      parts = parts_;
    }
    if (index < parts) {
      int64_t begin = n * index / parts, end = n * (index + 1) / parts;
      tls_in_task = true;
      if (begin < end) task(ctx, begin, end, index);
      tls_in_task = false;
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(mutex_);
        done_.notify_one();
      }
    }
  }
}

void ThreadPool::run(int64_t n, int parts, Task task, void* ctx) {
  std::unique_lock<std::mutex> guard(run_mutex_, std::defer_lock);
  if (tls_in_task || parts <= 1 || !guard.try_lock()) {
    task(ctx, 0, n, 0);
    return;
  }
  if (parts > threads_) parts = threads_;
  if (parts <= 1) {
    task(ctx, 0, n, 0);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    task_ = task;
    ctx_ = ctx;
    n_ = n;
    parts_ = parts;
    pending_.store(parts - 1, std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  wake_.notify_all();
  tls_in_task = true;
  int64_t end0 = n / parts;
  if (end0 > 0) task(ctx, 0, end0, 0);
  tls_in_task = false;
  for (int spin = 0; pending_.load(std::memory_order_acquire) != 0 && spin < 20000; ++spin) __builtin_ia32_pause();
  if (pending_.load(std::memory_order_acquire) != 0) {
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return pending_.load(std::memory_order_acquire) == 0; });
  }
}

ThreadPool& thread_pool() {
  static ThreadPool pool(default_threads());
  return pool;
}

int num_threads() { return thread_pool().size(); }

}  // namespace crb_cpu
