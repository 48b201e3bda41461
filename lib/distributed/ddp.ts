// torch.nn.parallel.DistributedDataParallel: every rank holds the whole model; at construction
// rank 0's parameters and buffers are broadcast, and each backward averages the gradients over
// the ranks. Parameters go into buckets (reverse registration order, about the order backward
// produces their gradients, at most bucketCapMB each); a bucket's all-reduce starts as soon as
// its last gradient is accumulated, as one all-reduce of the bucket's gradients packed together
// (gloo: on its thread; NCCL: one group of all-reduces queued on the CUDA stream behind the
// kernels that produced them), while backward goes on; the backward's
// final callback waits for them all, so `.grad` is averaged when backward() returns.
import { queueCallback } from '../autograd';
import { zerosLike } from '../creation';
import type { Tensor, RemovableHandle } from '../tensor';
import { checkBoolean, checkFinite, checkOptions } from '../validate';
import { Module } from '../nn/module';
import { allReduceCoalescedAsync, broadcastAsync, getBackend, getWorldSize, isInitialized, type Work } from './process-group';

export interface DistributedDataParallelOptions {
  /** most megabytes of gradients per all-reduce bucket; default 25, as torch's */
  bucketCapMB?: number;
  /** broadcast rank 0's buffers (BN running statistics) before every forward; default true, as torch's */
  broadcastBuffers?: boolean;
}

interface Bucket {
  params: Tensor[];
  pending: number;
  work: Work | null;
}

export class DistributedDataParallel extends Module {
  readonly module: Module;
  readonly bucketCapMB: number;
  readonly broadcastBuffers: boolean;
  /** parameter -> its bucket */
  private readonly bucketOf = new Map<Tensor, number>();
  private readonly buckets: Bucket[] = [];
  private readonly hooks: RemovableHandle[] = [];
  private readonly ready = new Set<Tensor>();
  private nextToLaunch = 0;
  private inBackward = false;
  private syncing = true;

  constructor(module: Module, options: DistributedDataParallelOptions = {}) {
    super();
    if (!(module instanceof Module)) throw new TypeError('DistributedDataParallel: expected a Module for module');
    if (!isInitialized()) throw new Error('DistributedDataParallel: no process group (call distributed.initProcessGroup first)');
    const o = checkOptions<DistributedDataParallelOptions>('options', options, ['bucketCapMB', 'broadcastBuffers']);
    this.bucketCapMB = checkFinite('options.bucketCapMB', o.bucketCapMB ?? 25, 0, 1e6);
    this.broadcastBuffers = checkBoolean('options.broadcastBuffers', o.broadcastBuffers ?? true);
    this.module = this.registerModule('module', module);
    // Parameters and buffers on CUDA go over NCCL (one device per rank), on the CPU over gloo.
    const device = getBackend() === 'nccl' ? 'cuda' : 'cpu';
    for (const t of [...module.parameters(), ...module.buffers()]) {
      if (t.device !== device) {
        throw new TypeError(`DistributedDataParallel: a ${module.parameters().includes(t) ? 'parameter' : 'buffer'} is on ${t.device}; ` +
          `the ${getBackend()} backend takes ${device === 'cuda' ? 'CUDA' : 'CPU'} tensors (move the module with .to('${device}') first)`);
      }
    }
    // Every rank starts from rank 0's state.
    const state = [...module.parameters(), ...module.buffers()];
    for (const w of state.map((t) => broadcastAsync(t, 0))) w.waitSync();

    const params = module.parameters().filter((p) => p.requiresGrad).reverse();
    const cap = this.bucketCapMB * 1024 * 1024;
    let bucket: Bucket | null = null;
    let bytes = 0;
    for (const p of params) {
      const size = p.numel * (p.dtype === 'float64' ? 8 : 4);
      if (bucket === null || (bytes + size > cap && bucket.params.length > 0) || bucket.params[0].dtype !== p.dtype) {
        bucket = { params: [], pending: 0, work: null };
        this.buckets.push(bucket);
        bytes = 0;
      }
      bucket.params.push(p);
      bytes += size;
      this.bucketOf.set(p, this.buckets.length - 1);
      this.hooks.push(p.registerPostAccumulateGradHook((t) => this.gradReady(t)));
    }
    this.resetBuckets();
  }

  /** Number of gradient buckets (each one all-reduce launch per backward). */
  get numBuckets(): number {
    return this.buckets.length;
  }

  override forward(...inputs: Tensor[]): Tensor {
    if (this.broadcastBuffers && getWorldSize() > 1) {
      for (const w of this.module.buffers().map((t) => broadcastAsync(t, 0))) w.waitSync();
    }
    return (this.module.forward as (...xs: Tensor[]) => Tensor)(...inputs);
  }

  /**
   * Runs `fn` (forward and backward of micro-batches) without averaging gradients: they
   * accumulate locally, and the next backward outside noSync averages the sum (torch's no_sync).
   */
  noSync<T>(fn: () => T): T {
    const was = this.syncing;
    this.syncing = false;
    try {
      return fn();
    } finally {
      this.syncing = was;
    }
  }

  private resetBuckets(): void {
    for (const b of this.buckets) {
      b.pending = b.params.length;
      b.work = null;
    }
    this.ready.clear();
    this.nextToLaunch = 0;
    this.inBackward = false;
  }

  private gradReady(p: Tensor): void {
    if (!this.syncing) return;
    if (!this.inBackward) {
      this.inBackward = true;
      queueCallback(() => this.finishBackward());
    }
    if (this.ready.has(p)) {
      throw new Error('DistributedDataParallel: a parameter received its gradient twice in one backward (a weight used twice); ' +
        'its average is already on its way, so the second part would be lost');
    }
    this.ready.add(p);
    this.buckets[this.bucketOf.get(p)!].pending--;
    this.launchReady();
  }

  /** Launches buckets in order (every rank must issue the same all-reduces in the same order). */
  private launchReady(): void {
    while (this.nextToLaunch < this.buckets.length && this.buckets[this.nextToLaunch].pending === 0) {
      const b = this.buckets[this.nextToLaunch++];
      b.work = allReduceCoalescedAsync(b.params.map((p) => p.grad!), 'avg');
    }
  }

  private finishBackward(): void {
    try {
      // Parameters this backward did not reach get a zero gradient, so every rank still issues
      // the same all-reduces (torch's find_unused_parameters, always on).
      for (const b of this.buckets) {
        for (const p of b.params) {
          if (this.ready.has(p)) continue;
          if (p.grad === null || p.grad.isDisposed) p.grad = zerosLike(p);
          this.ready.add(p);
          b.pending--;
        }
      }
      this.launchReady();
      for (const b of this.buckets) b.work?.waitSync();
    } finally {
      this.resetBuckets();
    }
  }

  override dispose(): void {
    for (const h of this.hooks) h.remove();
    this.hooks.length = 0;
    super.dispose();
  }
}
