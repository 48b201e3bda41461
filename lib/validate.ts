// Argument checks with messages that name the argument, what was expected and what was received.

/** The most dimensions a tensor has (as the addon's shape check). */
export const MAX_DIMS = 16;

/**
 * A short description of a received value for an error message. Never recursive beyond two
 * levels and never longer than a few elements, so a huge, deep or self-containing array costs
 * nothing to describe.
 */
export function describe(value: unknown): string {
  return describeAt(value, 0);
}

function describeAt(value: unknown, depth: number): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (Array.isArray(value)) {
    if (depth >= 2) return value.length ? '[…]' : '[]';
    const n = Math.min(value.length, 8);
    const parts: string[] = [];
    for (let i = 0; i < n; i++) parts.push(i in value ? describeAt(value[i], depth + 1) : '<hole>');
    const more = value.length > 8 ? `, … (length ${value.length})` : '';
    return depth === 0 ? `array [${parts.join(', ')}${more}]` : `[${parts.join(', ')}${more}]`;
  }
  if (typeof value === 'number') return `${value}`;
  // Strings are descriptions written by the caller ("shape [2, 3]"); user strings are quoted first.
  // Inside an array a string is the user's, so it is quoted here.
  if (typeof value === 'string') return depth === 0 ? value : quote(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'boolean') return `${value}`;
  if (typeof value === 'symbol') return 'a symbol';
  if (typeof value === 'function') return 'a function';
  if (ArrayBuffer.isView(value)) {
    const name = value.constructor?.name ?? 'ArrayBufferView';
    return 'length' in value ? `${name} of length ${(value as unknown as { length: number }).length}` : `a ${name}`;
  }
  if (typeof value === 'object') {
    let name: unknown;
    try {
      name = (value as object).constructor?.name;
    } catch {
      name = undefined;
    }
    return typeof name === 'string' && name && name !== 'Object' ? `a ${name}` : 'an object';
  }
  return typeof value;
}

export function invalidType(name: string, expected: string, received: unknown): TypeError {
  return new TypeError(`Expected ${expected} for ${name} but received ${describe(received)}`);
}

export function invalidRange(name: string, expected: string, received: unknown): RangeError {
  return new RangeError(`Expected ${expected} for ${name} but received ${describe(received)}`);
}

export function checkInteger(name: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number') throw invalidType(name, `an integer between ${min} and ${max}`, value);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw invalidRange(name, max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer between ${min} and ${max}`, value);
  }
  return value;
}

export function checkNumber(name: string, value: unknown, min = -Infinity, max = Infinity, what?: string): number {
  if (typeof value !== 'number') throw invalidType(name, what ?? 'a number', value);
  if (Number.isNaN(value) || value < min || value > max) {
    throw invalidRange(name, what ?? `a number between ${min} and ${max}`, value);
  }
  return value;
}

/** A finite number in [min, max] (NaN and ±Infinity are refused). */
export function checkFinite(name: string, value: unknown, min = -Number.MAX_VALUE, max = Number.MAX_VALUE, what?: string): number {
  const expected = what ?? (min === -Number.MAX_VALUE && max === Number.MAX_VALUE
    ? 'a finite number'
    : max === Number.MAX_VALUE ? `a finite number >= ${min}` : `a finite number between ${min} and ${max}`);
  if (typeof value !== 'number') throw invalidType(name, expected, value);
  if (!Number.isFinite(value) || value < min || value > max) throw invalidRange(name, expected, value);
  return value;
}

/** A primitive boolean: PyTorch raises on a non-bool flag, and JS truthiness would take 'false' as true. */
export function checkBoolean(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw invalidType(name, 'a boolean', value);
  return value;
}

/** An int or a pair of ints, as PyTorch's `_pair`. */
export function checkPair(name: string, value: unknown, min: number): [number, number] {
  if (typeof value === 'number') {
    checkInteger(name, value, min);
    return [value, value];
  }
  if (Array.isArray(value) && value.length === 2) {
    checkInteger(`${name}[0]`, value[0], min);
    checkInteger(`${name}[1]`, value[1], min);
    return [value[0], value[1]];
  }
  throw invalidType(name, `an integer >= ${min} or a pair of them`, value);
}

/** Whether `value` is a typed array of numbers usable as a shape (Int32Array.of(2, 3), ...). */
export function isNumericTypedArray(value: unknown): value is ArrayLike<number> {
  return ArrayBuffer.isView(value) && !(value instanceof DataView) &&
    !(value instanceof BigInt64Array) && !(value instanceof BigUint64Array);
}

/**
 * A shape: an array (or a numeric typed array) of at most MAX_DIMS non-negative integers. The
 * length is checked before any element, so a huge sparse array fails at once. Returns a new
 * plain array.
 */
export function checkShape(name: string, shape: unknown): number[] {
  const expected = `an array of at most ${MAX_DIMS} non-negative integers`;
  if (!Array.isArray(shape) && !isNumericTypedArray(shape)) throw invalidType(name, expected, shape);
  if (shape.length > MAX_DIMS) throw invalidRange(name, expected, `an array of length ${shape.length}`);
  const out: number[] = [];
  for (let i = 0; i < shape.length; i++) {
    if (Array.isArray(shape) && !(i in shape)) throw invalidType(`${name}[${i}]`, 'a non-negative integer', 'a hole (sparse array)');
    out.push(checkInteger(`${name}[${i}]`, shape[i], 0, 2 ** 31 - 1));
  }
  return out;
}

export function checkOneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !allowed.includes(value as T)) {
    const expected = `one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`;
    throw typeof value === 'string' ? invalidRange(name, expected, quote(value)) : invalidType(name, expected, value);
  }
  return value as T;
}

/**
 * An options object's own keys, each one of `allowed` (PyTorch raises on an unexpected keyword, so
 * a misspelt option never builds something else silently). Returns a null-prototype copy: keys
 * inherited through the prototype are never read.
 */
export function checkOptions<T extends object>(name: string, value: unknown, allowed: readonly (keyof T & string)[]): Partial<T> {
  const out = Object.create(null) as Partial<T>;
  if (value === undefined) return out;
  // A plain object only: a Map, a boxed Boolean(false) or an array has no option keys of its own
  // and would silently mean "all defaults".
  if (value === null || typeof value !== 'object' || Object.prototype.toString.call(value) !== '[object Object]') {
    throw invalidType(name, 'an options object', value);
  }
  for (const key of Object.keys(value)) {
    if (!(allowed as readonly string[]).includes(key)) {
      const expected = allowed.length ? `one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}` : 'no options';
      throw new TypeError(`Unknown option ${quote(key)} for ${name}: expected ${expected}`);
    }
    (out as Record<string, unknown>)[key] = (value as Record<string, unknown>)[key];
  }
  return out;
}

export function shapeString(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** A user-supplied string, quoted and shortened for an error message. */
export function quote(value: string): string {
  return JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value);
}
