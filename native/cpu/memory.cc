// Host memory of the CPU backend: 64-byte aligned allocations (what the vector kernels want),
// counted so memory_stats means the same as on the CUDA backend. There is no cache.
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <unordered_map>

#include "errors.h"
#include "ops.h"

struct crb_read {
  void* staging;
  size_t bytes;
};

namespace crb_cpu {

namespace {
struct Accounting {
  std::mutex mutex;
  std::unordered_map<void*, size_t> sizes;
  uint64_t allocated = 0, peak = 0, count = 0;
};
Accounting& accounting() {
  static Accounting* a = new Accounting;  // never destroyed: frees may arrive during exit
  return *a;
}
}  // namespace

crb_status alloc(size_t bytes, void** out) {
  if (!out) return fail(CRB_ERR_INVALID, "alloc", "out must not be null");
  *out = nullptr;
  size_t rounded = (bytes + 63) / 64 * 64;
  if (rounded == 0) rounded = 64;  // a zero-element tensor still gets a distinct pointer
  void* p = std::aligned_alloc(64, rounded);
  if (!p) return fail(CRB_ERR_OOM, "alloc", "could not allocate %zu bytes of host memory", bytes);
  Accounting& a = accounting();
  try {
    std::lock_guard<std::mutex> lock(a.mutex);
    a.sizes.emplace(p, bytes);
    a.allocated += bytes;
    if (a.allocated > a.peak) a.peak = a.allocated;
    a.count++;
  } catch (const std::bad_alloc&) {
    std::free(p);
    return fail(CRB_ERR_OOM, "alloc", "could not record an allocation of %zu bytes", bytes);
  }
  *out = p;
  return CRB_OK;
}

crb_status free_(void* ptr) {
  if (!ptr) return CRB_OK;
  Accounting& a = accounting();
  {
    std::lock_guard<std::mutex> lock(a.mutex);
    auto it = a.sizes.find(ptr);
    if (it == a.sizes.end())
      return fail(CRB_ERR_INVALID, "free", "pointer %p was not allocated by the CPU backend (or was freed twice)", ptr);
    a.allocated -= it->second;
    a.sizes.erase(it);
  }
  std::free(ptr);
  return CRB_OK;
}

crb_status memory_stats(crb_memory_stats* out) {
  if (!out) return fail(CRB_ERR_INVALID, "memory_stats", "out must not be null");
  Accounting& a = accounting();
  std::lock_guard<std::mutex> lock(a.mutex);
  out->allocated = a.allocated;
  out->reserved = a.allocated;  // no caching allocator: everything held is live
  out->peak_allocated = a.peak;
  out->alloc_count = a.count;
  out->cache_hits = 0;
  return CRB_OK;
}

crb_status empty_cache() { return CRB_OK; }

crb_status copy_from_host(void* dst, const void* host_src, size_t bytes) {
  if (bytes == 0) return CRB_OK;
  if (!dst || !host_src) return fail(CRB_ERR_INVALID, "copy_from_host", "dst and src must not be null");
  std::memmove(dst, host_src, bytes);
  return CRB_OK;
}

crb_status copy_device(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return CRB_OK;
  if (!dst || !src) return fail(CRB_ERR_INVALID, "copy_device", "dst and src must not be null");
  std::memmove(dst, src, bytes);
  return CRB_OK;
}

// The snapshot is taken now, so a later op that overwrites src cannot change what the read returns.
crb_status read_begin(const void* src, size_t bytes, crb_read** out) {
  if (!out) return fail(CRB_ERR_INVALID, "read_begin", "out must not be null");
  *out = nullptr;
  if (bytes && !src) return fail(CRB_ERR_INVALID, "read_begin", "src must not be null for %zu bytes", bytes);
  crb_read* r = static_cast<crb_read*>(std::malloc(sizeof(crb_read)));
  if (!r) return fail(CRB_ERR_OOM, "read_begin", "could not allocate a read handle");
  r->bytes = bytes;
  r->staging = std::malloc(bytes ? bytes : 1);
  if (!r->staging) {
    std::free(r);
    return fail(CRB_ERR_OOM, "read_begin", "could not allocate %zu bytes of staging memory", bytes);
  }
  if (bytes) std::memcpy(r->staging, src, bytes);
  *out = r;
  return CRB_OK;
}

crb_status read_finish(crb_read* read, void* host_dst) {
  if (!read) return fail(CRB_ERR_INVALID, "read_finish", "read must not be null");
  if (host_dst && read->bytes) std::memcpy(host_dst, read->staging, read->bytes);
  std::free(read->staging);
  std::free(read);
  return CRB_OK;
}

}  // namespace crb_cpu
