// Argument checks shared by the io functions (not exported from the package).
import { checkOptions } from '../validate';

/** checkOptions with the function's name in front: "load: Unknown option ...". */
export function optionsOf<T extends object>(fn: string, value: unknown, allowed: readonly (keyof T & string)[]): Partial<T> {
  try {
    return checkOptions<T>('options', value, allowed);
  } catch (e) {
    if (e instanceof TypeError) throw new TypeError(`${fn}: ${e.message}`);
    throw e;
  }
}

export function received(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
  return typeof value;
}

/** A file path argument: a non-empty string without NUL bytes (which no file name can hold). */
export function checkFilePath(fn: string, file: unknown, name = 'file'): string {
  if (typeof file !== 'string' || file === '' || file.includes('\0')) {
    const why = typeof file === 'string' && file.includes('\0') ? ' (it contains a NUL byte)' : '';
    throw new TypeError(`${fn}: expected a non-empty file path without NUL bytes for ${name} but received ${received(file)}${why}`);
  }
  return file;
}
