// Checkpoints: a module's state dict as a safetensors file with PyTorch's names and dtypes, so
// `safetensors.torch.load_file(path)` + `load_state_dict` reads ours and we read theirs.
//
// Saving is atomic: the bytes go to `<path>.tmp-<pid>-<rand>` (the header, then one tensor at a
// time, so no second copy of the whole model is ever held), which is fsynced and renamed over
// `path`, then the directory is fsynced, so a crash leaves the old file or the new one, never
// half of one. A temp file left by a save that was killed (SIGKILL, power loss) is removed by
// the next save of the same file, once no process with its pid is alive; only names of exactly
// that form for that same target are touched (see removeStaleTemps). Loading checks the whole
// file against the model before copying anything in, so a load that throws leaves the model as
// it was. Unreadable, malformed or mismatched files throw CheckpointError (SafetensorsError is
// one); bad arguments throw TypeError.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { CheckpointError, DisposedTensorError } from '../errors';
import { tensor } from '../creation';
import { Tensor } from '../tensor';
import { Module } from '../nn/module';
import type { DType } from '../native';
import { checkFilePath, optionsOf, received } from './options';
import {
  SafetensorsData, SafetensorsDtype, SafetensorsEntry, SafetensorsError, SafetensorsHeader,
  SafetensorsLayoutEntry, float32ToHalf, halfToFloat32, readSafetensorsFile, readSafetensorsHeader, safetensorsHeader,
} from './safetensors';

/** What save/load need from a module (nn.Module provides it). */
export interface StateDictModule {
  stateDict(): Record<string, Tensor>;
  loadStateDict(stateDict: Record<string, Tensor>, options?: { strict?: boolean }): unknown;
  parameters?(): Tensor[];
  buffers?(): Tensor[];
}

/**
 * stateDict() returns live parameters/buffers plus fresh tensors for extra state
 * (num_batches_tracked); the fresh ones are ours to free once read.
 */
function disposeExtraState(model: StateDictModule, stateDict: Record<string, Tensor>): void {
  if (typeof model.parameters !== 'function' || typeof model.buffers !== 'function') return;
  const live = new Set<Tensor>([...model.parameters(), ...model.buffers()]);
  for (const t of Object.values(stateDict)) if (!live.has(t)) t.dispose();
}

export interface SaveOptions {
  /** String key/values stored in the file's `__metadata__`. */
  metadata?: Record<string, string>;
}

export interface LoadOptions {
  /** Require the file's names to equal the model's exactly, like PyTorch. Default true. */
  strict?: boolean;
}

export interface LoadResult {
  /** Model entries the file lacks (only possible with strict: false). */
  missingKeys: string[];
  /** File entries the model lacks (only possible with strict: false). */
  unexpectedKeys: string[];
  metadata: Record<string, string>;
}

const TO_FILE: Record<DType, SafetensorsDtype> = {
  float32: 'F32', float64: 'F64', float16: 'F16', bfloat16: 'BF16', int64: 'I64', int32: 'I32', uint8: 'U8',
};
const FROM_FILE: Record<SafetensorsDtype, DType> = {
  F32: 'float32', F64: 'float64', F16: 'float16', BF16: 'bfloat16', I64: 'int64', I32: 'int32', U8: 'uint8',
};

function checkStateDict(fn: string, stateDict: unknown): Record<string, Tensor> {
  if (stateDict === null || typeof stateDict !== 'object' || Array.isArray(stateDict)) {
    throw new TypeError(`${fn}: expected a state dict (object of name -> Tensor) for stateDict but received ${received(stateDict)}`);
  }
  for (const [name, t] of Object.entries(stateDict as Record<string, unknown>)) {
    if (!(t instanceof Tensor)) throw new TypeError(`${fn}: expected a Tensor for stateDict[${JSON.stringify(name)}] but received ${t === null ? 'null' : typeof t}`);
    if (t.isDisposed) throw new DisposedTensorError(`${fn}: stateDict[${JSON.stringify(name)}] is a disposed tensor`);
  }
  return stateDict as Record<string, Tensor>;
}

