// torchvision's ResNets (torchvision.models.resnet, v1.5: a Bottleneck's stride is on its 3x3
// conv), with torchvision's module tree, so state-dict names, order, shapes and dtypes match
// `torchvision.models.resnet18/34/50().state_dict()` one to one (test/39 checks them against a
// fixture generated from torchvision). d2l's resnet18 (a Sequential) stays `nn.resnet18`.
import { noGrad } from '../autograd';
import { randn, zerosLike } from '../creation';
import type { Device } from '../device';
import { flatten } from '../ops/elementwise';
import type { Tensor } from '../tensor';
import { checkBoolean, checkInteger, checkOptions } from '../validate';
import { BatchNorm2d } from '../nn/batchnorm';
import { Sequential } from '../nn/container';
import { Conv2d } from '../nn/conv';
import { convBnAddRelu, convBnRelu } from '../nn/block-steps';
import { Linear } from '../nn/linear';
import { checkImageBatch, Module } from '../nn/module';
import { AdaptiveAvgPool2d, MaxPool2d } from '../nn/pooling';
import { ReLU } from '../nn/activation';

export interface ResNetArgs {
  /** outputs of `fc` (default 1000, ImageNet) */
  numClasses?: number;
  /** zero the last BN weight of each block so each block starts as the identity (default false) */
  zeroInitResidual?: boolean;
  /** input image channels (default 3) */
  inChannels?: number;
  /** where the parameters live (default: the default device) */
  device?: Device;
}

const RESNET_KEYS = ['numClasses', 'zeroInitResidual', 'inChannels', 'device'] as const;

function conv3x3(inPlanes: number, outPlanes: number, stride: number, device?: Device): Conv2d {
  return new Conv2d(inPlanes, outPlanes, 3, { stride, padding: 1, bias: false, device });
}

function conv1x1(inPlanes: number, outPlanes: number, stride: number, device?: Device): Conv2d {
  return new Conv2d(inPlanes, outPlanes, 1, { stride, bias: false, device });
}

/** BasicBlock (expansion 1): conv3x3(stride) -> bn1 -> relu -> conv3x3 -> bn2, + identity, relu. */
export class BasicBlock extends Module {
  static readonly expansion = 1;
  readonly inPlanes: number;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly downsample: Sequential | null;

  constructor(inPlanes: number, planes: number, stride = 1, downsample: Sequential | null = null, device?: Device) {
    super();
    this.inPlanes = checkInteger('inPlanes', inPlanes, 1);
    checkInteger('planes', planes, 1);
    checkInteger('stride', stride, 1);
    this.conv1 = this.registerModule('conv1', conv3x3(inPlanes, planes, stride, device));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(planes, { device }));
    // torchvision's `relu` has no state, so it is not registered (and not in the state dict).
    this.conv2 = this.registerModule('conv2', conv3x3(planes, planes, 1, device));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(planes, { device }));
    this.downsample = downsample ? this.registerModule('downsample', downsample) : null;
  }

  /** The BN whose weight zeroInitResidual zeroes. */
  get lastBn(): BatchNorm2d {
    return this.bn2;
  }

  forward(x: Tensor): Tensor {
    checkImageBatch('BasicBlock', x, this.inPlanes);
    const r1 = convBnRelu(this.conv1, this.bn1, x);
    try {
      return convBnAddRelu(this.conv2, this.bn2, r1, x, this.downsample);
    } finally {
      r1.dispose();
    }
  }
}

/**
 * Bottleneck (expansion 4, ResNet v1.5): conv1x1 -> bn1 -> relu -> conv3x3(stride) -> bn2 ->
 * relu -> conv1x1(planes * 4) -> bn3, + identity, relu.
 */
export class Bottleneck extends Module {
  static readonly expansion = 4;
  readonly inPlanes: number;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly conv3: Conv2d;
  readonly bn3: BatchNorm2d;
  readonly downsample: Sequential | null;

  constructor(inPlanes: number, planes: number, stride = 1, downsample: Sequential | null = null, device?: Device) {
    super();
    this.inPlanes = checkInteger('inPlanes', inPlanes, 1);
    checkInteger('planes', planes, 1);
    checkInteger('stride', stride, 1);
    this.conv1 = this.registerModule('conv1', conv1x1(inPlanes, planes, 1, device));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(planes, { device }));
    this.conv2 = this.registerModule('conv2', conv3x3(planes, planes, stride, device));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(planes, { device }));
    this.conv3 = this.registerModule('conv3', conv1x1(planes, planes * Bottleneck.expansion, 1, device));
    this.bn3 = this.registerModule('bn3', new BatchNorm2d(planes * Bottleneck.expansion, { device }));
    this.downsample = downsample ? this.registerModule('downsample', downsample) : null;
  }

  get lastBn(): BatchNorm2d {
    return this.bn3;
  }

  forward(x: Tensor): Tensor {
    checkImageBatch('Bottleneck', x, this.inPlanes);
    const r1 = convBnRelu(this.conv1, this.bn1, x);
    let r2: Tensor;
    try {
      r2 = convBnRelu(this.conv2, this.bn2, r1);
    } finally {
      r1.dispose();
    }
    try {
      return convBnAddRelu(this.conv3, this.bn3, r2, x, this.downsample);
    } finally {
      r2.dispose();
    }
  }
}

type BlockClass = typeof BasicBlock | typeof Bottleneck;

