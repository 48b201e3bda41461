// Tensor: a typed handle on native storage (CPU memory or a CUDA device buffer), with the
// autograd fields PyTorch users expect. Storage is freed by dispose(); garbage collection is
// only a safety net.
import { native, type DType, type DeviceType, type HostArray, type NativeHandle } from './native';
import { BackendError, CudaError, CudnnError, DisposedTensorError, OutOfMemoryError } from './errors';
import { edgeTo, needsGrad, Node, runBackward } from './autograd';
import {
  checkBoolean,
  checkFinite,
  checkInteger,
  checkNumber,
  checkOneOf,
  checkOptions,
  checkShape,
  invalidRange,
  invalidType,
  isNumericTypedArray,
  MAX_DIMS,
  shapeString,
} from './validate';

native.setErrorClasses({ BackendError, CudaError, CudnnError, OutOfMemoryError });

export type { DType, DeviceType } from './native';
export type Device = DeviceType | 'cuda:0';
export type MemoryFormat = 'contiguous' | 'channelsLast';
export type TypedArray = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;
export type NestedArray = number | NestedArray[];

export const DTYPES: readonly DType[] = ['float32', 'float64', 'float16', 'bfloat16', 'int32', 'int64', 'uint8'];
const FLOAT_DTYPES: readonly DType[] = ['float32', 'float64', 'float16', 'bfloat16'];

export function isFloatDtype(dtype: DType): boolean {
  return FLOAT_DTYPES.includes(dtype);
}

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

// --- leaves' gradient accumulation, used by the autograd engine

function accumulateGrad(leaf: Tensor, grad: Tensor): void {
  if (leaf.isDisposed) {
    grad.dispose();
    throw disposedError(leaf, 'backward: a leaf tensor that requires grad', 'was disposed before backward reached it');
  }
  if (grad.memoryFormat !== leaf.memoryFormat) {
    // .grad always has the leaf's memory format, so in-place updates line up element by element.
    const aligned = Tensor._fromHandle(native.to(grad.handle, leaf.device, leaf.dtype, leaf.memoryFormat === 'channelsLast'));
    grad.dispose();
    grad = aligned;
  }
  if (leaf.grad === null || leaf.grad.isDisposed) {
    leaf.grad = grad;
  } else {
    native.axpby(leaf.grad.handle, grad.handle, 1, 1);
    grad.dispose();
  }
}

function addTensors(a: Tensor, b: Tensor): Tensor {
  return Tensor._fromHandle(native.add(a.handle, b.handle));
}

export interface ToOptions {
  device?: Device;
  dtype?: DType;
  memoryFormat?: MemoryFormat;
}

export class Tensor {
  #handle: NativeHandle | null;
  #shape: readonly number[];
  #dtype: DType;
  #device: DeviceType;
  /** Whether gradients are computed for this tensor (set on leaves; inherited by results). */
  requiresGrad = false;
  /** Accumulated d(loss)/d(this), for leaves, after backward(). */
  grad: Tensor | null = null;
  /** The node that made this tensor, or null for a leaf. */
  gradFn: Node | null = null;

  // Creation, as static methods too (`Tensor.randn(shape, { device: 'cuda' })`).
  static tensor(data: TypedArray | NestedArray | readonly number[], shape?: readonly number[] | ArrayLike<number> | CreateOptions, options?: CreateOptions): Tensor {
    return tensor(data, shape, options);
  }
  static zeros(shape: readonly number[], options?: CreateOptions): Tensor {
    return zeros(shape, options);
  }
  static ones(shape: readonly number[], options?: CreateOptions): Tensor {
    return ones(shape, options);
  }
  static full(shape: readonly number[], value: number, options?: CreateOptions): Tensor {
    return full(shape, value, options);
  }
  static empty(shape: readonly number[], options?: CreateOptions): Tensor {
    return empty(shape, options);
  }
  static randn(shape: readonly number[], options?: CreateOptions & { mean?: number; std?: number }): Tensor {
    return randn(shape, options);
  }
  static rand(shape: readonly number[], options?: CreateOptions & { low?: number; high?: number }): Tensor {
    return rand(shape, options);
  }

  /** @internal use the creation functions (tensor, zeros, randn, ...) */
  constructor(handle: NativeHandle) {
    this.#handle = handle;
    this.#shape = Object.freeze(handle.shape.slice());
    this.#dtype = handle.dtype;
    this.#device = handle.device;
  }

