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

import { CheckpointError } from '../errors';
import { checkFilePath, optionsOf } from './options';

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

/**
 * Thrown for unreadable or malformed files and invalid entries; `file` and `entry` say where.
 * A CheckpointError, so one `instanceof` covers every bad checkpoint.
 */
export class SafetensorsError extends CheckpointError {
  declare readonly file: string;
  readonly entry: string | undefined;
  constructor(file: string, message: string, entry?: string) {
    super(`safetensors ${file}${entry === undefined ? '' : ` entry ${JSON.stringify(entry)}`}: ${message}`, { file });
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

/** Arrays in a header are shapes and data_offsets; PyTorch allows at most 64 dimensions. */
const MAX_HEADER_ARRAY_LENGTH = 64;

type Fail = (message: string, entry?: string) => never;

/**
 * One pass over the header text before JSON.parse, so that a hostile header costs no more memory
 * than a small multiple of its size: the format's header is an object of objects (entries and
 * `__metadata__`) whose values are strings or short arrays of numbers, so anything nested deeper
 * than 3, an array holding a container, or an array longer than a shape can be is rejected
 * here, before any of it is built. It also counts the keys of the top object and of the objects
 * in it, so duplicates (which JSON.parse would silently collapse) can be caught afterwards.
 * Strings are skipped by their quotes and backslashes only; JSON.parse checks the rest.
 */
function scanHeader(text: string, fail: Fail): { topKeys: number; innerKeys: number } {
  const OBJECT = 1;
  const ARRAY = 2;
  const stack = [0, 0, 0, 0];  // container kinds by depth (1-based): object, object or array, array
  const counts = [0, 0, 0, 0];  // elements of the array open at each depth
  let depth = 0;
  let expectKey = false;  // next string is an object key (after "{" or "," in an object)
  let topKeys = 0;
  let innerKeys = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      if (expectKey) {
        if (depth === 1) topKeys++;
        else if (depth === 2) innerKeys++;
        expectKey = false;
      } else if (stack[depth] === ARRAY) {
        counts[depth]++;
      }
      for (i++; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c /* \ */) i++;
        else if (d === 0x22) break;
      }
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (stack[depth] === ARRAY) {
        fail(`header has ${c === 0x7b ? 'an object' : 'an array'} inside an array at offset ${i}; a safetensors header holds only shapes and offsets (arrays of numbers) in arrays`);
      }
      if (depth === 3 || (depth === 2 && c === 0x7b)) {
        fail(`header nests too deep at offset ${i} (${c === 0x7b ? 'an object' : 'an array'} at depth ${depth + 1}); a safetensors header is an object of entries whose values are strings or arrays of numbers`);
      }
      depth++;
      stack[depth] = c === 0x7b ? OBJECT : ARRAY;
      counts[depth] = 0;
      expectKey = c === 0x7b;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      if (depth > 0) depth--;
      expectKey = false;
    } else if (c === 0x2c /* , */) {
      expectKey = stack[depth] === OBJECT;
    } else if (stack[depth] === ARRAY && c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) {
      // The first character of a number or literal; skip the rest of it. Shapes and offsets are
      // integers: "2.0" or "1e3" is a float to the reference reader (usize), so it is refused.
      counts[depth]++;
      const start = i;
      let float = false;
      while (i + 1 < n && !/[\s,\]}[{":]/.test(text[i + 1])) {
        i++;
        const d = text.charCodeAt(i);
        if (d === 0x2e /* . */ || d === 0x65 /* e */ || d === 0x45 /* E */) float = true;
      }
      if (float && (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39))) {
        fail(`header has the number ${text.slice(start, Math.min(i + 1, start + 32))} in an array at offset ${start}; shapes and data_offsets must be written as integers`);
      }
    } else {
      continue;
    }
    if (stack[depth] === ARRAY && counts[depth] > MAX_HEADER_ARRAY_LENGTH) {
      fail(`header has an array of more than ${MAX_HEADER_ARRAY_LENGTH} elements before offset ${i + 1}; shapes have at most ${MAX_HEADER_ARRAY_LENGTH} dimensions and data_offsets 2`);
    }
  }
  return { topKeys, innerKeys };
}

interface PendingTensor { name: string; dtype: SafetensorsDtype; shape: number[]; begin: number; end: number }

/**
 * Checks the 8-byte length field against the file size; returns the header length. A header
 * length larger than the file is rejected before anything is allocated for it.
 */
