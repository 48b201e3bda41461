// Elementwise ops and reductions with autograd: add, relu, sum, mean, a scaled copy (mulScalar),
// and flatten (a view). Each op is its backward node, then the op that validates its arguments,
// calls the native op and attaches the node.
import { native, type DType, type NativeHandle } from '../native';
import { edgeTo, needsGrad, Node } from '../autograd';
import { checkTensor, isFloatDtype, sameShape, Tensor } from '../tensor';
import { checkFinite, invalidRange, shapeString } from '../validate';
import { checkFloat, checkSameDeviceDtype, view } from './common';

// --- add

class AddBackward extends Node {
  readonly name = 'AddBackward';
  constructor(a: Tensor, b: Tensor) {
    super();
    this.edges = [edgeTo(a), edgeTo(b)];
  }
  apply(g: Tensor): (Tensor | null)[] {
    return this.edges.map((e) => (e ? view(g.handle) : null));
  }
}

/** a + b, same shape (no broadcasting); mixed float dtypes promote to the wider one. */
export function add(a: Tensor, b: Tensor): Tensor {
  checkTensor('a', a);
  checkTensor('b', b);
  if (a.dtype !== b.dtype && isFloatDtype(a.dtype) && isFloatDtype(b.dtype) && a.device === b.device) {
    // Mixed precision (autocast): promote to the wider type, as PyTorch's type promotion does.
    const wide: DType = a.dtype === 'float64' || b.dtype === 'float64' ? 'float64' : 'float32';
    const ca = a.dtype === wide ? a : a.to({ dtype: wide });
    const cb = b.dtype === wide ? b : b.to({ dtype: wide });
    try {
      return add(ca, cb);
    } finally {
      if (ca !== a) ca.dispose();
      if (cb !== b) cb.dispose();
    }
  }
  checkSameDeviceDtype('b', a, b);
  if (a.memoryFormat !== b.memoryFormat && sameShape(a.shape, b.shape)) {
    const moved = b.to({ memoryFormat: a.memoryFormat });
    try {
      return add(a, moved);
    } finally {
      moved.dispose();
    }
  }
  if (!sameShape(a.shape, b.shape)) {
    throw invalidRange('b', `a tensor of shape ${shapeString(a.shape)} (same as a; broadcasting is not supported)`, `shape ${shapeString(b.shape)}`);
  }
  const out = native.add(a.handle, b.handle);
  return Tensor._fromHandle(out, needsGrad(a, b) ? new AddBackward(a, b) : null);
}

// --- relu

class ReluBackward extends Node {
  readonly name = 'ReluBackward';
  constructor(input: Tensor, output: NativeHandle) {
    super();
    this.edges = [edgeTo(input)];
    this.saved = [view(output)];
  }
  apply(g: Tensor): (Tensor | null)[] {
    return [Tensor._fromHandle(native.reluBackward(g.handle, this.saved[0].handle))];
  }
}

export function relu(x: Tensor): Tensor {
  checkTensor('x', x);
  checkFloat('x', x);
  const out = native.reluForward(x.handle);
  return Tensor._fromHandle(out, needsGrad(x) ? new ReluBackward(x, out) : null);
}

// --- sum and mean

class SumBackward extends Node {
  readonly name = 'SumBackward';
  private readonly channelsLast: boolean;
  constructor(input: Tensor, private readonly inputShape: readonly number[], private readonly scale: number) {
    super();
    this.edges = [edgeTo(input)];
    this.channelsLast = input.memoryFormat === 'channelsLast';
  }
  apply(g: Tensor): (Tensor | null)[] {
    // d(sum)/dx = 1 everywhere, times the incoming scalar (and 1/n for mean), in the input's
    // memory format (the ops it flows into require their arguments' formats to agree).
    const value = g.itemSync() * this.scale;
    const ones = native.full(this.inputShape.slice(), g.dtype, g.device, value);
    if (!this.channelsLast) return [Tensor._fromHandle(ones)];
    const converted = native.to(ones, g.device, g.dtype, true);
    ones.dispose();
    return [Tensor._fromHandle(converted)];
  }
}

export function sum(x: Tensor): Tensor {
  checkTensor('x', x);
  checkFloat('x', x);
  const out = native.sum(x.handle);
  return Tensor._fromHandle(out, needsGrad(x) ? new SumBackward(x, x.shape, 1) : null);
}

export function mean(x: Tensor): Tensor {
  checkTensor('x', x);
  checkFloat('x', x);
  if (x.numel === 0) throw invalidRange('x', 'a non-empty tensor', 'an empty tensor');
  const total = native.sum(x.handle);
  const out = scaledHandle(total, 1 / x.numel);
  total.dispose();
  return Tensor._fromHandle(out, needsGrad(x) ? new SumBackward(x, x.shape, 1 / x.numel) : null);
}

// --- scaled copy

/** A new handle holding factor * h (no autograd). */
function scaledHandle(h: NativeHandle, factor: number): NativeHandle {
  // Zero-filled first so beta = 0 never multiplies uninitialized memory (0 * NaN).
  const out = native.full(h.shape.slice(), h.dtype, h.device, 0);
  native.axpby(out, h, factor, 0);
  return out;
}

/** @internal t *= factor, in place and not recorded (GradScaler unscales gradients with it). */
export function scaleInPlace(t: Tensor, factor: number): void {
  native.axpby(t.handle, t.handle, factor, 0);
}

class ScaleBackward extends Node {
  readonly name = 'ScaleBackward';
  constructor(input: Tensor, private readonly factor: number) {
    super();
    this.edges = [edgeTo(input)];
  }
  apply(g: Tensor): (Tensor | null)[] {
    return [Tensor._fromHandle(scaledHandle(g.handle, this.factor))];
  }
}

/** `t * factor` (differentiable). */
export function mulScalar(t: Tensor, factor: number): Tensor {
  checkTensor('t', t);
  checkFinite('factor', factor);
  return Tensor._fromHandle(scaledHandle(t.handle, factor), needsGrad(t) ? new ScaleBackward(t, factor) : null);
}

// --- flatten (a view: the node is the Tensor's own)

export function flatten(x: Tensor, startDim = 1, endDim = -1): Tensor {
  checkTensor('x', x);
  return x.flatten(startDim, endDim);
}
