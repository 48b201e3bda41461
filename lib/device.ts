// Backends and devices: what loaded, why CUDA did not, and the CUDA switches PyTorch users know
// (torch.backends.cudnn.benchmark, allow_tf32).
import { native, type BackendInfo, type DeviceType, type MemoryStats } from './native';
import { checkBoolean, checkInteger } from './validate';
import { cudaIsAvailable, normalizeDevice } from './tensor';

export type { BackendInfo, MemoryStats } from './native';

/** The backends in this process: CPU always; CUDA with its devices, or why it is not usable. */
export function backendInfo(): BackendInfo {
  return native.backendInfo();
}

function cudaOnly(): DeviceType {
  return normalizeDevice('device', 'cuda');
}

export const cuda = {
  isAvailable: cudaIsAvailable,
  deviceCount(): number {
    return cudaIsAvailable() ? native.backendInfo().cuda.devices.length : 0;
  },
  /** Bytes in live tensors, held by the caching allocator, and the peak. */
  memoryStats(): MemoryStats {
    return native.memoryStats(cudaOnly());
  },
  /** Releases cached, unused device memory. */
  emptyCache(): void {
    if (cudaIsAvailable()) native.emptyCache('cuda');
  },
  /** Waits for all queued GPU work. */
  synchronize(): void {
    if (cudaIsAvailable()) native.synchronize('cuda');
  },
};

/** Switches for the cuDNN backend, as torch.backends.cudnn. */
export const cudnn = {
  /** Pick convolution algorithms by measurement, once per shape (default false). */
  setBenchmark(enabled: boolean): void {
    checkBoolean('enabled', enabled);
    if (cudaIsAvailable()) native.setOption('cuda', 'cudnnBenchmark', enabled ? 1 : 0);
  },
  /** Let float32 convolutions use TF32 tensor cores (default true, as in PyTorch). */
  setAllowTF32(enabled: boolean): void {
    checkBoolean('enabled', enabled);
    if (cudaIsAvailable()) native.setOption('cuda', 'allowTF32', enabled ? 1 : 0);
  },
  /** Only deterministic algorithms (default false). */
  setDeterministic(enabled: boolean): void {
    checkBoolean('enabled', enabled);
    if (cudaIsAvailable()) native.setOption('cuda', 'deterministic', enabled ? 1 : 0);
  },
};

/** Worker threads of the CPU backend (default: the cores, or CRB_NUM_THREADS). */
export function setNumThreads(threads: number): void {
  native.setOption('cpu', 'numThreads', checkInteger('threads', threads, 1, 1024));
}

export function getNumThreads(): number {
  return native.backendInfo().cpu.threads;
}

/** Memory of the CPU backend's live tensors. */
export function cpuMemoryStats(): MemoryStats {
  return native.memoryStats('cpu');
}
