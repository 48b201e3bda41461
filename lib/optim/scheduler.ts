// Learning-rate schedules: call step() once per epoch (or per iteration), as in PyTorch.
import { checkFinite, checkInteger, invalidRange, invalidType } from '../validate';
import type { Optimizer } from './sgd';

export abstract class LRScheduler {
  lastEpoch = 0;
  constructor(readonly optimizer: Optimizer) {
    if (!optimizer || typeof optimizer.step !== 'function') throw invalidType('optimizer', 'an optimizer', optimizer);
  }
  /** The learning rate for epoch `epoch`. */
  abstract lrAt(epoch: number): number;
  step(): void {
    const lr = this.lrAt(this.lastEpoch + 1);
    if (typeof lr !== 'number' || !Number.isFinite(lr) || lr < 0) {
      throw invalidRange(`${this.constructor.name}: the learning rate for epoch ${this.lastEpoch + 1}`, 'a finite number >= 0', lr);
    }
    this.lastEpoch++;
    this.optimizer.lr = lr;
  }
  get lr(): number {
    return this.optimizer.lr;
  }
}

/** lr = initialLr * lambda(epoch) */
export class LambdaLR extends LRScheduler {
  constructor(optimizer: Optimizer, private readonly lambda: (epoch: number) => number) {
    super(optimizer);
    if (typeof lambda !== 'function') throw invalidType('lambda', 'a function of the epoch', lambda);
  }
  lrAt(epoch: number): number {
    return this.optimizer.initialLr * this.lambda(epoch);
  }
}

/** lr = initialLr * gamma ^ floor(epoch / stepSize) */
export class StepLR extends LRScheduler {
  constructor(optimizer: Optimizer, readonly stepSize: number, readonly gamma = 0.1) {
    super(optimizer);
    checkInteger('stepSize', stepSize, 1);
    checkFinite('gamma', gamma, 0);
  }
  lrAt(epoch: number): number {
    return this.optimizer.initialLr * this.gamma ** Math.floor(epoch / this.stepSize);
  }
}

/** Cosine annealing from initialLr to etaMin over tMax epochs. */
export class CosineAnnealingLR extends LRScheduler {
  constructor(optimizer: Optimizer, readonly tMax: number, readonly etaMin = 0) {
    super(optimizer);
    checkInteger('tMax', tMax, 1);
    checkFinite('etaMin', etaMin, 0);
  }
  lrAt(epoch: number): number {
    const base = this.optimizer.initialLr;
    return this.etaMin + ((base - this.etaMin) * (1 + Math.cos((Math.PI * Math.min(epoch, this.tMax)) / this.tMax))) / 2;
  }
}
