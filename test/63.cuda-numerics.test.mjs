// CUDA numerics that must match PyTorch's choices (issue #12): ReLU backward passes the gradient
// where y is NaN (threshold_backward); float32 Linear is exact float32 unless
// cuda.matmul.setAllowTF32(true) (torch.backends.cuda.matmul.allow_tf32 = False by default);
// bfloat16 batch norm, NCHW and NHWC, training and inference, forward and backward, against the
// CPU in float32 on the same rounded inputs; channels-last training BN (cuDNN's persistent mode,
// our kernels under the deterministic option); and the batch sizes at which batch norm leaves
// cuDNN for our kernels (N > 880801 training, N > 65535 inference), on either side of each.
// Needs a GPU: skipped with the reason printed when CUDA is unavailable, failed instead when
// REQUIRE_CUDA=1 (`npm run test:gpu`).
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { expect } from 'chai';

const require = createRequire(import.meta.url);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const native = require('node-gyp-build')(root);
const lib = require('../dist/index.js');
const { mulberry32 } = require('../dist/data/fashion-mnist.js');

let seed = 6300;
const numel = (shape) => shape.reduce((a, b) => a * b, 1);
function uniform(shape, lo = -1, hi = 1) {
  const next = mulberry32(seed++);
  const out = new Float32Array(numel(shape));
  for (let i = 0; i < out.length; i++) out[i] = lo + (hi - lo) * next();
  return out;
}
const both = (data, shape, dtype = 'float32') =>
  ({ cpu: native.fromArray(data, shape, dtype, 'cpu'), cuda: native.fromArray(data, shape, dtype, 'cuda') });
const rand = (shape, lo, hi) => both(uniform(shape, lo, hi), shape);

const maxRelErr = (a, b) => {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(Number(a[i]) - Number(b[i])));
    den = Math.max(den, Math.abs(Number(b[i])));
  }
  return num / Math.max(den, 1e-12);
};

const TOL = 1e-4;       // float32 exact (no TF32)
const TOL_TF32 = 1e-2;  // float32 through TF32
const TOL_BF16 = 2e-2;  // bfloat16 outputs (8-bit mantissa) against a float32 reference

// NCHW float32 values of a CUDA handle (any layout, any float dtype).
const readNchw = (h) => native.readSync(native.to(h, 'cuda', 'float32', false));

function expectClose(cudaHandle, cpuHandle, tol, label) {
  expect(cudaHandle.shape, `${label} shape`).to.deep.equal(cpuHandle.shape);
  const a = readNchw(cudaHandle);
  const b = native.readSync(cpuHandle);
  for (let i = 0; i < a.length; i++) {
    if (Number.isNaN(Number(a[i])) !== Number.isNaN(Number(b[i]))) throw new Error(`${label}: NaN mismatch at ${i}: ${a[i]} vs ${b[i]}`);
  }
  const err = maxRelErr(a, b);
  if (!(err <= tol)) throw new Error(`${label}: relative error ${err.toExponential(3)} > ${tol}`);
  return err;
}

const cudaInfo = native.backendInfo().cuda;

