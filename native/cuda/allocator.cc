// See Note [stream-ordered reuse] in allocator.h.
#include "allocator.h"

#include "../backend/sizes.h"

#include <mutex>
#include <unordered_map>
#include <vector>

namespace crb_cuda {
namespace {

// Larger than any device will have for years; keeps the rounding below from overflowing.
constexpr size_t kMaxRequest = CRB_MAX_ALLOC_BYTES;

size_t round_up(size_t n, size_t step) { return (n + step - 1) / step * step; }

// One cache of blocks per memory kind. `Raw` provides cudaMalloc/cudaFree (or the pinned pair).
template <typename Raw>
class BlockCache {
 public:
  crb_status allocate(size_t bytes, void** out, const OpScope& scope) {
    if (bytes > kMaxRequest)
      return fail(CRB_ERR_OOM, scope, "cudaErrorMemoryAllocation",
                  "out of memory: %s allocation of %zu bytes is larger than any device", Raw::kName, bytes);
    const size_t cls = size_class(bytes);
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto bin = free_.find(cls);
      if (bin != free_.end() && !bin->second.empty()) {
        void* p = bin->second.back();
        bin->second.pop_back();
        cached_bytes_ -= cls;
        take(p, cls);
        ++cache_hits_;
        *out = p;
        return CRB_OK;
      }
    }
    void* p = nullptr;
    cudaError_t err = Raw::alloc(&p, cls);
    if (err == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      CRB_TRY(release(scope));  // then one more try: see allocator.h
      err = Raw::alloc(&p, cls);
    }
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      if (err != cudaErrorMemoryAllocation)
        return cuda_failure(scope, err, Raw::kCall, __FILE__, __LINE__);
      size_t dev_free = 0, dev_total = 0;
      if (Raw::kDevice && cudaMemGetInfo(&dev_free, &dev_total) != cudaSuccess) (void)cudaGetLastError();
      crb_memory_stats st;
      stats(&st);
      return fail(CRB_ERR_OOM, scope, cudaGetErrorName(err),
                  "out of memory: %s allocation of %zu bytes (class %zu) failed after releasing the cache; "
                  "allocated %llu, reserved %llu, device free %zu of %zu bytes",
                  Raw::kName, bytes, cls, (unsigned long long)st.allocated, (unsigned long long)st.reserved,
                  dev_free, dev_total);
    }
    std::lock_guard<std::mutex> lock(mu_);
    take(p, cls);
    reserved_ += cls;
    *out = p;
    return CRB_OK;
  }

  // Returns false when `p` was not allocated here.
  bool release_block(void* p) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = live_.find(p);
    if (it == live_.end()) return false;
    const size_t cls = it->second;
    live_.erase(it);
    allocated_ -= cls;
    free_[cls].push_back(p);
    cached_bytes_ += cls;
    return true;
  }

  // Takes a live block out of the cache's books and gives it back to the driver at once (a
  // large one-off buffer that must not stay reserved). Returns false when `p` is not live here.
  bool release_to_driver(void* p, cudaError_t* err) {
    size_t cls = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = live_.find(p);
      if (it == live_.end()) return false;
      cls = it->second;
      live_.erase(it);
      allocated_ -= cls;
    }
    *err = Raw::release(p);  // cudaFree synchronizes the device first
    std::lock_guard<std::mutex> lock(mu_);
    reserved_ -= cls;
    return true;
  }

  crb_status release(const OpScope& scope) {
    std::vector<std::pair<void*, size_t>> victims;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& bin : free_)
        for (void* p : bin.second) victims.emplace_back(p, bin.first);
      free_.clear();
      cached_bytes_ = 0;
    }
    cudaError_t first_err = cudaSuccess;
    for (auto& v : victims) {
      cudaError_t err = Raw::release(v.first);  // cudaFree synchronizes the device first
      if (err != cudaSuccess && first_err == cudaSuccess) first_err = err;
      std::lock_guard<std::mutex> lock(mu_);
      reserved_ -= v.second;
    }
    if (first_err != cudaSuccess) return cuda_failure(scope, first_err, Raw::kFreeCall, __FILE__, __LINE__);
    return CRB_OK;
  }

  void stats(crb_memory_stats* out) {
    std::lock_guard<std::mutex> lock(mu_);
    out->allocated = allocated_;
    out->reserved = reserved_;
    out->peak_allocated = peak_;
    out->alloc_count = alloc_count_;
    out->cache_hits = cache_hits_;
  }

 private:
  void take(void* p, size_t cls) {  // with mu_ held
    live_[p] = cls;
    allocated_ += cls;
    if (allocated_ > peak_) peak_ = allocated_;
    ++alloc_count_;
  }

  std::mutex mu_;
  std::unordered_map<void*, size_t> live_;                  // pointer -> size class
  std::unordered_map<size_t, std::vector<void*>> free_;     // size class -> cached blocks
  uint64_t allocated_ = 0, reserved_ = 0, peak_ = 0, alloc_count_ = 0, cache_hits_ = 0, cached_bytes_ = 0;
};

