// Bad input is a clear typed error, never a crash, a hang or a silently wrong result (issue #10).
// Every case here runs on the CPU; each would hang for minutes, kill V8 or return a wrong value
// before the checks it exercises.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const lib = require('../dist/index.js');
const {
  Tensor, tensor, empty, zeros, ones, full, zerosLike, onesLike, randn, rand, functional: F, nn, optim, data, io,
  setGradEnabled, isGradEnabled, autocast, GradScaler, DisposedTensorError, SGD, StepLR, LambdaLR, CosineAnnealingLR,
} = lib;
const here = path.dirname(fileURLToPath(import.meta.url));

/** Runs fn, expects it to throw an instance of `type` whose message matches every pattern. */
function throws(fn, type, ...patterns) {
  let err;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, 'expected a throw').to.be.instanceOf(Error);
  expect(err, `${err?.name}: ${err?.message}`).to.be.instanceOf(type);
  for (const p of patterns) expect(err.message).to.match(p instanceof RegExp ? p : new RegExp(p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  return err;
}

/** Times fn, which must throw quickly (no walking of a huge or deep structure). */
function throwsFast(fn, type, ...patterns) {
  const t0 = performance.now();
  const err = throws(fn, type, ...patterns);
  expect(performance.now() - t0, 'took too long').to.be.below(500);
  return err;
}

const cpu = { device: 'cpu' };
const toDispose = [];
const keep = (t) => (toDispose.push(t), t);
afterEach(() => {
  while (toDispose.length) toDispose.pop().dispose();
  setGradEnabled(true);
});

describe('bad input: cycles, depth and huge arrays (no fatal V8 error, no hang)', function () {
  it('a self-containing array is a RangeError, found before recursing', function () {
    const a = [];
    a.push(a);
    throwsFast(() => tensor(a, cpu), RangeError, 'contains itself');
    const b = [[1], [2]];
    b[1] = b;
    throwsFast(() => tensor(b, cpu), RangeError, 'data[1]', 'rectangular');
  });

  it('nesting deeper than the max rank (16) is a RangeError; 20,000 levels do not overflow the stack', function () {
    let deep = 1;
    for (let i = 0; i < 20000; i++) deep = [deep];
    throwsFast(() => tensor(deep, cpu), RangeError, 'at most 16 deep');
    let seventeen = 1;
    for (let i = 0; i < 17; i++) seventeen = [seventeen];
    throws(() => tensor(seventeen, cpu), RangeError, 'at most 16 deep');
    let sixteen = 5;
    for (let i = 0; i < 16; i++) sixteen = [sixteen];
    const t = keep(tensor(sixteen, cpu));
    expect(t.shape).to.deep.equal(new Array(16).fill(1));
    expect(t.itemSync()).to.equal(5);
  });

  it('describing a huge, deep or self-containing array in an error is cheap and bounded', function () {
    let deep = 'x';
    for (let i = 0; i < 20000; i++) deep = [deep];
    throwsFast(() => zeros(deep), TypeError, 'shape');
    const self = [1];
    self.push(self);
    throwsFast(() => zeros(self), TypeError, 'shape[1]');
    const huge = new Array(2 ** 32 - 1);
    const e = throwsFast(() => F.conv2d(huge), TypeError, 'for x');
    expect(e.message.length).to.be.below(300);
  });

  it('a sparse array of length 2^32 - 1 as a shape fails on its length at once', function () {
    const sparse = new Array(2 ** 32 - 1);
    throwsFast(() => zeros(sparse, cpu), RangeError, 'at most 16', 'length 4294967295');
    throwsFast(() => empty(sparse, cpu), RangeError, 'at most 16');
    throwsFast(() => randn(sparse, cpu), RangeError, 'at most 16');
    throwsFast(() => tensor(Float32Array.of(1), sparse, cpu), RangeError, 'at most 16');
    throwsFast(() => tensor([1, 2], cpu).reshape(sparse), RangeError, 'at most 16');
  });

  it('a sparse array as data fails at its first hole, or on its implied size, at once', function () {
    const sparse = new Array(2 ** 32 - 1);
    throwsFast(() => tensor(sparse, cpu), TypeError, 'data[0]', 'hole');
    sparse[0] = 1;
    throwsFast(() => tensor(sparse, cpu), RangeError, 'at most 2147483647 elements');
    const holes = [1, , 3]; // eslint-disable-line no-sparse-arrays
    throwsFast(() => tensor(holes, cpu), TypeError, 'data[1]', 'hole');
    const rowHole = [[1, 2], [3, , ]]; // eslint-disable-line no-sparse-arrays
    throws(() => tensor(rowHole, cpu), TypeError, 'data[1][1]', 'hole');
    throws(() => zeros([2, , 3]), TypeError, 'shape[1]', 'hole'); // eslint-disable-line no-sparse-arrays
  });
});

describe('bad input: values that used to convert silently', function () {
  it('integer dtypes refuse out-of-range values and NaN, and truncate fractions as torch.tensor', function () {
    throws(() => tensor([1e10], { dtype: 'int32', ...cpu }), RangeError, 'data element 0', 'int32 without overflow', '10000000000');
    throws(() => tensor([0, 256], { dtype: 'uint8', ...cpu }), RangeError, 'data element 1', 'uint8 without overflow', '256');
    throws(() => tensor([-1], { dtype: 'uint8', ...cpu }), RangeError, 'uint8 without overflow');
    throws(() => tensor([NaN], { dtype: 'int32', ...cpu }), RangeError, 'NaN');
    throws(() => tensor([Infinity], { dtype: 'int64', ...cpu }), RangeError, 'int64');
    throws(() => tensor([2 ** 53 + 2], { dtype: 'int64', ...cpu }), RangeError, '2^53', 'BigInt64Array');
    const t = keep(tensor([1.5, -1.5, 2 ** 31 - 1, -(2 ** 31), -0.5], { dtype: 'int32', ...cpu }));
    expect(Array.from(t.toArraySync())).to.deep.equal([1, -1, 2 ** 31 - 1, -(2 ** 31), 0]);
    const u = keep(tensor([0, 255, 255.9], { dtype: 'uint8', ...cpu }));
    expect(Array.from(u.toArraySync())).to.deep.equal([0, 255, 255]);
    const l = keep(tensor([2 ** 53 - 1, -3.7], { dtype: 'int64', ...cpu }));
    expect(Array.from(l.toArraySync())).to.deep.equal([BigInt(2 ** 53 - 1), -3n]);
  });

  it('booleans are booleans: strings and Boolean objects are TypeErrors, never truthy', function () {
    throws(() => setGradEnabled('false'), TypeError, 'for enabled', 'a boolean');
    expect(isGradEnabled()).to.equal(true);
    const x = keep(randn([2, 2, 3, 3], cpu));
    const w = keep(ones([2], cpu));
    const b = keep(zeros([2], cpu));
    const rm = keep(zeros([2], cpu));
    const rv = keep(ones([2], cpu));
    throws(() => F.batchNorm(x, rm, rv, w, b, { training: new Boolean(false) }), TypeError, 'options.training', 'a boolean');
    throws(() => F.batchNormAddRelu(x, x, rm, rv, w, b, { training: 'no' }), TypeError, 'options.training');
    expect(Array.from(rm.toArraySync())).to.deep.equal([0, 0]); // no training step ran
    const ds = { images: new Uint8Array(4 * 4), labels: new Uint8Array(4), n: 4, height: 2, width: 2 };
    throws(() => new data.DataLoader(ds, { batchSize: 2, shuffle: 'false' }), TypeError, 'options.shuffle');
    throws(() => new data.DataLoader(ds, { batchSize: 2, dropLast: 1 }), TypeError, 'options.dropLast');
    throws(() => new data.DataLoader(ds, { batchSize: 2 }).order('1'), TypeError, 'for epoch');
    const p = keep(tensor([1, 2], { requiresGrad: true, ...cpu }));
    const y = p.sum();
    throws(() => y.backward(undefined, { retainGraph: 'no' }), TypeError, 'retainGraph', 'a boolean');
    throws(() => y.backward({ retainGraph: true }), TypeError, 'for gradient', 'options come second');
    y.backward();
    expect(() => y.backward()).to.throw(Error, /already freed/); // the graph was not retained
    y.dispose();
    p.zeroGrad();
    throws(() => lib.cudnn.setBenchmark('true'), TypeError, 'for enabled');
    throws(() => autocast({ enabled: 'false' }, () => 1), TypeError, 'options.enabled');
    throws(() => new SGD([p], { lr: 0.1, nesterov: 'yes' }), TypeError, 'options.nesterov');
    throws(() => nn.resnetBlock(1, 1, 1, 'true'), TypeError, 'firstBlock');
  });

  it('accuracyCount checks labels on the CPU as crossEntropy does', function () {
    const logits = keep(tensor([[1, 2, 3], [3, 2, 1]], cpu));
    for (const bad of [[0, 3], [-1, 0]]) {
      const labels = keep(tensor(bad, { dtype: 'int32', ...cpu }));
      const i = bad.findIndex((v) => v < 0 || v >= 3);
      throws(() => F.crossEntropy(logits, labels), RangeError, `labels[${i}]`, 'a class index in [0, 3)');
      throws(() => F.accuracyCount(logits, labels), RangeError, `labels[${i}]`, 'a class index in [0, 3)');
    }
    const ok = keep(tensor([2, 0], { dtype: 'int32', ...cpu }));
    expect(keep(F.accuracyCount(logits, ok)).itemSync()).to.equal(2);
  });

  it('a typed-array shape is a shape, never options', function () {
    const t = keep(tensor([1, 2, 3, 4, 5, 6], Int32Array.of(2, 3), cpu));
    expect(t.shape).to.deep.equal([2, 3]);
    const u = keep(tensor(Float32Array.of(1, 2, 3, 4, 5, 6), Uint32Array.of(3, 2), cpu));
    expect(u.shape).to.deep.equal([3, 2]);
    const z = keep(zeros(Int32Array.of(2, 2), cpu));
    expect(z.shape).to.deep.equal([2, 2]);
    throws(() => tensor([1, 2, 3, 4, 5, 6], Int32Array.of(4, 2), cpu), RangeError, 'shape');
    throws(() => tensor([1, 2], BigInt64Array.of(2n), cpu), TypeError, 'shape');
    throws(() => tensor([1, 2], { dtype: 'float32' }, cpu), TypeError, 'for shape');
  });

  it('rand and randn refuse non-finite limits, and a range whose width overflows', function () {
    throws(() => rand([4], { low: -1e308, high: 1e308, dtype: 'float64', ...cpu }), RangeError, 'options.high', 'high - low at most');
    throws(() => rand([4], { low: -1e308, high: 1e308, ...cpu }), RangeError, 'options.low', 'float32');
    throws(() => rand([4], { low: -Infinity, ...cpu }), RangeError, 'options.low', 'finite');
    throws(() => rand([4], { high: NaN, ...cpu }), RangeError, 'options.high', 'finite');
    throws(() => randn([4], { mean: Infinity, ...cpu }), RangeError, 'options.mean', 'finite');
    throws(() => randn([4], { std: Infinity, ...cpu }), RangeError, 'options.std', 'finite');
    throws(() => randn([4], { std: -1, ...cpu }), RangeError, 'options.std');
    throws(() => rand([4], { low: 0, high: 7e4, dtype: 'float16', ...cpu }), RangeError, 'options.high', 'float16');
    throws(() => rand([4], { low: -3e38, high: 3e38, ...cpu }), RangeError, 'options.high', 'high - low at most');
    const d = keep(rand([64], { low: -1e300, high: 1e300, dtype: 'float64', ...cpu }));
    expect(Array.from(d.toArraySync()).every(Number.isFinite)).to.equal(true);
    const f = keep(rand([64], { low: -1e38, high: 1e38, ...cpu }));
    expect(Array.from(f.toArraySync()).every(Number.isFinite)).to.equal(true);
  });

  it('num_batches_tracked must be a non-negative integer, and a bad one loads nothing', function () {
    const bn = new nn.BatchNorm2d(2, cpu);
    try {
      throws(() => { bn.numBatchesTracked = -5; }, RangeError, 'numBatchesTracked', '-5');
      throws(() => { bn.numBatchesTracked = 1.5; }, RangeError, 'numBatchesTracked');
      const sd = bn.stateDict();
      const w = keep(tensor([3, 4], cpu));
      const bad = keep(tensor(BigInt64Array.of(-5n), [], { dtype: 'int64', device: 'cpu' }));
      const e = throws(() => bn.loadStateDict({ ...sd, weight: w, num_batches_tracked: bad }), RangeError,
        'num_batches_tracked', 'a non-negative integer', '-5');
      expect(e.message).to.match(/stateDict\["num_batches_tracked"\]/);
      expect(Array.from(bn.weight.toArraySync())).to.deep.equal([1, 1]); // nothing was loaded
      expect(bn.numBatchesTracked).to.equal(0);
      const good = keep(tensor(BigInt64Array.of(7n), [], { dtype: 'int64', device: 'cpu' }));
      bn.loadStateDict({ ...sd, num_batches_tracked: good });
      expect(bn.numBatchesTracked).to.equal(7);
      sd.num_batches_tracked.dispose();
    } finally {
      bn.dispose();
    }
  });

  it('loadStateDict reads only own keys: inherited ones are missing, never loaded', function () {
    const conv = new nn.Conv2d(1, 1, 1, cpu);
    try {
      const w = keep(tensor([[[[5]]]], cpu));
      const b = keep(tensor([6], cpu));
      const inherited = Object.create({ weight: w, bias: b });
      throws(() => conv.loadStateDict(inherited), RangeError, '"weight"', '"bias"', 'missing');
      const r = conv.loadStateDict(inherited, { strict: false });
      expect(r.missingKeys).to.deep.equal(['weight', 'bias']);
      expect(conv.weight.toArraySync()[0]).to.not.equal(5);
    } finally {
      conv.dispose();
    }
  });

  it('optimizer, scheduler and scaler hyperparameters are finite and in range at construction', function () {
    const p = keep(tensor([1, 2], { requiresGrad: true, ...cpu }));
    throws(() => new SGD([p], { lr: Infinity }), RangeError, 'options.lr', 'finite', 'Infinity');
    throws(() => new SGD([p], { lr: NaN }), RangeError, 'options.lr');
    throws(() => new SGD([p], { lr: -0.1 }), RangeError, 'options.lr');
    throws(() => new SGD([p], { lr: 0.1, momentum: Infinity }), RangeError, 'options.momentum');
    throws(() => new SGD([p], { lr: 0.1, weightDecay: -1 }), RangeError, 'options.weightDecay');
    throws(() => new SGD([p], { lr: 0.1, dampening: NaN }), RangeError, 'options.dampening');
    const opt = new SGD([p], { lr: 0.1 });
    throws(() => new StepLR(opt, 1, Infinity), RangeError, 'gamma');
    throws(() => new CosineAnnealingLR(opt, 10, NaN), RangeError, 'etaMin');
    const sched = new LambdaLR(opt, () => NaN);
    throws(() => sched.step(), RangeError, 'LambdaLR', 'learning rate for epoch 1');
    expect(opt.lr).to.equal(0.1);
    expect(sched.lastEpoch).to.equal(0);
    throws(() => new SGD(p, { lr: 0.1 }), TypeError, 'for params', 'an iterable of Tensors');
    throws(() => new SGD(null, { lr: 0.1 }), TypeError, 'for params');
    throws(() => new GradScaler({ initScale: Infinity }), RangeError, 'options.initScale');
    throws(() => new GradScaler({ growthFactor: Infinity }), RangeError, 'options.growthFactor');
    throws(() => new GradScaler({ backoffFactor: 0 }), RangeError, 'options.backoffFactor');
    throws(() => new GradScaler().step({}), TypeError, 'for optimizer');
  });
});

describe('bad input: errors name the right thing', function () {
  it('a disposed tensor is a DisposedTensorError naming the argument, shape and dtype', function () {
    const t = tensor([[1, 2, 3]], cpu);
    t.dispose();
    const e = throws(() => F.relu(t), DisposedTensorError, 'for x', 'disposed', '[1, 3]', 'float32');
    expect(e).to.be.instanceOf(TypeError);
    expect(e.message).to.match(/CUDNN_RESBLOCK_DEBUG_DISPOSE=1/);
    throws(() => t.toArraySync(), DisposedTensorError, '[1, 3] float32', 'disposed');
    const live = keep(tensor([[1, 2, 3]], cpu));
    throws(() => F.add(live, t), DisposedTensorError, 'for b');
    const conv = new nn.Conv2d(1, 1, 1, cpu);
    const x = randn([1, 1, 2, 2], cpu);
    x.dispose();
    throws(() => conv.forward(x), DisposedTensorError, 'Conv2d: x', '[1, 1, 2, 2]');
    const sd = conv.stateDict();
    const w = tensor([[[[1]]]], cpu);
    w.dispose();
    throws(() => conv.loadStateDict({ ...sd, weight: w }), DisposedTensorError, 'stateDict["weight"]');
    conv.dispose();
  });

  it('a leaf disposed before backward reaches it is a DisposedTensorError', function () {
    const p = tensor([1, 2], { requiresGrad: true, ...cpu });
    const y = p.sum();
    p.dispose();
    throws(() => y.backward(), DisposedTensorError, 'backward', 'leaf', '[2] float32');
    y.dispose();
  });

  it('with CUDNN_RESBLOCK_DEBUG_DISPOSE=1 the error says where the tensor was disposed (child process)', function () {
    const script = `
      const lib = require(${JSON.stringify(path.join(here, '..', 'dist', 'index.js'))});
      const t = lib.tensor([1, 2], { device: 'cpu' });
      (function disposeHere() { t.dispose(); })();
      try { lib.functional.relu(t); } catch (e) { console.log(e.name + ': ' + e.message); }`;
    const r = spawnSync(process.execPath, ['-e', script], { env: { ...process.env, CUDNN_RESBLOCK_DEBUG_DISPOSE: '1' }, encoding: 'utf8' });
    expect(r.stdout).to.match(/DisposedTensorError: Expected a live Tensor for x/);
    expect(r.stdout).to.match(/disposed at\n\s+at disposeHere/);
  });

  it('internal names do not leak: z of batchNormAddRelu, outChannels of Conv2d', function () {
    const x = keep(randn([2, 2, 3, 3], cpu));
    const z = keep(randn([2, 2, 3, 4], cpu));
    const w = keep(ones([2], cpu));
    const b = keep(zeros([2], cpu));
    const rm = keep(zeros([2], cpu));
    const rv = keep(ones([2], cpu));
    for (const training of [true, false]) {
      throws(() => F.batchNormAddRelu(x, z, rm, rv, w, b, { training }), RangeError, 'for z', '[2, 2, 3, 4]');
    }
    const zi = keep(zeros([2, 2, 3, 3], { dtype: 'int32', ...cpu }));
    throws(() => F.batchNormAddRelu(x, zi, rm, rv, w, b, { training: true }), TypeError, 'for z');
    throws(() => new nn.Conv2d(1, 2 ** 31, 1, cpu), RangeError, 'outChannels');
    throws(() => new nn.Conv2d(2 ** 30, 2 ** 30, 1, cpu), RangeError, 'Conv2d: weight shape', '[1073741824, 1073741824, 1, 1]');
    throws(() => new nn.Linear(2 ** 31, 1, cpu), RangeError, 'inFeatures');
  });

  it('shape rules (checked natively) name the public op, its argument, expected and received', function () {
    const t = (shape, o = {}) => keep(randn(shape, { ...cpu, ...o }));
    const labels = (values) => keep(tensor(Int32Array.from(values), [values.length], cpu));
    const u8 = (shape) => keep(zeros(shape, { dtype: 'uint8', ...cpu }));
    const cases = [
      [() => F.conv2d(t([1, 3, 5]), t([2, 3, 3, 3])), 'conv2d: argument "x" expected 4-D shape [n, c, h, w], received [1, 3, 5]'],
      [() => F.conv2d(t([1, 4, 5, 5]), t([2, 3, 3, 3])), 'conv2d: argument "weight" expected shape [k, 4, r, s] (x has 4 channels), received [2, 3, 3, 3]'],
      [() => F.conv2d(t([1, 4, 5, 5]), t([2, 1, 3, 3]), null, { groups: 3 }), 'conv2d: argument "groups" expected a divisor of the 4 channels of x, received 3'],
      [() => F.conv2d(t([1, 3, 5, 5]), t([2, 3, 3, 3]), t([3])), 'conv2d: argument "bias" expected shape [2] (weight has 2 filters), received [3]'],
      [() => F.conv2d(t([1, 3, 4, 4]), t([2, 3, 2, 2]), null, { dilation: 4 }), 'conv2d: argument "x" expected an input large enough for the kernel', 'received [1, 3, 4, 4] with kernel [2, 2]'],
      [() => F.batchNorm(t([2, 3, 2, 2]), null, null, t([4]), t([3]), { training: true }), 'batchNorm: argument "weight" expected shape [3] (x has 3 channels), received [4]'],
      [() => F.batchNorm(t([2, 3, 2, 2]), t([3]), t([1, 3]), t([3]), t([3])), 'batchNorm: argument "runningVar" expected shape [3] (x has 3 channels), received [1, 3]'],
      [() => F.batchNorm(t([1, 3, 1, 1]), null, null, t([3]), t([3]), { training: true }), 'batchNorm: argument "x" expected more than 1 value per channel when training, received [1, 3, 1, 1]'],
      [() => F.maxPool2d(t([1, 4, 4]), 2), 'maxPool2d: argument "x" expected 4-D shape [n, c, h, w], received [1, 4, 4]'],
      [() => F.maxPool2d(t([1, 1, 4, 4]), 2, { padding: 2 }), 'maxPool2d: argument "padding" expected at most half the kernel size (kernel [2, 2]), received [2, 2]'],
      [() => F.maxPool2d(t([1, 1, 2, 2]), 3), 'maxPool2d: argument "x" expected an input at least as large as the kernel [3, 3] (with padding), received [1, 1, 2, 2]'],
      [() => F.adaptiveAvgPool2d(t([1, 1, 0, 4]), 1), 'adaptiveAvgPool2d: argument "x" expected non-empty spatial dimensions, received [1, 1, 0, 4]'],
      [() => F.linear(t([2, 3, 1]), t([4, 3])), 'linear: argument "x" expected 2-D shape [m, k], received [2, 3, 1]'],
      [() => F.linear(t([2, 3]), t([4, 2])), 'linear: argument "weight" expected shape [n, 3] (x has 3 features), received [4, 2]'],
      [() => F.linear(t([2, 3]), t([4, 3]), t([3])), 'linear: argument "bias" expected shape [4] (weight has 4 outputs), received [3]'],
      [() => F.crossEntropy(t([2, 3, 1]), labels([0, 1])), 'crossEntropy: argument "logits" expected 2-D shape [n, classes], received [2, 3, 1]'],
      [() => F.crossEntropy(t([2, 3]), labels([0, 1, 2])), 'crossEntropy: argument "labels" expected shape [2] (one label per row of logits), received [3]'],
      [() => F.accuracyCount(t([2, 3]), labels([0])), 'accuracyCount: argument "labels" expected shape [2] (one label per row of logits), received [1]'],
      [() => F.normalizeImages(u8([2, 2])), 'normalizeImages: argument "images" expected 4-D shape [n, c, h, w], received [2, 2]'],
      [() => F.normalizeImages(u8([1, 1, 0, 2])), 'normalizeImages: argument "images" expected non-empty images, received [1, 1, 0, 2]'],
    ];
    for (const [fn, ...patterns] of cases) throws(fn, RangeError, ...patterns);
    // Dtypes the native op checks are TypeErrors, named the same way.
    throws(() => F.batchNorm(t([2, 3, 2, 2]), null, null, t([3], { dtype: 'float64' }), t([3]), { training: true }), TypeError,
      'batchNorm: argument "weight" expected dtype float32', 'received float64');
    throws(() => F.normalizeImages(t([1, 1, 2, 2])), TypeError, 'normalizeImages: argument "images" expected dtype uint8', 'received float32');
    // eps is one rule in TS and natively: finite and >= 0 (0 is accepted, as in PyTorch).
    expect(keep(F.batchNorm(t([2, 3, 2, 2]), null, null, t([3]), t([3]), { training: true, eps: 0 })).shape).to.deep.equal([2, 3, 2, 2]);
    for (const eps of [-1, Infinity, NaN]) {
      throws(() => F.batchNorm(t([2, 3, 2, 2]), null, null, t([3]), t([3]), { training: true, eps }), RangeError, 'for eps', `received ${eps}`);
      throws(() => new nn.BatchNorm2d(3, { eps, ...cpu }), RangeError, 'for eps');
    }
    const bn = new nn.BatchNorm2d(3, { eps: 0, ...cpu });
    expect(bn.eps).to.equal(0);
    bn.dispose();
  });

  it('Module.training is a boolean: assigning a string is a TypeError, not training', function () {
    const bn = new nn.BatchNorm2d(1, cpu);
    try {
      throws(() => { bn.training = 'false'; }, TypeError, 'for training', 'a boolean');
      throws(() => bn.train('false'), TypeError, 'for mode');
      expect(bn.training).to.equal(true);
      bn.eval();
      expect(bn.training).to.equal(false);
    } finally {
      bn.dispose();
    }
  });

  it('CUDA being unavailable is a RangeError for the device argument', function () {
    if (lib.cuda.isAvailable()) this.skip();
    throws(() => zeros([1], { device: 'cuda' }), RangeError, 'options.device', 'CUDA is not available');
  });
});

describe('bad input: every public options object is checked', function () {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'crb-bad-input-'));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  // [name, allowed keys, call(options), own keys the call needs]. A call must throw a TypeError
  // naming `bogusKey`, and must not read a key it inherits (each inherited value is a Symbol,
  // which every check refuses).
  const img = () => keep(randn([1, 1, 4, 4], cpu));
  const vec = (n) => keep(ones([n], cpu));
  const ds = { images: new Uint8Array(4 * 4), labels: new Uint8Array(4), n: 4, height: 2, width: 2 };
  const cases = [
    ['tensor', ['dtype', 'device', 'requiresGrad'], (o) => keep(tensor([1, 2], o))],
    ['Tensor.tensor', ['dtype', 'device', 'requiresGrad'], (o) => keep(Tensor.tensor([1, 2], [2], o))],
    ['empty', ['dtype', 'device', 'requiresGrad'], (o) => keep(empty([2], o))],
    ['full', ['dtype', 'device', 'requiresGrad'], (o) => keep(full([2], 3, o))],
    ['zeros', ['dtype', 'device', 'requiresGrad'], (o) => keep(zeros([2], o))],
    ['ones', ['dtype', 'device', 'requiresGrad'], (o) => keep(ones([2], o))],
    ['zerosLike', ['dtype', 'device', 'requiresGrad'], (o) => keep(zerosLike(vec(2), o))],
    ['onesLike', ['dtype', 'device', 'requiresGrad'], (o) => keep(onesLike(vec(2), o))],
    ['randn', ['dtype', 'device', 'requiresGrad', 'mean', 'std'], (o) => keep(randn([2], o))],
    ['rand', ['dtype', 'device', 'requiresGrad', 'low', 'high'], (o) => keep(rand([2], o))],
    ['Tensor.to', ['device', 'dtype', 'memoryFormat'], (o) => vec(2).to(o)],
    ['Tensor.backward', ['retainGraph'], (o) => {
      const p = keep(tensor([1, 2], { requiresGrad: true, ...cpu }));
      const y = keep(p.sum());
      y.backward(undefined, o);
    }],
    ['functional.conv2d', ['stride', 'padding', 'dilation', 'groups'], (o) => keep(F.conv2d(img(), keep(randn([1, 1, 1, 1], cpu)), null, o))],
    ['functional.batchNorm', ['training', 'momentum', 'eps'], (o) => keep(F.batchNorm(img(), vec(1), vec(1), vec(1), vec(1), o))],
    ['functional.batchNormAddRelu', ['training', 'momentum', 'eps'], (o) => keep(F.batchNormAddRelu(img(), img(), vec(1), vec(1), vec(1), vec(1), o))],
    ['functional.maxPool2d', ['stride', 'padding'], (o) => keep(F.maxPool2d(img(), 2, o))],
    ['functional.normalizeImages', ['size', 'mean', 'std', 'dtype'], (o) => keep(F.normalizeImages(keep(zeros([1, 1, 2, 2], { dtype: 'uint8', ...cpu })), o))],
    ['nn.Conv2d', ['stride', 'padding', 'dilation', 'groups', 'bias', 'device'], (o) => new nn.Conv2d(1, 1, 1, o).dispose(), cpu],
    ['nn.BatchNorm2d', ['eps', 'momentum', 'affine', 'trackRunningStats', 'device'], (o) => new nn.BatchNorm2d(1, o).dispose(), cpu],
    ['nn.MaxPool2d', ['stride', 'padding'], (o) => new nn.MaxPool2d(2, o)],
    ['nn.Linear', ['bias', 'device'], (o) => new nn.Linear(1, 1, o).dispose(), cpu],
    ['nn.ResidualBlock', ['use1x1conv', 'strides', 'device'], (o) => new nn.ResidualBlock(1, 1, o).dispose(), cpu],
    ['nn.resnet18', ['numClasses', 'inChannels', 'device'], (o) => nn.resnet18(o).dispose(), cpu],
    ['Module.to', ['device', 'dtype', 'memoryFormat'], (o) => new nn.Linear(1, 1, cpu).to(o).dispose()],
    ['Module.loadStateDict', ['strict'], (o) => {
      const m = new nn.Linear(1, 1, cpu);
      m.loadStateDict(m.stateDict(), o);
      m.dispose();
    }],
    ['optim.SGD', ['lr', 'momentum', 'dampening', 'weightDecay', 'nesterov', 'maximize'],
      (o) => new SGD([keep(tensor([1], { requiresGrad: true, ...cpu }))], o), { lr: 0.1 }],
    ['autocast', ['enabled', 'dtype'], (o) => autocast(o, () => 1)],
    ['GradScaler', ['initScale', 'growthFactor', 'backoffFactor', 'growthInterval', 'enabled'], (o) => new GradScaler(o)],
    ['data.DataLoader', ['batchSize', 'shuffle', 'seed', 'dropLast', 'device', 'resize', 'mean', 'std'],
      (o) => new data.DataLoader(ds, o), { batchSize: 2 }],
    ['data.loadFashionMnist', ['cacheDir', 'packageDir', 'splitSeed', 'rebuild', 'onWarning'], (o) => {
      try {
        data.loadFashionMnist(o);
      } catch (e) {
        // With only the required keys this may fail for want of the dataset; that is not an options error.
        if (e instanceof TypeError) throw e;
      }
    }, { cacheDir: path.join(tmp, 'fm-cache'), packageDir: path.join(tmp, 'no-such-package') }],
  ];
  // The checkpoint functions (lib/io) follow the same rule.
  const model = () => new nn.Linear(1, 1, cpu);
  const ckpt = path.join(tmp, 'm.safetensors');
  const ioCases = [
    ['io.save', ['metadata'], (o) => { const m = model(); try { io.save(m, ckpt, o); } finally { m.dispose(); } }],
    ['io.saveStateDict', ['metadata'], (o) => { const m = model(); try { io.saveStateDict(m.stateDict(), ckpt, o); } finally { m.dispose(); } }],
    ['io.load', ['strict'], (o) => { const m = model(); try { io.save(m, ckpt); io.load(m, ckpt, o); } finally { m.dispose(); } }],
    ['io.loadStateDictFile', ['device'], (o) => {
      const m = model();
      try {
        io.save(m, ckpt);
        for (const t of Object.values(io.loadStateDictFile(ckpt, o))) t.dispose();
      } finally {
        m.dispose();
      }
    }],
    ['io.parseSafetensors', ['source', 'copy'], (o) => {
      const m = model();
      try {
        io.save(m, ckpt);
        io.parseSafetensors(fs.readFileSync(ckpt), o);
      } finally {
        m.dispose();
      }
    }],
    ['io.readSafetensorsFile', ['copy'], (o) => { const m = model(); try { io.save(m, ckpt); io.readSafetensorsFile(ckpt, o); } finally { m.dispose(); } }],
  ];
  // The async ones reject (or throw) the same TypeError.
  const ioAsyncCases = [
    ['io.saveAsync', ['metadata'], async (o) => { const m = model(); try { await io.saveAsync(m, ckpt, o); } finally { m.dispose(); } }],
    ['io.saveStateDictAsync', ['metadata'], async (o) => {
      const m = model();
      try {
        await io.saveStateDictAsync(m.stateDict(), ckpt, o);
      } finally {
        m.dispose();
      }
    }],
  ];
  for (const [name, keys, call] of ioAsyncCases) {
    it(`(io) ${name}: an unknown key is a TypeError naming it; inherited keys are not read`, async function () {
      let err;
      try {
        await call({ bogusKey: 1 });
      } catch (e) {
        err = e;
      }
      expect(err, 'expected a rejection').to.be.instanceOf(TypeError);
      expect(err.message).to.include('"bogusKey"').and.to.include(JSON.stringify(keys[0]));
      await call(Object.create(Object.fromEntries(keys.map((k) => [k, Symbol(k)]))));
    });
  }

  const inherited = (keys, own = {}) => Object.assign(Object.create(Object.fromEntries(keys.map((k) => [k, Symbol(k)]))), own);
  for (const [group, list] of [['', cases], ['(io) ', ioCases]]) {
    for (const [name, keys, call, own = {}] of list) {
      it(`${group}${name}: an unknown key is a TypeError naming it; inherited keys are not read`, function () {
        const e = throws(() => call({ ...own, bogusKey: 1 }), TypeError, '"bogusKey"');
        expect(e.message).to.include(JSON.stringify(keys[0]));
        call(inherited(keys, own));
      });
    }
  }
  it('Object.create({ stride: 2 }) gives conv2d stride 1', function () {
    const y = keep(F.conv2d(img(), keep(randn([1, 1, 1, 1], cpu)), null, Object.create({ stride: 2 })));
    expect(y.shape).to.deep.equal([1, 1, 4, 4]);
  });
});
