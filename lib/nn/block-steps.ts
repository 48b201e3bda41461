// The two steps every residual block is made of (d2l's ResidualBlock, torchvision's BasicBlock
// and Bottleneck). Each intermediate is disposed once consumed; autograd keeps what backward needs.
import type { Tensor } from '../tensor';
import type { BatchNorm2d } from './batchnorm';
import type { Conv2d } from './conv';
import type { Module } from './module';

/** relu(bn(conv(x))); BN -> ReLU is one backend call where it can fuse, else two ops. */
export function convBnRelu(conv: Conv2d, bn: BatchNorm2d, x: Tensor): Tensor {
  const c = conv.forward(x);
  const r = bn.forwardRelu(c);
  c.dispose();
  return r;
}

/**
 * relu(bn(conv(h)) + shortcut(input)), the block's tail; `shortcut` null is the identity. BN ->
 * add -> ReLU is one backend call where it can fuse, else three ops.
 */
export function convBnAddRelu(conv: Conv2d, bn: BatchNorm2d, h: Tensor, input: Tensor, shortcut: Module | null): Tensor {
  const c = conv.forward(h);
  const identity = shortcut ? shortcut.forward(input) : input;
  const out = bn.forwardAddRelu(c, identity);
  c.dispose();
  if (identity !== input) identity.dispose();
  return out;
}
