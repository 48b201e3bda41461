// Backends and devices: which devices this process can use and which one new tensors go to,
// what each backend can do (so code above the seam asks a capability, not a device name), what
// loaded and why CUDA did not, and the CUDA switches PyTorch users know
// (torch.backends.cudnn.benchmark and allow_tf32, torch.backends.cuda.matmul.allow_tf32).
import { native, type BackendCapabilities, type BackendInfo, type DeviceType, type MemoryStats } from './native';
import { checkBoolean, checkInteger, checkOneOf } from './validate';

export type { BackendInfo, MemoryStats } from './native';
export type Device = DeviceType | 'cuda:0';

// --- devices

let defaultDeviceOverride: DeviceType | null = null;
let cudaUsable: boolean | null = null;

/** Whether the CUDA backend loaded and sees a device. */
export function cudaIsAvailable(): boolean {
  if (cudaUsable === null) cudaUsable = native.backendInfo().cuda.available;
  return cudaUsable;
}

/** Devices usable in this process, CPU first. */
export function availableDevices(): DeviceType[] {
  return cudaIsAvailable() ? ['cpu', 'cuda'] : ['cpu'];
}

export function normalizeDevice(name: string, value: unknown): DeviceType {
  const device = checkOneOf(name, value, ['cpu', 'cuda', 'cuda:0'] as const);
  if (device === 'cpu') return 'cpu';
  if (!cudaIsAvailable()) {
    const info = native.backendInfo().cuda;
    // A bad argument for this process (RangeError), with why CUDA did not load.
    throw new RangeError(`${name}: CUDA is not available: ${info.reason ?? 'unknown reason'}${info.hint ? ` (${info.hint})` : ''}`);
  }
  return 'cuda';
}

/**
 * The device new tensors go to: CUDA when usable, else CPU. The environment variable
 * CUDNN_RESBLOCK_DEVICE (cpu|cuda) and setDefaultDevice() override it.
 */
export function defaultDevice(): DeviceType {
  if (defaultDeviceOverride) return defaultDeviceOverride;
  const env = process.env.CUDNN_RESBLOCK_DEVICE;
  if (env) return normalizeDevice('CUDNN_RESBLOCK_DEVICE', env);
  return cudaIsAvailable() ? 'cuda' : 'cpu';
}

export function setDefaultDevice(device: Device | null): void {
  defaultDeviceOverride = device === null ? null : normalizeDevice('device', device);
}

// --- what a backend can do

export type { BackendCapabilities } from './native';

const capabilityCache = new Map<DeviceType, BackendCapabilities>();

/**
 * What the backend behind `device` computes natively (channels-last layouts, max-pool indices,
 * the fused BN + add + ReLU, host-visible memory), as the addon reports it: code above the seam
 * asks this instead of comparing device names. Throws, as an op would, for an unavailable device.
 */
export function capabilities(device: Device): BackendCapabilities {
  let caps = capabilityCache.get(device as DeviceType);
  if (caps === undefined) {
    device = normalizeDevice('device', device);
    caps = native.capabilities(device);
    capabilityCache.set(device, caps);
  }
  return caps;
}

// --- backends

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
  /** Switches for matrix products, as torch.backends.cuda.matmul. */
  matmul: {
    /**
     * Let float32 matrix products (Linear) use TF32 tensor cores (default false, as
     * torch.backends.cuda.matmul.allow_tf32): off, Linear computes in full float32 even while
     * convolutions use TF32 (cudnn.setAllowTF32).
     */
    setAllowTF32(enabled: boolean): void {
      checkBoolean('enabled', enabled);
      if (cudaIsAvailable()) native.setOption('cuda', 'matmulAllowTF32', enabled ? 1 : 0);
    },
  },
};

/** Switches for the cuDNN backend, as torch.backends.cudnn. */
export const cudnn = {
  /** Pick convolution algorithms by measurement, once per shape (default false). */
  setBenchmark(enabled: boolean): void {
    checkBoolean('enabled', enabled);
    if (cudaIsAvailable()) native.setOption('cuda', 'cudnnBenchmark', enabled ? 1 : 0);
  },
  /**
   * Let float32 convolutions use TF32 tensor cores (default true, as in PyTorch). Linear has its
   * own switch, cuda.matmul.setAllowTF32 (default false).
   */
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
