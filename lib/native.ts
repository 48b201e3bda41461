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
  /** has the fused BN + ReLU (batchNormReluForwardTrain may still return null for a dtype) */
  fusedBnRelu: boolean;
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

/** distInfo(): whether libcrb_gloo.so (native/gloo/) loaded, and why not. */
export interface DistInfo {
  available: boolean;
  /** why not, with what to do about it */
  reason?: string;
  /** the library loaded, or tried */
  library?: string;
  /** gloo's version, e.g. "0.5.0" */
  gloo?: string;
}

export type DistStore =
  /** rank 0 serves a key-value store at host:port (on every interface); every rank connects,
   * retrying until the timeout. One store per process group: give each group its own port. */
  | { kind: 'tcp'; host: string; port: number }
  /** gloo's FileStore in a directory every rank sees (made when missing); use a fresh
   * directory or a new prefix per run, since keys left by an earlier run are read back. */
  | { kind: 'file'; path: string };

export interface DistInitOptions {
  rank: number;
  worldSize: number;
  store: DistStore;
  /** rendezvous and every collective of the group */
  timeoutMs: number;
  /** the group's keys in the store (default "crb") */
  prefix?: string;
}

/** A process group over gloo's TCP transport (device: GLOO_SOCKET_IFNAME's interface, else
 * loopback when the TCP store's host is loopback, else this host's name). Destroyed by
 * distDestroy, or, as a safety net, when it and all its works are garbage collected. */
export interface ProcessGroupHandle {
  readonly rank: number;
  readonly worldSize: number;
}

/** One enqueued collective. Its tensors are kept alive until it completes. */
export type WorkHandle = object;

export type ReduceOp = 'sum' | 'avg' | 'max' | 'min' | 'product';

/** ncclInfo(): whether libcrb_nccl.so (native/nccl/) and its libnccl.so.2 loaded, and why not.
 * Says nothing about CUDA: that is backendInfo()'s. */
export interface NcclInfo {
  available: boolean;
  /** why not, with what to do about it */
  reason?: string;
  /** libcrb_nccl.so, loaded or tried */
  library?: string;
  /** the loaded libnccl.so.2's version, e.g. "2.30.7" */
  nccl?: string;
  /** the NCCL headers' version it was built with */
  ncclCompiled?: string;
  /** the libnccl.so.2 the dynamic loader picked */
  ncclLibrary?: string;
}

export interface NcclInitOptions {
  /** rank 0's ncclUniqueId(), the same 128 bytes on every rank */
  id: Uint8Array;
  rank: number;
  worldSize: number;
  /** must be the device the CUDA backend runs on (it picks one at its first use: $CRB_CUDA_DEVICE) */
  device: number;
  /** init and every collective; past it the communicator is aborted */
  timeoutMs: number;
}

/** An NCCL communicator on the CUDA backend's device, queuing on its stream. Destroyed by
 * ncclDestroy, or, as a safety net, when it is garbage collected. */
export interface NcclCommHandle {
  readonly rank: number;
  readonly worldSize: number;
  readonly device: number;
}

/** One enqueued NCCL collective: a CUDA event recorded after it on the backend's stream. */
export type NcclWorkHandle = object;

