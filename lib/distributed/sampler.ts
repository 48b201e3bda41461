// torch.utils.data.distributed.DistributedSampler: each rank a disjoint share of one seeded
// permutation, the same length on every rank (the tail padded with the first examples, or
// dropped with dropLast), reshuffled per epoch.
import { mulberry32, shuffleInPlace } from '../data/fashion-mnist';
import { checkBoolean, checkInteger, checkOptions } from '../validate';
import { getRank, getWorldSize, isInitialized } from './process-group';

export interface DistributedSamplerOptions {
  /** default: the process group's world size */
  numReplicas?: number;
  /** default: the process group's rank */
  rank?: number;
  /** default true */
  shuffle?: boolean;
  /** default 0; epoch e shuffles with seed + e, the same permutation on every rank */
  seed?: number;
  /** drop the tail so every rank gets floor(n / replicas) examples; default false (pad instead) */
  dropLast?: boolean;
}

/** Anything the DataLoader can take as `sampler`: the example order of an epoch. */
export interface Sampler {
  readonly length: number;
  order(epoch: number): ArrayLike<number>;
}

export class DistributedSampler implements Sampler {
  readonly numReplicas: number;
  readonly rank: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  readonly numSamples: number;
  readonly totalSize: number;
  /** the epoch `order()` uses when the loader iterates without one (torch's set_epoch) */
  epoch = 0;

  constructor(readonly dataset: { readonly n: number }, options: DistributedSamplerOptions = {}) {
    const o = checkOptions<DistributedSamplerOptions>('options', options, ['numReplicas', 'rank', 'shuffle', 'seed', 'dropLast']);
    if (dataset === null || typeof dataset !== 'object' || !Number.isInteger(dataset.n)) {
      throw new TypeError('dataset: expected a dataset with an integer n (its number of examples)');
    }
    const need = (name: string): never => {
      throw new Error(`DistributedSampler: options.${name} not given and no process group (call distributed.initProcessGroup first)`);
    };
    this.numReplicas = checkInteger('options.numReplicas', o.numReplicas ?? (isInitialized() ? getWorldSize() : need('numReplicas')), 1);
    this.rank = checkInteger('options.rank', o.rank ?? (isInitialized() ? getRank() : need('rank')), 0, this.numReplicas - 1);
    this.shuffle = checkBoolean('options.shuffle', o.shuffle ?? true);
    this.seed = checkInteger('options.seed', o.seed ?? 0, 0, Number.MAX_SAFE_INTEGER);
    this.dropLast = checkBoolean('options.dropLast', o.dropLast ?? false);
    const n = dataset.n;
    this.numSamples = this.dropLast ? Math.floor(n / this.numReplicas) : Math.ceil(n / this.numReplicas);
    this.totalSize = this.numSamples * this.numReplicas;
  }

  get length(): number {
    return this.numSamples;
  }

  setEpoch(epoch: number): void {
    this.epoch = checkInteger('epoch', epoch, 0);
  }

  /** This rank's examples of `epoch`: every numReplicas-th of the padded permutation. */
  order(epoch: number = this.epoch): Uint32Array {
    checkInteger('epoch', epoch, 0);
    const n = this.dataset.n;
    const all = new Uint32Array(n);
    for (let i = 0; i < n; i++) all[i] = i;
    if (this.shuffle) shuffleInPlace(all, mulberry32((this.seed + epoch) >>> 0));
    const out = new Uint32Array(this.numSamples);
    for (let k = 0; k < this.numSamples; k++) out[k] = all[(this.rank + k * this.numReplicas) % n];
    return out;
  }
}
