// Differentiable ops, like torch.nn.functional. Each validates its arguments (naming them),
// calls the native op, and, when a gradient is needed, attaches the node that runs its backward.
import { native, type NativeHandle, type Pair } from './native';
import { edgeTo, needsGrad, Node } from './autograd';
import {
  binaryAdd,
  checkFloat,
  checkSameDeviceDtype,
  checkTensor,
  isFloatDtype,
  reluOp,
  Tensor,
} from './tensor';
import { checkBoolean, checkFinite, checkInteger, checkNumber, checkOptions, checkPair, invalidRange, invalidType, shapeString } from './validate';
import { autocastDtype, castForAutocast } from './amp';

/** Runs `op` on the autocast versions of `inputs` (float32 -> the scope's dtype on CUDA), then
 * frees the casts (autograd keeps what it needs). */
function withAutocast<T>(inputs: (Tensor | null)[], op: (cast: (Tensor | null)[]) => T): T {
  const first = inputs.find((t): t is Tensor => t !== null);
  const dtype = first ? autocastDtype(first.device) : null;
  if (dtype === null) return op(inputs);
  const cast = inputs.map((t) => (t ? castForAutocast(t, dtype) : null));
  try {
    return op(cast);
  } finally {
    cast.forEach((c, i) => { if (c && c !== inputs[i]) c.dispose(); });
  }
}

export function relu(x: Tensor): Tensor {
  return reluOp(x);
}

export function add(a: Tensor, b: Tensor): Tensor {
  return binaryAdd(a, b);
}

export function flatten(x: Tensor, startDim = 1, endDim = -1): Tensor {
  checkTensor('x', x);
  return x.flatten(startDim, endDim);
}

function view(h: NativeHandle): Tensor {
  return Tensor._fromHandle(native.view(h, h.shape.slice()));
}

function keep(t: Tensor): Tensor {
  return view(t.handle);
}

function wrap(h: NativeHandle | null): Tensor | null {
  return h ? Tensor._fromHandle(h) : null;
}

// --- conv2d

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
  checkTensor('x', x);
  checkTensor('weight', weight);
  if (bias !== null) checkTensor('bias', bias);
  options = checkOptions<Conv2dOptions>('options', options, ['stride', 'padding', 'dilation', 'groups']);
  // A channels-last weight makes the convolution channels-last, as in PyTorch: the input follows.
  if (x.memoryFormat !== weight.memoryFormat && x.device === weight.device && x.ndim === 4) {
    const moved = x.to({ memoryFormat: weight.memoryFormat });
    try {
      return conv2d(moved, weight, bias, options);
    } finally {
      moved.dispose();
    }
  }
  return withAutocast([x, weight, bias], ([cx, cw, cb]) => conv2dImpl(cx!, cw!, cb, options));
}