function checkHeaderLength(headerLength: bigint, fileLength: number, fail: Fail): number {
  if (headerLength > BigInt(fileLength - 8)) {
    fail(`header length ${headerLength} is beyond the end of the file (${fileLength - 8} bytes after the length field); the file is truncated or not safetensors`);
  }
  const n = Number(headerLength);
  if (n > MAX_HEADER_BYTES) fail(`header length ${n} exceeds the limit of ${MAX_HEADER_BYTES} bytes`);
  if (n < 2) fail(`header length ${n} is too short for a JSON object`);
  return n;
}

/** Validates a header (its raw bytes) against a data region of `dataLength` bytes. */
function parseHeader(bytes: Uint8Array, dataLength: number, fail: Fail): { metadata: Record<string, string>; pending: PendingTensor[] } {
  if (bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
    fail('header starts with a UTF-8 byte order mark; the header must start with "{" (the reference reader rejects a BOM too)');
  }
  let text: string;
  try {
    // ignoreBOM: a BOM must stay in the text and fail the "{" check, never be dropped silently.
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return fail('header is not valid UTF-8');
  }
  if (text[0] !== '{') fail(`header must be a JSON object starting with "{", found ${JSON.stringify(text.slice(0, 16))}`);
  const { topKeys, innerKeys } = scanHeader(text, fail);
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    return fail(`header is not valid JSON (${(e as Error).message.slice(0, 200)})`);
  }
  text = '';
  if (header === null || typeof header !== 'object' || Array.isArray(header)) fail('header must be a JSON object');

  const names = Object.keys(header as object);
  let inner = 0;
  for (const name of names) {
    const v = (header as Record<string, unknown>)[name];
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) inner += Object.keys(v).length;
  }
  if (names.length !== topKeys || inner !== innerKeys) {
    const dup = findDuplicateKey(bytes);
    fail(`header has a duplicate key${dup === undefined ? '' : ` ${dup}`}; JSON.parse would keep only the last one, so the file is ambiguous`);
  }

  let metadata: Record<string, string> = {};
  const spans: { name: string; begin: number; end: number }[] = [];
  const pending: PendingTensor[] = [];

  for (const name of names) {
    const raw = (header as Record<string, unknown>)[name];
    if (name === '__metadata__') {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail('__metadata__ must be an object of strings');
      for (const k of Object.keys(raw as object)) {
        const v = (raw as Record<string, unknown>)[k];
        if (typeof v !== 'string') fail(`__metadata__[${JSON.stringify(k)}] must be a string, found ${v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v}`);
      }
      // JSON.parse made it a plain object of own data properties ("__proto__" included, as
      // data, not the prototype); kept as it is rather than copied, which would double its cost.
      metadata = raw as Record<string, string>;
      continue;
    }
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail('must be an object with dtype, shape and data_offsets', name);
    const info = raw as Record<string, unknown>;
    const own = (k: string) => (Object.prototype.hasOwnProperty.call(info, k) ? info[k] : undefined);
    const dtype = own('dtype');
    if (typeof dtype !== 'string') fail(`dtype must be a string, found ${JSON.stringify(dtype) ?? 'nothing'}`, name);
    if (!isSafetensorsDtype(dtype)) {
      const known = OTHER_FORMAT_DTYPES.includes(dtype as string) ? ' (valid safetensors, but not supported here)' : '';
      fail(`unknown dtype ${JSON.stringify(dtype)}${known}; supported: ${Object.keys(DTYPES).join(', ')}`, name);
    }
    const shape = own('shape');
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`shape must be an array of non-negative integers, found ${JSON.stringify(shape) ?? 'nothing'}`, name);
    }
    const offsets = own('data_offsets');
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      fail(`data_offsets must be [begin, end] non-negative integers, found ${JSON.stringify(offsets) ?? 'nothing'}`, name);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) fail(`data_offsets [${begin}, ${end}] end before they begin`, name);
    if (end > dataLength) {
      fail(`data_offsets [${begin}, ${end}] are out of range: the data region has ${dataLength} bytes (file truncated?)`, name);
    }
    // The product of the dimensions may overflow 2^53 (inexact) while a later 0 makes it 0;
    // Rust's checked_mul fails there, and so does this.
    let numel = 1;
    for (const d of shape as number[]) {
      numel *= d;
      if (!Number.isSafeInteger(numel)) fail(`shape [${(shape as number[]).join(', ')}] has more elements than a file can hold`, name);
    }
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
  return { metadata, pending };
}

