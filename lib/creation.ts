// Creating tensors, like torch.tensor / zeros / ones / full / empty / randn / rand (also reachable
// as Tensor's static methods), and seeding the generator behind the random ones.
import { native, type DType, type DeviceType, type NativeHandle } from './native';
import { defaultDevice, normalizeDevice, type Device } from './device';
import { checkTensor, DTYPES, isFloatDtype, Tensor, type NestedArray, type TypedArray } from './tensor';
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


export interface CreateOptions {
  dtype?: DType;
  device?: Device;
  requiresGrad?: boolean;
}

export type RandnOptions = CreateOptions & { mean?: number; std?: number };
export type RandOptions = CreateOptions & { low?: number; high?: number };

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
export function randn(shape: readonly number[], options?: RandnOptions): Tensor {
  const own = checkOptions<CreateOptions & { mean?: number; std?: number }>('options', options, [...CREATE_KEYS, 'mean', 'std']);
  const o = resolveCreate(own, 'float32', ['mean', 'std']);
  if (!isFloatDtype(o.dtype)) throw invalidType('options.dtype', 'a floating-point dtype', o.dtype);
  const mean = checkFinite('options.mean', own.mean ?? 0);
  const std = checkFinite('options.std', own.std ?? 1, 0);
  return finish(native.randn(checkShape('shape', shape).slice(), o.dtype, o.device, mean, std), o);
}

const FLOAT_MAX: Partial<Record<DType, number>> = {
  float64: Number.MAX_VALUE,
  float32: 3.4028234663852886e38,
  bfloat16: 3.3895313892515355e38,
  float16: 65504,
};

/** Uniform samples in [low, high) (default [0, 1)) from the seedable generator. */
export function rand(shape: readonly number[], options?: RandOptions): Tensor {
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