describe('CUDA numerics that follow PyTorch (issue #12) @cuda', function () {
  if (!cudaInfo.available) {
    if (process.env.REQUIRE_CUDA === '1') {
      it('has a usable CUDA device (REQUIRE_CUDA=1)', function () {
        throw new Error(`CUDA required but unavailable: ${cudaInfo.reason} (hint: ${cudaInfo.hint})`);
      });
      return;
    }
    before(function () {
      console.log(`      skipped: CUDA unavailable: ${cudaInfo.reason}`);
      this.skip();
    });
  }

  afterEach(function () {
    if (!cudaInfo.available) return;
    // The defaults, as PyTorch's.
    native.setOption('cuda', 'allowTF32', 1);
    native.setOption('cuda', 'matmulAllowTF32', 0);
    native.setOption('cuda', 'deterministic', 0);
  });

  it('relu backward passes dy through where y is NaN, every float dtype, as threshold_backward', function () {
    const x = Float32Array.of(NaN, -1, 0, 2, -0, 3.5, NaN, -7);
    const dy = Float32Array.of(5, 6, 7, 8, 9, 10, -11, 12);
    const want = Float32Array.of(5, 0, 0, 8, 0, 10, -11, 0);
    for (const dtype of ['float32', 'float64', 'float16', 'bfloat16']) {
      const xh = native.fromArray(x, [8], dtype, 'cuda');
      const y = native.reluForward(xh);
      const yv = native.readSync(y);
      expect(Number.isNaN(Number(yv[0])) && Number.isNaN(Number(yv[6])), `${dtype} forward keeps NaN`).to.equal(true);
      const dx = native.readSync(native.reluBackward(native.fromArray(dy, [8], dtype, 'cuda'), y));
      expect(Array.from(dx, Number), `${dtype} dx`).to.deep.equal(Array.from(want));
    }
    // And the same as the CPU backend on a large tensor sprinkled with NaN.
    const big = uniform([1 << 16]);
    for (let i = 0; i < big.length; i += 97) big[i] = NaN;
    const xb = both(big, [big.length]);
    const g = rand([big.length]);
    const yb = { cpu: native.reluForward(xb.cpu), cuda: native.reluForward(xb.cuda) };
    expect(Array.from(native.readSync(native.reluBackward(g.cuda, yb.cuda))))
      .to.deep.equal(Array.from(native.readSync(native.reluBackward(g.cpu, yb.cpu))));
  });

  it('float32 linear is exact float32 by default even with conv TF32 on; cuda.matmul.setAllowTF32 switches it', function () {
    // Values with full 24-bit mantissas over k = 512: TF32 (10-bit) products err by ~1e-3.
    const x = rand([64, 512]);
    const w = rand([96, 512]);
    const b = rand([96]);
    const dy = rand([64, 96]);
    lib.cudnn.setAllowTF32(true);  // convolutions: TF32 (the default)
    const ref = native.linearForward(x.cpu, w.cpu, b.cpu);
    const refG = native.linearBackward(x.cpu, w.cpu, dy.cpu, true, true, true);
    const exact = native.linearForward(x.cuda, w.cuda, b.cuda);
    const g = native.linearBackward(x.cuda, w.cuda, dy.cuda, true, true, true);
    const errs = [expectClose(exact, ref, TOL, 'y (matmul TF32 off)'), expectClose(g.dx, refG.dx, TOL, 'dx'),
      expectClose(g.dw, refG.dw, TOL, 'dw'), expectClose(g.db, refG.db, TOL, 'db')];
    console.log(`      exact float32 linear relative errors: ${errs.map((e) => e.toExponential(2)).join(', ')}`);
    lib.cuda.matmul.setAllowTF32(true);
    const tf32 = native.linearForward(x.cuda, w.cuda, b.cuda);
    const e = expectClose(tf32, ref, TOL_TF32, 'y (matmul TF32 on)');
    console.log(`      TF32 linear relative error: ${e.toExponential(2)}`);
    lib.cuda.matmul.setAllowTF32(false);
    expectClose(native.linearForward(x.cuda, w.cuda, b.cuda), ref, TOL, 'y (matmul TF32 off again)');
    // Convolutions still follow their own switch: a 3x3 conv agrees to the TF32 tolerance.
    const cx = rand([2, 32, 9, 9]);
    const cw = rand([16, 32, 3, 3]);
    expectClose(native.conv2dForward(cx.cuda, cw.cuda, null, [1, 1], [1, 1], [1, 1], 1),
      native.conv2dForward(cx.cpu, cw.cpu, null, [1, 1], [1, 1], [1, 1], 1), TOL_TF32, 'conv with TF32');
  });

  // Batch norm on CUDA in `dtype` and `layout` against the CPU in float32 NCHW on the same
  // (rounded) inputs: training forward (y, saved statistics, running statistics), training
  // backward, inference forward and inference backward.
  function checkBatchNorm(shape, dtype, channelsLast, tol, label) {
    const c = shape[1];
    const xr = native.fromArray(uniform(shape, -2, 3), shape, dtype, 'cuda');
    const x = { cuda: channelsLast ? native.to(xr, 'cuda', dtype, true) : xr,
      cpu: native.fromArray(readNchw(xr), shape, 'float32', 'cpu') };
    const dyr = native.fromArray(uniform(shape), shape, dtype, 'cuda');
    const dy = { cuda: channelsLast ? native.to(dyr, 'cuda', dtype, true) : dyr,
      cpu: native.fromArray(readNchw(dyr), shape, 'float32', 'cpu') };
    const gamma = rand([c], 0.5, 1.5);
    const beta = rand([c]);
    const rm = rand([c]);
    const rv = rand([c], 0.5, 2);
    const f = {
      cpu: native.batchNormForwardTrain(x.cpu, gamma.cpu, beta.cpu, rm.cpu, rv.cpu, 0.1, 1e-5),
      cuda: native.batchNormForwardTrain(x.cuda, gamma.cuda, beta.cuda, rm.cuda, rv.cuda, 0.1, 1e-5),
    };
    expect(f.cuda.y.dtype, `${label} y dtype`).to.equal(dtype);
    expectClose(f.cuda.y, f.cpu.y, tol, `${label} train y`);
    expectClose(f.cuda.saveMean, f.cpu.saveMean, TOL, `${label} saveMean`);
    expectClose(f.cuda.saveInvstd, f.cpu.saveInvstd, TOL, `${label} saveInvstd`);
    expectClose(rm.cuda, rm.cpu, TOL, `${label} running_mean`);
    expectClose(rv.cuda, rv.cpu, TOL, `${label} running_var`);
    const g = {
      cpu: native.batchNormBackwardTrain(x.cpu, dy.cpu, gamma.cpu, f.cpu.saveMean, f.cpu.saveInvstd, 1e-5),
      cuda: native.batchNormBackwardTrain(x.cuda, dy.cuda, gamma.cuda, f.cuda.saveMean, f.cuda.saveInvstd, 1e-5),
    };
    expectClose(g.cuda.dx, g.cpu.dx, tol, `${label} train dx`);
    expectClose(g.cuda.dgamma, g.cpu.dgamma, tol, `${label} train dgamma`);
    expectClose(g.cuda.dbeta, g.cpu.dbeta, tol, `${label} train dbeta`);
    expectClose(native.batchNormForwardEval(x.cuda, gamma.cuda, beta.cuda, rm.cuda, rv.cuda, 1e-5),
      native.batchNormForwardEval(x.cpu, gamma.cpu, beta.cpu, rm.cpu, rv.cpu, 1e-5), tol, `${label} eval y`);
    const e = {
      cpu: native.batchNormBackwardEval(x.cpu, dy.cpu, gamma.cpu, rm.cpu, rv.cpu, 1e-5),
      cuda: native.batchNormBackwardEval(x.cuda, dy.cuda, gamma.cuda, rm.cuda, rv.cuda, 1e-5),
    };
    expectClose(e.cuda.dx, e.cpu.dx, tol, `${label} eval dx`);
    expectClose(e.cuda.dgamma, e.cpu.dgamma, tol, `${label} eval dgamma`);
    expectClose(e.cuda.dbeta, e.cpu.dbeta, tol, `${label} eval dbeta`);
  }

  it('bfloat16 batch norm, NCHW and NHWC, training and inference, forward and backward, against float32', function () {
    for (const channelsLast of [false, true]) {
      checkBatchNorm([4, 8, 6, 5], 'bfloat16', channelsLast, TOL_BF16, `bfloat16 ${channelsLast ? 'NHWC' : 'NCHW'}`);
    }
  });

  it('channels-last training batch norm (persistent mode; our kernels when deterministic), float32 and float16', function () {
    checkBatchNorm([4, 8, 6, 5], 'float32', true, TOL, 'float32 NHWC');
    checkBatchNorm([4, 8, 6, 5], 'float16', true, TOL_TF32, 'float16 NHWC');
    native.setOption('cuda', 'deterministic', 1);
    checkBatchNorm([4, 8, 6, 5], 'float32', true, TOL, 'float32 NHWC deterministic');
    checkBatchNorm([4, 8, 6, 5], 'bfloat16', true, TOL_BF16, 'bfloat16 NHWC deterministic');
  });

  it('batch norm at the cuDNN size limits: N = 65535 / 65536 (inference), 880801 / 880802 (training)', function () {
    this.timeout(600000);
    for (const n of [65535, 65536, 880801, 880802]) checkBatchNorm([n, 2, 1, 1], 'float32', false, TOL, `N = ${n}`);
    checkBatchNorm([880802, 2, 1, 1], 'float32', true, TOL, 'N = 880802 NHWC');
    checkBatchNorm([65536, 3, 1, 2], 'float16', false, TOL_TF32, 'N = 65536 float16');
  });
});
