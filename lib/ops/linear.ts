// The fully connected layer's op, y = x W^T + b, with autocast and its backward node; the native
// call checks the shapes (native/backend/geometry.h).
import { native } from '../native';
import { edgeTo, needsGrad, Node } from '../autograd';
import { withAutocast, type AutocastDtype } from '../autocast';
import { checkTensor, Tensor } from '../tensor';
import { checkFloat, checkSameDeviceDtype, keep, wrap } from './common';

class LinearBackward extends Node {
  readonly name = 'LinearBackward';
  constructor(x: Tensor, w: Tensor, b: Tensor | null) {
    super();
    this.edges = [edgeTo(x), edgeTo(w), edgeTo(b)];
    this.saved = [keep(x), keep(w)];
  }
  apply(g: Tensor): (Tensor | null)[] {
    const [x, w] = this.saved;
    const r = native.linearBackward(x.handle, w.handle, g.handle, this.edges[0] !== null, this.edges[1] !== null, this.edges[2] !== null);
    return [wrap(r.dx), wrap(r.dw), wrap(r.db)];
  }
}

/** y = x W^T + b, x (N, in), W (out, in), b (out). */
export function linear(x: Tensor, weight: Tensor, bias: Tensor | null = null): Tensor {
  return linearIn(null, x, weight, bias);
}

/** @internal linear for a layer with its own mixed precision (see conv2dIn). */
export function linearIn(computeDtype: AutocastDtype | null, x: Tensor, weight: Tensor, bias: Tensor | null): Tensor {
  checkTensor('x', x);
  checkTensor('weight', weight);
  if (bias !== null) checkTensor('bias', bias);
  return withAutocast(computeDtype, [x, weight, bias], ([cx, cw, cb]) => linearForward(cx!, cw!, cb));
}

function linearForward(x: Tensor, weight: Tensor, bias: Tensor | null): Tensor {
  checkFloat('x', x);
  checkSameDeviceDtype('weight', x, weight);
  if (bias !== null) checkSameDeviceDtype('bias', x, bias);
  const y = native.linearForward(x.handle, weight.handle, bias?.handle ?? null);
  return Tensor._fromHandle(y, needsGrad(x, weight, bias) ? new LinearBackward(x, weight, bias) : null);
}
