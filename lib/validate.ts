// Argument checks with messages that name the argument, what was expected and what was received.

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (Array.isArray(value)) return `array [${value.slice(0, 8).map(describe).join(', ')}${value.length > 8 ? ', …' : ''}]`;
  if (typeof value === 'number') return `${value}`;
  // Strings are descriptions written by the caller ("shape [2, 3]"); user strings are quoted first.
  if (typeof value === 'string') return value;
  if (typeof value === 'bigint') return `${value}n`;
  if (ArrayBuffer.isView(value)) return `${value.constructor.name} of length ${(value as unknown as { length: number }).length}`;
  if (typeof value === 'object') {
    const name = (value as object).constructor?.name;
    return name && name !== 'Object' ? `a ${name}` : 'an object';
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

export function checkShape(name: string, shape: unknown): number[] {
  if (!Array.isArray(shape)) throw invalidType(name, 'an array of non-negative integers', shape);
  shape.forEach((d, i) => checkInteger(`${name}[${i}]`, d, 0));
  return shape as number[];
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
  if (value === null || typeof value !== 'object' || Array.isArray(value) || ArrayBuffer.isView(value)) {
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
