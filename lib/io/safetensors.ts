// The safetensors format, in plain TypeScript: an 8-byte little-endian header length, a JSON
// header `{"__metadata__": {...}, "<name>": {"dtype", "shape", "data_offsets": [begin, end]}}`
// padded with spaces to a multiple of 8 bytes, then the tensors' bytes back to back.
//
// The reader is as strict as the Rust reference (safetensors 0.8): the data region must be
// covered exactly, with no overlap, gap or trailing byte, so a truncated or spliced file is
// rejected before anything reads it. The writer lays tensors out as the Python library does
// (widest dtype first, then by name), so files we write match theirs byte for byte.
import * as fs from 'node:fs';
import * as os from 'node:os';

export type SafetensorsDtype = 'F32' | 'F64' | 'F16' | 'BF16' | 'I64' | 'I32' | 'U8';
/** F16 and BF16 come back as their raw 16-bit patterns (Uint16Array). */
export type SafetensorsData = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array | Uint16Array;

export interface SafetensorsEntry {
  dtype: SafetensorsDtype;
  shape: number[];
  data: SafetensorsData;
}

/** The tensors of a file in header order, plus its `__metadata__` (empty object if none). */
export class SafetensorsFile extends Map<string, SafetensorsEntry> {
  metadata: Record<string, string> = {};
}

/** Thrown for malformed files and invalid entries; `file` and `entry` say where. */
export class SafetensorsError extends Error {
  readonly file: string;
  readonly entry: string | undefined;
  constructor(file: string, message: string, entry?: string) {
    super(`safetensors ${file}${entry === undefined ? '' : ` entry ${JSON.stringify(entry)}`}: ${message}`);
    this.name = 'SafetensorsError';
    this.file = file;
    this.entry = entry;
  }
}

interface DtypeInfo {
  itemsize: number;
  array: { new (buffer: ArrayBufferLike, byteOffset: number, length: number): SafetensorsData; name: string };
}

const DTYPES: Record<SafetensorsDtype, DtypeInfo> = {
  F64: { itemsize: 8, array: Float64Array },
  F32: { itemsize: 4, array: Float32Array },
  F16: { itemsize: 2, array: Uint16Array },
  BF16: { itemsize: 2, array: Uint16Array },
  I64: { itemsize: 8, array: BigInt64Array },
  I32: { itemsize: 4, array: Int32Array },
  U8: { itemsize: 1, array: Uint8Array },
};

/** Layout order of the reference writer: its Dtype enum, widest last, sorted descending. */
const WRITE_ORDER: SafetensorsDtype[] = ['I64', 'F64', 'F32', 'I32', 'BF16', 'F16', 'U8'];

/** Known to the format but not to us: named in the error so the user knows what to convert. */
const OTHER_FORMAT_DTYPES = ['BOOL', 'I8', 'I16', 'U16', 'U32', 'U64', 'F8_E4M3', 'F8_E5M2', 'F8_E8M0', 'F4', 'F6_E2M3', 'F6_E3M2', 'C64'];

/** The Rust reader's limit; a larger length is a corrupt file, not a big header. */
const MAX_HEADER_BYTES = 100_000_000;

export function isSafetensorsDtype(value: unknown): value is SafetensorsDtype {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(DTYPES, value);
}

export function dtypeItemsize(dtype: SafetensorsDtype): number {
  return DTYPES[dtype].itemsize;
}

if (os.endianness() !== 'LE') {
  // The format is little-endian and the arrays below view the bytes directly.
  throw new Error('safetensors: this reader supports little-endian hosts only');
}

export interface ParseOptions {
  /** Name used in error messages (a file path); default "<buffer>". */
  source?: string;
  /** Copy every tensor into its own buffer instead of viewing `buf` where aligned. Default false. */
  copy?: boolean;
}

/**
 * Parses a safetensors file held in memory. Tensors whose bytes are aligned for their type are
 * views of `buf` (unless `copy`); unaligned ones are copied into a fresh, aligned buffer.
 */
