// Channels-last (NHWC) copies of the CUDA conv, batch-norm and pooling cases of test/60, in
// float32, float16 and bfloat16, against the CPU backend computing in float32 (NCHW) on the same
// values: half-precision inputs are rounded to their type once, on the device, and the CPU gets
// those rounded values. Outputs are compared after converting them back to float32 NCHW, so the
// comparison does not depend on how either side stores them. float64 channels-last either agrees
// with the CPU in float64 or fails with a typed error that names the dtype or the layout.
// Needs a GPU: skipped with the reason printed when CUDA is unavailable, failed instead when
// REQUIRE_CUDA=1 (`npm run test:gpu`).
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { expect } from 'chai';

const require = createRequire(import.meta.url);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const native = require('node-gyp-build')(root);
const { mulberry32 } = require('../dist/data/fashion-mnist.js');

let seed = 6400;
const numel = (shape) => shape.reduce((a, b) => a * b, 1);
function uniform(shape, lo = -1, hi = 1) {
  const next = mulberry32(seed++);
  const out = new Float32Array(numel(shape));
  for (let i = 0; i < out.length; i++) out[i] = lo + (hi - lo) * next();
  return out;
}

// Relative to the largest reference value. float32 with TF32 off; half types hold 11 (float16)
// or 8 (bfloat16) significant bits, and their outputs are rounded to that once more.
const TOL = { float32: 1e-4, float16: 1e-2, bfloat16: 3e-2, float64: 1e-10 };
const DTYPES = ['float32', 'float16', 'bfloat16'];

// { cuda: a channels-last handle of `dtype` (4-D) / plain (1-D), cpu: float32 NCHW, same values }
function input(data, shape, dtype) {
  const flat = native.fromArray(data, shape, dtype, 'cuda');
  const cuda = shape.length === 4 ? native.to(flat, 'cuda', dtype, true) : flat;
  const refDtype = dtype === 'float64' ? 'float64' : 'float32';
  return { cuda, cpu: native.to(flat, 'cpu', refDtype, false) };
}
const rand = (shape, dtype, lo, hi) => input(dtype === 'float64' ? Float64Array.from(uniform(shape, lo, hi)) : uniform(shape, lo, hi), shape, dtype);
// Per-channel vectors (gamma, beta, running stats) stay float32 masters for half inputs.
const param = (shape, dtype, lo, hi) => rand(shape, dtype === 'float64' ? 'float64' : 'float32', lo, hi);

function maxRelErr(a, b) {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(Number(a[i]) - Number(b[i])));
    den = Math.max(den, Math.abs(Number(b[i])));
  }
  return num / Math.max(den, 1e-12);
}

// A wrong number (as opposed to an error thrown by the library).
const wrong = (message) => Object.assign(new Error(message), { wrongAnswer: true });

// The CUDA result, brought back as NCHW in the reference's dtype, against the CPU's.
function expectSame(cudaHandle, cpuHandle, tol, label, { layout } = {}) {
  expect(cudaHandle.device, label).to.equal('cuda');
  expect(cudaHandle.shape, `${label} shape`).to.deep.equal(cpuHandle.shape);
  if (layout !== undefined) expect(cudaHandle.channelsLast, `${label} is channels-last`).to.equal(layout);
  const a = native.readSync(native.to(cudaHandle, 'cpu', cpuHandle.dtype, false));
  const b = native.readSync(cpuHandle);
  for (let i = 0; i < a.length; i++) {
    if (Number.isNaN(Number(a[i])) !== Number.isNaN(Number(b[i]))) throw wrong(`${label}: NaN mismatch at ${i}: ${a[i]} vs ${b[i]}`);
  }
  const err = maxRelErr(a, b);
  if (!(err <= tol)) throw wrong(`${label}: relative error ${err.toExponential(3)} > ${tol} (cuda ${a.slice(0, 4)}..., cpu ${b.slice(0, 4)}...)`);
  return err;
}

// [name, x shape, w shape, stride, padding, dilation, groups, bias]: test/60's cases and the stems.
const convCases = [
  ['3x3 same', [2, 8, 10, 10], [16, 8, 3, 3], [1, 1], [1, 1], [1, 1], 1, false],
  ['3x3 stride 2 with bias', [3, 16, 9, 9], [8, 16, 3, 3], [2, 2], [1, 1], [1, 1], 1, true],
  ['7x7 stem stride 2 pad 3', [2, 3, 32, 32], [16, 3, 7, 7], [2, 2], [3, 3], [1, 1], 1, false],
  ['1x1 downsample stride 2', [4, 16, 8, 8], [32, 16, 1, 1], [2, 2], [0, 0], [1, 1], 1, false],
  ['grouped, dilated, rectangular', [2, 8, 11, 7], [12, 4, 3, 2], [1, 2], [2, 1], [2, 1], 2, true],
  ['7x7 stem C=1 (d2l ResNet-18, 96x96)', [4, 1, 96, 96], [64, 1, 7, 7], [2, 2], [3, 3], [1, 1], 1, false],
  ['7x7 stem C=3 (ImageNet-style, 64x64)', [2, 3, 64, 64], [64, 3, 7, 7], [2, 2], [3, 3], [1, 1], 1, false],
];

