// torch.distributed's process group, over gloo (CPU tensors). The collectives run on gloo's
// own algorithms in native/gloo/ (one worker thread per group, in submission order, so every
// rank issues them in the same order as gloo requires); rendezvous is a TCP store on rank 0 at
// MASTER_ADDR:MASTER_PORT, as torchrun sets up, or gloo's file store on a shared directory.
import { native, type NativeHandle, type ProcessGroupHandle, type WorkHandle, type DistInfo } from '../native';
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
}

/** One collective in flight (torch's Work): wait for it without blocking the event loop, or synchronously. */
export interface Work {
  wait(): Promise<void>;
  waitSync(): void;
  isCompleted(): boolean;
}

interface Group {
  handle: ProcessGroupHandle;
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
  const o = checkOptions<InitProcessGroupOptions>('options', options, ['backend', 'initMethod', 'rank', 'worldSize', 'timeout']);
  if (group !== null) throw new Error('initProcessGroup: already initialized (call destroyProcessGroup first)');
  const backend = checkOneOf<Backend>('options.backend', o.backend ?? 'gloo', ['gloo', 'nccl']);
  if (backend === 'nccl') {
    throw new Error('initProcessGroup: backend "nccl" needs CUDA tensors and a GPU build of the collectives, which this build ' +
      'does not have yet; use backend "gloo" (CPU tensors)');
  }
  const worldSize = o.worldSize === undefined ? envInt('WORLD_SIZE', 1) : checkInteger('options.worldSize', o.worldSize, 1);
  const rank = o.rank === undefined ? envInt('RANK', 0) : checkInteger('options.rank', o.rank, 0);
  if (rank >= worldSize) throw new RangeError(`options.rank: expected 0..${worldSize - 1} (worldSize ${worldSize}), received ${rank}`);
  const initMethod = o.initMethod ?? 'env://';
  if (typeof initMethod !== 'string') throw invalidType('options.initMethod', "a string such as 'env://'", initMethod);
  const timeoutMs = checkInteger('options.timeout', o.timeout ?? 30 * 60 * 1000, 1);
  const info = glooInfo();
  if (!info.available) throw new Error(`initProcessGroup: gloo is not usable here: ${info.reason ?? 'unknown reason'} (see \`cudnn-resblock doctor\`)`);
  const handle = native.distInit({ rank, worldSize, store: parseInitMethod(initMethod), timeoutMs });
  group = { handle, backend, rank, worldSize };
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
  if (g) native.distDestroy(g.handle);
}

function cpuTensor(op: string, name: string, t: unknown): NativeHandle {
  if (!(t instanceof Tensor)) throw invalidType(`${op}: ${name}`, 'a Tensor', t);
  if (t.device !== 'cpu') throw new TypeError(`${op}: ${name} is on ${t.device}; the gloo backend takes CPU tensors (NCCL is for CUDA tensors)`);
  return t.handle;
}

function work(handle: WorkHandle): Work {
  return {
    wait: () => native.distWait(handle),
    waitSync: () => native.distWaitSync(handle),
    isCompleted: () => native.distIsCompleted(handle),
  };
}

/** In place on every rank: the sum (or average, max, min) of `tensor` over the ranks. Returns at once. */
export function allReduceAsync(tensor: Tensor, op: ReduceOp = 'sum'): Work {
  const g = current('allReduce');
  const h = cpuTensor('allReduce', 'tensor', tensor);
  return work(native.distAllReduce(g.handle, h, checkOneOf<ReduceOp>('op', op, ['sum', 'avg', 'max', 'min'])));
}

/** Several tensors of one dtype reduced in place as one all-reduce (torch's all_reduce_coalesced). */
export function allReduceCoalescedAsync(tensors: readonly Tensor[], op: ReduceOp = 'sum'): Work {
  const g = current('allReduceCoalesced');
  if (!Array.isArray(tensors) || tensors.length === 0) throw invalidType('allReduceCoalesced: tensors', 'a non-empty array of Tensors', tensors);
  const handles = tensors.map((t, i) => cpuTensor('allReduceCoalesced', `tensors[${i}]`, t));
  return work(native.distAllReduceCoalesced(g.handle, handles, checkOneOf<ReduceOp>('op', op, ['sum', 'avg', 'max', 'min'])));
}

export function allReduce(tensor: Tensor, op: ReduceOp = 'sum'): Promise<void> {
  return allReduceAsync(tensor, op).wait();
}

/** In place: every rank's `tensor` becomes rank `src`'s. */
export function broadcastAsync(tensor: Tensor, src = 0): Work {
  const g = current('broadcast');
  const h = cpuTensor('broadcast', 'tensor', tensor);
  return work(native.distBroadcast(g.handle, h, checkInteger('src', src, 0, g.worldSize - 1)));
}

export function broadcast(tensor: Tensor, src = 0): Promise<void> {
  return broadcastAsync(tensor, src).wait();
}

/** `output` (worldSize x input's elements, rank r's at r * input.numel) gathers every rank's `input`. */
export function allGatherAsync(output: Tensor, input: Tensor): Work {
  const g = current('allGather');
  const out = cpuTensor('allGather', 'output', output);
  const inp = cpuTensor('allGather', 'input', input);
  if (output.numel !== input.numel * g.worldSize || output.dtype !== input.dtype) {
    throw new RangeError(`allGather: expected output of ${input.numel * g.worldSize} ${input.dtype} elements (worldSize ${g.worldSize} x input), ` +
      `received ${output.numel} ${output.dtype}`);
  }
  return work(native.distAllGather(g.handle, out, inp));
}

export function allGather(output: Tensor, input: Tensor): Promise<void> {
  return allGatherAsync(output, input).wait();
}

/** Resolves once every rank has called barrier(). */
export function barrier(): Promise<void> {
  return work(native.distBarrier(current('barrier').handle)).wait();
}
