import { batchNorm, batchNormAddRelu, batchNormRelu, checkEps } from '../ops/batchnorm';
import { ones, tensor, zeros } from '../creation';
import type { Device } from '../device';
import type { DType, Tensor } from '../tensor';
import { checkBoolean, checkInteger, checkNumber, checkOptions, invalidRange } from '../validate';
import { checkImageBatch, Module } from './module';

export interface BatchNorm2dArgs {
  /** added to the variance (default 1e-5): finite and >= 0, as in PyTorch */
  eps?: number;
  /** weight of the new batch statistic in the running averages (default 0.1); null: cumulative average */
  momentum?: number | null;
  /** learnable weight and bias (default true) */
  affine?: boolean;
  /** keep running_mean/running_var (default true) */
  trackRunningStats?: boolean;
  device?: Device;
}

/**
 * nn.BatchNorm2d. Training normalizes with the batch mean and biased variance and updates
 * running_mean/running_var (unbiased) with `momentum`; eval uses the running statistics.
 */
// num_batches_tracked from a state dict: one integer >= 0 (exact, so at most 2^53 - 1).
function countOf(value: Tensor): number {
  const v = value.toArraySync()[0];
  const n = typeof v === 'bigint'
    ? (v >= 0n && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : -1)
    : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > Number.MAX_SAFE_INTEGER) {
    throw invalidRange('num_batches_tracked', 'a non-negative integer', typeof v === 'bigint' ? `${v}n` : v);
  }
  return n;
}

export class BatchNorm2d extends Module {
  readonly numFeatures: number;
  readonly eps: number;
  readonly momentum: number | null;
  readonly affine: boolean;
  readonly trackRunningStats: boolean;
  readonly weight: Tensor;
  readonly bias: Tensor;
  readonly runningMean: Tensor | null;
  readonly runningVar: Tensor | null;
  #numBatchesTracked = 0;

  /** Training-mode forwards seen (PyTorch's num_batches_tracked): a non-negative integer. */
  get numBatchesTracked(): number {
    return this.#numBatchesTracked;
  }

  set numBatchesTracked(value: number) {
    this.#numBatchesTracked = checkInteger('numBatchesTracked', value, 0);
  }

  constructor(numFeatures: number, args: BatchNorm2dArgs = {}) {
    super();
    const a = checkOptions<BatchNorm2dArgs>('args', args, ['eps', 'momentum', 'affine', 'trackRunningStats', 'device']);
    this.numFeatures = checkInteger('numFeatures', numFeatures, 1);
    this.eps = checkEps(a.eps);
    this.momentum = a.momentum === null ? null : checkNumber('momentum', a.momentum ?? 0.1, 0, 1);
    this.affine = checkBoolean('affine', a.affine ?? true);
    this.trackRunningStats = checkBoolean('trackRunningStats', a.trackRunningStats ?? true);
    const device = a.device;
    // Without affine, weight/bias are fixed ones/zeros so one native op serves both cases.
    const w = ones([numFeatures], { device });
    const b = zeros([numFeatures], { device });
    if (this.affine) {
      this.weight = this.registerParameter('weight', w);
      this.bias = this.registerParameter('bias', b);
    } else {
      this.weight = w;
      this.bias = b;
    }
    this.runningMean = this.trackRunningStats ? this.registerBuffer('running_mean', zeros([numFeatures], { device })) : null;
    this.runningVar = this.trackRunningStats ? this.registerBuffer('running_var', ones([numFeatures], { device })) : null;
  }

  forward(x: Tensor): Tensor {
    checkImageBatch('BatchNorm2d', x, this.numFeatures);
    // In training the running stats are updated in place; in eval they normalize.
    return batchNorm(x, this.runningMean, this.runningVar, this.weight, this.bias, this.step(x));
  }

  /** relu(this.forward(x)), one fused op where the backend has it. */
  forwardRelu(x: Tensor): Tensor {
    checkImageBatch('BatchNorm2d', x, this.numFeatures);
    return batchNormRelu(x, this.runningMean, this.runningVar, this.weight, this.bias, this.step(x));
  }

  /** relu(this.forward(x) + z): a residual block's tail, fused on CUDA where cuDNN allows. */
  forwardAddRelu(x: Tensor, z: Tensor): Tensor {
    checkImageBatch('BatchNorm2d', x, this.numFeatures);
    return batchNormAddRelu(x, z, this.runningMean, this.runningVar, this.weight, this.bias, this.step(x));
  }

  // Counts the batch and gives the options of this forward.
  private step(x: Tensor): { training: boolean; momentum: number; eps: number } {
    let momentum = this.momentum ?? 0;
    const useBatchStats = this.training || !this.trackRunningStats;
    if (this.training && this.trackRunningStats) {
      this.numBatchesTracked += 1;
      if (this.momentum === null) momentum = 1 / this.numBatchesTracked;
    }
    if (!this.affine) this.followInput(x);
    return { training: useBatchStats, momentum, eps: this.eps };
  }

  // The fixed ones/zeros of a non-affine BN are not registered, so they follow the input.
  private followInput(x: Tensor): void {
    const dtype = x.dtype === 'float64' ? 'float64' : 'float32';
    for (const t of [this.weight, this.bias]) {
      if (t.device === x.device && t.dtype === dtype) continue;
      const moved = t.to({ device: x.device, dtype });
      t.set_(moved);
      moved.dispose();
    }
  }

  protected override extraState(): [string, Tensor][] {
    if (!this.trackRunningStats) return [];
    return [['num_batches_tracked', tensor(BigInt64Array.of(BigInt(this.numBatchesTracked)), [], { dtype: 'int64', device: 'cpu' })]];
  }

  protected override extraStateSpec(): [string, number[], DType, ((value: Tensor) => void)?][] {
    return this.trackRunningStats ? [['num_batches_tracked', [], 'int64', (v) => { countOf(v); }]] : [];
  }

  protected override loadExtraState(_name: string, value: Tensor): void {
    this.numBatchesTracked = countOf(value);
  }

  override dispose(): void {
    super.dispose();
    if (!this.affine) {
      this.weight.dispose();
      this.bias.dispose();
    }
  }

  protected override extraRepr(): string {
    return `${this.numFeatures}, eps=${this.eps}, momentum=${this.momentum}, affine=${this.affine}, trackRunningStats=${this.trackRunningStats}`;
  }
}

