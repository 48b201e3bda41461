// The addon's JavaScript surface. Everything above this file talks to native code only through
// `native`, so this interface is the contract between lib/ and native/binding/.
//
// Handles own a reference to native storage. The TypeScript layer validates every argument
// before calling in; the addon re-checks cheaply and throws TypeError/RangeError (bad input) or
// the typed errors of lib/errors.ts (backend failures), never aborts.
import * as path from 'node:path';

export type DType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int32' | 'int64' | 'uint8';
export type DeviceType = 'cpu' | 'cuda';
export type MemoryFormat = 'contiguous' | 'channelsLast';

/** Host typed array a handle reads back into: float16/bfloat16 are widened to Float32Array. */
export type HostArray = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;

export interface NativeHandle {
  readonly shape: number[];
  readonly dtype: DType;
  readonly device: DeviceType;
  /** channels-last storage (NHWC memory order) of a 4-D tensor */
  readonly channelsLast: boolean;
  readonly numel: number;
  readonly nbytes: number;
  readonly disposed: boolean;
  /** Drops this handle's reference to the storage; idempotent. Views keep storage alive. */
  dispose(): void;
}

export interface CudaDeviceInfo {
  index: number;
  name: string;
  computeCapability: string;  // "9.0"
  totalMemory: number;
  freeMemory: number;
  multiprocessors: number;
  driverVersion: string;      // "13.0"
  runtimeVersion: string;
  cudnnVersion: string;       // "9.24.0"
  cudnnCompiledVersion: string;
}

/** What a backend computes natively (native/backend/backend_api.h crb_capabilities): ask this
 * instead of comparing device names. */
export interface BackendCapabilities {
  /** computes in channels-last (NHWC) memory order; without it `to(..., channelsLast)` keeps NCHW */
  channelsLast: boolean;
  /** maxPool2dForward returns the argmax indices (CPU and CUDA; else null: backward recomputes them) */
  maxPoolKeepsIndices: boolean;
  /** has the fused BN + add + ReLU (batchNormAddRelu* may still return null for a layout/dtype) */
  fusedBnAddRelu: boolean;
  /** tensors live in host memory */
  hostVisibleMemory: boolean;
}

export interface BackendInfo {
  cpu: { available: true; threads: number; simd: string; abiVersion: number; capabilities: BackendCapabilities };
  cuda: {
    available: boolean;
    reason?: string;             // why not, when unavailable
    hint?: string;               // what to do about it
    library?: string;            // backend library loaded or tried
    attempts: { what: string; result: string }[];
    devices: CudaDeviceInfo[];
    abiVersion?: number;
    capabilities?: BackendCapabilities;  // when available
  };
}

export interface MemoryStats {
  allocated: number;
  reserved: number;
  peakAllocated: number;
  allocCount: number;
  cacheHits: number;
}

export interface SgdOptions {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
  maximize: boolean;
}

export type Pair = [number, number];

export interface NativeAddon {
  /** Error classes native code throws; called once at load. */
  setErrorClasses(classes: {
    BackendError: Function; CudaError: Function; CudnnError: Function; OutOfMemoryError: Function;
  }): void;

  backendInfo(): BackendInfo;
  /** Throws, as every op does, when the device's backend is not available. */
  capabilities(device: DeviceType): BackendCapabilities;
  /** name: allowTF32 (float32 convolutions may use TF32, default 1) | matmulAllowTF32 (float32
   * linear may use TF32, default 0) | cudnnBenchmark | deterministic | numThreads */
  setOption(device: DeviceType, name: string, value: number): void;
  memoryStats(device: DeviceType): MemoryStats;
  emptyCache(device: DeviceType): void;
  synchronize(device: DeviceType): void;
  /** Seeds the host generator that randn/rand draw from (same stream for every device). */
  manualSeed(seed: number): void;

  // --- creation
  empty(shape: number[], dtype: DType, device: DeviceType): NativeHandle;
  full(shape: number[], dtype: DType, device: DeviceType, value: number): NativeHandle;
  /** Copies `data` (length = product of shape; element type matching dtype, or Float32Array/
   * Float64Array for any float dtype) into a new handle. */
  fromArray(data: HostArray | Float32Array | Float64Array, shape: number[], dtype: DType, device: DeviceType): NativeHandle;
  randn(shape: number[], dtype: DType, device: DeviceType, mean: number, std: number): NativeHandle;
  rand(shape: number[], dtype: DType, device: DeviceType, low: number, high: number): NativeHandle;

  // --- reading back
  readSync(h: NativeHandle): HostArray;
  /** Never blocks the event loop: the copy is started now and awaited on a worker thread. */
  read(h: NativeHandle): Promise<HostArray>;

  // --- moving, casting, views
  /** New storage on `device` with `dtype` (and memory format), values copied/converted. */
  to(h: NativeHandle, device: DeviceType, dtype: DType, channelsLast: boolean): NativeHandle;
  /** A new handle sharing storage with a different shape of the same numel (contiguous only). */
  view(h: NativeHandle, shape: number[]): NativeHandle;
  /** In place: dst = src (same shape, dtype, device). */
  copyInto(dst: NativeHandle, src: NativeHandle): void;
  /** In place: y = alpha * x + beta * y. */
  axpby(y: NativeHandle, x: NativeHandle, alpha: number, beta: number): void;
  fill(h: NativeHandle, value: number): void;

