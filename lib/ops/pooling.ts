// Max pooling and adaptive average pooling, each with its backward node; the native calls check
// the shapes (native/backend/geometry.h).
import { native, type NativeHandle, type Pair } from '../native';
import { edgeTo, needsGrad, Node } from '../autograd';
import { checkTensor, Tensor } from '../tensor';
import { checkOptions, checkPair } from '../validate';
import { checkFloat, keep, view } from './common';

export interface MaxPool2dOptions {
  stride?: number | Pair;
  padding?: number | Pair;
}

class MaxPool2dBackward extends Node {
  readonly name = 'MaxPool2dBackward';
  constructor(x: Tensor, y: NativeHandle, indices: NativeHandle | null,
              private readonly kernel: Pair, private readonly stride: Pair, private readonly padding: Pair) {
    super();
    this.edges = [edgeTo(x)];
    this.saved = [keep(x), view(y)];
    if (indices) this.saved.push(view(indices));
  }
  apply(g: Tensor): (Tensor | null)[] {
    const [x, y, indices] = this.saved;
    return [Tensor._fromHandle(native.maxPool2dBackward(x.handle, y.handle, g.handle, indices?.handle ?? null,
      this.kernel, this.stride, this.padding))];
  }
}

/** Max pooling over x (N, C, H, W); stride defaults to the kernel size, as in PyTorch. */
export function maxPool2d(x: Tensor, kernelSize: number | Pair, options: MaxPool2dOptions = {}): Tensor {
  checkTensor('x', x);
  checkFloat('x', x);
  const o = checkOptions<MaxPool2dOptions>('options', options, ['stride', 'padding']);
  const kernel = checkPair('kernelSize', kernelSize, 1);
  const stride = checkPair('stride', o.stride ?? kernel, 1);
  const padding = checkPair('padding', o.padding ?? 0, 0);
  const r = native.maxPool2dForward(x.handle, kernel, stride, padding);
  const node = needsGrad(x) ? new MaxPool2dBackward(x, r.y, r.indices, kernel, stride, padding) : null;
  r.indices?.dispose();
  return Tensor._fromHandle(r.y, node);
}

class AdaptiveAvgPool2dBackward extends Node {
  readonly name = 'AdaptiveAvgPool2dBackward';
  private readonly channelsLast: boolean;
  constructor(x: Tensor, private readonly inputShape: number[]) {
    super();
    this.edges = [edgeTo(x)];
    this.channelsLast = x.memoryFormat === 'channelsLast';
  }
  apply(g: Tensor): (Tensor | null)[] {
    // dx takes g's memory format: bring g to x's first. After global pooling g usually comes back
    // through Flatten's view as contiguous (N, C, 1, 1), the same memory in either order.
    if ((g.memoryFormat === 'channelsLast') === this.channelsLast) {
      return [Tensor._fromHandle(native.adaptiveAvgPool2dBackward(g.handle, this.inputShape))];
    }
    const aligned = native.to(g.handle, g.device, g.dtype, this.channelsLast);
    try {
      return [Tensor._fromHandle(native.adaptiveAvgPool2dBackward(aligned, this.inputShape))];
    } finally {
      aligned.dispose();
    }
  }
}

/** Adaptive average pooling of x (N, C, H, W) to (N, C, outH, outW), PyTorch's bin edges. */
export function adaptiveAvgPool2d(x: Tensor, outputSize: number | Pair): Tensor {
  checkTensor('x', x);
  checkFloat('x', x);
  const size = checkPair('outputSize', outputSize, 1);
  const y = native.adaptiveAvgPool2dForward(x.handle, size);
  return Tensor._fromHandle(y, needsGrad(x) ? new AdaptiveAvgPool2dBackward(x, x.shape.slice()) : null);
}