struct DeviceRaw {
  static constexpr const char* kName = "device";
  static constexpr const char* kCall = "cudaMalloc";
  static constexpr const char* kFreeCall = "cudaFree";
  static constexpr bool kDevice = true;
  static cudaError_t alloc(void** p, size_t n) { return cudaMalloc(p, n); }
  static cudaError_t release(void* p) { return cudaFree(p); }
};

struct PinnedRaw {
  static constexpr const char* kName = "pinned host";
  static constexpr const char* kCall = "cudaHostAlloc";
  static constexpr const char* kFreeCall = "cudaFreeHost";
  static constexpr bool kDevice = false;
  static cudaError_t alloc(void** p, size_t n) { return cudaHostAlloc(p, n, cudaHostAllocDefault); }
  static cudaError_t release(void* p) { return cudaFreeHost(p); }
};

// Leaked on purpose: see Note [no teardown at exit] in context.cu.
BlockCache<DeviceRaw>& device_cache() {
  static auto* c = new BlockCache<DeviceRaw>();
  return *c;
}
BlockCache<PinnedRaw>& pinned_cache() {
  static auto* c = new BlockCache<PinnedRaw>();
  return *c;
}

}  // namespace

// Callers pass bytes <= kMaxRequest (allocate() refuses more); above that the rounding would
// wrap, so a larger request maps to itself and the allocation fails honestly.
size_t size_class(size_t bytes) {
  if (bytes > kMaxRequest) return bytes;
  if (bytes <= 512) return 512;  // also gives a 0-byte tensor a real, unique address
  if (bytes <= (size_t(1) << 20)) return round_up(bytes, 512);
  // bytes in (2^p, 2^(p+1)]: steps of 2^(p-2), four classes per power of two.
  const int p = 63 - __builtin_clzll(static_cast<unsigned long long>(bytes - 1));
  return round_up(bytes, size_t(1) << (p - 2));
}

crb_status device_alloc(size_t bytes, void** out, const OpScope& scope) {
  if (!out) return invalid(scope, "out must not be null");
  *out = nullptr;
  return device_cache().allocate(bytes, out, scope);
}

crb_status device_free(void* ptr, const OpScope& scope) {
  if (!ptr) return CRB_OK;
  if (!device_cache().release_block(ptr))
    return invalid(scope, "pointer %p was not allocated by this backend (or was freed twice)", ptr);
  return CRB_OK;
}

crb_status device_free_to_driver(void* ptr, const OpScope& scope) {
  if (!ptr) return CRB_OK;
  cudaError_t err = cudaSuccess;
  if (!device_cache().release_to_driver(ptr, &err))
    return invalid(scope, "pointer %p was not allocated by this backend (or was freed twice)", ptr);
  if (err != cudaSuccess) return cuda_failure(scope, err, "cudaFree", __FILE__, __LINE__);
  return CRB_OK;
}

void device_memory_stats(crb_memory_stats* out) { device_cache().stats(out); }

crb_status release_cached_memory(const OpScope& scope) {
  CRB_TRY(device_cache().release(scope));
  return pinned_cache().release(scope);
}

crb_status pinned_alloc(size_t bytes, void** out, const OpScope& scope) {
  *out = nullptr;
  return pinned_cache().allocate(bytes, out, scope);
}

void pinned_free(void* ptr) {
  if (ptr) pinned_cache().release_block(ptr);
}

}  // namespace crb_cuda
