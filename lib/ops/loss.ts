// Softmax cross-entropy (with its backward node) and the accuracy count, on logits and int32
// class labels; the native calls check the shapes and devices (native/backend/geometry.h).
import { native, type NativeHandle } from '../native';
import { edgeTo, needsGrad, Node } from '../autograd';
import { capabilities } from '../device';
import { checkTensor, Tensor } from '../tensor';
import { invalidRange, invalidType } from '../validate';
import { checkFloat, keep, view } from './common';

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

/**
 * Where labels are host memory (the CPU: no sync) every label must be a class index of logits.
 * It runs before the native call (whose kernels index by label); logits that are not (N, classes)
 * are left to the native shape check, which names them.
 */
function checkLabelValues(logits: Tensor, labels: Tensor): void {
  if (!capabilities(labels.device).hostVisibleMemory || logits.ndim !== 2) return;
  const classes = logits.shape[1];
  const values = labels.toArraySync() as Int32Array;
  const bad = values.findIndex((v) => v < 0 || v >= classes);
  if (bad >= 0) throw invalidRange(`labels[${bad}]`, `a class index in [0, ${classes})`, values[bad]);
}

function checkLabels(logits: Tensor, labels: Tensor): void {
  checkTensor('logits', logits);
  checkTensor('labels', labels);
  checkFloat('logits', logits);
  if (labels.dtype !== 'int32') throw invalidType('labels', 'an int32 tensor of class indices', `a ${labels.dtype} tensor`);
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
  const node = needsGrad(logits) ? new CrossEntropyBackward(logits, r.probs, labels) : null;
  r.probs.dispose();
  return Tensor._fromHandle(r.loss, node);
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