/** The first key repeated in the top object or in one of its objects, for the error message. */
function findDuplicateKey(bytes: Uint8Array): string | undefined {
  // Only called on a header that passed scanHeader and JSON.parse: valid JSON, at most 3 deep.
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  const stack: (Set<string> | null)[] = [];  // a Set per open object, null per open array
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      const start = i;
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++;
      if (expectKey) {
        const key = JSON.parse(text.slice(start, i + 1)) as string;
        const keys = stack[stack.length - 1] as Set<string>;
        if (keys.has(key)) return JSON.stringify(key);
        keys.add(key);
        expectKey = false;
      }
    } else if (c === '{' || c === '[') {
      stack.push(c === '{' ? new Set() : null);
      expectKey = c === '{';
    } else if (c === '}' || c === ']') {
      stack.pop();
      expectKey = false;
    } else if (c === ',') {
      expectKey = stack[stack.length - 1] instanceof Set;
    }
  }
  return undefined;
}

function tensorsFrom(out: SafetensorsFile, data: Uint8Array, pending: PendingTensor[], copy: boolean): SafetensorsFile {
  for (const p of pending) {
    const { itemsize, array } = DTYPES[p.dtype];
    const byteOffset = data.byteOffset + p.begin;
    const length = (p.end - p.begin) / itemsize;
    let values: SafetensorsData;
    if (!copy && byteOffset % itemsize === 0) {
      values = new array(data.buffer, byteOffset, length);
    } else {
      const owned = new ArrayBuffer(p.end - p.begin);
      new Uint8Array(owned).set(data.subarray(p.begin, p.end));
      values = new array(owned, 0, length);
    }
    out.set(p.name, { dtype: p.dtype, shape: p.shape, data: values });
  }
  return out;
}

/**
 * Parses a safetensors file held in memory. Tensors whose bytes are aligned for their type are
 * views of `buf` (unless `copy`); unaligned ones are copied into a fresh, aligned buffer.
 */