export interface NativeAddon {
  /** Error classes native code throws; called once at load. */
  setErrorClasses(classes: {
    BackendError: Function; CudaError: Function; CudnnError: Function; OutOfMemoryError: Function;
    DistError?: Function;
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
  empty(shape: number[], dtype: DType, device: DeviceType, channelsLast?: boolean): NativeHandle;
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
  /** dst += src in place if dst alone holds its storage; false (nothing done) otherwise. */
  accumulate(dst: NativeHandle, src: NativeHandle): boolean;
  /** Whether h alone holds its storage (no view, saved tensor or pending read shares it). */
  exclusive(h: NativeHandle): boolean;
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

  /** y = relu(bn(x)), training mode; null when the backend does not fuse it (run batchNorm and
   * relu then). Backward recomputes the ReLU mask from x, so y is not passed back. */
  batchNormReluForwardTrain(x: NativeHandle, weight: NativeHandle, bias: NativeHandle,
                            runningMean: NativeHandle, runningVar: NativeHandle, momentum: number, eps: number):
    { y: NativeHandle; saveMean: NativeHandle; saveInvstd: NativeHandle } | null;
  batchNormReluBackwardTrain(x: NativeHandle, dy: NativeHandle, weight: NativeHandle, bias: NativeHandle,
                             saveMean: NativeHandle, saveInvstd: NativeHandle, eps: number):
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

  // --- data parallel over gloo (native/binding/dist.cc, libcrb_gloo.so). Collectives are CPU
  // tensors only (a CUDA tensor is a TypeError: NCCL is for CUDA tensors), in place, of dtype
  // float32, float64, int32, int64 or uint8. They run on the group's worker thread in the order
  // they were enqueued; every rank must enqueue the same collectives in the same order. A
  // failure is a DistError naming the op, the rank and the peer when gloo names one; after it
  // the group is unusable.
  /** Loads libcrb_gloo.so once; never throws. */
  distInfo(): DistInfo;
  /** Blocks until every rank joined or the timeout ("rank 1 of 2 did not join within 30 s at
   * 127.0.0.1:29500"); throws DistError (op "rendezvous"). */
  distInit(o: DistInitOptions): ProcessGroupHandle;
  /** avg = sum / worldSize, float dtypes only. */
  distAllReduce(pg: ProcessGroupHandle, t: NativeHandle, op: ReduceOp): WorkHandle;
  /** every tensor (one dtype) in place, packed into one all-reduce (a DDP bucket) */
  distAllReduceCoalesced(pg: ProcessGroupHandle, tensors: NativeHandle[], op: ReduceOp): WorkHandle;
  /** t on every rank becomes root's t. */
  distBroadcast(pg: ProcessGroupHandle, t: NativeHandle, root: number): WorkHandle;
  /** out: input's shape with dim 0 worldSize times larger ([worldSize] for a scalar), same
   * dtype and layout; rank r's input lands at rows [r * input.shape[0], (r + 1) * input.shape[0]). */
  distAllGather(pg: ProcessGroupHandle, out: NativeHandle, input: NativeHandle): WorkHandle;
  distBarrier(pg: ProcessGroupHandle): WorkHandle;
  /** Settles on the main thread when the work is done; rejects with its DistError. */
  distWait(work: WorkHandle): Promise<void>;
  /** Blocks until the work is done; throws its DistError. */
  distWaitSync(work: WorkHandle): void;
  distIsCompleted(work: WorkHandle): boolean;
  /** Idempotent: queued works fail ("process group destroyed"), a running one is waited for (at
   * most the timeout), the worker thread is joined and the connections closed. */
  distDestroy(pg: ProcessGroupHandle): void;

  // --- collectives on CUDA tensors over NCCL (native/binding/dist_nccl.cc, libcrb_nccl.so), in
  // place, any dtype, queued on the CUDA backend's stream in call order (every rank must issue
  // the same ones in the same order). A failure, NCCL's asynchronous error or the timeout aborts
  // the communicator and is a DistError naming the op and the rank (code: NCCL's or CUDA's
  // name, or "timeout"); after it every call fails naming the first failure.
  /** Loads libcrb_nccl.so once; never throws. */
  ncclInfo(): NcclInfo;
  /** Rank 0's id for ncclInit (ncclGetUniqueId); throws DistError. */
  ncclUniqueId(): Uint8Array;
  /** Blocks until every rank joined or the timeout; throws DistError (op "init"), or an Error
   * when CUDA is unavailable or runs on another device. */
  ncclInit(o: NcclInitOptions): NcclCommHandle;
  ncclAllReduce(comm: NcclCommHandle, t: NativeHandle, op: ReduceOp): NcclWorkHandle;
  /** every tensor (one dtype) in place, in one ncclGroupStart/End (a DDP bucket) */
  ncclAllReduceCoalesced(comm: NcclCommHandle, tensors: NativeHandle[], op: ReduceOp): NcclWorkHandle;
  ncclBroadcast(comm: NcclCommHandle, t: NativeHandle, root: number): NcclWorkHandle;
  /** as distAllGather */
  ncclAllGather(comm: NcclCommHandle, out: NativeHandle, input: NativeHandle): NcclWorkHandle;
  /** Settles on the main thread once the event completed (a pool thread polls it); rejects with
   * its DistError. */
  ncclWait(work: NcclWorkHandle): Promise<void>;
  /** Blocks until the event completed; throws its DistError. */
  ncclWaitSync(work: NcclWorkHandle): void;
  /** One poll; true also when it failed (a wait then says how). */
  ncclIsCompleted(work: NcclWorkHandle): boolean;
  /** Idempotent: flushes what is queued, then destroys (aborts after a failure or past the timeout). */
  ncclDestroy(comm: NcclCommHandle): void;
}

// node-gyp-build finds build/Release or prebuilds/<platform>-<arch>/ under the package root.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const load = require('node-gyp-build') as (dir: string) => unknown;
export const native = load(path.join(__dirname, '..')) as NativeAddon;
