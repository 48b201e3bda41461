// The CUDA backend against the CPU backend, op by op, forward and backward, on fresh random
// inputs, through the addon's low-level surface (lib/native.ts). Float32 must agree to a
// relative error of 1e-4 with TF32 off and 1e-2 with it on; half precision is checked against
// float32 on the same rounded inputs. Also: the caching allocator, out-of-memory recovery, and
// asynchronous reads. Needs a GPU: skipped with the reason printed when CUDA is unavailable,
// failed instead when REQUIRE_CUDA=1 (`npm run test:gpu`).
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { expect } from 'chai';

const require = createRequire(import.meta.url);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const native = require('node-gyp-build')(root);

// --- inputs: a seeded generator (the library's mulberry32) so a failure can be replayed
const { mulberry32 } = require('../dist/data/fashion-mnist.js');
let seed = 1234;
const numel = (shape) => shape.reduce((a, b) => a * b, 1);
function uniform(shape, lo = -1, hi = 1) {
  const next = mulberry32(seed++);
  const out = new Float32Array(numel(shape));
  for (let i = 0; i < out.length; i++) out[i] = lo + (hi - lo) * next();
  return out;
}

// The same values on both devices: { cpu, cuda } handles.
function both(data, shape, dtype = 'float32') {
  return { cpu: native.fromArray(data, shape, dtype, 'cpu'), cuda: native.fromArray(data, shape, dtype, 'cuda') };
}
const rand = (shape, lo, hi, dtype = 'float32') => both(dtype === 'float64' ? Float64Array.from(uniform(shape, lo, hi)) : uniform(shape, lo, hi), shape, dtype);
const labels = (n, classes) => {
  const next = mulberry32(seed++);
  return both(Int32Array.from({ length: n }, () => Math.floor(next() * classes)), [n], 'int32');
};

const maxRelErr = (a, b) => {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(Number(a[i]) - Number(b[i])));
    den = Math.max(den, Math.abs(Number(b[i])));
  }
  return num / Math.max(den, 1e-12);
};

const TOL = 1e-4;      // float32, TF32 off
const TOL_TF32 = 1e-2; // float32 with TF32 tensor cores, or half precision

// Asserts the CUDA handle holds what the CPU handle holds (shape, dtype, values within tol).
function expectSame(cudaHandle, cpuHandle, tol, label) {
  expect(cudaHandle.device, label).to.equal('cuda');
  expect(cudaHandle.shape, `${label} shape`).to.deep.equal(cpuHandle.shape);
  const a = native.readSync(cudaHandle);
  const b = native.readSync(cpuHandle);
  for (let i = 0; i < a.length; i++) {
    if (Number.isNaN(Number(a[i])) !== Number.isNaN(Number(b[i]))) throw new Error(`${label}: NaN mismatch at ${i}: ${a[i]} vs ${b[i]}`);
  }
  const err = maxRelErr(a, b);
  if (!(err <= tol)) throw new Error(`${label}: relative error ${err.toExponential(3)} > ${tol} (cuda ${a.slice(0, 4)}..., cpu ${b.slice(0, 4)}...)`);
  return err;
}

const cudaInfo = native.backendInfo().cuda;

