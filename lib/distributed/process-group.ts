// torch.distributed's process group. CPU tensors go over gloo: its own algorithms in
// native/gloo/ (one worker thread per group, in submission order, so every rank issues them in
// the same order as gloo requires); rendezvous is a TCP store on rank 0 at
// MASTER_ADDR:MASTER_PORT, as torchrun sets up, or gloo's file store on a shared directory.
// With backend 'nccl', CUDA tensors go over NCCL (native/nccl/), queued on the CUDA backend's
// stream; the gloo group is still made first, carries NCCL's rendezvous (rank 0's unique id) and
// keeps serving CPU tensors and barrier(), as torch's nccl groups lean on a store.
import { tensor } from '../creation';
import { native, type NativeHandle, type ProcessGroupHandle, type WorkHandle, type DistInfo, type NcclCommHandle, type NcclInfo,
  type NcclWorkHandle } from '../native';
import { Tensor } from '../tensor';
import { checkInteger, checkOneOf, checkOptions, invalidType } from '../validate';

export type Backend = 'gloo' | 'nccl';
export type ReduceOp = 'sum' | 'avg' | 'max' | 'min';

export interface InitProcessGroupOptions {
  /** 'gloo' (CPU tensors; the default); 'nccl' is for CUDA tensors */
  backend?: Backend;
  /** 'env://' (default: MASTER_ADDR, MASTER_PORT), 'tcp://host:port' or 'file:///shared/path' */
  initMethod?: string;
  /** default: $RANK */
  rank?: number;
  /** default: $WORLD_SIZE */
  worldSize?: number;
  /** for rendezvous and every collective, ms; default 30 min, as torch's */
  timeout?: number;
  /** backend 'nccl': the CUDA device of this rank; default $CRB_CUDA_DEVICE, else $LOCAL_RANK
   * (torchrun's `cuda:LOCAL_RANK`), else 0. The CUDA backend picks its device once, at its first
   * use, so call initProcessGroup before anything uses CUDA. */
  device?: number;
}

/** One collective in flight (torch's Work): wait for it without blocking the event loop, or synchronously. */
export interface Work {
  wait(): Promise<void>;
  waitSync(): void;
  isCompleted(): boolean;
}

interface Group {
  handle: ProcessGroupHandle;
  /** backend 'nccl' only */
  nccl: NcclCommHandle | null;
  backend: Backend;
  rank: number;
  worldSize: number;
}

let group: Group | null = null;

function envInt(name: string, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || !/^\d+$/.test(raw.trim())) {
    throw new Error(`initProcessGroup: $${name} is ${raw === undefined ? 'not set' : `"${raw}"`}; start the script with ` +
      '`cudnn-resblock launch --nproc N script.js` (or torchrun), or pass options.rank / options.worldSize');
  }
  return checkInteger(`$${name}`, Number(raw), min);
}

function parseInitMethod(method: string): { kind: 'tcp'; host: string; port: number } | { kind: 'file'; path: string } {
  if (method === 'env://') {
    const host = process.env.MASTER_ADDR;
    if (!host) throw new Error('initProcessGroup: $MASTER_ADDR is not set (env:// rendezvous; the launcher sets it)');
    return { kind: 'tcp', host, port: envInt('MASTER_PORT', 1) };
  }
  const tcp = /^tcp:\/\/\[?([^\]]+?)\]?:(\d+)$/.exec(method);
  if (tcp) return { kind: 'tcp', host: tcp[1], port: checkInteger('initMethod port', Number(tcp[2]), 1, 65535) };
  if (method.startsWith('file://') && method.length > 'file://'.length) return { kind: 'file', path: method.slice('file://'.length) };
  throw new RangeError(`options.initMethod: expected 'env://', 'tcp://host:port' or 'file:///path', received "${method}"`);
}

/**
 * Joins the process group; returns once every rank has (or throws a DistError naming the ranks
 * that did not come within the timeout). rank and worldSize come from the environment by default.
 */
export async function initProcessGroup(options: InitProcessGroupOptions = {}): Promise<void> {
  const o = checkOptions<InitProcessGroupOptions>('options', options, ['backend', 'initMethod', 'rank', 'worldSize', 'timeout', 'device']);
  if (group !== null) throw new Error('initProcessGroup: already initialized (call destroyProcessGroup first)');
  const backend = checkOneOf<Backend>('options.backend', o.backend ?? 'gloo', ['gloo', 'nccl']);
  if (o.device !== undefined && backend !== 'nccl') throw new TypeError('options.device: only for backend "nccl"');
  const device = backend === 'nccl' ? ncclDevice(o.device) : 0;
  const worldSize = o.worldSize === undefined ? envInt('WORLD_SIZE', 1) : checkInteger('options.worldSize', o.worldSize, 1);
  const rank = o.rank === undefined ? envInt('RANK', 0) : checkInteger('options.rank', o.rank, 0);
  if (rank >= worldSize) throw new RangeError(`options.rank: expected 0..${worldSize - 1} (worldSize ${worldSize}), received ${rank}`);
  const initMethod = o.initMethod ?? 'env://';
  if (typeof initMethod !== 'string') throw invalidType('options.initMethod', "a string such as 'env://'", initMethod);
  const timeoutMs = checkInteger('options.timeout', o.timeout ?? 30 * 60 * 1000, 1);
  const info = glooInfo();
  if (!info.available) throw new Error(`initProcessGroup: gloo is not usable here: ${info.reason ?? 'unknown reason'} (see \`cudnn-resblock doctor\`)`);
  const handle = native.distInit({ rank, worldSize, store: parseInitMethod(initMethod), timeoutMs });
  try {
    const nccl = backend === 'nccl' ? ncclRendezvous(handle, rank, worldSize, device, timeoutMs) : null;
    group = { handle, nccl, backend, rank, worldSize };
  } catch (e) {
    native.distDestroy(handle);
    throw e;
  }
}