function convCase(dtype, [, xs, ws, stride, padding, dilation, groups, bias]) {
  const tol = TOL[dtype];
  const x = rand(xs, dtype);
  const w = rand(ws, dtype, -0.3, 0.3);
  const b = bias ? rand([ws[0]], dtype) : null;
  const args = [stride, padding, dilation, groups];
  const y = {
    cuda: native.conv2dForward(x.cuda, w.cuda, b && b.cuda, ...args),
    cpu: native.conv2dForward(x.cpu, w.cpu, b && b.cpu, ...args),
  };
  expect(y.cuda.dtype).to.equal(dtype);
  expectSame(y.cuda, y.cpu, tol, `${dtype} y`, { layout: true });
  const dy = rand(y.cpu.shape, dtype);
  const g = {
    cuda: native.conv2dBackward(x.cuda, w.cuda, dy.cuda, ...args, true, true, bias),
    cpu: native.conv2dBackward(x.cpu, w.cpu, dy.cpu, ...args, true, true, bias),
  };
  expectSame(g.cuda.dx, g.cpu.dx, tol, `${dtype} dx`);
  expectSame(g.cuda.dw, g.cpu.dw, tol, `${dtype} dw`);
  if (bias) expectSame(g.cuda.db, g.cpu.db, tol, `${dtype} db`);
}

function batchNormCase(dtype, shape) {
  const tol = TOL[dtype];
  const c = shape[1];
  const x = rand(shape, dtype, -2, 3);
  const gamma = param([c], dtype, 0.5, 1.5);
  const beta = param([c], dtype);
  const rm = param([c], dtype);
  const rv = param([c], dtype, 0.5, 2);
  const f = {
    cuda: native.batchNormForwardTrain(x.cuda, gamma.cuda, beta.cuda, rm.cuda, rv.cuda, 0.1, 1e-5),
    cpu: native.batchNormForwardTrain(x.cpu, gamma.cpu, beta.cpu, rm.cpu, rv.cpu, 0.1, 1e-5),
  };
  // Statistics are reduced in float32 from the same rounded inputs, so they agree to float32.
  const statTol = dtype === 'float64' ? TOL.float64 : 1e-4;
  expectSame(f.cuda.y, f.cpu.y, tol, `${dtype} y`, { layout: true });
  expectSame(f.cuda.saveMean, f.cpu.saveMean, statTol, `${dtype} saveMean`);
  expectSame(f.cuda.saveInvstd, f.cpu.saveInvstd, statTol, `${dtype} saveInvstd`);
  expectSame(rm.cuda, rm.cpu, statTol, `${dtype} running_mean`);
  expectSame(rv.cuda, rv.cpu, statTol, `${dtype} running_var (unbiased)`);
  const dy = rand(shape, dtype);
  const g = {
    cuda: native.batchNormBackwardTrain(x.cuda, dy.cuda, gamma.cuda, f.cuda.saveMean, f.cuda.saveInvstd, 1e-5),
    cpu: native.batchNormBackwardTrain(x.cpu, dy.cpu, gamma.cpu, f.cpu.saveMean, f.cpu.saveInvstd, 1e-5),
  };
  expectSame(g.cuda.dx, g.cpu.dx, tol, `${dtype} dx`);
  expectSame(g.cuda.dgamma, g.cpu.dgamma, tol, `${dtype} dgamma`);
  expectSame(g.cuda.dbeta, g.cpu.dbeta, tol, `${dtype} dbeta`);
  expectSame(native.batchNormForwardEval(x.cuda, gamma.cuda, beta.cuda, rm.cuda, rv.cuda, 1e-5),
    native.batchNormForwardEval(x.cpu, gamma.cpu, beta.cpu, rm.cpu, rv.cpu, 1e-5), tol, `${dtype} eval y`, { layout: true });
  const e = {
    cuda: native.batchNormBackwardEval(x.cuda, dy.cuda, gamma.cuda, rm.cuda, rv.cuda, 1e-5),
    cpu: native.batchNormBackwardEval(x.cpu, dy.cpu, gamma.cpu, rm.cpu, rv.cpu, 1e-5),
  };
  expectSame(e.cuda.dx, e.cpu.dx, tol, `${dtype} eval dx`);
  expectSame(e.cuda.dgamma, e.cpu.dgamma, tol, `${dtype} eval dgamma`);
  expectSame(e.cuda.dbeta, e.cpu.dbeta, tol, `${dtype} eval dbeta`);
}