function checkModule(fn: string, model: unknown): StateDictModule {
  const m = model as StateDictModule;
  // Any object with stateDict/loadStateDict will do, but one that only inherits Module.prototype
  // (Object.create(Module.prototype)) has no module state: `instanceof Module` is a brand check.
  if (m === null || typeof m !== 'object' || typeof m.stateDict !== 'function' || typeof m.loadStateDict !== 'function' ||
      (Module.prototype.isPrototypeOf(m) && !(m instanceof Module))) {
    throw new TypeError(`${fn}: expected a Module (with stateDict and loadStateDict) for model but received ${model === null ? 'null' : typeof model}`);
  }
  return m;
}

function checkPath(fn: string, file: unknown): string {
  return checkFilePath(fn, file, 'file');
}

function checkSaveOptions(fn: string, options: unknown): SaveOptions {
  const o = optionsOf<SaveOptions>(fn, options, ['metadata']);
  const metadata = o.metadata;
  if (metadata !== undefined) {
    if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) {
      throw new TypeError(`${fn}: expected an object of strings for options.metadata but received ${received(metadata)}`);
    }
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new TypeError(`${fn}: options.metadata[${JSON.stringify(k)}] must be a string, found ${received(v)}`);
    }
  }
  return o;
}

function toEntry(t: Tensor, values: ArrayLike<unknown>): SafetensorsEntry {
  const dtype = TO_FILE[t.dtype];
  let data = values as SafetensorsData;
  // Half types are read back widened to float32; narrow them again for the file.
  if (dtype === 'F16' || dtype === 'BF16') data = float32ToHalf(values as Float32Array, dtype);
  return { dtype, shape: t.shape.slice(), data };
}

/**
 * The file's header and its tensors in layout order. Nothing is read from the tensors: the
 * header needs only names, dtypes and shapes, so the data can be streamed after it.
 */
function plan(fn: string, stateDict: Record<string, Tensor>, options: SaveOptions): { head: SafetensorsHeader; tensors: [string, Tensor][] } {
  const byName = new Map(Object.entries(stateDict));
  const layoutEntries = new Map<string, SafetensorsLayoutEntry>();
  for (const [name, t] of byName) layoutEntries.set(name, { dtype: TO_FILE[t.dtype], shape: t.shape.slice() });
  let head: SafetensorsHeader;
  try {
    head = safetensorsHeader(layoutEntries, options.metadata);
  } catch (e) {
    // A name the format cannot hold ("__metadata__", ""): the state dict argument is at fault.
    if (e instanceof SafetensorsError) throw new TypeError(`${fn}: ${e.message}`);
    throw e;
  }
  return { head, tensors: head.order.map((name) => [name, byName.get(name) as Tensor]) };
}

