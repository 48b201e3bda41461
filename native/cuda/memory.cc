// Memory entry points: allocation through the caching allocator, and host <-> device copies
// through pinned staging memory so they run at full PCIe/NVLink speed and can be asynchronous.
#include <cstring>
#include <mutex>

#include "allocator.h"
#include "context.h"
#include "ops.h"

// An in-flight device -> host copy (backend_api.h): the pinned buffer it lands in and the event
// that marks its completion on the stream.
struct crb_read {
  crb_cuda::PinnedBuffer staging;
  cudaEvent_t done = nullptr;
  size_t bytes = 0;
  ~crb_read() {
    if (done) cudaEventDestroy(done);
  }
};

namespace crb_cuda {
namespace {

// Note [non-blocking uploads]
// Host -> device copies go through a ring of pinned chunks: each piece of an upload is copied
// into the next chunk on the host, then DMA'd to the device with cudaMemcpyAsync on the stream,
// and an event recorded after the DMA guards the chunk's reuse. copy_from_host returns once the
// last piece sits in pinned memory, without waiting for the device: the caller may reuse its
// host array at once (copy semantics), and every later use of dst (kernels, copies, reads) is
// queued on the same stream after the DMA. Only a chunk still in flight kUploadRing uploads
// later makes the host wait, so a DataLoader's per-step batches overlap the previous step's
// work. The cursor persists across calls, so consecutive small uploads take different chunks.
// One ring for the process, guarded by a mutex.
constexpr size_t kStagingChunk = size_t(8) << 20;
constexpr int kUploadRing = 4;

struct Staging {
  std::mutex mu;
  PinnedBuffer chunk[kUploadRing];
  cudaEvent_t free_again[kUploadRing] = {};  // recorded after the DMA out of chunk[i]
  int next = 0;                               // the chunk the next piece goes through
};

Staging& staging() {
  static auto* s = new Staging();  // see Note [no teardown at exit] in context.cu
  return *s;
}

}  // namespace

crb_status alloc(size_t bytes, void** out) {
  OpScope scope("alloc", "bytes %zu", bytes);
  CRB_TRY(ensure_init(scope));
  return device_alloc(bytes, out, scope);
}

crb_status dealloc(void* ptr) {
  OpScope scope("dealloc");
  return device_free(ptr, scope);
}

crb_status memory_stats(crb_memory_stats* out) {
  OpScope scope("memory_stats");
  if (!out) return invalid(scope, "out must not be null");
  device_memory_stats(out);
  return CRB_OK;
}

crb_status empty_cache() {
  OpScope scope("empty_cache");
  CRB_TRY(ensure_init(scope));
  return release_cached_memory(scope);
}

crb_status copy_from_host(void* dst, const void* host_src, size_t bytes) {
  OpScope scope("copy_from_host", "bytes %zu", bytes);
  CRB_TRY(ensure_init(scope));
  if (bytes == 0) return CRB_OK;
  if (!dst || !host_src) return invalid(scope, "dst and host_src must not be null");
  Staging& s = staging();
  std::lock_guard<std::mutex> lock(s.mu);
  const char* src = static_cast<const char*>(host_src);
  char* d = static_cast<char*>(dst);
  for (size_t done = 0; done < bytes; s.next = (s.next + 1) % kUploadRing) {
    const int slot = s.next;
    if (!s.chunk[slot].get()) CRB_TRY(s.chunk[slot].allocate(kStagingChunk, scope));
    if (!s.free_again[slot]) CRB_CUDA_CHECK(scope, cudaEventCreateWithFlags(&s.free_again[slot], cudaEventDisableTiming));
    const size_t n = bytes - done < kStagingChunk ? bytes - done : kStagingChunk;
    // The previous DMA out of this chunk must finish before it is overwritten; see
    // Note [non-blocking uploads].
    CRB_CUDA_CHECK(scope, cudaEventSynchronize(s.free_again[slot]));
    std::memcpy(s.chunk[slot].get(), src + done, n);
    CRB_CUDA_CHECK(scope, cudaMemcpyAsync(d + done, s.chunk[slot].get(), n, cudaMemcpyHostToDevice, stream()));
    CRB_CUDA_CHECK(scope, cudaEventRecord(s.free_again[slot], stream()));
    done += n;
  }
  return CRB_OK;  // not waiting for the DMA: Note [non-blocking uploads]
}

crb_status copy_device(void* dst, const void* src, size_t bytes) {
  OpScope scope("copy_device", "bytes %zu", bytes);
  CRB_TRY(ensure_init(scope));
  if (bytes == 0) return CRB_OK;
  if (!dst || !src) return invalid(scope, "dst and src must not be null");
  CRB_CUDA_CHECK(scope, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream()));
  return CRB_OK;
}

crb_status read_begin(const void* src, size_t bytes, crb_read** out) {
  OpScope scope("read_begin", "bytes %zu", bytes);
  if (!out) return invalid(scope, "out must not be null");
  *out = nullptr;
  CRB_TRY(ensure_init(scope));
  if (bytes > 0 && !src) return invalid(scope, "src must not be null");
  auto* read = new crb_read();
  read->bytes = bytes;
  crb_status st = CRB_OK;
  auto bail = [&](crb_status s) {
    delete read;
    return s;
  };
  st = read->staging.allocate(bytes, scope);
  if (st != CRB_OK) return bail(st);
  cudaError_t err = cudaEventCreateWithFlags(&read->done, cudaEventDisableTiming);
  if (err == cudaSuccess && bytes > 0)
    err = cudaMemcpyAsync(read->staging.get(), src, bytes, cudaMemcpyDeviceToHost, stream());
  if (err == cudaSuccess) err = cudaEventRecord(read->done, stream());
  if (err != cudaSuccess) return bail(cuda_failure(scope, err, "read_begin copy", __FILE__, __LINE__));
  *out = read;
  return CRB_OK;
}

crb_status read_finish(crb_read* read, void* host_dst) {
  OpScope scope("read_finish");
  if (!read) return invalid(scope, "read must not be null");
  // Another thread may call this: bind it to the device first.
  crb_status st = ensure_init(scope);
  cudaError_t err = st == CRB_OK ? cudaEventSynchronize(read->done) : cudaSuccess;
  if (st == CRB_OK && err == cudaSuccess && host_dst && read->bytes > 0)
    std::memcpy(host_dst, read->staging.get(), read->bytes);
  delete read;  // freed on every path, as the ABI says
  if (st != CRB_OK) return st;
  if (err != cudaSuccess) return cuda_failure(scope, err, "cudaEventSynchronize(read)", __FILE__, __LINE__);
  return CRB_OK;
}

}  // namespace crb_cuda
