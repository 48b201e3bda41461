// Module: the base of every layer, with PyTorch's names and semantics (parameters, buffers,
// children, train/eval, state dicts with dotted names, .to()). Layers register what they own
// explicitly instead of relying on attribute magic.
import { noGrad } from '../autograd';
import { normalizeDevice, type Device } from '../device';
import { checkTensor, isFloatDtype, sameShape, Tensor, type DType, type MemoryFormat, type ToOptions } from '../tensor';
import { checkBoolean, checkOneOf, checkOptions, invalidRange, invalidType, shapeString } from '../validate';

export type StateDict = Record<string, Tensor>;

export interface LoadStateDictOptions {
  /** every key must match exactly (default true) */
  strict?: boolean;
}

export interface LoadStateDictResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

export abstract class Module {
  #training = true;

  // As for Tensor: an object that only inherits from Module.prototype is not a Module.
  static [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && #training in value && Function.prototype[Symbol.hasInstance].call(this, value);
  }

  /** Whether the module is in training mode (the default), as `nn.Module.training`; a boolean
   * (assigning 'false' would otherwise train). */
  get training(): boolean {
    return this.#training;
  }

  set training(mode: boolean) {
    this.#training = checkBoolean('training', mode);
  }
  /**
   * Mixed precision set by `to({ dtype: 'bfloat16' | 'float16' })`: convolutions and linear
   * layers compute in this type on CUDA (float32 on the CPU) while parameters stay float32.
   */
  computeDtype: 'bfloat16' | 'float16' | null = null;
  readonly #parameters = new Map<string, Tensor | null>();
  readonly #buffers = new Map<string, Tensor | null>();
  readonly #children = new Map<string, Module>();

  abstract forward(x: Tensor): Tensor;

  /** Registers a parameter (made a leaf that requires grad) under `name`; returns it. */
  protected registerParameter(name: string, value: Tensor | null): Tensor {
    if (value) value.requiresGrad_(true);
    this.#parameters.set(name, value);
    return value as Tensor;
  }

  protected registerBuffer(name: string, value: Tensor | null): Tensor {
    this.#buffers.set(name, value);
    return value as Tensor;
  }

  protected registerModule<M extends Module>(name: string, module: M): M {
    if (!(module instanceof Module)) throw invalidType(name, 'a Module', module);
    this.#children.set(name, module);
    return module;
  }

  /** Extra entries of the state dict that are not tensors kept here (BatchNorm's counter). */
  protected extraState(): [string, Tensor][] {
    return [];
  }

  /** @internal loads what extraState() produced; `value` has been validated */
  protected loadExtraState(_name: string, _value: Tensor): void {}

  /** @internal names handled by extraState, with their shapes, dtypes and an optional check of a
   * value's contents (run before anything is loaded, so a bad value changes nothing) */
  protected extraStateSpec(): [string, number[], DType, ((value: Tensor) => void)?][] {
    return [];
  }

  *namedChildren(): IterableIterator<[string, Module]> {
    yield* this.#children.entries();
  }

  *children(): IterableIterator<Module> {
    yield* this.#children.values();
  }