function maxPoolCase(dtype) {
  // Small integers (exact in every type) make many ties, as after a ReLU.
  const shape = [2, 4, 9, 8];
  const next = mulberry32(seed++);
  const x = input(Float32Array.from({ length: numel(shape) }, () => Math.floor(next() * 3)), shape, dtype);
  const p = [[3, 3], [2, 2], [1, 1]];
  const f = { cuda: native.maxPool2dForward(x.cuda, ...p), cpu: native.maxPool2dForward(x.cpu, ...p) };
  expectSame(f.cuda.y, f.cpu.y, 0, `${dtype} y`, { layout: true });
  const dy = rand(f.cpu.y.shape, dtype);
  const dx = {
    cuda: native.maxPool2dBackward(x.cuda, f.cuda.y, dy.cuda, f.cuda.indices, ...p),
    cpu: native.maxPool2dBackward(x.cpu, f.cpu.y, dy.cpu, f.cpu.indices, ...p),
  };
  expectSame(dx.cuda, dx.cpu, TOL[dtype], `${dtype} dx (ties to the first maximum)`);
  const r = rand([3, 2, 10, 10], dtype);
  expectSame(native.maxPool2dForward(r.cuda, [2, 2], [2, 2], [0, 0]).y,
    native.maxPool2dForward(r.cpu, [2, 2], [2, 2], [0, 0]).y, 0, `${dtype} 2x2 y`, { layout: true });
}

function avgPoolCase(dtype, inShape, out) {
  const x = rand(inShape, dtype);
  const y = { cuda: native.adaptiveAvgPool2dForward(x.cuda, out), cpu: native.adaptiveAvgPool2dForward(x.cpu, out) };
  expectSame(y.cuda, y.cpu, TOL[dtype], `${dtype} y`);
  const dy = rand(y.cpu.shape, dtype);
  expectSame(native.adaptiveAvgPool2dBackward(dy.cuda, inShape), native.adaptiveAvgPool2dBackward(dy.cpu, inShape),
    TOL[dtype], `${dtype} dx`);
}

const cudaInfo = native.backendInfo().cuda;

describe('CUDA channels-last (NHWC) vs CPU, conv, batch norm and pooling @cuda', function () {
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

  it('the CUDA backend computes in channels-last and `to` keeps the layout', function () {
    expect(native.backendInfo().cuda.capabilities.channelsLast).to.equal(true);
    const x = rand([2, 3, 4, 5], 'float32');
    expect(x.cuda.channelsLast).to.equal(true);
    expectSame(x.cuda, x.cpu, 0, 'round trip through NHWC');
  });

  for (const dtype of DTYPES) {
    for (const c of convCases) {
      it(`${dtype} channels-last conv2d ${c[0]}: forward, backward data, filter and bias`, function () {
        convCase(dtype, c);
      });
    }
    for (const shape of [[6, 5, 7, 7], [4, 64, 8, 8]]) {
      it(`${dtype} channels-last batch norm ${shape.join('x')}: training forward (running stats) and backward, eval forward and backward`, function () {
        batchNormCase(dtype, shape);
      });
    }
    it(`${dtype} channels-last max pool 3x3 stride 2 pad 1 and 2x2: forward and backward`, function () {
      maxPoolCase(dtype);
    });
    for (const [inShape, out] of [[[2, 6, 7, 7], [1, 1]], [[2, 3, 5, 7], [3, 2]], [[1, 2, 4, 4], [4, 4]]]) {
      it(`${dtype} channels-last adaptive average pool ${inShape.slice(2).join('x')} -> ${out.join('x')}: forward and backward`, function () {
        avgPoolCase(dtype, inShape, out);
      });
    }
  }

  // float64 in NHWC: cuDNN may have no kernel for it. Either answer is fine; a wrong number or an
  // untyped error is not.
  it('float64 channels-last: conv, batch norm and max pool agree with the CPU or throw a typed error naming the dtype or layout', function () {
    const attempts = [
      ['conv2d', () => convCase('float64', convCases[0])],
      ['batch norm', () => batchNormCase('float64', [6, 5, 7, 7])],
      ['max pool', () => {
        const x = rand([2, 4, 9, 8], 'float64');
        expectSame(native.maxPool2dForward(x.cuda, [3, 3], [2, 2], [1, 1]).y,
          native.maxPool2dForward(x.cpu, [3, 3], [2, 2], [1, 1]).y, 0, 'float64 max pool y');
      }],
    ];
    for (const [op, run] of attempts) {
      try {
        run();
        console.log(`      float64 channels-last ${op}: computed, agrees with the CPU`);
      } catch (e) {
        if (e.wrongAnswer || e.name === 'AssertionError') throw e;  // a wrong answer, not a refusal
        console.log(`      float64 channels-last ${op}: ${e.name} ${e.code} ${e.message}`);
        // A backend error with its status code, or the addon's TypeError/RangeError for bad input.
        const typed = (typeof e.code === 'string' && /^CRB_ERR_/.test(e.code)) || e instanceof TypeError || e instanceof RangeError;
        expect(typed, `${op}: a typed error, got ${e.name} (code ${e.code}): ${e.message}`).to.equal(true);
        expect(e.message, `${op}: the error names the dtype or the layout`).to.match(/float64|double|channels.?last|NHWC|layout/i);
      }
    }
  });
});