function ncclDevice(option: number | undefined): number {
  const fromEnv = (name: string): number | undefined => {
    const raw = process.env[name];
    if (raw === undefined || raw === '') return undefined;
    if (!/^\d+$/.test(raw.trim())) throw new RangeError(`initProcessGroup: $${name} must be a device index, received "${raw}"`);
    return Number(raw);
  };
  const device = option === undefined ? fromEnv('CRB_CUDA_DEVICE') ?? fromEnv('LOCAL_RANK') ?? 0 : checkInteger('options.device', option, 0);
  // Read by the CUDA backend when it initializes (its first use); ncclInit checks it took.
  if (process.env.CRB_CUDA_DEVICE === undefined || process.env.CRB_CUDA_DEVICE === '') process.env.CRB_CUDA_DEVICE = String(device);
  return device;
}

/**
 * NCCL's rendezvous over the gloo group: every rank first says whether it can take part (so a
 * rank without NCCL or CUDA fails every rank at once, naming it, instead of leaving the others
 * in ncclCommInitRank until the timeout); rank 0's unique id (made before that, as part of its
 * answer) then reaches every rank by a gloo broadcast of a uint8 tensor.
 */
function ncclRendezvous(pg: ProcessGroupHandle, rank: number, worldSize: number, device: number, timeoutMs: number): NcclCommHandle {
  let why = '';
  let id: Uint8Array = new Uint8Array(128);
  const info = native.ncclInfo();
  const cuda = native.backendInfo().cuda;
  if (!info.available) why = `NCCL is not usable: ${info.reason ?? 'unknown reason'}`;
  else if (!cuda.available) why = `CUDA is not available: ${cuda.reason ?? 'unknown reason'}`;
  else if (rank === 0) {
    try {
      id = native.ncclUniqueId();
    } catch (e) {
      why = (e as Error).message;
    }
  }
  const mine = tensor(new Int32Array([why === '' ? 1 : 0]), [1], { dtype: 'int32' });
  const all = tensor(new Int32Array(worldSize), [worldSize], { dtype: 'int32' });
  const idTensor = tensor(id, [128], { dtype: 'uint8' });
  try {
    native.distWaitSync(native.distAllGather(pg, all.handle, mine.handle));
    const missing = Array.from(all.toArraySync() as Int32Array).flatMap((ok, r) => (ok === 1 ? [] : [r]));
    if (missing.length > 0) {
      const who = `rank${missing.length > 1 ? 's' : ''} ${missing.join(', ')} of ${worldSize}`;
      throw new Error(`initProcessGroup: backend "nccl": ${who} cannot take part${why ? ` (rank ${rank}: ${why})` : ''}; ` +
        'see `cudnn-resblock doctor` on each');
    }
    native.distWaitSync(native.distBroadcast(pg, idTensor.handle, 0));
    return native.ncclInit({ id: new Uint8Array(idTensor.toArraySync() as Uint8Array), rank, worldSize, device, timeoutMs });
  } finally {
    for (const t of [mine, all, idTensor]) t.dispose();
  }
}

/** Whether NCCL can be used here, and if not why (libcrb_nccl.so is loaded on the first call;
 * whether CUDA runs is backendInfo()'s answer, which fixes the CUDA device: ask it after
 * initProcessGroup). */
export function ncclInfo(): NcclInfo {
  return native.ncclInfo();
}


/** Whether gloo can be used here, and if not why (the library is loaded on the first call). */
export function glooInfo(): DistInfo {
  return native.distInfo();
}

export function isGlooAvailable(): boolean {
  return glooInfo().available;
}

export function isInitialized(): boolean {
  return group !== null;
}

function current(op: string): Group {
  if (group === null) throw new Error(`${op}: no process group (call distributed.initProcessGroup first)`);
  return group;
}

export function getRank(): number {
  return current('getRank').rank;
}

export function getWorldSize(): number {
  return current('getWorldSize').worldSize;
}

export function getBackend(): Backend {
  return current('getBackend').backend;
}

/** Leaves the group; pending collectives fail. Idempotent. */
export function destroyProcessGroup(): void {
  const g = group;
  group = null;
  if (g?.nccl) native.ncclDestroy(g.nccl);
  if (g) native.distDestroy(g.handle);
}