  *namedModules(prefix = ''): IterableIterator<[string, Module]> {
    if (typeof prefix !== 'string') throw invalidType('prefix', 'a string', prefix);
    yield [prefix, this];
    for (const [name, child] of this.#children) yield* child.namedModules(prefix ? `${prefix}.${name}` : name);
  }

  *modules(): IterableIterator<Module> {
    for (const [, m] of this.namedModules()) yield m;
  }

  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [path, m] of this.namedModules(prefix)) {
      for (const [name, p] of m.#parameters) if (p) out.push([path ? `${path}.${name}` : name, p]);
    }
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, p]) => p);
  }

  namedBuffers(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [path, m] of this.namedModules(prefix)) {
      for (const [name, b] of m.#buffers) if (b) out.push([path ? `${path}.${name}` : name, b]);
    }
    return out;
  }

  buffers(): Tensor[] {
    return this.namedBuffers().map(([, b]) => b);
  }

  /** Number of parameter elements. */
  numParameters(): number {
    return this.parameters().reduce((n, p) => n + p.numel, 0);
  }

  /**
   * Sets requiresGrad on every parameter of this module and its children, like
   * `nn.Module.requires_grad_`: `model.requiresGrad_(false); model.fc.requiresGrad_(true)`
   * freezes all but the head. Gradients already accumulated are kept.
   */
  requiresGrad_(requiresGrad = true): this {
    checkBoolean('requiresGrad', requiresGrad);
    for (const p of this.parameters()) p.requiresGrad_(requiresGrad);
    return this;
  }

  train(mode = true): this {
    checkBoolean('mode', mode);
    for (const m of this.modules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  zeroGrad(): void {
    for (const p of this.parameters()) p.zeroGrad();
  }

  /**
   * The state in PyTorch's order and names (`conv1.weight`, `bn1.running_mean`, ...).
   * Parameters and buffers are the live tensors (do not dispose them); extra entries such as
   * `num_batches_tracked` are fresh int64 tensors.
   */
  stateDict(): StateDict {
    const out: StateDict = {};
    for (const [path, m] of this.namedModules()) {
      const prefix = path ? `${path}.` : '';
      for (const [name, p] of m.#parameters) if (p) out[prefix + name] = p;
      for (const [name, b] of m.#buffers) if (b) out[prefix + name] = b;
      for (const [name, t] of m.extraState()) out[prefix + name] = t;
    }
    return out;
  }

  /**
   * Copies values from `stateDict` into this module's parameters and buffers. Everything is
   * validated first (names, shapes, dtypes), so a failed load changes nothing.
   */
  loadStateDict(stateDict: StateDict, options: LoadStateDictOptions = {}): LoadStateDictResult {
    if (stateDict === null || typeof stateDict !== 'object' || Object.prototype.toString.call(stateDict) !== '[object Object]' ||
        stateDict instanceof Tensor) {
      throw invalidType('stateDict', 'an object mapping names to Tensors', stateDict);
    }
    const strict = checkBoolean('options.strict', checkOptions<LoadStateDictOptions>('options', options, ['strict']).strict ?? true);
    type Target = { key: string; shape: readonly number[]; dtype: DType; assign: (v: Tensor) => void; check?: (v: Tensor) => void };
    const targets: Target[] = [];
    for (const [path, m] of this.namedModules()) {
      const prefix = path ? `${path}.` : '';
      for (const map of [m.#parameters, m.#buffers]) {
        for (const [name, t] of map) {
          if (!t) continue;
          targets.push({ key: prefix + name, shape: t.shape, dtype: t.dtype, assign: (v) => t.copy_(v) });
        }
      }
      for (const [name, shape, dtype, check] of m.extraStateSpec()) {
        targets.push({ key: prefix + name, shape, dtype, assign: (v) => m.loadExtraState(name, v), check });
      }
    }
    const expected = new Set(targets.map((t) => t.key));
    const missingKeys = targets.map((t) => t.key).filter((k) => !Object.hasOwn(stateDict, k));
    const unexpectedKeys = Object.keys(stateDict).filter((k) => !expected.has(k));
    if (strict && missingKeys.length) {
      throw new RangeError(`Expected stateDict to have the key${missingKeys.length > 1 ? 's' : ''} ${missingKeys.map((k) => JSON.stringify(k)).join(', ')} but ${missingKeys.length > 1 ? 'they are' : 'it is'} missing`);
    }
    if (strict && unexpectedKeys.length) {
      throw new RangeError(`Expected stateDict to have only this module's keys but received unexpected key${unexpectedKeys.length > 1 ? 's' : ''} ${unexpectedKeys.map((k) => JSON.stringify(k)).join(', ')}`);
    }
    const present = targets.filter((t) => Object.hasOwn(stateDict, t.key));
    for (const t of present) {
      const v = checkTensor(`stateDict[${JSON.stringify(t.key)}]`, stateDict[t.key]);
      if (!sameShape(v.shape, t.shape)) {
        throw invalidRange(`stateDict[${JSON.stringify(t.key)}]`, `shape ${shapeString(t.shape)}`, `shape ${shapeString(v.shape)}`);
      }
      const floatTarget = isFloatDtype(t.dtype);
      const floatValue = isFloatDtype(v.dtype);
      if (floatTarget !== floatValue) {
        throw invalidType(`stateDict[${JSON.stringify(t.key)}]`, `a ${t.dtype} tensor`, `a ${v.dtype} tensor`);
      }
      if (t.check) {
        try {
          t.check(v);
        } catch (e) {
          if (e instanceof RangeError) throw new RangeError(`stateDict[${JSON.stringify(t.key)}]: ${e.message}`);
          throw e;
        }
      }
    }
    noGrad(() => {
      for (const t of present) t.assign(stateDict[t.key]);
    });
    return { missingKeys, unexpectedKeys };
  }

  /**
   * Moves/casts parameters and buffers in place (same Tensor objects, so optimizers keep
   * working), like `nn.Module.to`. `dtype` 'float32'/'float64' casts the floating-point tensors;
   * 'bfloat16'/'float16' selects mixed precision instead (see computeDtype): parameters and BN
   * statistics stay float32 masters. `memoryFormat: 'channelsLast'` stores 4-D tensors NHWC (both
   * backends compute in it natively).
   */
  to(target: Device | ToOptions): this {
    const options: ToOptions = typeof target === 'string' ? { device: target } : checkOptions<ToOptions>('to', target, ['device', 'dtype', 'memoryFormat']);
    const device = options.device === undefined ? undefined : normalizeDevice('device', options.device);
    let dtype = options.dtype === undefined ? undefined : checkOneOf('dtype', options.dtype, ['float32', 'float64', 'bfloat16', 'float16'] as const);
    if (dtype === 'bfloat16' || dtype === 'float16') {
      for (const m of this.modules()) m.computeDtype = dtype;
      dtype = 'float32';
    } else if (dtype !== undefined) {
      for (const m of this.modules()) m.computeDtype = null;
    }
    const memoryFormat: MemoryFormat | undefined = options.memoryFormat === undefined
      ? undefined : checkOneOf('memoryFormat', options.memoryFormat, ['contiguous', 'channelsLast'] as const);
    noGrad(() => {
      for (const t of [...this.parameters(), ...this.buffers()]) {
        const isFloat = isFloatDtype(t.dtype);
        const moved = t.to({
          device: device ?? t.device,
          dtype: isFloat && dtype ? dtype : t.dtype,
          memoryFormat: memoryFormat ?? t.memoryFormat,
        });
        if (moved !== t) {
          t.set_(moved);
          moved.dispose();
          t.zeroGrad();
        }
      }
    });
    return this;
  }

  /** Frees every parameter, buffer and gradient; the module is unusable afterwards. */
  dispose(): void {
    for (const t of [...this.parameters(), ...this.buffers()]) {
      t.zeroGrad();
      t.dispose();
    }
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /** One-line description of this module's own settings (as `extra_repr`). */
  protected extraRepr(): string {
    return '';
  }

  toString(): string {
    const name = this.constructor.name;
    const kids = [...this.#children];
    if (!kids.length) return `${name}(${this.extraRepr()})`;
    const lines = kids.map(([n, m]) => `  (${n}): ${m.toString().split('\n').join('\n  ')}`);
    return `${name}(\n${lines.join('\n')}\n)`;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}

/**
 * A layer's weight shape must fit one tensor (at most 2^53 elements, each dimension < 2^31);
 * merely too big for memory is the allocator's OutOfMemoryError.
 */
export function checkWeightSize(layer: string, shape: readonly number[]): void {
  const numel = shape.reduce((a, b) => a * b, 1);
  if (numel > Number.MAX_SAFE_INTEGER || shape.some((d) => d > 2 ** 31 - 1)) {
    throw invalidRange(`${layer}: weight shape`, 'at most 2^53 elements, each dimension below 2^31', shapeString(shape));
  }
}

/** Checks that `x` is a live 4-D tensor with `channels` channels, for a layer named `layer`. */
export function checkImageBatch(layer: string, value: unknown, channels: number): Tensor {
  const x = checkTensor(`${layer}: x`, value);
  if (x.ndim !== 4 || x.shape[1] !== channels) {
    throw invalidRange(`${layer}: x`, `a 4-D tensor (N, ${channels}, H, W)`, `shape ${shapeString(x.shape)}`);
  }
  return x;
}

