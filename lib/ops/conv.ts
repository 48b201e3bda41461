// 2-D convolution: options, the channels-last rule, autocast, the native call (which checks the
// shapes: native/backend/geometry.h) and its backward node.
import { native, type Pair } from '../native';
import { edgeTo, needsGrad, Node } from '../autograd';
import { withAutocast, type AutocastDtype } from '../autocast';
import { checkTensor, Tensor } from '../tensor';
import { checkInteger, checkOptions, checkPair } from '../validate';
import { checkFloat, checkSameDeviceDtype, keep, wrap } from './common';

export interface Conv2dOptions {
  stride?: number | Pair;
  padding?: number | Pair;
  dilation?: number | Pair;
  groups?: number;
}

class Conv2dBackward extends Node {
  readonly name = 'Conv2dBackward';
  constructor(
    x: Tensor,
    w: Tensor,
    b: Tensor | null,
    private readonly stride: Pair,
    private readonly padding: Pair,
    private readonly dilation: Pair,
    private readonly groups: number,
  ) {
    super();
    this.edges = [edgeTo(x), edgeTo(w), edgeTo(b)];
    this.saved = [keep(x), keep(w)];
  }
  apply(g: Tensor): (Tensor | null)[] {
    const [x, w] = this.saved;
    const r = native.conv2dBackward(x.handle, w.handle, g.handle, this.stride, this.padding, this.dilation, this.groups,
      this.edges[0] !== null, this.edges[1] !== null, this.edges[2] !== null);
    return [wrap(r.dx), wrap(r.dw), wrap(r.db)];
  }
}

/** 2-D convolution over x (N, C, H, W) with weight (K, C/groups, R, S) and optional bias (K). */
export function conv2d(x: Tensor, weight: Tensor, bias: Tensor | null = null, options: Conv2dOptions = {}): Tensor {
  return conv2dIn(null, x, weight, bias, options);
}

/**
 * @internal conv2d for a layer with its own mixed precision (Module.computeDtype): on CUDA it
 * computes in `computeDtype` when given, else in the autocast scope's dtype.
 */
export function conv2dIn(computeDtype: AutocastDtype | null, x: Tensor, weight: Tensor, bias: Tensor | null,
                         options: Conv2dOptions): Tensor {
  checkTensor('x', x);
  checkTensor('weight', weight);
  if (bias !== null) checkTensor('bias', bias);
  const o = checkOptions<Conv2dOptions>('options', options, ['stride', 'padding', 'dilation', 'groups']);
  // A channels-last weight makes the convolution channels-last, as in PyTorch: the input follows.
  if (x.memoryFormat !== weight.memoryFormat && x.device === weight.device && x.ndim === 4) {
    const moved = x.to({ memoryFormat: weight.memoryFormat });
    try {
      return conv2dIn(computeDtype, moved, weight, bias, o);
    } finally {
      moved.dispose();
    }
  }
  return withAutocast(computeDtype, [x, weight, bias], ([cx, cw, cb]) => conv2dForward(cx!, cw!, cb, o));
}

function conv2dForward(x: Tensor, weight: Tensor, bias: Tensor | null, o: Partial<Conv2dOptions>): Tensor {
  checkFloat('x', x);
  checkSameDeviceDtype('weight', x, weight);
  const stride = checkPair('stride', o.stride ?? 1, 1);
  const padding = checkPair('padding', o.padding ?? 0, 0);
  const dilation = checkPair('dilation', o.dilation ?? 1, 1);
  const groups = checkInteger('groups', o.groups ?? 1, 1);
  if (bias !== null) checkSameDeviceDtype('bias', x, bias);
  const y = native.conv2dForward(x.handle, weight.handle, bias?.handle ?? null, stride, padding, dilation, groups);
  const grad = needsGrad(x, weight, bias);
  return Tensor._fromHandle(y, grad ? new Conv2dBackward(x, weight, bias, stride, padding, dilation, groups) : null);
}