/** Where a collective on `tensors` goes: CPU tensors to gloo, CUDA tensors to NCCL (backend 'nccl'). */
type Route = { nccl: null; handles: NativeHandle[] } | { nccl: NcclCommHandle; handles: NativeHandle[] };

function route(op: string, g: Group, tensors: readonly (readonly [string, unknown])[]): Route {
  const handles: NativeHandle[] = [];
  let device: string | null = null;
  for (const [name, t] of tensors) {
    if (!(t instanceof Tensor)) throw invalidType(`${op}: ${name}`, 'a Tensor', t);
    if (device !== null && t.device !== device) {
      throw new TypeError(`${op}: ${name} is on ${t.device} but ${tensors[0][0]} is on ${device}; one collective takes tensors of one device`);
    }
    device = t.device;
    handles.push(t.handle);
  }
  if (device === 'cpu') return { nccl: null, handles };
  if (g.nccl === null) {
    throw new TypeError(`${op}: ${tensors[0][0]} is on ${device}; the gloo backend takes CPU tensors ` +
      "(initProcessGroup({ backend: 'nccl' }) for CUDA tensors)");
  }
  return { nccl: g.nccl, handles };
}

function work(handle: WorkHandle): Work {
  return {
    wait: () => native.distWait(handle),
    waitSync: () => native.distWaitSync(handle),
    isCompleted: () => native.distIsCompleted(handle),
  };
}

function ncclWork(handle: NcclWorkHandle): Work {
  return {
    wait: () => native.ncclWait(handle),
    waitSync: () => native.ncclWaitSync(handle),
    isCompleted: () => native.ncclIsCompleted(handle),
  };
}

/** In place on every rank: the sum (or average, max, min) of `tensor` over the ranks. Returns at once. */
export function allReduceAsync(tensor: Tensor, op: ReduceOp = 'sum'): Work {
  const g = current('allReduce');
  const r = route('allReduce', g, [['tensor', tensor]]);
  const o = checkOneOf<ReduceOp>('op', op, ['sum', 'avg', 'max', 'min']);
  return r.nccl ? ncclWork(native.ncclAllReduce(r.nccl, r.handles[0], o)) : work(native.distAllReduce(g.handle, r.handles[0], o));
}

/** Several tensors of one dtype reduced in place as one all-reduce (torch's all_reduce_coalesced). */
export function allReduceCoalescedAsync(tensors: readonly Tensor[], op: ReduceOp = 'sum'): Work {
  const g = current('allReduceCoalesced');
  if (!Array.isArray(tensors) || tensors.length === 0) throw invalidType('allReduceCoalesced: tensors', 'a non-empty array of Tensors', tensors);
  const r = route('allReduceCoalesced', g, tensors.map((t, i) => [`tensors[${i}]`, t] as const));
  const o = checkOneOf<ReduceOp>('op', op, ['sum', 'avg', 'max', 'min']);
  return r.nccl ? ncclWork(native.ncclAllReduceCoalesced(r.nccl, r.handles, o)) : work(native.distAllReduceCoalesced(g.handle, r.handles, o));
}

export function allReduce(tensor: Tensor, op: ReduceOp = 'sum'): Promise<void> {
  return allReduceAsync(tensor, op).wait();
}

/** In place: every rank's `tensor` becomes rank `src`'s. */
export function broadcastAsync(tensor: Tensor, src = 0): Work {
  const g = current('broadcast');
  const r = route('broadcast', g, [['tensor', tensor]]);
  const root = checkInteger('src', src, 0, g.worldSize - 1);
  return r.nccl ? ncclWork(native.ncclBroadcast(r.nccl, r.handles[0], root)) : work(native.distBroadcast(g.handle, r.handles[0], root));
}

export function broadcast(tensor: Tensor, src = 0): Promise<void> {
  return broadcastAsync(tensor, src).wait();
}

/** `output` (worldSize x input's elements, rank r's at r * input.numel) gathers every rank's `input`. */
export function allGatherAsync(output: Tensor, input: Tensor): Work {
  const g = current('allGather');
  const r = route('allGather', g, [['output', output], ['input', input]]);
  if (output.numel !== input.numel * g.worldSize || output.dtype !== input.dtype) {
    throw new RangeError(`allGather: expected output of ${input.numel * g.worldSize} ${input.dtype} elements (worldSize ${g.worldSize} x input), ` +
      `received ${output.numel} ${output.dtype}`);
  }
  const [out, inp] = r.handles;
  return r.nccl ? ncclWork(native.ncclAllGather(r.nccl, out, inp)) : work(native.distAllGather(g.handle, out, inp));
}

export function allGather(output: Tensor, input: Tensor): Promise<void> {
  return allGatherAsync(output, input).wait();
}

/** Resolves once every rank has called barrier() (over gloo, for either backend: it orders the
 * processes, not the CUDA streams; wait on NCCL works first where that matters). */
export function barrier(): Promise<void> {
  return work(native.distBarrier(current('barrier').handle)).wait();
}
