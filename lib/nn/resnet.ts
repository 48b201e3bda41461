import { checkBoolean, checkInteger, checkOptions } from '../validate';
import type { Device } from '../device';
import { ReLU } from './activation';
import { BatchNorm2d } from './batchnorm';
import { Sequential } from './container';
import { Conv2d } from './conv';
import { Flatten, Linear } from './linear';
import { AdaptiveAvgPool2d, MaxPool2d } from './pooling';
import { ResidualBlock } from './residual';

/** d2l's resnet_block: numResiduals blocks; the first halves the size unless firstBlock. */
export function resnetBlock(inputChannels: number, numChannels: number, numResiduals: number, firstBlock = false, device?: Device): ResidualBlock[] {
  checkInteger('numResiduals', numResiduals, 0);
  checkBoolean('firstBlock', firstBlock);
  const blocks: ResidualBlock[] = [];
  for (let i = 0; i < numResiduals; i++) {
    blocks.push(i === 0 && !firstBlock
      ? new ResidualBlock(inputChannels, numChannels, { use1x1conv: true, strides: 2, device })
      : new ResidualBlock(numChannels, numChannels, { device }));
  }
  return blocks;
}

export interface ResNet18Args {
  /** default 10 */
  numClasses?: number;
  /** default 1 (Fashion-MNIST) */
  inChannels?: number;
  device?: Device;
}

/**
 * d2l's ResNet-18 as an nn.Sequential, so state-dict names line up with PyTorch's one to one:
 * 0 = b1 (Conv2d(in, 64, 7, 2, 3), BN, ReLU, MaxPool(3, 2, 1)), 1..4 = stages of 64, 128, 256,
 * 512 channels (two residual blocks each), 5 = AdaptiveAvgPool2d(1, 1), 6 = Flatten, 7 = Linear.
 */
export function resnet18(args: ResNet18Args = {}): Sequential {
  const a = checkOptions<ResNet18Args>('args', args, ['numClasses', 'inChannels', 'device']);
  const numClasses = checkInteger('numClasses', a.numClasses ?? 10, 1);
  const inChannels = checkInteger('inChannels', a.inChannels ?? 1, 1);
  const device = a.device;
  const b1 = new Sequential(
    new Conv2d(inChannels, 64, 7, { stride: 2, padding: 3, device }),
    new BatchNorm2d(64, { device }),
    new ReLU(),
    new MaxPool2d(3, { stride: 2, padding: 1 }),
  );
  return new Sequential(
    b1,
    new Sequential(...resnetBlock(64, 64, 2, true, device)),
    new Sequential(...resnetBlock(64, 128, 2, false, device)),
    new Sequential(...resnetBlock(128, 256, 2, false, device)),
    new Sequential(...resnetBlock(256, 512, 2, false, device)),
    new AdaptiveAvgPool2d([1, 1]),
    new Flatten(),
    new Linear(512, numClasses, { device }),
  );
}