export function parseSafetensors(buf: Uint8Array, options: ParseOptions = {}): SafetensorsFile {
  if (!(buf instanceof Uint8Array)) {
    throw new TypeError(`parseSafetensors: expected a Uint8Array for buf but received ${buf === null ? 'null' : typeof buf}`);
  }
  const o = optionsOf<ParseOptions>('parseSafetensors', options, ['source', 'copy']);
  if (o.source !== undefined && typeof o.source !== 'string') {
    throw new TypeError(`parseSafetensors: expected a string for options.source but received ${o.source === null ? 'null' : typeof o.source}`);
  }
  if (o.copy !== undefined && typeof o.copy !== 'boolean') {
    throw new TypeError(`parseSafetensors: expected a boolean for options.copy but received ${o.copy === null ? 'null' : typeof o.copy}`);
  }
  const source = o.source ?? '<buffer>';
  const fail: Fail = (message, entry) => {
    throw new SafetensorsError(source, message, entry);
  };
  if (buf.length < 8) fail(`truncated: ${buf.length} bytes, but the file must start with an 8-byte header length`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = checkHeaderLength(view.getBigUint64(0, true), buf.length, fail);
  const { metadata, pending } = parseHeader(buf.subarray(8, 8 + n), buf.length - 8 - n, fail);
  const out = new SafetensorsFile();
  out.metadata = metadata;
  return tensorsFrom(out, buf.subarray(8 + n), pending, o.copy ?? false);
}

const FILE_KINDS: [keyof fs.Stats, string][] = [
  ['isDirectory', 'a directory'], ['isFIFO', 'a FIFO (named pipe)'], ['isCharacterDevice', 'a character device'],
  ['isBlockDevice', 'a block device'], ['isSocket', 'a socket'],
];

function notRegular(stats: fs.Stats): string | undefined {
  if (stats.isFile()) return undefined;
  for (const [test, what] of FILE_KINDS) if ((stats[test] as () => boolean).call(stats)) return what;
  return 'not a regular file';
}

/** Reads exactly `length` bytes at `position`; fewer means the file shrank while it was read. */
function readExactly(fd: number, into: Uint8Array, position: number, fail: Fail): void {
  for (let at = 0; at < into.length;) {
    const got = fs.readSync(fd, into, at, into.length - at, position + at);
    if (got === 0) fail(`the file ended after ${position + at} bytes while being read (it changed on disk?)`);
    at += got;
  }
}

/** A file's header, checked as fully as readSafetensorsFile checks it, without its data. */
export interface SafetensorsFileHeader {
  metadata: Record<string, string>;
  /** name -> dtype, shape and data_offsets (relative to the data region), in header order. */
  entries: Map<string, { dtype: SafetensorsDtype; shape: number[]; dataOffsets: [number, number] }>;
}

/**
 * Opens `path` as a safetensors file and reads its header; `then` gets the descriptor, the
 * header length and the parsed header. Only regular files are read: a stat first, so a device
 * or FIFO is never even opened, then fstat on the opened descriptor (O_NONBLOCK: opening a FIFO
 * must not wait for a writer), which is what decides. The header is checked against the size
 * before it is allocated.
 */
function withHeader<T>(fn: string, path: string, then: (read: (into: Uint8Array, position: number) => void, n: number, header: ReturnType<typeof parseHeader>) => T): T {
  checkFilePath(fn, path, 'path');
  const fail: Fail = (message, entry) => {
    throw new SafetensorsError(path, message, entry);
  };
  const cannotRead = (e: unknown): never => fail(`cannot read the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  let stats: fs.Stats;
  try {
    stats = fs.statSync(path);
  } catch (e) {
    return cannotRead(e);
  }
  const kind = notRegular(stats);
  if (kind) fail(`cannot read the file: it is ${kind}, not a regular file`);
  let fd: number;
  try {
    fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    return cannotRead(e);
  }
  try {
    try {
      stats = fs.fstatSync(fd);
    } catch (e) {
      return cannotRead(e);
    }
    const kindNow = notRegular(stats);
    if (kindNow) fail(`cannot read the file: it is ${kindNow}, not a regular file`);
    const size = stats.size;
    if (size < 8) fail(`truncated: ${size} bytes, but the file must start with an 8-byte header length`);
    const read = (into: Uint8Array, position: number): void => {
      try {
        readExactly(fd, into, position, fail);
      } catch (e) {
        if (e instanceof SafetensorsError) throw e;
        cannotRead(e);
      }
    };
    const lengthField = new Uint8Array(8);
    read(lengthField, 0);
    const n = checkHeaderLength(new DataView(lengthField.buffer).getBigUint64(0, true), size, fail);
    const headerBytes = new Uint8Array(n);
    read(headerBytes, 8);
    return then(read, n, parseHeader(headerBytes, size - 8 - n, fail));
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Reads and checks a file's header (every check readSafetensorsFile makes, coverage of the data
 * region included) without reading or allocating its tensors.
 */
export function readSafetensorsHeader(path: string): SafetensorsFileHeader {
  return withHeader('readSafetensorsHeader', path, (_read, _n, { metadata, pending }) => ({
    metadata,
    entries: new Map(pending.map((p) => [p.name, { dtype: p.dtype, shape: p.shape, dataOffsets: [p.begin, p.end] as [number, number] }])),
  }));
}

/**
 * Reads and parses a file; errors name the path. Only regular files are read (a FIFO, device
 * or directory is refused without reading from it), the header is read and checked before any
 * tensor is allocated, and nothing larger than the file itself is ever allocated. Every tensor
 * is in its own buffer (`copy` changes nothing here).
 */
export function readSafetensorsFile(path: string, options: Omit<ParseOptions, 'source'> = {}): SafetensorsFile {
  checkFilePath('readSafetensorsFile', path, 'path');
  const o = optionsOf<ParseOptions>('readSafetensorsFile', options, ['copy']);
  if (o.copy !== undefined && typeof o.copy !== 'boolean') {
    throw new TypeError(`readSafetensorsFile: expected a boolean for options.copy but received ${o.copy === null ? 'null' : typeof o.copy}`);
  }
  return withHeader('readSafetensorsFile', path, (read, n, { metadata, pending }) => {
    // The header accounts for every data byte (no overlap, no gap), so what is allocated here is
    // the tensors' own size; each gets its own aligned buffer, so only a single tensor, not the
    // whole file, must fit an ArrayBuffer.
    const out = new SafetensorsFile();
    out.metadata = metadata;
    for (const p of pending) {
      const { itemsize, array } = DTYPES[p.dtype];
      let bytes: Uint8Array;
      try {
        bytes = new Uint8Array(p.end - p.begin);
      } catch (e) {
        throw new SafetensorsError(path, `cannot allocate ${p.end - p.begin} bytes for the tensor (${(e as Error).message})`, p.name);
      }
      read(bytes, 8 + n + p.begin);
      out.set(p.name, { dtype: p.dtype, shape: p.shape, data: new array(bytes.buffer, 0, bytes.length / itemsize) });
    }
    return out;
  });
}

function utf8Compare(a: string, b: string): number {
  // Rust compares names as UTF-8 bytes; JS `<` compares UTF-16 units, which differs above U+FFFF.
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** A tensor as the header describes it: its data is written separately (see safetensorsHeader). */
export interface SafetensorsLayoutEntry {
  dtype: SafetensorsDtype;
  shape: number[];
}

export interface SafetensorsHeader {
  /** The 8-byte length field and the padded JSON header: the file's first bytes. */
  bytes: Uint8Array;
  /** Tensor names in the order their data must follow the header. */
  order: string[];
  /** Each tensor's byte size, by name. */
  byteLengths: Map<string, number>;
  /** The data region's size: the file is `bytes.length + dataLength` bytes. */
  dataLength: number;
}

function checkLayoutEntries(list: [string, SafetensorsLayoutEntry][], metadata: Record<string, string> | undefined, where: string): void {
  const names = new Set<string>();
  for (const [name, e] of list) {
    if (name === '__metadata__') throw new SafetensorsError(where, 'the name "__metadata__" is reserved', name);
    if (name === '') throw new SafetensorsError(where, 'tensor names must not be empty', name);
    if (names.has(name)) throw new SafetensorsError(where, 'appears twice', name);
    names.add(name);
    if (e === null || typeof e !== 'object') throw new SafetensorsError(where, 'must be {dtype, shape, data}', name);
    if (!isSafetensorsDtype(e.dtype)) {
      throw new SafetensorsError(where, `unknown dtype ${JSON.stringify(e.dtype)}; supported: ${Object.keys(DTYPES).join(', ')}`, name);
    }
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new SafetensorsError(where, `shape must be an array of non-negative integers, found ${JSON.stringify(e.shape)}`, name);
    }
    if (e.shape.length > MAX_HEADER_ARRAY_LENGTH) {
      // The reader refuses it, so the writer must not write it.
      throw new SafetensorsError(where, `shape has ${e.shape.length} dimensions; at most ${MAX_HEADER_ARRAY_LENGTH} can be stored`, name);
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
}

function layout(list: [string, SafetensorsLayoutEntry][], metadata: Record<string, string> | undefined): SafetensorsHeader {
  list.sort(([na, a], [nb, b]) => WRITE_ORDER.indexOf(a.dtype) - WRITE_ORDER.indexOf(b.dtype) || utf8Compare(na, nb));
  // No prototype: a tensor named "__proto__" must become a key, not the prototype.
  const header: Record<string, unknown> = Object.create(null);
  if (metadata !== undefined) {
    const meta: Record<string, string> = Object.create(null);
    for (const [k, v] of Object.entries(metadata)) meta[k] = v;
    header.__metadata__ = meta;
  }
  const byteLengths = new Map<string, number>();
  let offset = 0;
  for (const [name, e] of list) {
    const bytes = e.shape.reduce((a, b) => a * b, 1) * DTYPES[e.dtype].itemsize;
    if (!Number.isSafeInteger(bytes)) throw new SafetensorsError('<serialize>', `shape [${e.shape.join(', ')}] is too large`, name);
    header[name] = { dtype: e.dtype, shape: e.shape.slice(), data_offsets: [offset, offset + bytes] };
    byteLengths.set(name, bytes);
    offset += bytes;
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = json.length + ((8 - (json.length % 8)) % 8);
  const out = new Uint8Array(8 + padded);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + padded);
  return { bytes: out, order: list.map(([name]) => name), byteLengths, dataLength: offset };
}

/**
 * The header of a file holding these tensors (name -> {dtype, shape}), laid out as
 * serializeSafetensors does, for writers that stream each tensor's bytes after it in `order`.
 */
export function safetensorsHeader(
  entries: Map<string, SafetensorsLayoutEntry> | Record<string, SafetensorsLayoutEntry>,
  metadata?: Record<string, string>,
): SafetensorsHeader {
  const list = entries instanceof Map ? [...entries.entries()] : Object.entries(entries);
  checkLayoutEntries(list, metadata, '<serialize>');
  return layout(list, metadata);
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
  checkLayoutEntries(list, metadata, where);
  for (const [name, e] of list) {
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
  const head = layout(list, metadata);
  const data = new Map(list);
  const out = new Uint8Array(head.bytes.length + head.dataLength);
  out.set(head.bytes, 0);
  let at = head.bytes.length;
  for (const name of head.order) {
    const d = (data.get(name) as SafetensorsEntry).data;
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), at);
    at += d.byteLength;
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
