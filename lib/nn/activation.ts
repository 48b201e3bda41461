import { relu } from '../ops/elementwise';
import type { Tensor } from '../tensor';
import { Module } from './module';

/** nn.ReLU */
export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return relu(x);
  }
}
