// Mixed precision, PyTorch-style: `autocast` (autocast.ts) runs the convolutions and linear
// layers of a scope in bfloat16 or float16 on CUDA while parameters (and BN statistics) stay
// float32 masters; `GradScaler` does dynamic loss scaling for float16. On the CPU backend
// autocast is accepted and computes in float32, so the same script runs everywhere.
import type { Tensor } from './tensor';
import { mulScalar, scaleInPlace, sum } from './ops/elementwise';
import { checkBoolean, checkFinite, checkInteger, checkOptions, invalidType } from './validate';
import type { Optimizer, SGD } from './optim/sgd';

export { autocast, isAutocastEnabled, type AutocastDtype, type AutocastOptions } from './autocast';

function checkOptimizer(optimizer: unknown): void {
  const o = optimizer as { step?: unknown; params?: unknown } | null;
  if (o === null || typeof o !== 'object' || typeof o.step !== 'function' || !Array.isArray(o.params)) {
    throw invalidType('optimizer', 'an optimizer with params (e.g. an SGD)', optimizer);
  }
}

export interface GradScalerOptions {
  /** default 2 ** 16 */
  initScale?: number;
  /** default 2 */
  growthFactor?: number;
  /** default 0.5 */
  backoffFactor?: number;
  /** steps without overflow before the scale grows (default 2000) */
  growthInterval?: number;
  /** default true */
  enabled?: boolean;
}

/**
 * Dynamic loss scaling for float16 training (torch.cuda.amp.GradScaler): scale(loss).backward(),
 * then step(optimizer) unscales the gradients, skips the step if any is inf/NaN, and update()
 * adjusts the scale.
 */
export class GradScaler {
  scale_: number;
  readonly growthFactor: number;
  readonly backoffFactor: number;
  readonly growthInterval: number;
  readonly enabled: boolean;
  private goodSteps = 0;
  private foundInf = false;
  private unscaled = false;

  constructor(options: GradScalerOptions = {}) {
    const o = checkOptions<GradScalerOptions>('options', options, ['initScale', 'growthFactor', 'backoffFactor', 'growthInterval', 'enabled']);
    this.scale_ = checkFinite('options.initScale', o.initScale ?? 2 ** 16, Number.MIN_VALUE, Number.MAX_VALUE, 'a positive finite number');
    this.growthFactor = checkFinite('options.growthFactor', o.growthFactor ?? 2, 1);
    this.backoffFactor = checkFinite('options.backoffFactor', o.backoffFactor ?? 0.5, Number.MIN_VALUE, 1, 'a number in (0, 1]');
    this.growthInterval = checkInteger('options.growthInterval', o.growthInterval ?? 2000, 1);
    this.enabled = checkBoolean('options.enabled', o.enabled ?? true);
  }

  getScale(): number {
    return this.enabled ? this.scale_ : 1;
  }

  /** loss * scale (differentiable). */
  scale(loss: Tensor): Tensor {
    return this.enabled ? mulScalar(loss, this.scale_) : loss;
  }

  /** Divides the gradients of the optimizer's parameters by the scale and checks them for inf/NaN. */
  unscale_(optimizer: Optimizer & { params: readonly Tensor[] }): void {
    checkOptimizer(optimizer);
    if (!this.enabled || this.unscaled) return;
    let finite = true;
    for (const p of optimizer.params) {
      const g = p.grad;
      if (!g || g.isDisposed) continue;
      scaleInPlace(g, 1 / this.scale_);
      const s = sum(g);
      const v = s.itemSync();
      s.dispose();
      if (!Number.isFinite(v)) finite = false;
    }
    this.foundInf = !finite;
    this.unscaled = true;
  }

  /** Unscales (if not done yet) and steps unless a gradient overflowed; returns whether it stepped. */
  step(optimizer: SGD): boolean {
    checkOptimizer(optimizer);
    if (!this.enabled) {
      optimizer.step();
      return true;
    }
    this.unscale_(optimizer);
    if (!this.foundInf) optimizer.step();
    return !this.foundInf;
  }

  /** Backs off after an overflow; grows the scale after growthInterval clean steps. */
  update(): void {
    if (!this.enabled) return;
    if (this.foundInf) {
      this.scale_ *= this.backoffFactor;
      this.goodSteps = 0;
    } else if (++this.goodSteps >= this.growthInterval) {
      this.scale_ *= this.growthFactor;
      this.goodSteps = 0;
    }
    this.foundInf = false;
    this.unscaled = false;
  }
}
