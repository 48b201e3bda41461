// Tensor: a typed handle on native storage (CPU memory or a CUDA device buffer), with the
// autograd fields PyTorch users expect. Storage is freed by dispose(); garbage collection is
// only a safety net.
import { native, type DType, type DeviceType, type HostArray, type NativeHandle } from './native';
import { BackendError, CudaError, CudnnError, DisposedTensorError, DistError, OutOfMemoryError } from './errors';
import { edgeTo, needsGrad, Node, runBackward, withFinalCallbacks } from './autograd';
import { capabilities, normalizeDevice, type Device } from './device';
import * as creation from './creation';
import type { CreateOptions, RandOptions, RandnOptions } from './creation';
import * as elementwise from './ops/elementwise';
import {
  checkBoolean,
  checkInteger,
  checkOneOf,
  checkOptions,
  invalidRange,
  invalidType,
  MAX_DIMS,
  shapeString,
} from './validate';

native.setErrorClasses({ BackendError, CudaError, CudnnError, OutOfMemoryError, DistError });

export type { DType, DeviceType } from './native';
export type { Device } from './device';
export type MemoryFormat = 'contiguous' | 'channelsLast';
export type TypedArray = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;
export type NestedArray = number | NestedArray[];

export const DTYPES: readonly DType[] = ['float32', 'float64', 'float16', 'bfloat16', 'int32', 'int64', 'uint8'];
const FLOAT_DTYPES: readonly DType[] = ['float32', 'float64', 'float16', 'bfloat16'];

export function isFloatDtype(dtype: DType): boolean {
  return FLOAT_DTYPES.includes(dtype);
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
    // .grad is updated in place later (accumulation, optimizers' unscale and clipping): it may
    // not share storage with anything else, such as the caller's backward(gradient)
    if (!native.exclusive(grad.handle)) {
      const own = grad.clone();
      grad.dispose();
      grad = own;
    }
    leaf.grad = grad;
  } else {
    native.axpby(leaf.grad.handle, grad.handle, 1, 1);
    grad.dispose();
  }
  const hooks = postAccumulateGradHooks.get(leaf);
  if (hooks) for (const hook of [...hooks]) hook(leaf);
}

/** A hook removed with `remove()` (PyTorch's RemovableHandle). */
export interface RemovableHandle {
  remove(): void;
}

const postAccumulateGradHooks = new WeakMap<Tensor, Set<(t: Tensor) => void>>();

// The sum of two incoming gradients, into a's storage when no one else holds it (the engine
// disposes both inputs after this), as PyTorch's InputBuffer accumulates in place.
function addTensors(a: Tensor, b: Tensor): Tensor {
  if (native.accumulate(a.handle, b.handle)) return Tensor._fromHandle(native.view(a.handle, a.shape.slice()));
  return Tensor._fromHandle(native.add(a.handle, b.handle));
}

export interface ToOptions {
  device?: Device;
  dtype?: DType;
  memoryFormat?: MemoryFormat;
}

export class Tensor {
  #handle: NativeHandle | null;

  // Only objects this class constructed pass `instanceof Tensor`: one made with
  // Object.create(Tensor.prototype) has no storage fields and would fail deep inside an op with an
  // engine error ("Cannot read private member") instead of naming the argument.
  static [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && #handle in value && Function.prototype[Symbol.hasInstance].call(this, value);
  }
  #shape: readonly number[];
  #dtype: DType;
  #device: DeviceType;
  /** Whether gradients are computed for this tensor (set on leaves; inherited by results). */
  requiresGrad = false;
  /** Accumulated d(loss)/d(this), for leaves, after backward(). */
  grad: Tensor | null = null;
  /** The node that made this tensor, or null for a leaf. */
  gradFn: Node | null = null;

  /**
   * Calls `hook(this)` each time backward has accumulated a gradient into this leaf's `.grad`
   * (PyTorch's register_post_accumulate_grad_hook); DistributedDataParallel starts its
   * all-reduces from here while the rest of backward still runs.
   */
  registerPostAccumulateGradHook(hook: (tensor: Tensor) => void): RemovableHandle {
    checkTensor('this', this);
    if (typeof hook !== 'function') throw invalidType('hook', 'a function', hook);
    if (this.gradFn !== null) throw new TypeError('registerPostAccumulateGradHook: expected a leaf tensor (no gradFn) for this');
    let hooks = postAccumulateGradHooks.get(this);
    if (!hooks) postAccumulateGradHooks.set(this, (hooks = new Set()));
    const own = (t: Tensor): void => hook(t);
    hooks.add(own);
    return { remove: () => void hooks.delete(own) };
  }