  get shape(): readonly number[] {
    return this.#shape;
  }

  get dtype(): DType {
    return this.#dtype;
  }

  get device(): DeviceType {
    return this.#device;
  }

  /** @internal Points this tensor at new storage (Module.to, loadStateDict); frees the old. */
  _setHandle(handle: NativeHandle): void {
    this.#handle?.dispose();
    this.#handle = handle;
    this.#shape = Object.freeze(handle.shape.slice());
    this.#dtype = handle.dtype;
    this.#device = handle.device;
  }

  /** @internal */
  static _fromHandle(handle: NativeHandle, gradFn: Node | null = null): Tensor {
    const t = new Tensor(handle);
    if (gradFn) {
      gradFn.ref();
      t.gradFn = gradFn;
      t.requiresGrad = true;
    }
    return t;
  }

  /** @internal the native handle; throws if disposed */
  get handle(): NativeHandle {
    if (this.#handle === null) throw disposedError(this, null);
    return this.#handle;
  }

  get ndim(): number {
    return this.shape.length;
  }

  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  get isLeaf(): boolean {
    return this.gradFn === null;
  }

  get isDisposed(): boolean {
    return this.#handle === null;
  }

  get memoryFormat(): MemoryFormat {
    return this.#handle?.channelsLast ? 'channelsLast' : 'contiguous';
  }

  /** Frees the storage (unless views share it) and the autograd graph behind it; idempotent. */
  dispose(): void {
    if (this.#handle === null) return;
    if (DEBUG_DISPOSE) disposeSites.set(this, disposeSite());
    this.#handle.dispose();
    this.#handle = null;
    const fn = this.gradFn;
    this.gradFn = null;
    fn?.unref();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /** Sets requiresGrad on a leaf, like `torch.Tensor.requires_grad_()`. */
  requiresGrad_(requiresGrad = true): this {
    checkBoolean('requiresGrad', requiresGrad);
    if (!this.isLeaf && !requiresGrad) {
      throw new Error('requiresGrad_: only leaf tensors can stop requiring grad; use detach()');
    }
    if (requiresGrad && !isFloatDtype(this.dtype)) {
      throw invalidType('requiresGrad_', 'a floating-point tensor (only they can require grad)', this.dtype);
    }
    this.requiresGrad = requiresGrad;
    return this;
  }

  /** Resets .grad (frees it). */
  zeroGrad(): void {
    this.grad?.dispose();
    this.grad = null;
  }

  /**
   * Computes gradients of this tensor w.r.t. the leaves of its graph. A scalar needs no
   * `gradient`; a non-scalar needs d(loss)/d(this) of the same shape, as in PyTorch.
   */
  backward(gradient?: Tensor, options: { retainGraph?: boolean } = {}): void {
    checkTensor('this', this);
    const o = checkOptions<{ retainGraph?: boolean }>('backward: options', options, ['retainGraph']);
    const retainGraph = o.retainGraph === undefined ? false : checkBoolean('backward: options.retainGraph', o.retainGraph);
    if (!this.requiresGrad) {
      throw new Error('backward: this tensor does not require grad and has no grad_fn');
    }
    let seed: Tensor;
    if (gradient === undefined) {
      if (this.numel !== 1) {
        throw invalidType('gradient', `a tensor of shape ${shapeString(this.shape)} (backward of a non-scalar needs one)`, gradient);
      }
      seed = Tensor._fromHandle(native.full(this.shape.slice(), this.dtype, this.device, 1));
    } else {
      if (gradient !== null && typeof gradient === 'object' && !(gradient instanceof Tensor) && !ArrayBuffer.isView(gradient)) {
        throw invalidType('gradient', 'a Tensor (options come second: backward(undefined, { retainGraph }))', gradient);
      }
      checkTensor('gradient', gradient);
      if (!sameShape(gradient.shape, this.shape) || gradient.dtype !== this.dtype || gradient.device !== this.device) {
        throw invalidRange(
          'gradient',
          `a ${this.dtype} tensor of shape ${shapeString(this.shape)} on ${this.device}`,
          `${gradient.dtype} ${shapeString(gradient.shape)} on ${gradient.device}`,
        );
      }
      seed = Tensor._fromHandle(native.to(gradient.handle, this.device, this.dtype, this.memoryFormat === 'channelsLast'));
    }
    if (this.gradFn === null) {
      accumulateGrad(this, seed);
      return;
    }
    runBackward(this.gradFn, seed, accumulateGrad, addTensors, retainGraph);
  }

  /** Reads the values; never blocks the event loop. */
  toArray(): Promise<HostArray> {
    return native.read(this.handle);
  }

  /** Reads the values synchronously (waits for the device). */
  toArraySync(): HostArray {
    return native.readSync(this.handle);
  }

  /** Nested JS arrays, like `tensor.tolist()`. */
  async tolist(): Promise<NestedArray> {
    return nest(await this.toArray(), this.shape);
  }

  tolistSync(): NestedArray {
    return nest(this.toArraySync(), this.shape);
  }

  /** The value of a one-element tensor. */
  async item(): Promise<number> {
    this.checkOneElement();
    return Number((await this.toArray())[0]);
  }

  itemSync(): number {
    this.checkOneElement();
    return Number(this.toArraySync()[0]);
  }

  private checkOneElement(): void {
    if (this.numel !== 1) throw invalidRange('item', 'a tensor with one element', `shape ${shapeString(this.shape)}`);
  }

  /** Copies to another device, dtype or memory format (differentiable). Returns `this` when nothing changes. */
  to(target: Device | DType | ToOptions): Tensor {
    let options: ToOptions;
    if (typeof target === 'string') {
      options = (DTYPES as readonly string[]).includes(target) ? { dtype: target as DType } : { device: target as Device };
    } else {
      options = checkOptions<ToOptions>('to', target, ['device', 'dtype', 'memoryFormat']);
    }
    const device = options.device === undefined ? this.device : normalizeDevice('device', options.device);
    const dtype = options.dtype === undefined ? this.dtype : checkOneOf('dtype', options.dtype, DTYPES);
    const memoryFormat = options.memoryFormat === undefined
      ? this.memoryFormat
      : checkOneOf('memoryFormat', options.memoryFormat, ['contiguous', 'channelsLast'] as const);
    const channelsLast = memoryFormat === 'channelsLast' && this.ndim === 4 && device !== 'cpu';
    if (device === this.device && dtype === this.dtype && channelsLast === (this.memoryFormat === 'channelsLast')) {
      return this;
    }
    const out = native.to(this.handle, device, dtype, channelsLast);
    if (needsGrad(this) && isFloatDtype(dtype)) {
      return Tensor._fromHandle(out, new ToBackward(this));
    }
    return Tensor._fromHandle(out);
  }

  cpu(): Tensor {
    return this.to('cpu');
  }

  cuda(): Tensor {
    return this.to('cuda');
  }

  /** A copy with its own storage (differentiable). */
  clone(): Tensor {
    const out = Tensor._fromHandle(native.empty(this.shape.slice(), this.dtype, this.device));
    native.copyInto(out.handle, this.handle);
    if (needsGrad(this)) {
      const fn = new ViewBackward(this, this.shape);
      fn.ref();
      out.gradFn = fn;
      out.requiresGrad = true;
    }
    return out;
  }

  /** Shares storage, cut from the graph, like `torch.Tensor.detach()`. */
  detach(): Tensor {
    return Tensor._fromHandle(native.view(this.handle, this.shape.slice()));
  }

  /** Same storage, new shape (one dimension may be -1). Differentiable. */
  reshape(shape: readonly number[]): Tensor {
    const resolved = resolveShape('shape', shape, this.numel);
    const out = native.view(this.handle, resolved);
    return Tensor._fromHandle(out, needsGrad(this) ? new ViewBackward(this, this.shape) : null);
  }

  view(shape: readonly number[]): Tensor {
    return this.reshape(shape);
  }

  /** Flattens dimensions startDim..endDim into one, like `torch.flatten`. */
  flatten(startDim = 0, endDim = -1): Tensor {
    const n = this.ndim;
    if (n === 0) return this.reshape([1]);
    const start = normalizeDim('startDim', startDim, n);
    const end = normalizeDim('endDim', endDim, n);
    if (start > end) throw invalidRange('startDim', `a dimension <= endDim (${end})`, startDim);
    const merged = this.shape.slice(start, end + 1).reduce((a, b) => a * b, 1);
    return this.reshape([...this.shape.slice(0, start), merged, ...this.shape.slice(end + 1)]);
  }

  add(other: Tensor): Tensor {
    return binaryAdd(this, other);
  }

  relu(): Tensor {
    return reluOp(this);
  }

  sum(): Tensor {
    return sumOp(this);
  }

  mean(): Tensor {
    return meanOp(this);
  }

  toString(): string {
    const state = this.isDisposed ? ', disposed' : '';
    return `Tensor(${shapeString(this.shape)}, ${this.dtype}, ${this.device}${this.requiresGrad ? ', requiresGrad' : ''}${state})`;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}

// --- nodes for the ops defined here

class ToBackward extends Node {
  readonly name = 'ToBackward';
  private readonly device: DeviceType;
  private readonly dtype: DType;
  private readonly channelsLast: boolean;
  constructor(input: Tensor) {
    super();
    this.device = input.device;
    this.dtype = input.dtype;
    // The gradient goes back in the input's device, dtype and memory format.
    this.channelsLast = input.memoryFormat === 'channelsLast';
    this.edges = [edgeTo(input)];
  }
  apply(g: Tensor): (Tensor | null)[] {
    return [Tensor._fromHandle(native.to(g.handle, this.device, this.dtype, this.channelsLast))];
  }
}

class ViewBackward extends Node {
  readonly name = 'ViewBackward';
  private readonly inputShape: number[];
  constructor(input: Tensor, inputShape: readonly number[]) {
    super();
    this.inputShape = inputShape.slice();
    this.edges = [edgeTo(input)];
  }
  apply(g: Tensor): (Tensor | null)[] {
    // The engine disposes g after apply, so give the input its own handle on the storage.
    return [Tensor._fromHandle(native.view(g.handle, this.inputShape))];
  }
}

class AddBackward extends Node {
  readonly name = 'AddBackward';
  constructor(a: Tensor, b: Tensor) {
    super();
    this.edges = [edgeTo(a), edgeTo(b)];
  }
  apply(g: Tensor): (Tensor | null)[] {
    return this.edges.map((e) => (e ? Tensor._fromHandle(native.view(g.handle, g.shape.slice())) : null));
  }
}

class ReluBackward extends Node {
  readonly name = 'ReluBackward';
  constructor(input: Tensor, output: NativeHandle, shape: readonly number[]) {
    super();
    this.edges = [edgeTo(input)];
    this.saved = [Tensor._fromHandle(native.view(output, shape.slice()))];
  }
  apply(g: Tensor): (Tensor | null)[] {
    return [Tensor._fromHandle(native.reluBackward(g.handle, this.saved[0].handle))];
  }
}

class SumBackward extends Node {
  readonly name = 'SumBackward';
  constructor(input: Tensor, private readonly inputShape: readonly number[], private readonly scale: number) {
    super();
    this.edges = [edgeTo(input)];
  }
  apply(g: Tensor): (Tensor | null)[] {
    // d(sum)/dx = 1 everywhere, times the incoming scalar (and 1/n for mean).
    const value = g.itemSync() * this.scale;
    return [Tensor._fromHandle(native.full(this.inputShape.slice(), g.dtype, g.device, value))];
  }
}

// --- elementwise ops with autograd (the rest live in functional.ts)

export function binaryAdd(a: Tensor, b: Tensor): Tensor {
  checkTensor('a', a);
  checkTensor('b', b);
  if (a.dtype !== b.dtype && isFloatDtype(a.dtype) && isFloatDtype(b.dtype) && a.device === b.device) {
    // Mixed precision (autocast): promote to the wider type, as PyTorch's type promotion does.
    const wide: DType = a.dtype === 'float64' || b.dtype === 'float64' ? 'float64' : 'float32';
    const ca = a.dtype === wide ? a : a.to({ dtype: wide });
    const cb = b.dtype === wide ? b : b.to({ dtype: wide });
    try {
      return binaryAdd(ca, cb);
    } finally {
      if (ca !== a) ca.dispose();
      if (cb !== b) cb.dispose();
    }
  }
  checkSameDeviceDtype('b', a, b);
  if (a.memoryFormat !== b.memoryFormat && sameShape(a.shape, b.shape)) {
    const moved = b.to({ memoryFormat: a.memoryFormat });
    try {
      return binaryAdd(a, moved);
    } finally {
      moved.dispose();
    }
  }
  if (!sameShape(a.shape, b.shape)) {
    throw invalidRange('b', `a tensor of shape ${shapeString(a.shape)} (same as a; broadcasting is not supported)`, `shape ${shapeString(b.shape)}`);
  }
  const out = native.add(a.handle, b.handle);
  return Tensor._fromHandle(out, needsGrad(a, b) ? new AddBackward(a, b) : null);
}

export function reluOp(x: Tensor): Tensor {
  checkTensor('x', x);
  checkFloat('x', x);
  const out = native.reluForward(x.handle);
  return Tensor._fromHandle(out, needsGrad(x) ? new ReluBackward(x, out, x.shape) : null);
}

export function sumOp(x: Tensor): Tensor {
  checkTensor('x', x);
  checkFloat('x', x);
  const out = native.sum(x.handle);
  return Tensor._fromHandle(out, needsGrad(x) ? new SumBackward(x, x.shape, 1) : null);
}

export function meanOp(x: Tensor): Tensor {
  checkTensor('x', x);
  checkFloat('x', x);
  if (x.numel === 0) throw invalidRange('x', 'a non-empty tensor', 'an empty tensor');
  const total = native.sum(x.handle);
  const out = scaledHandle(total, 1 / x.numel);
  total.dispose();
  return Tensor._fromHandle(out, needsGrad(x) ? new SumBackward(x, x.shape, 1 / x.numel) : null);
}

/** @internal a new handle holding factor * h (no autograd). */
export function scaledHandle(h: NativeHandle, factor: number): NativeHandle {
  // Zero-filled first so beta = 0 never multiplies uninitialized memory (0 * NaN).
  const out = native.full(h.shape.slice(), h.dtype, h.device, 0);
  native.axpby(out, h, factor, 0);
  return out;
}

// --- checks shared by ops

export function checkTensor(name: string, value: unknown): Tensor {
  if (!(value instanceof Tensor)) throw invalidType(name, 'a Tensor', value);
  if (value.isDisposed) throw disposedError(value, name);
  return value;
}

// Note [where a tensor was disposed]: recording a stack at every dispose() costs about 11 µs
// per tensor against 0.6 µs without (measured on the CPU backend, 20,000 one-element tensors),
// on the hot path (a training step disposes hundreds), so it is opt-in:
// CUDNN_RESBLOCK_DEBUG_DISPOSE=1 records it and the error then says where.
const DEBUG_DISPOSE = process.env.CUDNN_RESBLOCK_DEBUG_DISPOSE === '1';
const disposeSites = new WeakMap<Tensor, string>();

function disposeSite(): string {
  const stack = new Error().stack ?? '';
  // Drop the "Error" line and the frames of dispose itself.
  return stack.split('\n').slice(3).join('\n');
}

/**
 * The error for a disposed tensor used as `name` (null: the argument is not known here), saying
 * which tensor it was and, when recorded, where it was disposed.
 */
export function disposedError(t: Tensor, name: string | null, what = 'was disposed'): DisposedTensorError {
  const tensorText = `Tensor ${shapeString(t.shape)} ${t.dtype} on ${t.device}`;
  const head = name === null
    ? `${tensorText} ${what}`
    : what === 'was disposed'
      ? `Expected a live Tensor for ${name} but received a disposed ${tensorText}`
      : `${name} (${tensorText}) ${what}`;
  const site = disposeSites.get(t);
  const where = site
    ? `; it was disposed at\n${site}`
    : ' (set CUDNN_RESBLOCK_DEBUG_DISPOSE=1 to record where tensors are disposed)';
  return new DisposedTensorError(head + where);
}

export function checkFloat(name: string, t: Tensor): void {
  if (!isFloatDtype(t.dtype)) throw invalidType(name, 'a floating-point tensor', `a ${t.dtype} tensor`);
}

export function checkSameDeviceDtype(name: string, reference: Tensor, t: Tensor): void {
  if (t.device !== reference.device) {
    throw invalidRange(name, `a tensor on ${reference.device} (same device as the input)`, `a tensor on ${t.device}`);
  }
  if (t.dtype !== reference.dtype) {
    throw invalidType(name, `a ${reference.dtype} tensor (same dtype as the input)`, `a ${t.dtype} tensor`);
  }
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function normalizeDim(name: string, dim: number, ndim: number): number {
  checkInteger(name, dim, -ndim, ndim - 1);
  return dim < 0 ? dim + ndim : dim;
}

const FLOAT_MAX: Partial<Record<DType, number>> = {
  float64: Number.MAX_VALUE,
  float32: 3.4028234663852886e38,
  bfloat16: 3.3895313892515355e38,
  float16: 65504,
};

function resolveShape(name: string, shape: readonly number[], numel: number): number[] {
  if (!Array.isArray(shape)) throw invalidType(name, 'an array of integers', shape);
  // The length first: a huge sparse array must not be walked.
  if (shape.length > MAX_DIMS) throw invalidRange(name, `an array of at most ${MAX_DIMS} integers`, `an array of length ${shape.length}`);
  for (let i = 0; i < shape.length; i++) if (!(i in shape)) throw invalidType(`${name}[${i}]`, 'an integer', 'a hole (sparse array)');
  let inferred = -1;
  let known = 1;
  shape.forEach((d, i) => {
    if (d === -1 && inferred < 0) {
      inferred = i;
      return;
    }
    checkInteger(`${name}[${i}]`, d, 0);
    known *= d;
  });
  const out = shape.slice();
  if (inferred >= 0) {
    if (known === 0 || numel % known !== 0) {
      throw invalidRange(name, `a shape compatible with ${numel} elements`, shape as number[]);
    }
    out[inferred] = numel / known;
  } else if (known !== numel) {
    throw invalidRange(name, `a shape with ${numel} elements`, `${shapeString(shape)} (${known} elements)`);
  }
  return out;
}

function nest(flat: HostArray, shape: readonly number[]): NestedArray {
  const values = Array.from(flat as ArrayLike<number | bigint>, Number);
  if (shape.length === 0) return values[0];
  const build = (dim: number, offset: number): NestedArray[] => {
    const stride = shape.slice(dim + 1).reduce((a, b) => a * b, 1);
    const out: NestedArray[] = [];
    for (let i = 0; i < shape[dim]; i++) {
      out.push(dim === shape.length - 1 ? values[offset + i] : build(dim + 1, offset + i * stride));
    }
    return out;
  };
  return build(0, 0);
}

// --- creation

export interface CreateOptions {
  dtype?: DType;
  device?: Device;
  requiresGrad?: boolean;
}

interface ResolvedCreate {
  dtype: DType;
  device: DeviceType;
  requiresGrad: boolean;
}

const CREATE_KEYS = ['dtype', 'device', 'requiresGrad'] as const;

function resolveCreate(options: unknown, fallbackDtype: DType = 'float32', extraKeys: readonly string[] = []): ResolvedCreate {
  const o: CreateOptions = checkOptions('options', options, [...CREATE_KEYS, ...extraKeys] as (keyof CreateOptions)[]);
  const dtype = o.dtype === undefined ? fallbackDtype : checkOneOf('options.dtype', o.dtype, DTYPES);
  const device = o.device === undefined ? defaultDevice() : normalizeDevice('options.device', o.device);
  const requiresGrad = o.requiresGrad === undefined ? false : checkBoolean('options.requiresGrad', o.requiresGrad);
  if (requiresGrad && !isFloatDtype(dtype)) {
    throw invalidType('options.requiresGrad', 'false for a non-floating-point dtype', `true with dtype ${dtype}`);
  }
  return { dtype, device, requiresGrad };
}

function finish(handle: NativeHandle, o: ResolvedCreate): Tensor {
  const t = Tensor._fromHandle(handle);
  t.requiresGrad = o.requiresGrad;
  return t;
}

function inferDtype(data: unknown): DType {
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof Uint8Array) return 'uint8';
  return 'float32';
}

/** The most elements nested arrays may hold; more data comes as a typed array with a shape. */
const MAX_NESTED_ELEMENTS = 2 ** 31 - 1;

/**
 * Nested arrays -> values and shape. The shape comes from the first-element chain, checked (at
 * most MAX_DIMS deep, no cycle, no hole, a bounded element count) before anything is walked, so
 * a self-containing, very deep or huge sparse array fails at once; the walk is then at most
 * MAX_DIMS deep and stops at the first hole or ragged row.
 */
function flattenNested(name: string, data: unknown): { values: number[]; shape: number[] } {
  const shape: number[] = [];
  const chain = new Set<unknown>();
  let level: unknown = data;
  let where = '';
  let numel = 1;
  while (Array.isArray(level)) {
    if (chain.has(level)) {
      throw invalidRange(`${name}${where}`, 'nested arrays of numbers', 'an array that contains itself');
    }
    if (shape.length === MAX_DIMS) {
      throw invalidRange(name, `nested arrays at most ${MAX_DIMS} deep (a tensor has at most ${MAX_DIMS} dimensions)`,
        `arrays nested deeper than ${MAX_DIMS}`);
    }
    chain.add(level);
    shape.push(level.length);
    numel *= level.length;
    if (level.length === 0) break;
    if (!(0 in level)) throw invalidType(`${name}${where}[0]`, 'a number or an array', 'a hole (sparse array)');
    level = level[0];
    where += '[0]';
  }
  // Any zero dimension makes the tensor empty; otherwise the product must stay bounded.
  if (!shape.includes(0) && numel > MAX_NESTED_ELEMENTS) {
    throw invalidRange(name, `nested arrays of at most ${MAX_NESTED_ELEMENTS} elements (pass a typed array and a shape for more)`,
      `arrays of shape ${shapeString(shape)}`);
  }
  const values: number[] = [];
  const walk = (node: unknown, dim: number, at: string): void => {
    if (dim === shape.length) {
      if (typeof node !== 'number' && typeof node !== 'boolean') throw invalidType(`${name}${at}`, 'a number', node);
      values.push(Number(node));
      return;
    }
    if (!Array.isArray(node) || node.length !== shape[dim]) {
      throw invalidRange(`${name}${at}`, `an array of length ${shape[dim]} (nested arrays must be rectangular)`, node);
    }
    for (let i = 0; i < node.length; i++) {
      if (!(i in node)) throw invalidType(`${name}${at}[${i}]`, dim + 1 === shape.length ? 'a number' : 'an array', 'a hole (sparse array)');
      walk(node[i], dim + 1, `${at}[${i}]`);
    }
  };
  walk(data, 0, '');
  return { values, shape };
}

/**
 * Creates a tensor from a typed array (with `shape`), nested arrays or a number, like
 * `torch.tensor` / `tf.tensor`. The dtype follows the typed array (Float64Array -> float64, ...)
 * unless given; plain numbers give float32.
 */
export function tensor(data: TypedArray | NestedArray | readonly number[], shape?: readonly number[] | ArrayLike<number> | CreateOptions, options?: CreateOptions): Tensor {
  // A typed array of numbers is a shape (Int32Array.of(2, 3)), never options.
  if (shape !== undefined && !Array.isArray(shape) && !isNumericTypedArray(shape)) {
    if (options !== undefined) throw invalidType('shape', 'an array of non-negative integers', shape);
    options = shape as CreateOptions;
    shape = undefined;
  }
  const o = resolveCreate(options, inferDtype(data));
  let flat: TypedArray;
  let dims: number[];
  if (ArrayBuffer.isView(data)) {
    if (!(data instanceof Float32Array || data instanceof Float64Array || data instanceof Int32Array ||
          data instanceof BigInt64Array || data instanceof Uint8Array)) {
      throw invalidType('data', 'a Float32Array, Float64Array, Int32Array, BigInt64Array or Uint8Array', data);
    }
    dims = shape === undefined ? [data.length] : checkShape('shape', shape);
    const numel = dims.reduce((a, b) => a * b, 1);
    if (numel !== data.length) {
      throw invalidRange('data', `a typed array of length ${numel} (shape ${shapeString(dims)})`, `length ${data.length}`);
    }
    flat = data;
  } else if (typeof data === 'number' || Array.isArray(data)) {
    const nested = flattenNested('data', data);
    dims = shape === undefined ? nested.shape : checkShape('shape', shape);
    const numel = dims.reduce((a, b) => a * b, 1);
    if (numel !== nested.values.length) {
      throw invalidRange('shape', `a shape with ${nested.values.length} elements (the data's)`, shapeString(dims));
    }
    flat = hostArrayFor('data', o.dtype, nested.values);
  } else {
    throw invalidType('data', 'a typed array, a (nested) array of numbers or a number', data);
  }
  return finish(native.fromArray(flat, dims, o.dtype, o.device), o);
}

// Numbers into an integer dtype as torch.tensor does: fractions truncate toward zero; NaN, ±Inf
// and values outside the type raise ("value cannot be converted to type uint8 without
// overflow"), never wrap. int64 from numbers is exact only up to 2^53.
const INT_RANGE: Partial<Record<DType, [number, number]>> = {
  int32: [-(2 ** 31), 2 ** 31 - 1],
  uint8: [0, 255],
  int64: [-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
};

function toIntegers(name: string, dtype: DType, values: number[]): number[] {
  const [min, max] = INT_RANGE[dtype]!;
  const out = new Array<number>(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    const t = Math.trunc(v);
    if (!(t >= min && t <= max)) {
      const why = Number.isNaN(v) ? 'NaN cannot be converted to an integer'
        : dtype === 'int64' && Number.isFinite(v)
          ? 'beyond 2^53 a number is not an exact integer (pass a BigInt64Array for int64)'
          : `value cannot be converted to type ${dtype} without overflow`;
      throw invalidRange(`${name} element ${i}`, `a number in [${min}, ${max}] for dtype ${dtype} (${why})`, v);
    }
    out[i] = t + 0; // -0 -> 0
  }
  return out;
}

function hostArrayFor(name: string, dtype: DType, values: number[]): TypedArray {
  switch (dtype) {
    case 'float64': return Float64Array.from(values);
    case 'int32': return Int32Array.from(toIntegers(name, dtype, values));
    case 'int64': return BigInt64Array.from(toIntegers(name, dtype, values), (v) => BigInt(v));
    case 'uint8': return Uint8Array.from(toIntegers(name, dtype, values));
    default: return Float32Array.from(values);
  }
}

export function empty(shape: readonly number[], options?: CreateOptions): Tensor {
  const o = resolveCreate(options);
  return finish(native.empty(checkShape('shape', shape).slice(), o.dtype, o.device), o);
}

export function full(shape: readonly number[], value: number, options?: CreateOptions): Tensor {
  const o = resolveCreate(options);
  checkNumber('value', value, -Infinity, Infinity, 'a number');
  return finish(native.full(checkShape('shape', shape).slice(), o.dtype, o.device, value), o);
}

export function zeros(shape: readonly number[], options?: CreateOptions): Tensor {
  return full(shape, 0, options);
}

export function ones(shape: readonly number[], options?: CreateOptions): Tensor {
  return full(shape, 1, options);
}

export function zerosLike(t: Tensor, options: CreateOptions = {}): Tensor {
  checkTensor('t', t);
  return zeros(t.shape, { dtype: t.dtype, device: t.device, ...checkOptions<CreateOptions>('options', options, CREATE_KEYS) });
}

export function onesLike(t: Tensor, options: CreateOptions = {}): Tensor {
  checkTensor('t', t);
  return ones(t.shape, { dtype: t.dtype, device: t.device, ...checkOptions<CreateOptions>('options', options, CREATE_KEYS) });
}

/** Standard normal samples (times std, plus mean) from the seedable generator. */
export function randn(shape: readonly number[], options?: CreateOptions & { mean?: number; std?: number }): Tensor {
  const own = checkOptions<CreateOptions & { mean?: number; std?: number }>('options', options, [...CREATE_KEYS, 'mean', 'std']);
  const o = resolveCreate(own, 'float32', ['mean', 'std']);
  if (!isFloatDtype(o.dtype)) throw invalidType('options.dtype', 'a floating-point dtype', o.dtype);
  const mean = checkFinite('options.mean', own.mean ?? 0);
  const std = checkFinite('options.std', own.std ?? 1, 0);
  return finish(native.randn(checkShape('shape', shape).slice(), o.dtype, o.device, mean, std), o);
}

/** Uniform samples in [low, high) (default [0, 1)) from the seedable generator. */
export function rand(shape: readonly number[], options?: CreateOptions & { low?: number; high?: number }): Tensor {
  const own = checkOptions<CreateOptions & { low?: number; high?: number }>('options', options, [...CREATE_KEYS, 'low', 'high']);
  const o = resolveCreate(own, 'float32', ['low', 'high']);
  if (!isFloatDtype(o.dtype)) throw invalidType('options.dtype', 'a floating-point dtype', o.dtype);
  const low = checkFinite('options.low', own.low ?? 0);
  const high = checkFinite('options.high', own.high ?? 1);
  if (!(high >= low)) throw invalidRange('options.high', `a number >= low (${low})`, high);
  // As torch's uniform_: the limits and the width high - low must fit the dtype, or samples
  // come out ±Infinity.
  const limit = FLOAT_MAX[o.dtype]!;
  for (const [key, v] of [['low', low], ['high', high]] as const) {
    if (Math.abs(v) > limit) throw invalidRange(`options.${key}`, `a number within ±${limit} (the range of ${o.dtype})`, v);
  }
  if (!(high - low <= limit)) {
    throw invalidRange('options.high', `a number with high - low at most ${limit} (the range of ${o.dtype}; low is ${low})`, high);
  }
  return finish(native.rand(checkShape('shape', shape).slice(), o.dtype, o.device, low, high), o);
}

/** Seeds the generator behind randn/rand and the default initializers. */
export function manualSeed(seed: number): void {
  checkInteger('seed', seed, 0, 2 ** 53 - 1);
  native.manualSeed(seed);
}

