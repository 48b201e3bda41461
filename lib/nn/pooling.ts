import { adaptiveAvgPool2d, maxPool2d } from '../ops/pooling';
import type { Pair } from '../native';
import type { Tensor } from '../tensor';
import { checkOptions, checkPair, invalidRange } from '../validate';
import { Module } from './module';

export interface MaxPool2dArgs {
  /** default: kernelSize */
  stride?: number | Pair;
  /** default 0; at most half the kernel */
  padding?: number | Pair;
}

/** nn.MaxPool2d (dilation 1, ceil_mode false). */
export class MaxPool2d extends Module {
  readonly kernelSize: Pair;
  readonly stride: Pair;
  readonly padding: Pair;

  constructor(kernelSize: number | Pair, args: MaxPool2dArgs = {}) {
    super();
    const a = checkOptions<MaxPool2dArgs>('args', args, ['stride', 'padding']);
    this.kernelSize = checkPair('kernelSize', kernelSize, 1);
    this.stride = checkPair('stride', a.stride ?? this.kernelSize, 1);
    this.padding = checkPair('padding', a.padding ?? 0, 0);
    if (this.padding[0] * 2 > this.kernelSize[0] || this.padding[1] * 2 > this.kernelSize[1]) {
      throw invalidRange('padding', `at most half the kernel size (${this.kernelSize})`, a.padding);
    }
  }

  forward(x: Tensor): Tensor {
    return maxPool2d(x, this.kernelSize, { stride: this.stride, padding: this.padding });
  }

  protected override extraRepr(): string {
    return `kernelSize=[${this.kernelSize}], stride=[${this.stride}], padding=[${this.padding}]`;
  }
}

/** nn.AdaptiveAvgPool2d */
export class AdaptiveAvgPool2d extends Module {
  readonly outputSize: Pair;

  constructor(outputSize: number | Pair) {
    super();
    this.outputSize = checkPair('outputSize', outputSize, 1);
  }

  forward(x: Tensor): Tensor {
    return adaptiveAvgPool2d(x, this.outputSize);
  }

  protected override extraRepr(): string {
    return `outputSize=[${this.outputSize}]`;
  }
}
