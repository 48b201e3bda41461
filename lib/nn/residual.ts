import type { Device } from '../device';
import type { Tensor } from '../tensor';
import { checkBoolean, checkInteger, checkOptions } from '../validate';
import { BatchNorm2d } from './batchnorm';
import { convBnAddRelu, convBnRelu } from './block-steps';
import { Conv2d } from './conv';
import { checkImageBatch, Module } from './module';

export interface ResidualBlockArgs {
  /** 1x1 convolution on the shortcut (needed when channels or stride change); default false */
  use1x1conv?: boolean;
  /** stride of the first 3x3 conv and of the shortcut; default 1 */
  strides?: number;
  device?: Device;
}

/**
 * d2l's ResidualBlock: conv3x3(stride) -> BN -> ReLU -> conv3x3 -> BN, plus the input (through
 * a 1x1 conv with the same stride when use1x1conv), then ReLU. Parameter names match PyTorch's
 * (conv1, bn1, conv2, bn2, conv3).
 */
export class ResidualBlock extends Module {
  readonly inputChannels: number;
  readonly numChannels: number;
  readonly strides: number;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly conv3: Conv2d | null;

  constructor(inputChannels: number, numChannels: number, args: ResidualBlockArgs = {}) {
    super();
    const a = checkOptions<ResidualBlockArgs>('args', args, ['use1x1conv', 'strides', 'device']);
    this.inputChannels = checkInteger('inputChannels', inputChannels, 1);
    this.numChannels = checkInteger('numChannels', numChannels, 1);
    this.strides = checkInteger('strides', a.strides ?? 1, 1);
    const use1x1conv = checkBoolean('use1x1conv', a.use1x1conv ?? false);
    const device = a.device;
    this.conv1 = this.registerModule('conv1', new Conv2d(inputChannels, numChannels, 3, { padding: 1, stride: this.strides, device }));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(numChannels, { device }));
    this.conv2 = this.registerModule('conv2', new Conv2d(numChannels, numChannels, 3, { padding: 1, device }));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(numChannels, { device }));
    this.conv3 = use1x1conv
      ? this.registerModule('conv3', new Conv2d(inputChannels, numChannels, 1, { stride: this.strides, device }))
      : null;
  }

  get use1x1conv(): boolean {
    return this.conv3 !== null;
  }

  forward(x: Tensor): Tensor {
    checkImageBatch('ResidualBlock', x, this.inputChannels);
    const r1 = convBnRelu(this.conv1, this.bn1, x);
    try {
      return convBnAddRelu(this.conv2, this.bn2, r1, x, this.conv3);
    } finally {
      r1.dispose();
    }
  }
}
