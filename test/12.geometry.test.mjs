// The shape and geometry rules of native/backend/geometry.h (Note [one place per rule]) as the
// binding reports them: a RangeError naming the function, the argument, what was expected and
// what was received.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { expect } from 'chai';
import { expectThrow } from './support/expect-throw.mjs';

const require = createRequire(import.meta.url);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const native = require('node-gyp-build')(root);

const full = (shape, value, dtype = 'float32') => native.full(shape, dtype, 'cpu', value);
const zeros = (shape, dtype = 'float32') => full(shape, 0, dtype);


describe('native geometry rules', function () {
  it('conv2d: ranks, groups, channels, kernel size, bias', function () {
    const conv = (x, w, b = null, groups = 1, padding = [0, 0], dilation = [1, 1]) =>
      native.conv2dForward(x, w, b, [1, 1], padding, dilation, groups);
    expectThrow(() => conv(zeros([1, 4, 5]), zeros([2, 4, 3, 3])), RangeError,
      'conv2d: argument "x" expected 4-D shape [n, c, h, w], received [1, 4, 5]');
    expectThrow(() => conv(zeros([1, 4, 5, 5]), zeros([2, 4, 3])), RangeError,
      'argument "weight" expected 4-D shape [k, c / groups, r, s], received [2, 4, 3]');
    expectThrow(() => conv(zeros([1, 4, 5, 5]), zeros([2, 1, 3, 3]), null, 3), RangeError,
      'argument "groups" expected a divisor of the 4 channels of x, received 3');
    expectThrow(() => conv(zeros([1, 4, 5, 5]), zeros([3, 2, 3, 3]), null, 2), RangeError,
      'argument "weight" expected a positive multiple of groups (2) as its first dimension, received [3, 2, 3, 3]');
    expectThrow(() => conv(zeros([1, 4, 5, 5]), zeros([2, 3, 3, 3])), RangeError,
      'argument "weight" expected shape [k, 4, r, s] (x has 4 channels), received [2, 3, 3, 3]');
    expectThrow(() => conv(zeros([1, 4, 2, 2]), zeros([2, 4, 3, 3])), RangeError,
      'argument "x" expected an input large enough for the kernel (output size would be 0x0)',
      'received [1, 4, 2, 2] with kernel [3, 3]');
    expectThrow(() => conv(zeros([1, 4, 5, 5]), zeros([2, 4, 2, 2]), null, 1, [0, 0], [5, 5]), RangeError,
      'argument "x" expected an input large enough for the kernel');
    expectThrow(() => conv(zeros([1, 4, 5, 5]), zeros([2, 4, 3, 3]), zeros([3])), RangeError,
      'argument "bias" expected shape [2] (weight has 2 filters), received [3]');
    expectThrow(() => conv(zeros([1, 4, 5, 5]), zeros([2, 4, 3, 3]), zeros([1, 2])), RangeError,
      'argument "bias" expected shape [2] (weight has 2 filters), received [1, 2]');
    const y = conv(zeros([1, 4, 5, 5]), zeros([2, 4, 3, 3]), zeros([2]), 1, [1, 1]);
    expect(y.shape).to.deep.equal([1, 2, 5, 5]);
  });

  it('max pooling: padding at most half the kernel, input at least the kernel, indices on the CPU', function () {
    expectThrow(() => native.maxPool2dForward(zeros([1, 1, 4, 4]), [2, 2], [2, 2], [2, 0]), RangeError,
      'maxPool2d: argument "padding" expected at most half the kernel size (kernel [2, 2]), received [2, 0]');
    expectThrow(() => native.maxPool2dForward(zeros([1, 1, 2, 2]), [3, 3], [1, 1], [0, 0]), RangeError,
      'argument "x" expected an input at least as large as the kernel [3, 3] (with padding), received [1, 1, 2, 2]');
    const x = zeros([1, 1, 4, 4]);
    const r = native.maxPool2dForward(x, [2, 2], [2, 2], [0, 0]);
    expect(r.y.shape).to.deep.equal([1, 1, 2, 2]);
    expectThrow(() => native.maxPool2dBackward(x, r.y, zeros([1, 1, 2, 2]), null, [2, 2], [2, 2], [0, 0]), TypeError,
      'argument "indices" expected the indices tensor from maxPool2dForward (this backend keeps them), received null');
  });

  it('adaptive average pooling: non-empty planes, inputShape matching dy', function () {
    expectThrow(() => native.adaptiveAvgPool2dForward(zeros([1, 1, 0, 4]), [1, 1]), RangeError,
      'argument "x" expected non-empty spatial dimensions, received [1, 1, 0, 4]');
    expectThrow(() => native.adaptiveAvgPool2dBackward(zeros([1, 2, 1, 1]), [1, 3, 4, 4]), RangeError,
      'argument "inputShape" expected [1, 2, h, w] (n and c of dy), received [1, 3, 4, 4]');
    expectThrow(() => native.adaptiveAvgPool2dBackward(zeros([1, 2, 1, 1]), [1, 2, 4]), RangeError,
      'argument "inputShape" expected 4 dimensions [n, c, h, w], received [1, 2, 4]');
  });

  it('batch norm: eps >= 0, more than 1 value per channel when training, per-channel vectors', function () {
    const c = () => zeros([2]);
    expectThrow(() => native.batchNormForwardTrain(zeros([1, 2, 1, 1]), c(), c(), null, null, 0.1, 1e-5), RangeError,
      'batchNorm: argument "x" expected more than 1 value per channel when training, received [1, 2, 1, 1]');
    expectThrow(() => native.batchNormForwardTrain(zeros([2, 2, 1, 1]), c(), c(), null, null, 0.1, -1), RangeError,
      'argument "eps" expected a number >= 0');
    expectThrow(() => native.batchNormForwardTrain(zeros([2, 2, 1, 1]), zeros([3]), c(), null, null, 0.1, 1e-5),
      RangeError, 'argument "weight" expected shape [2] (x has 2 channels), received [3]');
    expectThrow(() => native.batchNormForwardEval(zeros([2, 2, 1, 1]), c(), zeros([1, 2]), c(), c(), 1e-5),
      RangeError, 'argument "bias" expected shape [2] (x has 2 channels), received [1, 2]');
    expectThrow(() => native.batchNormForwardEval(zeros([2, 2, 1]), c(), c(), c(), c(), 1e-5), RangeError,
      'argument "x" expected 4-D shape [n, c, h, w] or 2-D shape [n, c], received [2, 2, 1]');
    // eps = 0 is accepted, as in PyTorch; eval needs no batch statistics, so one value is fine.
    const r = native.batchNormForwardTrain(zeros([2, 2, 1, 1]), c(), c(), null, null, 0.1, 0);
    expect(r.y.shape).to.deep.equal([2, 2, 1, 1]);
    expect(native.batchNormForwardEval(zeros([1, 2, 1, 1]), c(), c(), c(), full([2], 1, 'float32'), 0)
      .shape).to.deep.equal([1, 2, 1, 1]);
    // The fused path leaves a batch without enough values to the unfused one (null).
    expect(native.batchNormAddReluForwardTrain(zeros([1, 2, 1, 1]), zeros([1, 2, 1, 1]), c(), c(), c(), c(), 0.1, 1e-5))
      .to.equal(null);
  });

  it('linear, cross-entropy, image resize', function () {
    expectThrow(() => native.linearForward(zeros([2, 3]), zeros([4, 2]), null), RangeError,
      'linear: argument "weight" expected shape [n, 3] (x has 3 features), received [4, 2]');
    expectThrow(() => native.linearForward(zeros([2, 3]), zeros([4, 3]), zeros([3])), RangeError,
      'argument "bias" expected shape [4] (weight has 4 outputs), received [3]');
    expectThrow(() => native.linearForward(zeros([2, 0]), zeros([4, 0]), null), RangeError,
      'argument "x" expected at least one feature (k > 0), received [2, 0]');
    const labels = full([2], 0, 'int32');
    expectThrow(() => native.crossEntropyForward(zeros([2, 0]), labels), RangeError,
      'crossEntropy: argument "logits" expected at least one class, received [2, 0]');
    expectThrow(() => native.crossEntropyForward(zeros([3, 4]), labels), RangeError,
      'argument "labels" expected shape [3] (one label per row of logits), received [2]');
    expectThrow(() => native.crossEntropyForward(zeros([0, 4]), full([0], 0, 'int32')), RangeError,
      'argument "logits" expected at least one row (the mean of nothing is undefined)');
    expectThrow(() => native.crossEntropyBackward(zeros([2, 4]), labels, zeros([2])), RangeError,
      'crossEntropyBackward: argument "dloss" expected a single element (shape []), received [2]');
    const images = full([1, 3, 4, 4], 0, 'uint8');
    expectThrow(() => native.imagesU8ToFloat(images, [2, 2], 0, 0, 'float32'), RangeError,
      'normalizeImages: argument "std" expected a non-zero number, received 0');
    expectThrow(() => native.imagesU8ToFloat(full([1, 3, 0, 4], 0, 'uint8'), [2, 2], 0, 1, 'float32'),
      RangeError, 'argument "images" expected non-empty images, received [1, 3, 0, 4]');
    expectThrow(() => native.imagesU8ToFloat(images, [2 ** 30, 2 ** 30], 0, 1, 'float32'), RangeError,
      'argument "size" expected a value whose output has every dimension at most 2147483647 and at most 2^53 elements');
  });
});