  // Creation, as static methods too (`Tensor.randn(shape, { device: 'cuda' })`).
  static tensor(data: TypedArray | NestedArray | readonly number[], shape?: readonly number[] | ArrayLike<number> | CreateOptions, options?: CreateOptions): Tensor {
    return creation.tensor(data, shape, options);
  }
  static zeros(shape: readonly number[], options?: CreateOptions): Tensor {
    return creation.zeros(shape, options);
  }
  static ones(shape: readonly number[], options?: CreateOptions): Tensor {
    return creation.ones(shape, options);
  }
  static full(shape: readonly number[], value: number, options?: CreateOptions): Tensor {
    return creation.full(shape, value, options);
  }
  static empty(shape: readonly number[], options?: CreateOptions): Tensor {
    return creation.empty(shape, options);
  }
  static randn(shape: readonly number[], options?: RandnOptions): Tensor {
    return creation.randn(shape, options);
  }
  static rand(shape: readonly number[], options?: RandOptions): Tensor {
    return creation.rand(shape, options);
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

  // Points this tensor at new storage; releases the old (set_ is the way in from outside).
  #replaceStorage(handle: NativeHandle): void {
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
    checkTensor('this', this);
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
      throw new TypeError('backward: expected a tensor that requires grad for this but received one that does not require grad and has no grad_fn');
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
      // the caller's storage itself when the format matches (never written: see accumulateGrad)
      seed = Tensor._fromHandle(gradient.memoryFormat === this.memoryFormat
        ? native.view(gradient.handle, gradient.shape.slice())
        : native.to(gradient.handle, this.device, this.dtype, this.memoryFormat === 'channelsLast'));
    }
    if (this.gradFn === null) {
      withFinalCallbacks(() => accumulateGrad(this, seed));
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
    const channelsLast = memoryFormat === 'channelsLast' && this.ndim === 4 && capabilities(device).channelsLast;
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

  /** A copy with its own storage, in the same memory format (differentiable). */
  clone(): Tensor {
    const out = native.empty(this.shape.slice(), this.dtype, this.device, this.memoryFormat === 'channelsLast');
    native.copyInto(out, this.handle);
    return Tensor._fromHandle(out, needsGrad(this) ? new ViewBackward(this, this.shape) : null);
  }

  /** Shares storage, cut from the graph, like `torch.Tensor.detach()`. */
  detach(): Tensor {
    return Tensor._fromHandle(native.view(this.handle, this.shape.slice()));
  }

  /**
   * Points this tensor at `source`'s storage, shared, as `torch.Tensor.set_` (or `param.data =
   * source`): shape, dtype, device and memory format follow it and the old storage is released.
   * The Tensor object stays the same, so whoever holds it (an optimizer, a module) sees the
   * change, as Module.to needs. Not recorded by autograd.
   */
  set_(source: Tensor): this {
    checkTensor('source', source);
    this.#replaceStorage(native.view(source.handle, source.shape.slice()));
    return this;
  }

  /**
   * Copies the values of `src` (same shape) into this tensor's storage, converting device, dtype
   * and memory format, as `torch.Tensor.copy_`. Not recorded by autograd (Module.loadStateDict
   * runs it under noGrad).
   */
  copy_(src: Tensor): this {
    checkTensor('src', src);
    if (!sameShape(src.shape, this.shape)) {
      throw invalidRange('src', `a tensor of shape ${shapeString(this.shape)}`, `shape ${shapeString(src.shape)}`);
    }
    if (src.device === this.device && src.dtype === this.dtype && src.memoryFormat === this.memoryFormat) {
      native.copyInto(this.handle, src.handle);
      return this;
    }
    const converted = native.to(src.handle, this.device, this.dtype, this.memoryFormat === 'channelsLast');
    try {
      native.copyInto(this.handle, converted);
    } finally {
      converted.dispose();
    }
    return this;
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
    return elementwise.add(this, other);
  }

  relu(): Tensor {
    return elementwise.relu(this);
  }

  sum(): Tensor {
    return elementwise.sum(this);
  }

  mean(): Tensor {
    return elementwise.mean(this);
  }

  toString(): string {
    const state = this.isDisposed ? ', disposed' : '';
    return `Tensor(${shapeString(this.shape)}, ${this.dtype}, ${this.device}${this.requiresGrad ? ', requiresGrad' : ''}${state})`;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}

// --- nodes of the Tensor's own ops (to, clone, reshape)

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

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function normalizeDim(name: string, dim: number, ndim: number): number {
  checkInteger(name, dim, -ndim, ndim - 1);
  return dim < 0 ? dim + ndim : dim;
}

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