function conv2dImpl(x: Tensor, weight: Tensor, bias: Tensor | null, options: Conv2dOptions): Tensor {
  checkFloat('x', x);
  checkSameDeviceDtype('weight', x, weight);
  const o = checkOptions<Conv2dOptions>('options', options, ['stride', 'padding', 'dilation', 'groups']);
  const stride = checkPair('stride', o.stride ?? 1, 1);
  const padding = checkPair('padding', o.padding ?? 0, 0);
  const dilation = checkPair('dilation', o.dilation ?? 1, 1);
  const groups = checkInteger('groups', o.groups ?? 1, 1);
  if (x.ndim !== 4) throw invalidRange('x', 'a 4-D tensor (N, C, H, W)', `shape ${shapeString(x.shape)}`);
  if (weight.ndim !== 4) throw invalidRange('weight', 'a 4-D tensor (K, C/groups, R, S)', `shape ${shapeString(weight.shape)}`);
  const [, c, h, wd] = x.shape;
  const [k, cg, r, s] = weight.shape;
  if (c % groups !== 0 || k % groups !== 0) {
    throw invalidRange('groups', `a divisor of the input channels (${c}) and output channels (${k})`, groups);
  }
  if (cg * groups !== c) {
    throw invalidRange('x', `a tensor with ${cg * groups} channels (weight ${shapeString(weight.shape)}, groups ${groups})`,
      `shape ${shapeString(x.shape)}`);
  }
  if (bias !== null) {
    checkTensor('bias', bias);
    checkSameDeviceDtype('bias', x, bias);
    if (bias.ndim !== 1 || bias.shape[0] !== k) throw invalidRange('bias', `shape [${k}]`, `shape ${shapeString(bias.shape)}`);
  }
  const effH = dilation[0] * (r - 1) + 1;
  const effW = dilation[1] * (s - 1) + 1;
  if (h + 2 * padding[0] < effH || wd + 2 * padding[1] < effW) {
    throw invalidRange('x', `spatial size at least ${effH - 2 * padding[0]}x${effW - 2 * padding[1]} for a ${r}x${s} kernel`,
      `${h}x${wd}`);
  }
  const y = native.conv2dForward(x.handle, weight.handle, bias?.handle ?? null, stride, padding, dilation, groups);
  const grad = needsGrad(x, weight, bias);
  return Tensor._fromHandle(y, grad ? new Conv2dBackward(x, weight, bias, stride, padding, dilation, groups) : null);
}

// --- batch norm

export interface BatchNormOptions {
  training?: boolean;
  momentum?: number;
  eps?: number;
}

class BatchNormTrainBackward extends Node {
  readonly name = 'BatchNormTrainBackward';
  constructor(x: Tensor, gamma: Tensor, beta: Tensor, saveMean: NativeHandle, saveInvstd: NativeHandle, private readonly eps: number) {
    super();
    this.edges = [edgeTo(x), edgeTo(gamma), edgeTo(beta)];
    this.saved = [keep(x), keep(gamma), view(saveMean), view(saveInvstd)];
  }
  apply(g: Tensor): (Tensor | null)[] {
    const [x, gamma, mean, invstd] = this.saved;
    const r = native.batchNormBackwardTrain(x.handle, g.handle, gamma.handle, mean.handle, invstd.handle, this.eps);
    return dropUnneeded(this.edges, [r.dx, r.dgamma, r.dbeta]);
  }
}

class BatchNormEvalBackward extends Node {
  readonly name = 'BatchNormEvalBackward';
  constructor(x: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor, runningVar: Tensor, private readonly eps: number) {
    super();
    this.edges = [edgeTo(x), edgeTo(gamma), edgeTo(beta)];
    // Running stats are copied: they may change in place before backward runs.
    this.saved = [keep(x), keep(gamma), runningMean.clone(), runningVar.clone()];
  }
  apply(g: Tensor): (Tensor | null)[] {
    const [x, gamma, rm, rv] = this.saved;
    const r = native.batchNormBackwardEval(x.handle, g.handle, gamma.handle, rm.handle, rv.handle, this.eps);
    return dropUnneeded(this.edges, [r.dx, r.dgamma, r.dbeta]);
  }
}

function dropUnneeded(edges: readonly unknown[], handles: NativeHandle[]): (Tensor | null)[] {
  return handles.map((h, i) => {
    if (edges[i]) return Tensor._fromHandle(h);
    h.dispose();
    return null;
  });
}

/**
 * Batch normalization over (N, H, W) per channel of x (N, C, H, W), PyTorch semantics: in
 * training, normalize with the batch mean and biased variance and update the running stats
 * (momentum, unbiased variance) in place; otherwise use the running stats.
 */
