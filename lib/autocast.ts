// Autocast, PyTorch-style: inside `autocast(...)` the convolutions and linear layers of a scope
// compute in bfloat16 or float16 on CUDA while parameters (and BN statistics) stay float32
// masters; on the CPU backend autocast is accepted and computes in float32, so the same script
// runs everywhere. The ops apply it through withAutocast, the one place that casts.
import type { DType } from './native';
import type { Tensor } from './tensor';
import { checkBoolean, checkOneOf, checkOptions } from './validate';

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