describe('CUDA backend vs CPU backend, every op @cuda', function () {
  if (!cudaInfo.available) {
    if (process.env.REQUIRE_CUDA === '1') {
      it('has a usable CUDA device (REQUIRE_CUDA=1)', function () {
        const tried = cudaInfo.attempts.map((a) => `${a.what}: ${a.result}`).join('; ');
        throw new Error(`CUDA required but unavailable: ${cudaInfo.reason} (hint: ${cudaInfo.hint}; tried ${tried})`);
      });
      return;
    }
    before(function () {
      console.log(`      skipped: CUDA unavailable: ${cudaInfo.reason}`);
      this.skip();
    });
  }

  before(function () {
    native.setOption('cuda', 'allowTF32', 0);
    native.setOption('cuda', 'cudnnBenchmark', 0);
    native.setOption('cuda', 'deterministic', 0);
  });
  after(function () {
    if (cudaInfo.available) native.setOption('cuda', 'allowTF32', 1);  // the default
  });

  it('describes the device: name, compute capability, memory, driver, runtime and cuDNN versions', function () {
    const [dev] = native.backendInfo().cuda.devices;
    console.log(`      device: ${JSON.stringify(dev)}`);
    expect(dev.name).to.be.a('string').that.is.not.empty;
    expect(dev.computeCapability).to.match(/^\d+\.\d+$/);
    expect(Number(dev.computeCapability)).to.be.at.least(7.5);
    expect(dev.totalMemory).to.be.above(1 << 30);
    expect(dev.freeMemory).to.be.above(0).and.at.most(dev.totalMemory);
    expect(dev.multiprocessors).to.be.above(0);
    expect(dev.cudnnVersion).to.match(/^9\./);
    expect(dev.cudnnCompiledVersion).to.match(/^9\./);
  });

  it('elementwise: fill, add, axpby, sum, cast', function () {
    const a = rand([3, 1000]);
    const b = rand([3, 1000]);
    expectSame(native.add(a.cuda, b.cuda), native.add(a.cpu, b.cpu), TOL, 'add');
    native.axpby(a.cuda, b.cuda, 0.5, -2);
    native.axpby(a.cpu, b.cpu, 0.5, -2);
    expectSame(a.cuda, a.cpu, TOL, 'axpby');
    const big = rand([1 << 20], 0, 1);
    expectSame(native.sum(big.cuda), native.sum(big.cpu), TOL, 'sum of 2^20');
    const f = native.full([7, 9], 'float32', 'cuda', 0);
    native.fill(f, 2.5);
    expect(Array.from(native.readSync(f))).to.deep.equal(new Array(63).fill(2.5));
    for (const dtype of ['float64', 'float16', 'bfloat16', 'int32']) {
      expectSame(native.to(b.cuda, 'cuda', dtype, false), native.to(b.cpu, 'cpu', dtype, false), dtype === 'int32' ? 0 : TOL, `cast to ${dtype}`);
    }
    const i = both(Int32Array.from([-3, 0, 7, 255, 256]), [5], 'int32');
    expectSame(native.to(i.cuda, 'cuda', 'float32', false), native.to(i.cpu, 'cpu', 'float32', false), 0, 'int32 -> float32');
  });

  it('relu forward and backward', function () {
    const x = rand([4, 8, 5, 5]);
    const dy = rand([4, 8, 5, 5]);
    const y = { cpu: native.reluForward(x.cpu), cuda: native.reluForward(x.cuda) };
    expectSame(y.cuda, y.cpu, 0, 'relu forward');
    expectSame(native.reluBackward(dy.cuda, y.cuda), native.reluBackward(dy.cpu, y.cpu), 0, 'relu backward');
  });

  // [name, x shape, w shape, stride, padding, dilation, groups, bias]
  const convCases = [
    ['3x3 same', [2, 8, 10, 10], [16, 8, 3, 3], [1, 1], [1, 1], [1, 1], 1, false],
    ['3x3 stride 2 with bias', [3, 16, 9, 9], [8, 16, 3, 3], [2, 2], [1, 1], [1, 1], 1, true],
    ['7x7 stem stride 2 pad 3', [2, 3, 32, 32], [16, 3, 7, 7], [2, 2], [3, 3], [1, 1], 1, false],
    ['1x1 downsample stride 2', [4, 16, 8, 8], [32, 16, 1, 1], [2, 2], [0, 0], [1, 1], 1, false],
    ['grouped, dilated, rectangular', [2, 8, 11, 7], [12, 4, 3, 2], [1, 2], [2, 1], [2, 1], 2, true],
  ];
  for (const [name, xs, ws, stride, padding, dilation, groups, bias] of convCases) {
    it(`conv2d ${name}: forward, backward data, filter and bias`, function () {
      const x = rand(xs);
      const w = rand(ws, -0.3, 0.3);
      const b = bias ? rand([ws[0]]) : null;
      const y = {
        cpu: native.conv2dForward(x.cpu, w.cpu, b && b.cpu, stride, padding, dilation, groups),
        cuda: native.conv2dForward(x.cuda, w.cuda, b && b.cuda, stride, padding, dilation, groups),
      };
      expectSame(y.cuda, y.cpu, TOL, 'y');
      const dy = rand(y.cpu.shape);
      const g = {
        cpu: native.conv2dBackward(x.cpu, w.cpu, dy.cpu, stride, padding, dilation, groups, true, true, bias),
        cuda: native.conv2dBackward(x.cuda, w.cuda, dy.cuda, stride, padding, dilation, groups, true, true, bias),
      };
      expectSame(g.cuda.dx, g.cpu.dx, TOL, 'dx');
      expectSame(g.cuda.dw, g.cpu.dw, TOL, 'dw');
      if (bias) expectSame(g.cuda.db, g.cpu.db, TOL, 'db');
    });
  }

  it('conv2d channels-last: the bias gradient (coalesced two-pass kernel) and dx, dw agree with the CPU', function () {
    // 8 * 64 * 64 rows: every row block of the first pass is used; k = 40 leaves a partial channel block.
    const x = rand([8, 3, 64, 64]);
    const w = rand([40, 3, 3, 3], -0.3, 0.3);
    const dy = rand([8, 40, 64, 64]);
    const nhwc = (h) => native.to(h, 'cuda', 'float32', true);
    const ref = native.conv2dBackward(x.cpu, w.cpu, dy.cpu, [1, 1], [1, 1], [1, 1], 1, true, true, true);
    const g = native.conv2dBackward(nhwc(x.cuda), nhwc(w.cuda), nhwc(dy.cuda), [1, 1], [1, 1], [1, 1], 1, true, true, true);
    const contiguous = (h) => native.to(h, 'cuda', 'float32', false);
    expectSame(contiguous(g.db), ref.db, TOL, 'db');
    expectSame(contiguous(g.dx), ref.dx, TOL, 'dx');
    expectSame(contiguous(g.dw), ref.dw, TOL, 'dw');
  });

  it('conv2d with TF32 allowed agrees to 1e-2; benchmark and deterministic modes agree to 1e-4', function () {
    const x = rand([8, 32, 14, 14]);
    const w = rand([64, 32, 3, 3], -0.2, 0.2);
    const dy = rand([8, 64, 14, 14]);
    const ref = native.conv2dForward(x.cpu, w.cpu, null, [1, 1], [1, 1], [1, 1], 1);
    const refGrad = native.conv2dBackward(x.cpu, w.cpu, dy.cpu, [1, 1], [1, 1], [1, 1], 1, true, true, false);
    const run = () => ({
      y: native.conv2dForward(x.cuda, w.cuda, null, [1, 1], [1, 1], [1, 1], 1),
      g: native.conv2dBackward(x.cuda, w.cuda, dy.cuda, [1, 1], [1, 1], [1, 1], 1, true, true, false),
    });
    try {
      native.setOption('cuda', 'allowTF32', 1);
      let r = run();
      const errs = [expectSame(r.y, ref, TOL_TF32, 'tf32 y'), expectSame(r.g.dx, refGrad.dx, TOL_TF32, 'tf32 dx'),
        expectSame(r.g.dw, refGrad.dw, TOL_TF32, 'tf32 dw')];
      console.log(`      TF32 relative errors: ${errs.map((e) => e.toExponential(2)).join(', ')}`);
      native.setOption('cuda', 'allowTF32', 0);
      native.setOption('cuda', 'cudnnBenchmark', 1);
      r = run();
      expectSame(r.y, ref, TOL, 'benchmark y');
      expectSame(r.g.dw, refGrad.dw, TOL, 'benchmark dw');
      native.setOption('cuda', 'cudnnBenchmark', 0);
      native.setOption('cuda', 'deterministic', 1);
      const r1 = run();
      const r2 = run();
      expectSame(r1.g.dw, refGrad.dw, TOL, 'deterministic dw');
      expect(Array.from(native.readSync(r1.g.dw))).to.deep.equal(Array.from(native.readSync(r2.g.dw)));
    } finally {
      native.setOption('cuda', 'allowTF32', 0);
      native.setOption('cuda', 'cudnnBenchmark', 0);
      native.setOption('cuda', 'deterministic', 0);
    }
  });

  it('batch norm: training forward (running stats), training backward, eval forward and backward', function () {
    const shape = [6, 5, 7, 7];
    const x = rand(shape, -2, 3);
    const gamma = rand([5], 0.5, 1.5);
    const beta = rand([5]);
    const rm = rand([5]);
    const rv = rand([5], 0.5, 2);
    const f = {
      cpu: native.batchNormForwardTrain(x.cpu, gamma.cpu, beta.cpu, rm.cpu, rv.cpu, 0.1, 1e-5),
      cuda: native.batchNormForwardTrain(x.cuda, gamma.cuda, beta.cuda, rm.cuda, rv.cuda, 0.1, 1e-5),
    };
    expectSame(f.cuda.y, f.cpu.y, TOL, 'y');
    expectSame(f.cuda.saveMean, f.cpu.saveMean, TOL, 'saveMean');
    expectSame(f.cuda.saveInvstd, f.cpu.saveInvstd, TOL, 'saveInvstd');
    expectSame(rm.cuda, rm.cpu, TOL, 'running_mean');
    expectSame(rv.cuda, rv.cpu, TOL, 'running_var (unbiased)');
    const dy = rand(shape);
    const g = {
      cpu: native.batchNormBackwardTrain(x.cpu, dy.cpu, gamma.cpu, f.cpu.saveMean, f.cpu.saveInvstd, 1e-5),
      cuda: native.batchNormBackwardTrain(x.cuda, dy.cuda, gamma.cuda, f.cuda.saveMean, f.cuda.saveInvstd, 1e-5),
    };
    expectSame(g.cuda.dx, g.cpu.dx, TOL, 'dx');
    expectSame(g.cuda.dgamma, g.cpu.dgamma, TOL, 'dgamma');
    expectSame(g.cuda.dbeta, g.cpu.dbeta, TOL, 'dbeta');
    expectSame(native.batchNormForwardEval(x.cuda, gamma.cuda, beta.cuda, rm.cuda, rv.cuda, 1e-5),
      native.batchNormForwardEval(x.cpu, gamma.cpu, beta.cpu, rm.cpu, rv.cpu, 1e-5), TOL, 'eval y');
    const e = {
      cpu: native.batchNormBackwardEval(x.cpu, dy.cpu, gamma.cpu, rm.cpu, rv.cpu, 1e-5),
      cuda: native.batchNormBackwardEval(x.cuda, dy.cuda, gamma.cuda, rm.cuda, rv.cuda, 1e-5),
    };
    expectSame(e.cuda.dx, e.cpu.dx, TOL, 'eval dx');
    expectSame(e.cuda.dgamma, e.cpu.dgamma, TOL, 'eval dgamma');
    expectSame(e.cuda.dbeta, e.cpu.dbeta, TOL, 'eval dbeta');
    // Without running statistics.
    const n = {
      cpu: native.batchNormForwardTrain(x.cpu, gamma.cpu, beta.cpu, null, null, 0.1, 1e-3),
      cuda: native.batchNormForwardTrain(x.cuda, gamma.cuda, beta.cuda, null, null, 0.1, 1e-3),
    };
    expectSame(n.cuda.y, n.cpu.y, TOL, 'y without running stats');
  });

  it('max pool 3x3 stride 2 pad 1: forward and backward, ties sent to the first maximum', function () {
    // Small integers make many ties, as after a ReLU.
    const shape = [2, 4, 9, 8];
    const next = mulberry32(seed++);
    const data = Float32Array.from({ length: numel(shape) }, () => Math.floor(next() * 3));
    const x = both(data, shape);
    const f = {
      cpu: native.maxPool2dForward(x.cpu, [3, 3], [2, 2], [1, 1]),
      cuda: native.maxPool2dForward(x.cuda, [3, 3], [2, 2], [1, 1]),
    };
    expectSame(f.cuda.y, f.cpu.y, 0, 'y');
    const dy = rand(f.cpu.y.shape);
    const dx = {
      cpu: native.maxPool2dBackward(x.cpu, f.cpu.y, dy.cpu, f.cpu.indices, [3, 3], [2, 2], [1, 1]),
      cuda: native.maxPool2dBackward(x.cuda, f.cuda.y, dy.cuda, f.cuda.indices, [3, 3], [2, 2], [1, 1]),
    };
    expectSame(dx.cuda, dx.cpu, TOL, 'dx');
    const r = rand([3, 2, 10, 10]);
    const g = {
      cpu: native.maxPool2dForward(r.cpu, [2, 2], [2, 2], [0, 0]),
      cuda: native.maxPool2dForward(r.cuda, [2, 2], [2, 2], [0, 0]),
    };
    expectSame(g.cuda.y, g.cpu.y, 0, '2x2 y');
  });

  for (const [inShape, out] of [[[2, 6, 7, 7], [1, 1]], [[2, 3, 5, 7], [3, 2]], [[1, 2, 4, 4], [4, 4]]]) {
    it(`adaptive average pool ${inShape.slice(2).join('x')} -> ${out.join('x')}: forward and backward`, function () {
      const x = rand(inShape);
      const y = { cpu: native.adaptiveAvgPool2dForward(x.cpu, out), cuda: native.adaptiveAvgPool2dForward(x.cuda, out) };
      expectSame(y.cuda, y.cpu, TOL, 'y');
      const dy = rand(y.cpu.shape);
      expectSame(native.adaptiveAvgPool2dBackward(dy.cuda, inShape), native.adaptiveAvgPool2dBackward(dy.cpu, inShape), TOL, 'dx');
    });
  }

  it('linear: forward with bias, backward dx, dw, db', function () {
    const x = rand([32, 64]);
    const w = rand([10, 64], -0.2, 0.2);
    const b = rand([10]);
    const y = { cpu: native.linearForward(x.cpu, w.cpu, b.cpu), cuda: native.linearForward(x.cuda, w.cuda, b.cuda) };
    expectSame(y.cuda, y.cpu, TOL, 'y');
    expectSame(native.linearForward(x.cuda, w.cuda, null), native.linearForward(x.cpu, w.cpu, null), TOL, 'y without bias');
    const dy = rand([32, 10]);
    const g = {
      cpu: native.linearBackward(x.cpu, w.cpu, dy.cpu, true, true, true),
      cuda: native.linearBackward(x.cuda, w.cuda, dy.cuda, true, true, true),
    };
    expectSame(g.cuda.dx, g.cpu.dx, TOL, 'dx');
    expectSame(g.cuda.dw, g.cpu.dw, TOL, 'dw');
    expectSame(g.cuda.db, g.cpu.db, TOL, 'db');
    const only = native.linearBackward(x.cuda, w.cuda, dy.cuda, false, true, false);
    expect(only.dx).to.equal(null);
    expectSame(only.dw, g.cpu.dw, TOL, 'dw alone');
  });

  it('cross entropy forward and backward, and accuracy', function () {
    const logits = rand([50, 10], -4, 4);
    const y = labels(50, 10);
    const f = { cpu: native.crossEntropyForward(logits.cpu, y.cpu), cuda: native.crossEntropyForward(logits.cuda, y.cuda) };
    expectSame(f.cuda.loss, f.cpu.loss, TOL, 'loss');
    expectSame(f.cuda.probs, f.cpu.probs, TOL, 'probs');
    const dloss = both(Float32Array.from([1.5]), []);
    expectSame(native.crossEntropyBackward(f.cuda.probs, y.cuda, dloss.cuda),
      native.crossEntropyBackward(f.cpu.probs, y.cpu, dloss.cpu), TOL, 'dlogits');
    expectSame(native.accuracyCount(logits.cuda, y.cuda), native.accuracyCount(logits.cpu, y.cpu), 0, 'accuracy');
    // float16 logits take the backend's own softmax kernel.
    const h = native.to(logits.cuda, 'cuda', 'float16', false);
    const hRef = both(native.readSync(h), [50, 10]);
    const fh = native.crossEntropyForward(h, y.cuda);
    expectSame(fh.loss, native.crossEntropyForward(hRef.cpu, y.cpu).loss, TOL_TF32, 'float16 loss');
  });

  it('fused SGD: momentum, dampening, weight decay, nesterov, maximize over several parameters', function () {
    const shapes = [[16, 8, 3, 3], [16], [10, 16], [5000]];
    const opts = [
      { lr: 0.1, momentum: 0.9, dampening: 0, weightDecay: 5e-4, nesterov: true, maximize: false },
      { lr: 0.05, momentum: 0.8, dampening: 0.1, weightDecay: 0, nesterov: false, maximize: true },
      { lr: 0.01, momentum: 0, dampening: 0, weightDecay: 1e-2, nesterov: false, maximize: false },
    ];
    for (const o of opts) {
      const params = shapes.map((s) => rand(s));
      const bufs = shapes.map((s) => (o.momentum ? rand(s) : null));
      for (let step = 0; step < 2; step++) {
        const grads = shapes.map((s) => rand(s));
        for (const dev of ['cpu', 'cuda']) {
          native.sgdStep(params.map((p) => p[dev]), grads.map((g) => g[dev]), bufs.map((b) => b && b[dev]),
            shapes.map(() => step === 0), o);
        }
      }
      params.forEach((p, i) => expectSame(p.cuda, p.cpu, TOL, `param ${i} ${JSON.stringify(o)}`));
      bufs.forEach((b, i) => b && expectSame(b.cuda, b.cpu, TOL, `momentum buffer ${i}`));
    }
  });

  it('uint8 images to normalized float: bilinear resize up, down and identity', function () {
    const shape = [3, 2, 28, 28];
    const next = mulberry32(seed++);
    const img = both(Uint8Array.from({ length: numel(shape) }, () => Math.floor(next() * 256)), shape, 'uint8');
    for (const size of [[32, 32], [14, 20], [28, 28]]) {
      expectSame(native.imagesU8ToFloat(img.cuda, size, 0.2860, 0.3530, 'float32'),
        native.imagesU8ToFloat(img.cpu, size, 0.2860, 0.3530, 'float32'), TOL, `resize to ${size}`);
    }
  });

  it('float16 and bfloat16: conv, batch norm, relu, pooling, linear against float32 on the same rounded inputs', function () {
    for (const dtype of ['float16', 'bfloat16']) {
      // Inputs rounded to the half type once; the CPU reference computes in float32 from those.
      const half = (shape, lo, hi) => {
        const h = native.fromArray(uniform(shape, lo, hi), shape, dtype, 'cuda');
        return { cuda: h, cpu: native.fromArray(native.readSync(h), shape, 'float32', 'cpu') };
      };
      const x = half([4, 8, 12, 12]);
      const w = half([16, 8, 3, 3], -0.3, 0.3);
      const y = { cuda: native.conv2dForward(x.cuda, w.cuda, null, [1, 1], [1, 1], [1, 1], 1),
        cpu: native.conv2dForward(x.cpu, w.cpu, null, [1, 1], [1, 1], [1, 1], 1) };
      expect(y.cuda.dtype).to.equal(dtype);
      expectSame(y.cuda, y.cpu, TOL_TF32, `${dtype} conv y`);
      const dy = half(y.cpu.shape);
      const g = {
        cuda: native.conv2dBackward(x.cuda, w.cuda, dy.cuda, [1, 1], [1, 1], [1, 1], 1, true, true, false),
        cpu: native.conv2dBackward(x.cpu, w.cpu, dy.cpu, [1, 1], [1, 1], [1, 1], 1, true, true, false),
      };
      expectSame(g.cuda.dx, g.cpu.dx, TOL_TF32, `${dtype} conv dx`);
      expectSame(g.cuda.dw, g.cpu.dw, TOL_TF32, `${dtype} conv dw`);
      const gamma = rand([16], 0.5, 1.5);
      const beta = rand([16]);
      const bn = {
        cuda: native.batchNormForwardTrain(y.cuda, gamma.cuda, beta.cuda, null, null, 0.1, 1e-5),
        cpu: native.batchNormForwardTrain(native.fromArray(native.readSync(y.cuda), y.cpu.shape, 'float32', 'cpu'),
          gamma.cpu, beta.cpu, null, null, 0.1, 1e-5),
      };
      expectSame(bn.cuda.y, bn.cpu.y, TOL_TF32, `${dtype} batch norm y`);
      const r = { cuda: native.reluForward(x.cuda), cpu: native.reluForward(x.cpu) };
      expectSame(r.cuda, r.cpu, 0, `${dtype} relu`);
      expectSame(native.maxPool2dForward(x.cuda, [3, 3], [2, 2], [1, 1]).y,
        native.maxPool2dForward(x.cpu, [3, 3], [2, 2], [1, 1]).y, 0, `${dtype} max pool`);
      const lx = half([16, 32]);
      const lw = half([10, 32], -0.3, 0.3);
      expectSame(native.linearForward(lx.cuda, lw.cuda, null), native.linearForward(lx.cpu, lw.cpu, null), TOL_TF32,
        `${dtype} linear`);
    }
  });

  it('float64: conv, batch norm and linear (when cuDNN supports the type)', function () {
    const x = rand([2, 4, 9, 9], -1, 1, 'float64');
    const w = rand([6, 4, 3, 3], -0.3, 0.3, 'float64');
    let y;
    try {
      y = native.conv2dForward(x.cuda, w.cuda, null, [1, 1], [1, 1], [1, 1], 1);
    } catch (e) {
      console.log(`      float64 convolution not available here: ${e.code} ${e.message}`);
      expect(e.code).to.be.oneOf(['CRB_ERR_UNSUPPORTED', 'CRB_ERR_CUDNN']);
      return;
    }
    expectSame(y, native.conv2dForward(x.cpu, w.cpu, null, [1, 1], [1, 1], [1, 1], 1), 1e-10, 'float64 conv');
    const gamma = rand([4], 0.5, 1.5, 'float64');
    const beta = rand([4], -1, 1, 'float64');
    expectSame(native.batchNormForwardTrain(x.cuda, gamma.cuda, beta.cuda, null, null, 0.1, 1e-5).y,
      native.batchNormForwardTrain(x.cpu, gamma.cpu, beta.cpu, null, null, 0.1, 1e-5).y, 1e-10, 'float64 batch norm');
    const lx = rand([8, 12], -1, 1, 'float64');
    const lw = rand([3, 12], -1, 1, 'float64');
    expectSame(native.linearForward(lx.cuda, lw.cuda, null), native.linearForward(lx.cpu, lw.cpu, null), 1e-10, 'float64 linear');
  });

  it('read() resolves to what readSync returns, after the queued work', async function () {
    const x = rand([256, 1024]);
    const y = native.reluForward(x.cuda);
    const [a, b] = await Promise.all([native.read(y), native.read(native.sum(y))]);
    expect(Array.from(a)).to.deep.equal(Array.from(native.readSync(native.reluForward(x.cpu))));
    expect(Math.abs(b[0] - native.readSync(native.sum(native.reluForward(x.cpu)))[0]) / Math.abs(b[0])).to.be.below(TOL);
  });

  it('the caching allocator serves a freed block again (cache hit) and emptyCache releases it', function () {
    native.synchronize('cuda');
    const shape = [3, 1000, 1000];
    const first = native.empty(shape, 'float32', 'cuda');
    first.dispose();
    const before = native.memoryStats('cuda');
    const second = native.empty(shape, 'float32', 'cuda');
    const after = native.memoryStats('cuda');
    expect(after.cacheHits).to.equal(before.cacheHits + 1);
    expect(after.allocCount).to.equal(before.allocCount + 1);
    expect(after.reserved).to.equal(before.reserved);
    expect(after.allocated).to.be.at.least(before.allocated + 12e6);
    expect(after.peakAllocated).to.be.at.least(after.allocated);
    second.dispose();
    native.emptyCache('cuda');
    expect(native.memoryStats('cuda').reserved).to.be.below(after.reserved);
  });

  // --- issue #12: the algorithm search, its memory, the fused BN fallback. Each runs in a child
  // process, as the CUDA backend reads its test hooks from the environment once, at init.
  // The child prints one JSON line on stdout; CRB_CUDA_LOG_CONV lines arrive on stderr.
  function child(env, body) {
    const code = `const native = require('node-gyp-build')(${JSON.stringify(root)});\n` +
      `const { mulberry32 } = require(${JSON.stringify(join(root, 'dist', 'data', 'fashion-mnist.js'))});\n` +
      `const numel = (s) => s.reduce((a, b) => a * b, 1);\n` +
      `let seed = 99;\nconst uniform = (shape, lo = -1, hi = 1) => { const next = mulberry32(seed++); ` +
      `return Float32Array.from({ length: numel(shape) }, () => lo + (hi - lo) * next()); };\n` +
      `const maxRelErr = ${maxRelErr.toString()};\n` +
      `const cmp = (a, b) => maxRelErr(native.readSync(native.to(a, 'cpu', 'float32', false)), native.readSync(native.to(b, 'cpu', 'float32', false)));\n` +
      `const out = (() => {\n${body}\n})();\nprocess.stdout.write(JSON.stringify(out) + '\\n');\n`;
    const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', timeout: 120000, env: { ...process.env, ...env } });
    if (r.status !== 0) throw new Error(`child exited ${r.status}: ${r.stderr}`);
    return { result: JSON.parse(r.stdout.trim().split('\n').pop()), log: r.stderr };
  }
  // "crb_cuda conv forward: ..." lines of one direction
  const convLog = (log, dir) => log.split('\n').filter((l) => l.startsWith(`crb_cuda conv ${dir}: `))
    .map((l) => l.slice(`crb_cuda conv ${dir}: `.length));
  // The allocator's size classes (allocator.cc size_class).
  const sizeClass = (b) => {
    if (b <= 512) return 512;
    if (b <= 1 << 20) return Math.ceil(b / 512) * 512;
    const p = Math.floor(Math.log2(b - 1));
    const step = 2 ** (p - 2);
    return Math.ceil(b / step) * step;
  };

  it('conv2d: a failing first algorithm falls through to the next, which is what gets cached (CRB_TEST_FAIL_FIRST_CONV_ALGO)', function () {
    const { result, log } = child({ CRB_TEST_FAIL_FIRST_CONV_ALGO: '1' }, `
      native.setOption('cuda', 'allowTF32', 0);
      const xs = [4, 16, 12, 12], ws = [32, 16, 3, 3];
      const xd = uniform(xs), wd = uniform(ws, -0.3, 0.3);
      const x = { cpu: native.fromArray(xd, xs, 'float32', 'cpu'), cuda: native.fromArray(xd, xs, 'float32', 'cuda') };
      const w = { cpu: native.fromArray(wd, ws, 'float32', 'cpu'), cuda: native.fromArray(wd, ws, 'float32', 'cuda') };
      const args = [[1, 1], [1, 1], [1, 1], 1];
      const y = { cpu: native.conv2dForward(x.cpu, w.cpu, null, ...args), cuda: native.conv2dForward(x.cuda, w.cuda, null, ...args) };
      const dyd = uniform(y.cpu.shape);
      const dy = { cpu: native.fromArray(dyd, y.cpu.shape, 'float32', 'cpu'), cuda: native.fromArray(dyd, y.cpu.shape, 'float32', 'cuda') };
      const g = { cpu: native.conv2dBackward(x.cpu, w.cpu, dy.cpu, ...args, true, true, false),
        cuda: native.conv2dBackward(x.cuda, w.cuda, dy.cuda, ...args, true, true, false) };
      const again = native.conv2dForward(x.cuda, w.cuda, null, ...args);  // from the cache: no second search
      return { y: cmp(y.cuda, y.cpu), dx: cmp(g.cuda.dx, g.cpu.dx), dw: cmp(g.cuda.dw, g.cpu.dw), again: cmp(again, y.cpu) };`);
    console.log(`      relative errors: ${JSON.stringify(result)}`);
    for (const k of ['y', 'dx', 'dw', 'again']) expect(result[k], k).to.be.at.most(TOL);
    for (const dir of ['forward', 'backward data', 'backward filter']) {
      const lines = convLog(log, dir);
      const cands = lines.filter((l) => l.startsWith('candidates '));
      expect(cands, `${dir}: one search only (the second forward used the cache)\n${log}`).to.have.length(1);
      const order = cands[0].slice('candidates '.length).split(',').map(Number);
      expect(order.length, `${dir}: needs two candidates to show the fallback`).to.be.at.least(2);
      const failed = `algo ${order[0]} failed: algorithm ${order[0]} failed (test hook CRB_TEST_FAIL_FIRST_CONV_ALGO)`;
      expect(lines.some((l) => l.startsWith(failed)), `${dir}: ${failed}\n${log}`).to.equal(true);
      const cached = lines.filter((l) => l.startsWith('cached algo '));
      expect(cached, `${dir}\n${log}`).to.have.length(1);
      expect(cached[0]).to.match(new RegExp(`^cached algo ${order[1]} `));
    }
  });

  it('conv2d benchmark: the Find scratch is returned at once, and emptyCache releases the workspace too', function () {
    const { result, log } = child({ CRB_CUDA_LOG_CONV: '1' }, `
      native.setOption('cuda', 'allowTF32', 0);
      native.setOption('cuda', 'cudnnBenchmark', 1);
      const xs = [16, 64, 56, 56], ws = [64, 64, 3, 3];
      const x = native.fromArray(uniform(xs), xs, 'float32', 'cuda');
      const w = native.fromArray(uniform(ws, -0.1, 0.1), ws, 'float32', 'cuda');
      native.synchronize('cuda');
      const before = native.memoryStats('cuda');
      const y = native.conv2dForward(x, w, null, [1, 1], [1, 1], [1, 1], 1);
      native.synchronize('cuda');
      const afterFind = native.memoryStats('cuda');
      y.dispose();
      native.emptyCache('cuda');
      const afterEmpty = native.memoryStats('cuda');
      return { before, afterFind, afterEmpty, yBytes: 4 * numel(xs) };`);
    const { before, afterFind, afterEmpty, yBytes } = result;
    console.log(`      reserved: before Find ${before.reserved}, after Find ${afterFind.reserved}, after emptyCache ${afterEmpty.reserved}; peak ${afterFind.peakAllocated}`);
    const lines = convLog(log, 'forward');
    const scratch = lines.map((l) => /^find with (\d+) bytes of scratch$/.exec(l)).find(Boolean);
    const cached = lines.map((l) => /^cached algo \d+ \(math \d+, workspace (\d+) bytes\)$/.exec(l)).find(Boolean);
    expect(scratch, log).to.exist;
    expect(cached, log).to.exist;
    const scratchBytes = Number(scratch[1]);
    const wsBytes = Math.max(1, Number(cached[1]));
    // After Find only y and the winner's workspace (now cached) can have been added: not the scratch.
    expect(afterFind.reserved - before.reserved).to.be.at.most(sizeClass(yBytes) + sizeClass(wsBytes));
    // The scratch went through the allocator (it counted while Find ran) ...
    expect(afterFind.peakAllocated).to.be.at.least(before.allocated + sizeClass(scratchBytes));
    // ... and nothing of the op is held now: no live workspace, nothing left in the cache.
    expect(afterEmpty.allocated).to.equal(before.allocated);
    expect(afterEmpty.reserved).to.equal(afterEmpty.allocated);
  });

  for (const hook of ['1', 'backward']) {
    it(`fused BN + add + ReLU falls back to the unfused ops when cuDNN refuses the call (CRB_TEST_FUSED_BN_NOT_SUPPORTED=${hook})`, function () {
      const { result } = child({ CRB_TEST_FUSED_BN_NOT_SUPPORTED: hook }, `
        const shape = [4, 8, 6, 6], c = 8;
        // float16 channels-last on the GPU (the fusable case); float32 on the CPU from the same rounded values
        const half = (lo, hi) => {
          const h = native.to(native.fromArray(uniform(shape, lo, hi), shape, 'float16', 'cuda'), 'cuda', 'float16', true);
          return { cuda: h, cpu: native.fromArray(native.readSync(native.to(h, 'cpu', 'float32', false)), shape, 'float32', 'cpu') };
        };
        const param = (lo, hi) => { const d = uniform([c], lo, hi); return { cpu: native.fromArray(d, [c], 'float32', 'cpu'), cuda: native.fromArray(d, [c], 'float32', 'cuda') }; };
        const x = half(-2, 2), z = half(-1, 1), dy = half(-1, 1);
        const gamma = param(0.5, 1.5), beta = param(-0.5, 0.5), rm = param(-0.1, 0.1), rv = param(0.5, 2);
        const f = {
          cpu: native.batchNormAddReluForwardTrain(x.cpu, z.cpu, gamma.cpu, beta.cpu, rm.cpu, rv.cpu, 0.1, 1e-5),
          cuda: native.batchNormAddReluForwardTrain(x.cuda, z.cuda, gamma.cuda, beta.cuda, rm.cuda, rv.cuda, 0.1, 1e-5),
        };
        if (!f.cuda) return { fused: false };
        const second = native.batchNormAddReluForwardTrain(x.cuda, z.cuda, gamma.cuda, beta.cuda, rm.cuda, rv.cuda, 0.1, 1e-5);
        const g = {
          cpu: native.batchNormAddReluBackwardTrain(x.cpu, f.cpu.y, dy.cpu, gamma.cpu, beta.cpu, f.cpu.saveMean, f.cpu.saveInvstd, f.cpu.reserve, 1e-5),
          cuda: native.batchNormAddReluBackwardTrain(x.cuda, f.cuda.y, dy.cuda, gamma.cuda, beta.cuda, f.cuda.saveMean, f.cuda.saveInvstd, f.cuda.reserve, 1e-5),
        };
        return { fused: true, secondFused: second !== null, y: cmp(f.cuda.y, f.cpu.y), saveMean: cmp(f.cuda.saveMean, f.cpu.saveMean),
          dx: cmp(g.cuda.dx, g.cpu.dx), dz: cmp(g.cuda.dz, g.cpu.dz), dgamma: cmp(g.cuda.dgamma, g.cpu.dgamma), dbeta: cmp(g.cuda.dbeta, g.cpu.dbeta) };`);
      console.log(`      ${JSON.stringify(result)}`);
      expect(result.fused, 'the reserve query succeeds, so the fused entry is called').to.equal(true);
      // A refused forward is remembered: the next forward of this shape is reported unfusable.
      if (hook === '1') expect(result.secondFused).to.equal(false);
      for (const k of ['y', 'saveMean', 'dx', 'dz', 'dgamma', 'dbeta']) expect(result[k], k).to.be.at.most(TOL_TF32);
    });
  }

  it('an impossible allocation throws an out-of-memory error and the backend keeps working', function () {
    let caught;
    try {
      native.empty([1 << 24, 1 << 24], 'float32', 'cuda');  // 1 PiB
    } catch (e) {
      caught = e;
    }
    expect(caught, 'expected a throw').to.exist;
    expect(caught.code).to.equal('CRB_ERR_OOM');
    expect(caught.op).to.equal('alloc');
    expect(caught.device).to.equal('cuda');
    expect(caught.message).to.match(/out of memory/i);
    const x = rand([64, 64]);
    expectSame(native.add(x.cuda, x.cuda), native.add(x.cpu, x.cpu), TOL, 'add after OOM');
    native.synchronize('cuda');
  });
});