export function batchNorm(
  x: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  weight: Tensor,
  bias: Tensor,
  options: BatchNormOptions = {},
): Tensor {
  checkTensor('x', x);
  checkFloat('x', x);
  const o = checkOptions<BatchNormOptions>('options', options, ['training', 'momentum', 'eps']);
  const training = checkBoolean('options.training', o.training ?? false);
  const momentum = checkNumber('momentum', o.momentum ?? 0.1, 0, 1);
  const eps = checkEps(o.eps);
  if (x.ndim !== 4) throw invalidRange('x', 'a 4-D tensor (N, C, H, W)', `shape ${shapeString(x.shape)}`);
  const c = x.shape[1];
  const statDtype = x.dtype === 'float64' ? 'float64' : 'float32';
  const channelVector = (name: string, t: Tensor | null, required: boolean): void => {
    if (t === null) {
      if (required) throw invalidType(name, `a Tensor of shape [${c}]`, t);
      return;
    }
    checkTensor(name, t);
    if (t.device !== x.device) throw invalidRange(name, `a tensor on ${x.device}`, `a tensor on ${t.device}`);
    if (t.dtype !== statDtype) throw invalidType(name, `a ${statDtype} tensor`, `a ${t.dtype} tensor`);
    if (t.ndim !== 1 || t.shape[0] !== c) {
      throw invalidRange(name, `shape [${c}] (one per channel of x ${shapeString(x.shape)})`, `shape ${shapeString(t.shape)}`);
    }
  };
  channelVector('weight', weight, true);
  channelVector('bias', bias, true);
  channelVector('runningMean', runningMean, !training);
  channelVector('runningVar', runningVar, !training);
  if ((runningMean === null) !== (runningVar === null)) {
    throw invalidType('runningVar', 'a Tensor when runningMean is given (and null when it is null)', runningVar);
  }
  const grad = needsGrad(x, weight, bias);
  if (training) {
    const perChannel = x.shape[0] * x.shape[2] * x.shape[3];
    if (perChannel <= 1) {
      throw invalidRange('x', 'more than 1 value per channel when training', `shape ${shapeString(x.shape)}`);
    }
    const r = native.batchNormForwardTrain(x.handle, weight.handle, bias.handle, runningMean?.handle ?? null,
      runningVar?.handle ?? null, momentum, eps);
    if (grad) {
      const node = new BatchNormTrainBackward(x, weight, bias, r.saveMean, r.saveInvstd, eps);
      r.saveMean.dispose();
      r.saveInvstd.dispose();
      return Tensor._fromHandle(r.y, node);
    }
    r.saveMean.dispose();
    r.saveInvstd.dispose();
    return Tensor._fromHandle(r.y);
  }
  const y = native.batchNormForwardEval(x.handle, weight.handle, bias.handle, runningMean!.handle, runningVar!.handle, eps);
  return Tensor._fromHandle(y, grad ? new BatchNormEvalBackward(x, weight, bias, runningMean!, runningVar!, eps) : null);
}

function checkEps(value: unknown): number {
  const eps = checkFinite('eps', value ?? 1e-5, 0, Number.MAX_VALUE, 'a positive finite number');
  if (!(eps > 0)) throw invalidRange('eps', 'a positive finite number', eps);
  return eps;
}

class BatchNormAddReluBackward extends Node {
  readonly name = 'BatchNormAddReluBackward';
  constructor(x: Tensor, z: Tensor, gamma: Tensor, beta: Tensor,
              r: { y: NativeHandle; saveMean: NativeHandle; saveInvstd: NativeHandle; reserve: NativeHandle },
              private readonly eps: number) {
    super();
    this.edges = [edgeTo(x), edgeTo(gamma), edgeTo(beta), edgeTo(z)];
    this.saved = [keep(x), view(r.y), keep(gamma), keep(beta), view(r.saveMean), view(r.saveInvstd), view(r.reserve)];
  }
  apply(g: Tensor): (Tensor | null)[] {
    const [x, y, gamma, beta, mean, invstd, reserve] = this.saved;
    const r = native.batchNormAddReluBackwardTrain(x.handle, y.handle, g.handle, gamma.handle, beta.handle,
      mean.handle, invstd.handle, reserve.handle, this.eps);
    return dropUnneeded(this.edges, [r.dx, r.dgamma, r.dbeta, r.dz]);
  }
}

