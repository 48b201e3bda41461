import type { Tensor } from '../tensor';
import { checkInteger, invalidType } from '../validate';
import { Module } from './module';

/**
 * nn.Sequential: children named "0", "1", ... Intermediate outputs are disposed as soon as the
 * next layer has consumed them (autograd keeps its own references to what backward needs).
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
    for (const layer of this.layers) {
      const next = layer.forward(y);
      if (y !== x && next !== y) y.dispose();
      y = next;
    }
    return y;
  }
}
