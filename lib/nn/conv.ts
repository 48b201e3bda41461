import { conv2dIn } from '../ops/conv';
import type { Pair } from '../native';
import type { Device } from '../device';
import type { Tensor } from '../tensor';
import { checkBoolean, checkInteger, checkOptions, checkPair, invalidRange } from '../validate';
import { biasUniform, kaimingUniformDefault } from './init';
import { checkImageBatch, checkWeightSize, Module } from './module';

export interface Conv2dArgs {
  /** default 1 */
  stride?: number | Pair;
  /** default 0 */
  padding?: number | Pair;
  /** default 1 */
  dilation?: number | Pair;
  /** default 1 */
  groups?: number;
  /** add a learnable bias (default true) */
  bias?: boolean;
  /** where the parameters live (default: the default device) */
  device?: Device;
}

/** nn.Conv2d: weight (out, in/groups, kh, kw) with PyTorch's default init. */
export class Conv2d extends Module {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: Pair;
  readonly stride: Pair;
  readonly padding: Pair;
  readonly dilation: Pair;
  readonly groups: number;
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(inChannels: number, outChannels: number, kernelSize: number | Pair, args: Conv2dArgs = {}) {
    super();
    const a = checkOptions<Conv2dArgs>('args', args, ['stride', 'padding', 'dilation', 'groups', 'bias', 'device']);
    // A dimension of a tensor is at most 2^31 - 1 (the addon's limit), and so are the channels.
    this.inChannels = checkInteger('inChannels', inChannels, 1, 2 ** 31 - 1);
    this.outChannels = checkInteger('outChannels', outChannels, 1, 2 ** 31 - 1);
    this.kernelSize = checkPair('kernelSize', kernelSize, 1);
    this.stride = checkPair('stride', a.stride ?? 1, 1);
    this.padding = checkPair('padding', a.padding ?? 0, 0);
    this.dilation = checkPair('dilation', a.dilation ?? 1, 1);
    this.groups = checkInteger('groups', a.groups ?? 1, 1);
    if (inChannels % this.groups || outChannels % this.groups) {
      throw invalidRange('groups', `a divisor of inChannels (${inChannels}) and outChannels (${outChannels})`, this.groups);
    }
    const useBias = checkBoolean('bias', a.bias ?? true);
    const fanIn = (inChannels / this.groups) * this.kernelSize[0] * this.kernelSize[1];
    checkWeightSize('Conv2d', [outChannels, inChannels / this.groups, ...this.kernelSize]);
    this.weight = this.registerParameter('weight',
      kaimingUniformDefault([outChannels, inChannels / this.groups, ...this.kernelSize], fanIn, a.device));
    this.bias = this.registerParameter('bias', useBias ? biasUniform([outChannels], fanIn, a.device) : null);
  }

  forward(x: Tensor): Tensor {
    checkImageBatch('Conv2d', x, this.inChannels);
    return conv2dIn(this.computeDtype, x, this.weight, this.bias, {
      stride: this.stride, padding: this.padding, dilation: this.dilation, groups: this.groups,
    });
  }

  protected override extraRepr(): string {
    const k = this.kernelSize;
    let s = `${this.inChannels}, ${this.outChannels}, kernelSize=[${k}], stride=[${this.stride}]`;
    if (this.padding[0] || this.padding[1]) s += `, padding=[${this.padding}]`;
    if (this.dilation[0] !== 1 || this.dilation[1] !== 1) s += `, dilation=[${this.dilation}]`;
    if (this.groups !== 1) s += `, groups=${this.groups}`;
    if (!this.bias) s += ', bias=false';
    return s;
  }
}