/**
 * The tail of a residual block, relu(batchNorm(x) + z). In training it is one fused backend op
 * where the backend can fuse: the CPU always, CUDA through cuDNN for channels-last float16;
 * otherwise it runs as batch norm, add and ReLU, with the same result.
 */
export function batchNormAddRelu(
  x: Tensor,
  z: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  weight: Tensor,
  bias: Tensor,
  options: BatchNormOptions = {},
): Tensor {
  checkTensor('x', x);
  checkTensor('z', z);
  if (z.dtype !== x.dtype && isFloatDtype(z.dtype) && isFloatDtype(x.dtype)) {
    // The block's `Y += X` keeps Y's type: under autocast a float32 shortcut joins in half.
    const cast = z.to({ dtype: x.dtype });
    try {
      return batchNormAddRelu(x, cast, runningMean, runningVar, weight, bias, options);
    } finally {
      cast.dispose();
    }
  }
  const o = checkOptions<BatchNormOptions>('options', options, ['training', 'momentum', 'eps']);
  const training = checkBoolean('options.training', o.training ?? false);
  // z is checked here, by its own name, before either path uses it.
  checkSameDeviceDtype('z', x, z);
  if (!z.shape.every((d, i) => d === x.shape[i]) || z.ndim !== x.ndim) {
    throw invalidRange('z', `a tensor of shape ${shapeString(x.shape)} (same as x)`, `shape ${shapeString(z.shape)}`);
  }
  if (training && runningMean && runningVar && z.dtype === x.dtype &&
      z.memoryFormat === x.memoryFormat && z.shape.every((d, i) => d === x.shape[i])) {
    checkTensor('weight', weight);
    checkTensor('bias', bias);
    const eps = checkEps(o.eps);
    const momentum = checkNumber('momentum', o.momentum ?? 0.1, 0, 1);
    const r = native.batchNormAddReluForwardTrain(x.handle, z.handle, weight.handle, bias.handle,
      runningMean.handle, runningVar.handle, momentum, eps);
    if (r) {
      const node = needsGrad(x, z, weight, bias) ? new BatchNormAddReluBackward(x, z, weight, bias, r, eps) : null;
      for (const h of [r.saveMean, r.saveInvstd, r.reserve]) h.dispose();
      return Tensor._fromHandle(r.y, node);
    }
  }
  const normalized = batchNorm(x, runningMean, runningVar, weight, bias, { ...o, training });
  const sum = binaryAdd(normalized, z);
  normalized.dispose();
  const out = reluOp(sum);
  sum.dispose();
  return out;
}

// --- pooling

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
  if (x.ndim !== 4) throw invalidRange('x', 'a 4-D tensor (N, C, H, W)', `shape ${shapeString(x.shape)}`);
  if (padding[0] * 2 > kernel[0] || padding[1] * 2 > kernel[1]) {
    throw invalidRange('padding', `at most half the kernel size (${kernel[0]}x${kernel[1]})`, padding);
  }
  if (x.shape[2] + 2 * padding[0] < kernel[0] || x.shape[3] + 2 * padding[1] < kernel[1]) {
    throw invalidRange('x', `spatial size at least the kernel (${kernel[0]}x${kernel[1]}) after padding`, `shape ${shapeString(x.shape)}`);
  }
  const r = native.maxPool2dForward(x.handle, kernel, stride, padding);
  if (needsGrad(x)) {
    const node = new MaxPool2dBackward(x, r.y, r.indices, kernel, stride, padding);
    r.indices?.dispose();
    return Tensor._fromHandle(r.y, node);
  }
  r.indices?.dispose();
  return Tensor._fromHandle(r.y);
}