export function parseSafetensors(buf: Uint8Array, options: ParseOptions = {}): SafetensorsFile {
  const source = options.source ?? '<buffer>';
  const fail = (message: string, entry?: string): never => {
    throw new SafetensorsError(source, message, entry);
  };
  if (!(buf instanceof Uint8Array)) {
    throw new TypeError(`Expected a Uint8Array for buf but received ${buf === null ? 'null' : typeof buf}`);
  }
  if (buf.length < 8) fail(`truncated: ${buf.length} bytes, but the file must start with an 8-byte header length`);

  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(buf.length - 8)) {
    fail(`header length ${headerLength} is beyond the end of the file (${buf.length - 8} bytes after the length field); the file is truncated or not safetensors`);
  }
  const n = Number(headerLength);
  if (n > MAX_HEADER_BYTES) fail(`header length ${n} exceeds the limit of ${MAX_HEADER_BYTES} bytes`);
  if (n < 2) fail(`header length ${n} is too short for a JSON object`);

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(8, 8 + n));
  } catch {
    return fail('header is not valid UTF-8');
  }
  if (text[0] !== '{') fail(`header must be a JSON object starting with "{", found ${JSON.stringify(text.slice(0, 16))}`);
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    return fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) fail('header must be a JSON object');

  const out = new SafetensorsFile();
  const dataStart = 8 + n;
  const dataLength = buf.length - dataStart;
  const spans: { name: string; begin: number; end: number }[] = [];
  const pending: { name: string; dtype: SafetensorsDtype; shape: number[]; begin: number; end: number }[] = [];

  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail('__metadata__ must be an object of strings');
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__[${JSON.stringify(k)}] must be a string, found ${typeof v}`);
        // defineProperty: a key named "__proto__" must stay data, not become the prototype.
        Object.defineProperty(out.metadata, k, { value: v, enumerable: true, writable: true, configurable: true });
      }
      continue;
    }
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail('must be an object with dtype, shape and data_offsets', name);
    const info = raw as Record<string, unknown>;
    const dtype = info.dtype;
    if (typeof dtype !== 'string') fail(`dtype must be a string, found ${JSON.stringify(dtype)}`, name);
    if (!isSafetensorsDtype(dtype)) {
      const known = OTHER_FORMAT_DTYPES.includes(dtype as string) ? ' (valid safetensors, but not supported here)' : '';
      fail(`unknown dtype ${JSON.stringify(dtype)}${known}; supported: ${Object.keys(DTYPES).join(', ')}`, name);
    }
    const shape = info.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`shape must be an array of non-negative integers, found ${JSON.stringify(shape)}`, name);
    }
    const offsets = info.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      fail(`data_offsets must be [begin, end] non-negative integers, found ${JSON.stringify(offsets)}`, name);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) fail(`data_offsets [${begin}, ${end}] end before they begin`, name);
    if (end > dataLength) {
      fail(`data_offsets [${begin}, ${end}] are out of range: the data region has ${dataLength} bytes (file truncated?)`, name);
    }
    const numel = (shape as number[]).reduce((a, b) => a * b, 1);
    const expected = numel * DTYPES[dtype as SafetensorsDtype].itemsize;
    if (end - begin !== expected) {
      fail(`holds ${end - begin} bytes but shape [${(shape as number[]).join(', ')}] of ${dtype} needs ${expected}`, name);
    }
    spans.push({ name, begin, end });
    pending.push({ name, dtype: dtype as SafetensorsDtype, shape: (shape as number[]).slice(), begin, end });
  }

  // Coverage: sorted by offset, each tensor starts where the previous ended, the last ends the file.
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let previous = '';
  for (const s of spans) {
    if (s.begin < cursor) fail(`data_offsets [${s.begin}, ${s.end}] overlap those of ${JSON.stringify(previous)} (which end at ${cursor})`, s.name);
    if (s.begin > cursor) fail(`data_offsets [${s.begin}, ${s.end}] leave a gap of ${s.begin - cursor} bytes after byte ${cursor}`, s.name);
    cursor = s.end;
    previous = s.name;
  }
  if (cursor !== dataLength) {
    fail(`${dataLength - cursor} trailing bytes after the last tensor (data region ${dataLength} bytes, tensors cover ${cursor})`);
  }

  for (const p of pending) {
    const { itemsize, array } = DTYPES[p.dtype];
    const byteOffset = buf.byteOffset + dataStart + p.begin;
    const length = (p.end - p.begin) / itemsize;
    let data: SafetensorsData;
    if (!options.copy && byteOffset % itemsize === 0) {
      data = new array(buf.buffer, byteOffset, length);
    } else {
      const copy = new ArrayBuffer(p.end - p.begin);
      new Uint8Array(copy).set(buf.subarray(dataStart + p.begin, dataStart + p.end));
      data = new array(copy, 0, length);
    }
    out.set(p.name, { dtype: p.dtype, shape: p.shape, data });
  }
  return out;
}

/** Reads and parses a file; errors name the path. */
export function readSafetensorsFile(path: string, options: Omit<ParseOptions, 'source'> = {}): SafetensorsFile {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(path);
  } catch (e) {
    throw new SafetensorsError(path, `cannot read the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return parseSafetensors(buf, { ...options, source: path });
}


