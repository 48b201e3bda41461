// Mixed precision, PyTorch-style: `autocast` runs the convolutions and linear layers of a scope
// in bfloat16 or float16 on CUDA while parameters (and BN statistics) stay float32 masters;
// `GradScaler` does dynamic loss scaling for float16. On the CPU backend autocast is accepted
// and computes in float32, so the same script runs everywhere.
import type { DType } from './native';
import type { Tensor } from './tensor';
import { mulScalar, scaleInPlace, sum } from './ops/elementwise';
import { checkBoolean, checkFinite, checkInteger, checkOneOf, checkOptions, invalidType } from './validate';
import type { Optimizer, SGD } from './optim/sgd';

export type AutocastDtype = 'bfloat16' | 'float16';

export interface AutocastOptions {
  /** default true */
  enabled?: boolean;
  /** the low-precision type of the scope (default 'bfloat16') */
  dtype?: AutocastDtype;
}

let state: { enabled: boolean; dtype: AutocastDtype } = { enabled: false, dtype: 'bfloat16' };

/** Runs `fn` with autocast on (see the module comment); restores the previous state after. */
export function autocast<T>(options: AutocastOptions | AutocastDtype, fn: () => T): T {
  const o = typeof options === 'string' ? { dtype: options } : checkOptions<AutocastOptions>('options', options, ['enabled', 'dtype']);
  const next = {
    enabled: checkBoolean('options.enabled', o.enabled ?? true),
    dtype: checkOneOf('options.dtype', o.dtype ?? 'bfloat16', ['bfloat16', 'float16'] as const),
  };
  if (typeof fn !== 'function') throw new TypeError('Expected a function for fn but received ' + typeof fn);
  const previous = state;
  state = next;
  try {
    return fn();
  } finally {
    state = previous;
  }
}

export function isAutocastEnabled(): boolean {
  return state.enabled;
}

/**
 * The dtype float32 inputs of a matmul-like op on `device` are cast to, or null: autocast applies
 * on CUDA only (the CPU computes in float32), in `computeDtype` when a layer sets its own
 * (Module.computeDtype), else in the autocast scope's.
 */
function autocastDtype(device: string, computeDtype: AutocastDtype | null = null): DType | null {
  if (device !== 'cuda') return null;
  if (computeDtype !== null) return computeDtype;
  return state.enabled ? state.dtype : null;
}

/** `t` cast to `dtype` when it is float32 and a cast is due (differentiable); else `t` itself. */
function castForAutocast(t: Tensor, dtype: DType | null): Tensor {
  if (dtype === null || t.dtype !== 'float32') return t;
  return t.to({ dtype });
}

/**
 * The one place autocast is applied: runs `op` on the autocast versions of `inputs` (float32 ->
 * the low-precision dtype on CUDA; see autocastDtype), then frees the casts (autograd keeps what
 * it needs). conv2d and linear call it.
 */
export function withAutocast<T>(computeDtype: AutocastDtype | null, inputs: (Tensor | null)[], op: (cast: (Tensor | null)[]) => T): T {
  const first = inputs.find((t): t is Tensor => t !== null);
  const dtype = first ? autocastDtype(first.device, computeDtype) : null;
  if (dtype === null) return op(inputs);
  const cast = inputs.map((t) => (t ? castForAutocast(t, dtype) : null));
  try {
    return op(cast);
  } finally {
    cast.forEach((c, i) => { if (c && c !== inputs[i]) c.dispose(); });
  }
}

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