class AdaptiveAvgPool2dBackward extends Node {
  readonly name = 'AdaptiveAvgPool2dBackward';
  constructor(x: Tensor, private readonly inputShape: number[]) {
    super();
    this.edges = [edgeTo(x)];
  }
  apply(g: Tensor): (Tensor | null)[] {
    return [Tensor._fromHandle(native.adaptiveAvgPool2dBackward(g.handle, this.inputShape))];
  }
}

/** Adaptive average pooling of x (N, C, H, W) to (N, C, outH, outW), PyTorch's bin edges. */
export function adaptiveAvgPool2d(x: Tensor, outputSize: number | Pair): Tensor {
  checkTensor('x', x);
  checkFloat('x', x);
  const size = checkPair('outputSize', outputSize, 1);
  if (x.ndim !== 4) throw invalidRange('x', 'a 4-D tensor (N, C, H, W)', `shape ${shapeString(x.shape)}`);
  if (x.shape[2] === 0 || x.shape[3] === 0) throw invalidRange('x', 'non-empty spatial dimensions', `shape ${shapeString(x.shape)}`);
  const y = native.adaptiveAvgPool2dForward(x.handle, size);
  return Tensor._fromHandle(y, needsGrad(x) ? new AdaptiveAvgPool2dBackward(x, x.shape.slice()) : null);
}

// --- linear

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
  checkTensor('x', x);
  checkTensor('weight', weight);
  if (bias !== null) checkTensor('bias', bias);
  return withAutocast([x, weight, bias], ([cx, cw, cb]) => linearImpl(cx!, cw!, cb));
}

function linearImpl(x: Tensor, weight: Tensor, bias: Tensor | null): Tensor {
  checkFloat('x', x);
  checkSameDeviceDtype('weight', x, weight);
  if (x.ndim !== 2) throw invalidRange('x', 'a 2-D tensor (N, inFeatures)', `shape ${shapeString(x.shape)}`);
  if (weight.ndim !== 2 || weight.shape[1] !== x.shape[1]) {
    throw invalidRange('weight', `shape [outFeatures, ${x.shape[1]}] (x has ${x.shape[1]} features)`, `shape ${shapeString(weight.shape)}`);
  }
  if (bias !== null) {
    checkTensor('bias', bias);
    checkSameDeviceDtype('bias', x, bias);
    if (bias.ndim !== 1 || bias.shape[0] !== weight.shape[0]) {
      throw invalidRange('bias', `shape [${weight.shape[0]}]`, `shape ${shapeString(bias.shape)}`);
    }
  }
  const y = native.linearForward(x.handle, weight.handle, bias?.handle ?? null);
  return Tensor._fromHandle(y, needsGrad(x, weight, bias) ? new LinearBackward(x, weight, bias) : null);
}

// --- loss and metrics

class CrossEntropyBackward extends Node {
  readonly name = 'CrossEntropyBackward';
  constructor(logits: Tensor, probs: NativeHandle, labels: Tensor) {
    super();
    this.edges = [edgeTo(logits)];
    this.saved = [view(probs), keep(labels)];
  }
  apply(g: Tensor): (Tensor | null)[] {
    const [probs, labels] = this.saved;
    return [Tensor._fromHandle(native.crossEntropyBackward(probs.handle, labels.handle, g.handle))];
  }
}

/** On the CPU (host memory, no sync) every label must be a class index of logits. */
function checkLabelValues(logits: Tensor, labels: Tensor): void {
  if (labels.device !== 'cpu') return;
  const classes = logits.shape[1];
  const values = labels.toArraySync() as Int32Array;
  const bad = values.findIndex((v) => v < 0 || v >= classes);
  if (bad >= 0) throw invalidRange(`labels[${bad}]`, `a class index in [0, ${classes})`, values[bad]);
}

