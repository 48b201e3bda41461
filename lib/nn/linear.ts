import { flatten } from '../ops/elementwise';
import { linearIn } from '../ops/linear';
import type { Device } from '../device';
import { checkTensor, Tensor } from '../tensor';
import { checkBoolean, checkInteger, checkOptions, invalidRange, shapeString } from '../validate';
import { biasUniform, kaimingUniformDefault } from './init';
import { checkWeightSize, Module } from './module';

export interface LinearArgs {
  /** add a learnable bias (default true) */
  bias?: boolean;
  device?: Device;
}

/** nn.Linear: y = x W^T + b with PyTorch's default init. */
export class Linear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(inFeatures: number, outFeatures: number, args: LinearArgs = {}) {
    super();
    const a = checkOptions<LinearArgs>('args', args, ['bias', 'device']);
    this.inFeatures = checkInteger('inFeatures', inFeatures, 1, 2 ** 31 - 1);
    this.outFeatures = checkInteger('outFeatures', outFeatures, 1, 2 ** 31 - 1);
    checkWeightSize('Linear', [outFeatures, inFeatures]);
    this.weight = this.registerParameter('weight', kaimingUniformDefault([outFeatures, inFeatures], inFeatures, a.device));
    this.bias = this.registerParameter('bias',
      checkBoolean('bias', a.bias ?? true) ? biasUniform([outFeatures], inFeatures, a.device) : null);
  }

  forward(x: Tensor): Tensor {
    checkTensor('Linear: x', x);
    if (x.ndim !== 2 || x.shape[1] !== this.inFeatures) {
      throw invalidRange('Linear: x', `a 2-D tensor (N, ${this.inFeatures})`, `shape ${shapeString(x.shape)}`);
    }
    return linearIn(this.computeDtype, x, this.weight, this.bias);
  }

  protected override extraRepr(): string {
    return `inFeatures=${this.inFeatures}, outFeatures=${this.outFeatures}, bias=${this.bias !== null}`;
  }
}

/** nn.Flatten (startDim 1, endDim -1 by default). */
export class Flatten extends Module {
  constructor(readonly startDim = 1, readonly endDim = -1) {
    super();
    checkInteger('startDim', startDim, -16, 15);
    checkInteger('endDim', endDim, -16, 15);
  }

  forward(x: Tensor): Tensor {
    return flatten(x, this.startDim, this.endDim);
  }
}
