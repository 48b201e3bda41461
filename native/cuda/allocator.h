// The caching, stream-ordered device allocator and the pinned host cache.
//
// Note [stream-ordered reuse]
// Every op runs on the backend's one stream. A block freed while queued kernels still use it
// can be handed out again at once: whatever the new owner queues runs after them on the same
// stream. Only returning memory to the driver needs care, and cudaFree synchronizes the device.
//
// Sizes are rounded to classes (512 B steps up to 1 MiB, then four classes per power of two, so
// at most 25% waste) and a freed block waits in its class's bin for the next request of that
// class. When cudaMalloc runs out, the cache is released and the allocation retried once.
#ifndef CRB_CUDA_ALLOCATOR_H
#define CRB_CUDA_ALLOCATOR_H

#include <cstddef>
#include <cstdint>
#include <utility>

#include "common.h"

namespace crb_cuda {

size_t size_class(size_t bytes);

crb_status device_alloc(size_t bytes, void** out, const OpScope& scope);
crb_status device_free(void* ptr, const OpScope& scope);
// Frees a block to the driver instead of the cache: for one-off scratch as large as the
// cuDNN benchmark's (Note [find scratch] in conv2d.cu), which must not stay reserved.
crb_status device_free_to_driver(void* ptr, const OpScope& scope);
void device_memory_stats(crb_memory_stats* out);
crb_status release_cached_memory(const OpScope& scope);  // device blocks and pinned host blocks

// Pinned (page-locked) host memory, cached the same way; used for staging copies.
crb_status pinned_alloc(size_t bytes, void** out, const OpScope& scope);
void pinned_free(void* ptr);

// A device buffer owned by one op (workspace, scratch); returned to the cache on destruction.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept { swap(other); }
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    DeviceBuffer tmp(std::move(other));
    swap(tmp);
    return *this;
  }
  ~DeviceBuffer() { reset(); }

  crb_status allocate(size_t bytes, const OpScope& scope) {
    reset();
    void* p = nullptr;
    CRB_TRY(device_alloc(bytes, &p, scope));
    ptr_ = p;
    bytes_ = bytes;
    return CRB_OK;
  }
  void reset() {
    if (ptr_) device_free(ptr_, OpScope("DeviceBuffer::reset"));
    ptr_ = nullptr;
    bytes_ = 0;
  }
  // Like reset(), but the memory goes back to the driver rather than into the cache.
  crb_status release_to_driver(const OpScope& scope) {
    void* p = ptr_;
    ptr_ = nullptr;
    bytes_ = 0;
    return device_free_to_driver(p, scope);
  }
  void* get() const { return ptr_; }
  template <typename T>
  T* as() const { return static_cast<T*>(ptr_); }
  size_t size() const { return bytes_; }

 private:
  void swap(DeviceBuffer& o) noexcept {
    std::swap(ptr_, o.ptr_);
    std::swap(bytes_, o.bytes_);
  }
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// Pinned host memory owned by one read or copy.
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  ~PinnedBuffer() { reset(); }
  crb_status allocate(size_t bytes, const OpScope& scope) {
    reset();
    void* p = nullptr;
    CRB_TRY(pinned_alloc(bytes, &p, scope));
    ptr_ = p;
    bytes_ = bytes;
    return CRB_OK;
  }
  void reset() {
    if (ptr_) pinned_free(ptr_);
    ptr_ = nullptr;
    bytes_ = 0;
  }
  void* get() const { return ptr_; }
  size_t size() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace crb_cuda

#endif  // CRB_CUDA_ALLOCATOR_H
