// Batch normalization (training and eval), its fusion with the ReLU after it, relu(batchNorm(x)),
// and the fused residual tail relu(batchNorm(x) + z), each with its backward node.
import { native, type NativeHandle } from '../native';
import { edgeTo, needsGrad, Node } from '../autograd';
import { capabilities } from '../device';
import { checkTensor, isFloatDtype, sameShape, Tensor } from '../tensor';
import { checkBoolean, checkFinite, checkNumber, checkOptions, invalidRange, invalidType, shapeString } from '../validate';
import { checkFloat, checkSameDeviceDtype, dropUnneeded, keep, view } from './common';
import { add, relu } from './elementwise';

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
  // The backend also normalizes 2-D (N, C) input; the public op is the 4-D one.
  if (x.ndim !== 4) throw invalidRange('x', 'a 4-D tensor (N, C, H, W)', `shape ${shapeString(x.shape)}`);
  // Which arguments may be null is this function's signature; their devices, dtypes and shapes
  // are the native op's rules (it names weight, bias, runningMean and runningVar).
  const channelVector = (name: string, t: Tensor | null, required: boolean): void => {
    if (t === null) {
      if (required) throw invalidType(name, `a Tensor of shape [${x.shape[1]}]`, t);
      return;
    }
    checkTensor(name, t);
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
    const r = native.batchNormForwardTrain(x.handle, weight.handle, bias.handle, runningMean?.handle ?? null,
      runningVar?.handle ?? null, momentum, eps);
    // The node keeps its own views of what it saves, so the handles of the result go now.
    const node = grad ? new BatchNormTrainBackward(x, weight, bias, r.saveMean, r.saveInvstd, eps) : null;
    r.saveMean.dispose();
    r.saveInvstd.dispose();
    return Tensor._fromHandle(r.y, node);
  }
  const y = native.batchNormForwardEval(x.handle, weight.handle, bias.handle, runningMean!.handle, runningVar!.handle, eps);
  return Tensor._fromHandle(y, grad ? new BatchNormEvalBackward(x, weight, bias, runningMean!, runningVar!, eps) : null);
}

/**
 * BN's eps (default 1e-5): a finite number >= 0, the native rule (PyTorch accepts 0 too).
 * BatchNorm2d checks its argument with it too.
 */
export function checkEps(value: unknown): number {
  return checkFinite('eps', value ?? 1e-5, 0);
}

class BatchNormReluBackward extends Node {
  readonly name = 'BatchNormReluBackward';
  constructor(x: Tensor, gamma: Tensor, beta: Tensor, saveMean: NativeHandle, saveInvstd: NativeHandle, private readonly eps: number) {
    super();
    this.edges = [edgeTo(x), edgeTo(gamma), edgeTo(beta)];
    // no y: the backend recomputes the ReLU mask from x, the statistics and beta
    this.saved = [keep(x), keep(gamma), keep(beta), view(saveMean), view(saveInvstd)];
  }
  apply(g: Tensor): (Tensor | null)[] {
    const [x, gamma, beta, mean, invstd] = this.saved;
    const r = native.batchNormReluBackwardTrain(x.handle, g.handle, gamma.handle, beta.handle, mean.handle,
      invstd.handle, this.eps);
    return dropUnneeded(this.edges, [r.dx, r.dgamma, r.dbeta]);
  }
}

/**
 * relu(batchNorm(x)), the first half of a residual block and the stem. In training it is one
 * fused backend op where the backend has it (the CPU, float32 and float64); otherwise, and in
 * eval, it runs as batch norm then ReLU, with the same result.
 */
export function batchNormRelu(
  x: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  weight: Tensor,
  bias: Tensor,
  options: BatchNormOptions = {},
): Tensor {
  checkTensor('x', x);
  const o = checkOptions<BatchNormOptions>('options', options, ['training', 'momentum', 'eps']);
  const training = checkBoolean('options.training', o.training ?? false);
  if (training && capabilities(x.device).fusedBnRelu && runningMean && runningVar && x.ndim === 4) {
    checkTensor('weight', weight);
    checkTensor('bias', bias);
    checkTensor('runningMean', runningMean);
    checkTensor('runningVar', runningVar);
    const eps = checkEps(o.eps);
    const momentum = checkNumber('momentum', o.momentum ?? 0.1, 0, 1);
    const r = native.batchNormReluForwardTrain(x.handle, weight.handle, bias.handle, runningMean.handle,
      runningVar.handle, momentum, eps);
    if (r) {
      const node = needsGrad(x, weight, bias) ? new BatchNormReluBackward(x, weight, bias, r.saveMean, r.saveInvstd, eps) : null;
      r.saveMean.dispose();
      r.saveInvstd.dispose();
      return Tensor._fromHandle(r.y, node);
    }
  }
  const normalized = batchNorm(x, runningMean, runningVar, weight, bias, { ...o, training });
  const out = relu(normalized);
  normalized.dispose();
  return out;
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
  if (!sameShape(z.shape, x.shape)) {
    throw invalidRange('z', `a tensor of shape ${shapeString(x.shape)} (same as x)`, `shape ${shapeString(z.shape)}`);
  }
  // The backend fuses where it can (it returns null where it cannot, e.g. for some layouts).
  if (training && capabilities(x.device).fusedBnAddRelu && runningMean && runningVar && z.memoryFormat === x.memoryFormat) {
    checkTensor('weight', weight);
    checkTensor('bias', bias);
    checkTensor('runningMean', runningMean);
    checkTensor('runningVar', runningVar);
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
  const sum = add(normalized, z);
  normalized.dispose();
  const out = relu(sum);
  sum.dispose();
  return out;
}