function utf8Compare(a: string, b: string): number {
  // Rust compares names as UTF-8 bytes; JS `<` compares UTF-16 units, which differs above U+FFFF.
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * Serializes tensors (a Map or a plain object, name -> entry) and optional string metadata.
 * The layout matches the Python library: `__metadata__` first, tensors sorted by dtype (widest
 * first) then name, header padded with spaces to a multiple of 8 bytes.
 */
export function serializeSafetensors(
  entries: Map<string, SafetensorsEntry> | Record<string, SafetensorsEntry>,
  metadata?: Record<string, string>,
): Uint8Array {
  const list = entries instanceof Map ? [...entries.entries()] : Object.entries(entries);
  const where = '<serialize>';
  for (const [name, e] of list) {
    if (name === '__metadata__') throw new SafetensorsError(where, 'the name "__metadata__" is reserved', name);
    if (name === '') throw new SafetensorsError(where, 'tensor names must not be empty', name);
    if (e === null || typeof e !== 'object') throw new SafetensorsError(where, 'must be {dtype, shape, data}', name);
    if (!isSafetensorsDtype(e.dtype)) {
      throw new SafetensorsError(where, `unknown dtype ${JSON.stringify(e.dtype)}; supported: ${Object.keys(DTYPES).join(', ')}`, name);
    }
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new SafetensorsError(where, `shape must be an array of non-negative integers, found ${JSON.stringify(e.shape)}`, name);
    }
    const ctor = DTYPES[e.dtype].array;
    if (!(e.data instanceof ctor)) {
      const got = ArrayBuffer.isView(e.data) ? e.data.constructor.name : e.data === null ? 'null' : typeof e.data;
      throw new SafetensorsError(where, `${e.dtype} data must be a ${ctor.name}, found ${got}`, name);
    }
    const numel = e.shape.reduce((a, b) => a * b, 1);
    if ((e.data as SafetensorsData).length !== numel) {
      throw new SafetensorsError(where, `data has ${(e.data as SafetensorsData).length} elements but shape [${e.shape.join(', ')}] needs ${numel}`, name);
    }
  }
  if (metadata !== undefined) {
    if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) {
      throw new SafetensorsError(where, 'metadata must be an object of strings');
    }
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new SafetensorsError(where, `metadata[${JSON.stringify(k)}] must be a string, found ${typeof v}`);
    }
  }
  const names = new Set<string>();
  for (const [name] of list) {
    if (names.has(name)) throw new SafetensorsError(where, 'appears twice', name);
    names.add(name);
  }

  list.sort(([na, a], [nb, b]) => WRITE_ORDER.indexOf(a.dtype) - WRITE_ORDER.indexOf(b.dtype) || utf8Compare(na, nb));

  // No prototype: a tensor named "__proto__" must become a key, not the prototype.
  const header: Record<string, unknown> = Object.create(null);
  if (metadata !== undefined) {
    const meta: Record<string, string> = Object.create(null);
    for (const [k, v] of Object.entries(metadata)) meta[k] = v;
    header.__metadata__ = meta;
  }
  let offset = 0;
  for (const [name, e] of list) {
    const bytes = e.data.byteLength;
    header[name] = { dtype: e.dtype, shape: e.shape.slice(), data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = json.length + ((8 - (json.length % 8)) % 8);
  const out = new Uint8Array(8 + padded + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + padded);
  let at = 8 + padded;
  for (const [, e] of list) {
    out.set(new Uint8Array(e.data.buffer, e.data.byteOffset, e.data.byteLength), at);
    at += e.data.byteLength;
  }
  return out;
}

// --- 16-bit floats, which JS has no typed array for: converted through their bit patterns.

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** IEEE half bits -> number (exact). */
export function halfBitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** number -> IEEE half bits, rounding the float32 value to nearest even; overflow gives inf. */
export function numberToHalfBits(v: number): number {
  scratchF32[0] = v;
  const x = scratchU32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;  // below half the smallest subnormal: +-0
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && (half & 1))) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1))) half++;  // a carry into the exponent is right
  return sign | half;
}

/** bfloat16 bits -> number (exact). */
export function bf16BitsToNumber(h: number): number {
  scratchU32[0] = (h & 0xffff) << 16;
  return scratchF32[0];
}

/** number -> bfloat16 bits, rounding the float32 value to nearest even. */
export function numberToBf16Bits(v: number): number {
  scratchF32[0] = v;
  const x = scratchU32[0];
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) return (x >>> 16) | 0x40;  // quiet NaN
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Widens F16/BF16 bit patterns to a Float32Array. */
export function halfToFloat32(bits: Uint16Array, dtype: 'F16' | 'BF16'): Float32Array {
  const out = new Float32Array(bits.length);
  const convert = dtype === 'F16' ? halfBitsToNumber : bf16BitsToNumber;
  for (let i = 0; i < bits.length; i++) out[i] = convert(bits[i]);
  return out;
}

/** Narrows float32 values to F16/BF16 bit patterns (round to nearest even). */
export function float32ToHalf(values: Float32Array | Float64Array, dtype: 'F16' | 'BF16'): Uint16Array {
  const out = new Uint16Array(values.length);
  const convert = dtype === 'F16' ? numberToHalfBits : numberToBf16Bits;
  for (let i = 0; i < values.length; i++) out[i] = convert(values[i]);
  return out;
}
