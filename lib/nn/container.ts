import type { Tensor } from '../tensor';
import { checkInteger, invalidType } from '../validate';
import { ReLU } from './activation';
import { BatchNorm2d } from './batchnorm';
import { Module } from './module';

/**
 * nn.Sequential: children named "0", "1", ... Intermediate outputs are disposed as soon as the
 * next layer has consumed them (autograd keeps its own references to what backward needs). A
 * BatchNorm2d followed by a ReLU (those classes exactly, not subclasses that may override
 * forward) runs as one BatchNorm2d.forwardRelu, the same values in one pass fewer.
 */
export class Sequential extends Module {
  readonly layers: readonly Module[];

  constructor(...layers: Module[]) {
    super();
    layers.forEach((m, i) => {
      if (!(m instanceof Module)) throw invalidType(`layers[${i}]`, 'a Module', m);
      this.registerModule(String(i), m);
    });
    this.layers = layers;
  }

  get length(): number {
    return this.layers.length;
  }

  at(index: number): Module | undefined {
    checkInteger('index', index, -Number.MAX_SAFE_INTEGER);
    return this.layers.at(index);
  }

  forward(x: Tensor): Tensor {
    let y = x;
    for (let i = 0; i < this.layers.length; i++) {
      const layer = this.layers[i];
      let next: Tensor;
      if (layer.constructor === BatchNorm2d && this.layers[i + 1]?.constructor === ReLU) {
        next = (layer as BatchNorm2d).forwardRelu(y);
        i++;
      } else {
        next = layer.forward(y);
      }
      if (y !== x && next !== y) y.dispose();
      y = next;
    }
    return y;
  }
}