function checkLabels(logits: Tensor, labels: Tensor): void {
  checkTensor('logits', logits);
  checkTensor('labels', labels);
  checkFloat('logits', logits);
  if (logits.ndim !== 2) throw invalidRange('logits', 'a 2-D tensor (N, classes)', `shape ${shapeString(logits.shape)}`);
  if (labels.dtype !== 'int32') throw invalidType('labels', 'an int32 tensor of class indices', `a ${labels.dtype} tensor`);
  if (labels.device !== logits.device) throw invalidRange('labels', `a tensor on ${logits.device}`, `a tensor on ${labels.device}`);
  if (labels.ndim !== 1 || labels.shape[0] !== logits.shape[0]) {
    throw invalidRange('labels', `shape [${logits.shape[0]}] (one per row of logits)`, `shape ${shapeString(labels.shape)}`);
  }
}

/**
 * Softmax cross-entropy from logits (N, classes) and int32 class indices (N), averaged over
 * the batch, like `F.cross_entropy`. A label outside [0, classes) raises a RangeError on the
 * CPU (checked here, the labels being host memory); on CUDA it makes the loss NaN, since
 * checking would make the host wait for the GPU.
 */
export function crossEntropy(logits: Tensor, labels: Tensor): Tensor {
  checkLabels(logits, labels);
  checkLabelValues(logits, labels);
  // The loss is computed in float32 from half-precision logits, as autocast does.
  if (logits.dtype === 'float16' || logits.dtype === 'bfloat16') {
    const wide = logits.to({ dtype: 'float32' });
    try {
      return crossEntropy(wide, labels);
    } finally {
      wide.dispose();
    }
  }
  const r = native.crossEntropyForward(logits.handle, labels.handle);
  if (needsGrad(logits)) {
    const node = new CrossEntropyBackward(logits, r.probs, labels);
    r.probs.dispose();
    return Tensor._fromHandle(r.loss, node);
  }
  r.probs.dispose();
  return Tensor._fromHandle(r.loss);
}

/**
 * Number of rows whose argmax equals the label, as an int32 scalar tensor (no sync). Labels are
 * checked as crossEntropy checks them: a label outside [0, classes) is a RangeError on the CPU;
 * on CUDA (not checked, to avoid a sync) such a row never counts.
 */
export function accuracyCount(logits: Tensor, labels: Tensor): Tensor {
  checkLabels(logits, labels);
  checkLabelValues(logits, labels);
  return Tensor._fromHandle(native.accuracyCount(logits.handle, labels.handle));
}

// --- data

export interface NormalizeImagesOptions {
  /** output [height, width]; bilinear resize (align_corners false) when it differs */
  size?: number | Pair;
  mean?: number;
  std?: number;
  dtype?: 'float32' | 'float64';
}

/** uint8 images (N, C, H, W) -> float (N, C, h, w): resize, then (v / 255 - mean) / std. */
export function normalizeImages(images: Tensor, options: NormalizeImagesOptions = {}): Tensor {
  checkTensor('images', images);
  if (images.dtype !== 'uint8') throw invalidType('images', 'a uint8 tensor', `a ${images.dtype} tensor`);
  if (images.ndim !== 4) throw invalidRange('images', 'a 4-D tensor (N, C, H, W)', `shape ${shapeString(images.shape)}`);
  const o = checkOptions<NormalizeImagesOptions>('options', options, ['size', 'mean', 'std', 'dtype']);
  const size = o.size === undefined ? [images.shape[2], images.shape[3]] as Pair : checkPair('size', o.size, 1);
  const mean = checkFinite('mean', o.mean ?? 0);
  const std = checkFinite('std', o.std ?? 1, 0, Number.MAX_VALUE, 'a positive finite number');
  if (!(std > 0)) throw invalidRange('std', 'a positive finite number', std);
  const dtype = o.dtype ?? 'float32';
  if (dtype !== 'float32' && dtype !== 'float64') throw invalidRange('dtype', '"float32" or "float64"', dtype);
  return Tensor._fromHandle(native.imagesU8ToFloat(images.handle, size, mean, std, dtype));
}