/** torchvision's ResNet: conv1 7x7/2 -> bn1 -> relu -> maxpool 3/2/1 -> layer1..4 -> avgpool -> fc. */
export class ResNet extends Module {
  readonly numClasses: number;
  readonly inChannels: number;
  readonly device: Device | undefined;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly relu: ReLU;
  readonly maxpool: MaxPool2d;
  readonly layer1: Sequential;
  readonly layer2: Sequential;
  readonly layer3: Sequential;
  readonly layer4: Sequential;
  readonly avgpool: AdaptiveAvgPool2d;
  #fc: Linear;

  constructor(block: BlockClass, layers: readonly [number, number, number, number], args: ResNetArgs = {}) {
    super();
    const a = checkOptions<ResNetArgs>('args', args, RESNET_KEYS);
    this.numClasses = checkInteger('numClasses', a.numClasses ?? 1000, 1);
    this.inChannels = checkInteger('inChannels', a.inChannels ?? 3, 1);
    const zeroInitResidual = checkBoolean('zeroInitResidual', a.zeroInitResidual ?? false);
    const device = this.device = a.device;
    layers.forEach((n, i) => checkInteger(`layers[${i}]`, n, 1));
    let inPlanes = 64;
    const makeLayer = (planes: number, blocks: number, stride: number): Sequential => {
      let downsample: Sequential | null = null;
      if (stride !== 1 || inPlanes !== planes * block.expansion) {
        downsample = new Sequential(
          conv1x1(inPlanes, planes * block.expansion, stride, device),
          new BatchNorm2d(planes * block.expansion, { device }),
        );
      }
      const out = [new block(inPlanes, planes, stride, downsample, device)];
      inPlanes = planes * block.expansion;
      for (let i = 1; i < blocks; i++) out.push(new block(inPlanes, planes, 1, null, device));
      return new Sequential(...out);
    };
    this.conv1 = this.registerModule('conv1', new Conv2d(this.inChannels, 64, 7, { stride: 2, padding: 3, bias: false, device }));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(64, { device }));
    this.relu = this.registerModule('relu', new ReLU());
    this.maxpool = this.registerModule('maxpool', new MaxPool2d(3, { stride: 2, padding: 1 }));
    this.layer1 = this.registerModule('layer1', makeLayer(64, layers[0], 1));
    this.layer2 = this.registerModule('layer2', makeLayer(128, layers[1], 2));
    this.layer3 = this.registerModule('layer3', makeLayer(256, layers[2], 2));
    this.layer4 = this.registerModule('layer4', makeLayer(512, layers[3], 2));
    this.avgpool = this.registerModule('avgpool', new AdaptiveAvgPool2d([1, 1]));
    this.#fc = this.registerModule('fc', new Linear(512 * block.expansion, this.numClasses, { device }));

    // torchvision's init: kaiming_normal_(mode='fan_out', nonlinearity='relu') for every conv,
    // BN weight 1 / bias 0 (already BatchNorm2d's), Linear keeps its default init.
    noGrad(() => {
      for (const m of this.modules()) {
        if (m instanceof Conv2d) {
          const fanOut = m.outChannels * m.kernelSize[0] * m.kernelSize[1];
          const w = randn(m.weight.shape, { std: Math.sqrt(2 / fanOut), device: m.weight.device });
          m.weight.copy_(w);
          w.dispose();
        }
      }
      if (zeroInitResidual) {
        for (const m of this.modules()) {
          if (m instanceof BasicBlock || m instanceof Bottleneck) {
            const z = zerosLike(m.lastBn.weight);
            m.lastBn.weight.copy_(z);
            z.dispose();
          }
        }
      }
    });
  }

  /** The classifier head (torchvision's `fc`). */
  get fc(): Linear {
    return this.#fc;
  }

  /**
   * Replaces `fc` by a fresh Linear(fc.inFeatures, numClasses) with the default init, on the
   * device of the old head, which is disposed (as `model.fc = nn.Linear(...)` for fine-tuning).
   */
  replaceHead(numClasses: number): Linear {
    checkInteger('numClasses', numClasses, 1);
    const old = this.#fc;
    const fc = new Linear(old.inFeatures, numClasses, { device: old.weight.device });
    if (old.computeDtype) fc.computeDtype = old.computeDtype;
    fc.training = old.training;
    this.#fc = this.registerModule('fc', fc);
    (this as { numClasses: number }).numClasses = numClasses;
    old.dispose();
    return fc;
  }

  forward(x: Tensor): Tensor {
    checkImageBatch('ResNet', x, this.inChannels);
    const c = this.conv1.forward(x);
    let h = this.bn1.forwardRelu(c);
    c.dispose();
    const steps: Module[] = [this.maxpool, this.layer1, this.layer2, this.layer3, this.layer4, this.avgpool];
    for (const m of steps) {
      const next = m.forward(h);
      h.dispose();
      h = next;
    }
    const flat = flatten(h, 1);
    h.dispose();
    const out = this.#fc.forward(flat);
    flat.dispose();
    return out;
  }
}

/** torchvision.models.resnet18: BasicBlock, [2, 2, 2, 2] (11,689,512 parameters at 1000 classes). */
export function resnet18(args: ResNetArgs = {}): ResNet {
  return new ResNet(BasicBlock, [2, 2, 2, 2], args);
}

/** torchvision.models.resnet34: BasicBlock, [3, 4, 6, 3] (21,797,672 parameters at 1000 classes). */
export function resnet34(args: ResNetArgs = {}): ResNet {
  return new ResNet(BasicBlock, [3, 4, 6, 3], args);
}

/** torchvision.models.resnet50: Bottleneck, [3, 4, 6, 3] (25,557,032 parameters at 1000 classes). */
export function resnet50(args: ResNetArgs = {}): ResNet {
  return new ResNet(Bottleneck, [3, 4, 6, 3], args);
}