/** A tensor's bytes as the file stores them (F16/BF16 narrowed back from their float32 reads). */
function fileBytes(name: string, t: Tensor, values: ArrayLike<unknown>, expected: number): Uint8Array {
  const { data } = toEntry(t, values);
  if (data.byteLength !== expected) {
    throw new Error(`save: ${name}: read ${data.byteLength} bytes but its shape and dtype need ${expected} (a bug)`);
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function tempPathFor(file: string): string {
  return `${file}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
}

const TEMP_NAME = /^(.*)\.tmp-([1-9][0-9]{0,9})-[0-9a-f]{12}$/;

function processIsAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: alive, but another user's. Only "no such process" means dead.
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/**
 * The temp files a killed save of `file` left in its directory: exactly
 * `<basename of file>.tmp-<pid>-<12 hex digits>`, a regular file, and no live process with that
 * pid (checked on this host: a pid reused by a live process keeps its file, which is safe).
 * Temp files of other targets in the directory are left alone, so a file of another program
 * that happens to share the pattern is never touched, nor is a live save's.
 */
function staleTemps(file: string, names: string[]): string[] {
  const base = path.basename(file);
  const out: string[] = [];
  for (const name of names) {
    const m = TEMP_NAME.exec(name);
    if (m === null || m[1] !== base) continue;
    if (!processIsAlive(Number(m[2]))) out.push(path.join(path.dirname(file), name));
  }
  return out;
}

/** Best effort: a cleanup that fails (a racing save removed it first, EACCES) is no error. */
function removeStaleTemps(file: string): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(path.dirname(file));
  } catch {
    return removed;
  }
  for (const stale of staleTemps(file, names)) {
    try {
      if (!fs.lstatSync(stale).isFile()) continue;
      fs.unlinkSync(stale);
      removed.push(stale);
    } catch {
      // already gone, or not ours to remove
    }
  }
  return removed;
}

async function removeStaleTempsAsync(file: string): Promise<void> {
  let names: string[];
  try {
    names = await fs.promises.readdir(path.dirname(file));
  } catch {
    return;
  }
  for (const stale of staleTemps(file, names)) {
    try {
      if (!(await fs.promises.lstat(stale)).isFile()) continue;
      await fs.promises.unlink(stale);
    } catch {
      // already gone, or not ours to remove
    }
  }
}

/**
 * A failed write: an fs error becomes a CheckpointError naming the file and the errno code;
 * anything else (OutOfMemoryError, a bug) is rethrown as it is, after the temp file is gone.
 */
function saveError(file: string, e: unknown): unknown {
  const err = e as NodeJS.ErrnoException;
  if (!(e instanceof Error) || typeof err.code !== 'string' || typeof err.syscall !== 'string') return e;
  return new CheckpointError(`save: cannot write ${file}: ${err.code} ${err.message}`, { file });
}

/** fsync of a directory makes the rename durable; some filesystems refuse it, which is no error. */
function fsyncDirSync(dir: string): void {
  let fd = -1;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EIO') throw e;
  } finally {
    if (fd >= 0) fs.closeSync(fd);
  }
}

async function fsyncDir(dir: string): Promise<void> {
  let handle: fs.promises.FileHandle | undefined;
  try {
    handle = await fs.promises.open(dir, 'r');
    await handle.sync();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EIO') throw e;
  } finally {
    await handle?.close();
  }
}

/**
 * Where a save really goes. An existing target must be a regular file: renaming over a device,
 * a FIFO or a directory would replace it (as root, `save(m, '/dev/null')` would turn /dev/null
 * into a regular file). A symlink is followed, so the file it points at is replaced, not the link.
 */
function saveTarget(file: string): string {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return file;
    throw saveError(file, e);
  }
  if (!st.isFile()) {
    throw new CheckpointError(`save: cannot write ${file}: it exists and is ${fileKind(st)}, not a regular file (it would be replaced)`, { file });
  }
  return fs.lstatSync(file).isSymbolicLink() ? fs.realpathSync(file) : file;
}

function fileKind(st: fs.Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * Writes a file atomically: `write` fills a new temp file next to it (stale temps of dead saves
 * of the same file are removed first), which is fsynced and renamed over `file`, then the
 * directory is fsynced. If anything throws, the temp file is removed and `file` is untouched.
 */
function writeAtomicSync(target: string, write: (put: (bytes: Uint8Array) => void) => void): void {
  const file = saveTarget(target);
  removeStaleTemps(file);
  const tmp = tempPathFor(file);
  let fd = -1;
  try {
    fd = fs.openSync(tmp, 'wx', 0o644);
    const put = (bytes: Uint8Array) => {
      for (let at = 0; at < bytes.length;) at += fs.writeSync(fd, bytes, at, bytes.length - at);
    };
    write(put);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = -1;
    fs.renameSync(tmp, file);
    fsyncDirSync(path.dirname(path.resolve(file)));
  } catch (e) {
    try {
      if (fd >= 0) fs.closeSync(fd);
    } finally {
      fs.rmSync(tmp, { force: true });
    }
    throw saveError(file, e);
  }
}

async function writeAtomic(target: string, write: (put: (bytes: Uint8Array) => Promise<void>) => Promise<void>): Promise<void> {
  const file = saveTarget(target);
  await removeStaleTempsAsync(file);
  const tmp = tempPathFor(file);
  let handle: fs.promises.FileHandle | undefined;
  try {
    handle = await fs.promises.open(tmp, 'wx', 0o644);
    const h = handle;
    await write(async (bytes) => {
      for (let at = 0; at < bytes.length;) at += (await h.write(bytes, at, bytes.length - at)).bytesWritten;
    });
    await handle.sync();
    await handle.close();
    handle = undefined;
    await fs.promises.rename(tmp, file);
    await fsyncDir(path.dirname(path.resolve(file)));
  } catch (e) {
    await handle?.close().catch(() => undefined);
    await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
    throw saveError(file, e);
  }
}

/** Writes `bytes` to `file` atomically (temp file, fsync, rename, fsync of the directory). */
export function writeFileAtomicSync(file: string, bytes: Uint8Array): void {
  checkFilePath('writeFileAtomicSync', file);
  writeAtomicSync(file, (put) => put(bytes));
}

export async function writeFileAtomic(file: string, bytes: Uint8Array): Promise<void> {
  checkFilePath('writeFileAtomic', file);
  await writeAtomic(file, (put) => put(bytes));
}

/** Saves a state dict (name -> Tensor, any device) as safetensors, atomically. */
export function saveStateDict(stateDict: Record<string, Tensor>, file: string, options: SaveOptions = {}): void {
  checkStateDict('saveStateDict', stateDict);
  checkPath('saveStateDict', file);
  const o = checkSaveOptions('saveStateDict', options);
  const { head, tensors } = plan('saveStateDict', stateDict, o);
  // One tensor at a time: a checkpoint never needs a second copy of the whole model in memory.
  // A read that fails (OutOfMemoryError for a tensor too big for an ArrayBuffer) is rethrown
  // as it is, after the temp file is removed.
  writeAtomicSync(file, (put) => {
    put(head.bytes);
    for (const [name, t] of tensors) put(fileBytes(name, t, t.toArraySync(), head.byteLengths.get(name) as number));
  });
}

/** saveStateDict without blocking the event loop on device reads or disk. */
export async function saveStateDictAsync(stateDict: Record<string, Tensor>, file: string, options: SaveOptions = {}): Promise<void> {
  checkStateDict('saveStateDictAsync', stateDict);
  checkPath('saveStateDictAsync', file);
  const o = checkSaveOptions('saveStateDictAsync', options);
  const { head, tensors } = plan('saveStateDictAsync', stateDict, o);
  // All reads are queued at once, so the file is one consistent snapshot even if training goes
  // on while it is written; the bytes are then streamed tensor by tensor.
  const values = await Promise.all(tensors.map(([, t]) => t.toArray()));
  await writeAtomic(file, async (put) => {
    await put(head.bytes);
    for (const [i, [name, t]] of tensors.entries()) {
      await put(fileBytes(name, t, values[i], head.byteLengths.get(name) as number));
      values[i] = new Float32Array(0);  // let it go once written
    }
  });
}

/** Saves `model.stateDict()` with PyTorch's names and dtypes (num_batches_tracked as I64). */
export function save(model: StateDictModule, file: string, options: SaveOptions = {}): void {
  checkModule('save', model);
  checkPath('save', file);
  checkSaveOptions('save', options);
  const stateDict = model.stateDict();
  try {
    saveStateDict(stateDict, file, options);
  } finally {
    disposeExtraState(model, stateDict);
  }
}

export async function saveAsync(model: StateDictModule, file: string, options: SaveOptions = {}): Promise<void> {
  checkModule('saveAsync', model);
  checkPath('saveAsync', file);
  checkSaveOptions('saveAsync', options);
  const stateDict = model.stateDict();
  try {
    await saveStateDictAsync(stateDict, file, options);
  } finally {
    disposeExtraState(model, stateDict);
  }
}

function hostValues(entry: SafetensorsEntry): Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array {
  if (entry.dtype === 'F16' || entry.dtype === 'BF16') return halfToFloat32(entry.data as Uint16Array, entry.dtype);
  return entry.data as Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;
}

export interface LoadStateDictFileOptions {
  device?: 'cpu' | 'cuda';
}

/**
 * Reads a safetensors file into CPU tensors (or `device`), keeping its names and dtypes. The
 * result has no prototype, so a tensor named "__proto__" or "constructor" is just a name.
 */
export function loadStateDictFile(file: string, options: LoadStateDictFileOptions = {}): Record<string, Tensor> {
  checkPath('loadStateDictFile', file);
  const o = optionsOf<LoadStateDictFileOptions>('loadStateDictFile', options, ['device']);
  const device = o.device ?? 'cpu';
  if (device !== 'cpu' && device !== 'cuda') {
    throw new TypeError(`loadStateDictFile: expected "cpu" or "cuda" for options.device but received ${received(device)}`);
  }
  const parsed = readSafetensorsFile(file);
  const out: Record<string, Tensor> = Object.create(null);
  try {
    for (const [name, entry] of parsed) {
      out[name] = tensor(hostValues(entry), entry.shape, { dtype: FROM_FILE[entry.dtype], device });
    }
  } catch (e) {
    for (const t of Object.values(out)) t.dispose();
    throw e;
  }
  return out;
}

/** Every way the file disagrees with the model, or [] if it fits. */
function mismatches(parsed: Map<string, { dtype: SafetensorsDtype; shape: number[] }>, current: Record<string, Tensor>, strict: boolean) {
  const missingKeys = Object.keys(current).filter((k) => !parsed.has(k));
  const unexpectedKeys = [...parsed.keys()].filter((k) => !Object.prototype.hasOwnProperty.call(current, k));
  const problems: string[] = [];
  if (strict && missingKeys.length) problems.push(`missing keys: ${missingKeys.join(', ')}`);
  if (strict && unexpectedKeys.length) problems.push(`unexpected keys: ${unexpectedKeys.join(', ')}`);
  for (const [name, entry] of parsed) {
    if (!Object.prototype.hasOwnProperty.call(current, name)) continue;
    const target = current[name];
    const same = entry.shape.length === target.shape.length && entry.shape.every((d, i) => d === target.shape[i]);
    if (!same) problems.push(`${name}: shape [${entry.shape.join(', ')}] in the file, [${target.shape.join(', ')}] in the model`);
    if (entry.dtype !== TO_FILE[target.dtype]) {
      problems.push(`${name}: dtype ${entry.dtype} in the file, ${TO_FILE[target.dtype]} (${target.dtype}) in the model`);
    }
  }
  return { missingKeys, unexpectedKeys, problems };
}

/**
 * Loads a checkpoint written by `save` (or by `safetensors.torch.save_file(model.state_dict())`)
 * into `model`. Names, shapes and dtypes are all checked first; on any mismatch it throws a
 * CheckpointError listing every problem and the model is left unchanged.
 */
export function load(model: StateDictModule, file: string, options: LoadOptions = {}): LoadResult {
  checkModule('load', model);
  checkPath('load', file);
  const o = optionsOf<LoadOptions>('load', options, ['strict']);
  const strict = o.strict ?? true;
  if (typeof strict !== 'boolean') throw new TypeError(`load: expected a boolean for options.strict but received ${received(strict)}`);

  const current = model.stateDict();
  // No prototype: a file entry named "__proto__" or "constructor" is a name, never inherited.
  const incoming: Record<string, Tensor> = Object.create(null);
  try {
    const check = (entries: Map<string, { dtype: SafetensorsDtype; shape: number[] }>) => {
      const found = mismatches(entries, current, strict);
      if (found.problems.length) {
        throw new CheckpointError(`load ${file}: the checkpoint does not fit the model (nothing was loaded):\n  ${found.problems.join('\n  ')}`, { file });
      }
      return found;
    };
    // The header first: a file that does not fit is refused before its tensors are read. The
    // full read checks again, in case the file was replaced in between.
    check(readSafetensorsHeader(file).entries);
    const parsed = readSafetensorsFile(file);
    const { missingKeys, unexpectedKeys } = check(parsed);
    for (const [name, entry] of parsed) {
      if (!Object.prototype.hasOwnProperty.call(current, name)) continue;
      const target = current[name];
      incoming[name] = tensor(hostValues(entry), entry.shape, { dtype: target.dtype, device: target.device });
    }
    try {
      model.loadStateDict(incoming, { strict });
    } catch (e) {
      // Names, shapes and dtypes already fit, so a refusal is about a value in the file (a
      // negative num_batches_tracked, say): the file is bad, not the call.
      if (e instanceof RangeError || e instanceof TypeError) {
        throw new CheckpointError(`load ${file}: ${e.message} (nothing was loaded)`, { file });
      }
      throw e;
    }
    return { missingKeys, unexpectedKeys, metadata: { ...parsed.metadata } };
  } finally {
    for (const t of Object.values(incoming)) t.dispose();
    disposeExtraState(model, current);
  }
}