  // --- ops; outputs are new handles
  add(a: NativeHandle, b: NativeHandle): NativeHandle;
  sum(x: NativeHandle): NativeHandle;  // shape []
  reluForward(x: NativeHandle): NativeHandle;
  reluBackward(dy: NativeHandle, y: NativeHandle): NativeHandle;

  conv2dForward(x: NativeHandle, w: NativeHandle, b: NativeHandle | null,
                stride: Pair, padding: Pair, dilation: Pair, groups: number): NativeHandle;
  conv2dBackward(x: NativeHandle, w: NativeHandle, dy: NativeHandle,
                 stride: Pair, padding: Pair, dilation: Pair, groups: number,
                 needDx: boolean, needDw: boolean, needDb: boolean):
    { dx: NativeHandle | null; dw: NativeHandle | null; db: NativeHandle | null };

  /** Errors name batchNorm's arguments (weight, bias, ...). running* may be null (not tracked);
   * they are updated in place. */
  batchNormForwardTrain(x: NativeHandle, weight: NativeHandle, bias: NativeHandle,
                        runningMean: NativeHandle | null, runningVar: NativeHandle | null,
                        momentum: number, eps: number):
    { y: NativeHandle; saveMean: NativeHandle; saveInvstd: NativeHandle };
  batchNormForwardEval(x: NativeHandle, weight: NativeHandle, bias: NativeHandle,
                       runningMean: NativeHandle, runningVar: NativeHandle, eps: number): NativeHandle;
  batchNormBackwardTrain(x: NativeHandle, dy: NativeHandle, weight: NativeHandle,
                         saveMean: NativeHandle, saveInvstd: NativeHandle, eps: number):
    { dx: NativeHandle; dgamma: NativeHandle; dbeta: NativeHandle };
  batchNormBackwardEval(x: NativeHandle, dy: NativeHandle, weight: NativeHandle,
                        runningMean: NativeHandle, runningVar: NativeHandle, eps: number):
    { dx: NativeHandle; dgamma: NativeHandle; dbeta: NativeHandle };

  /** The fused residual tail y = relu(bn(x) + z), training mode; null when the backend cannot
   * fuse this layout/dtype (run the ops one by one then). `reserve` goes to the backward. */
  batchNormAddReluForwardTrain(x: NativeHandle, z: NativeHandle, weight: NativeHandle, bias: NativeHandle,
                               runningMean: NativeHandle, runningVar: NativeHandle, momentum: number, eps: number):
    { y: NativeHandle; saveMean: NativeHandle; saveInvstd: NativeHandle; reserve: NativeHandle } | null;
  batchNormAddReluBackwardTrain(x: NativeHandle, y: NativeHandle, dy: NativeHandle, weight: NativeHandle, bias: NativeHandle,
                                saveMean: NativeHandle, saveInvstd: NativeHandle, reserve: NativeHandle, eps: number):
    { dx: NativeHandle; dz: NativeHandle; dgamma: NativeHandle; dbeta: NativeHandle };

  /** indices (int32) is null on backends that recompute the argmax in backward. */
  maxPool2dForward(x: NativeHandle, kernelSize: Pair, stride: Pair, padding: Pair):
    { y: NativeHandle; indices: NativeHandle | null };
  maxPool2dBackward(x: NativeHandle, y: NativeHandle, dy: NativeHandle, indices: NativeHandle | null,
                    kernelSize: Pair, stride: Pair, padding: Pair): NativeHandle;
  adaptiveAvgPool2dForward(x: NativeHandle, outputSize: Pair): NativeHandle;
  adaptiveAvgPool2dBackward(dy: NativeHandle, inputShape: number[]): NativeHandle;

  linearForward(x: NativeHandle, w: NativeHandle, b: NativeHandle | null): NativeHandle;
  linearBackward(x: NativeHandle, w: NativeHandle, dy: NativeHandle,
                 needDx: boolean, needDw: boolean, needDb: boolean):
    { dx: NativeHandle | null; dw: NativeHandle | null; db: NativeHandle | null };

  /** labels: int32 (n). loss: shape [] mean over the batch; probs: (n, classes). */
  crossEntropyForward(logits: NativeHandle, labels: NativeHandle): { loss: NativeHandle; probs: NativeHandle };
  crossEntropyBackward(probs: NativeHandle, labels: NativeHandle, dloss: NativeHandle): NativeHandle;
  /** int32 handle of shape [] holding the number of correct argmax predictions. */
  accuracyCount(logits: NativeHandle, labels: NativeHandle): NativeHandle;

  /** One fused SGD update over all params (in place). bufs[i] null when momentum is 0. */
  sgdStep(params: NativeHandle[], grads: NativeHandle[], bufs: (NativeHandle | null)[],
          initBuf: boolean[], opts: SgdOptions): void;

  /** uint8 (n, c, h, w) -> dtype (n, c, outH, outW): bilinear resize, then (v/255 - mean)/std. */
  imagesU8ToFloat(images: NativeHandle, size: Pair, mean: number, std: number, dtype: DType): NativeHandle;
}

// node-gyp-build finds build/Release or prebuilds/<platform>-<arch>/ under the package root.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const load = require('node-gyp-build') as (dir: string) => unknown;
export const native = load(path.join(__dirname, '..')) as NativeAddon;
