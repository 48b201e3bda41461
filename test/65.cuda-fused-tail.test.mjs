// The fused residual tail on CUDA, functional.batchNormAddRelu in training, against the same
// tail run as separate ops (batchNorm -> add -> relu) on the same device, dtype and layout, on
// ResNet-18's four stage shapes at batch 256: forward values, running statistics, and the
// backward dx, dz, dweight and dbias. Channels-last float16 and bfloat16, and NCHW float32.
//
// Note [mask flips]: in half precision the unfused path rounds bn(x) before adding z, so where
// bn(x) + z is within half an ulp of 0 the two paths may disagree on the ReLU's mask. There dz is
// dy on one side and exactly 0 on the other, and dx differs by gamma * invstd * dy. Those elements
// are counted, must be few (a fraction per dtype), and for dz must be exactly such flips; every
// other element must agree to the dtype's tolerance. dy has a positive mean so that dweight and
// dbias are large sums, not random walks that a few flips could dominate.
//
// Needs a GPU: skipped with the reason printed when CUDA is unavailable, failed instead when
// REQUIRE_CUDA=1 (`npm run test:gpu`).
import { createRequire } from 'node:module';

import { expect } from 'chai';

const require = createRequire(import.meta.url);
const lib = require('../dist/index.js');
const { functional: F, randn, rand, manualSeed, backendInfo, capabilities } = lib;

const DEVICE = 'cuda';
const N = 256;
const SHAPES = [[64, 56], [128, 28], [256, 14], [512, 7]];  // ResNet-18's stages: C, H = W
const CONFIGS = [
  { dtype: 'float16', memoryFormat: 'channelsLast' },
  { dtype: 'bfloat16', memoryFormat: 'channelsLast' },
  { dtype: 'float32', memoryFormat: 'contiguous' },
];
// tol: relative to the largest reference value; flips: the fraction of elements allowed to differ
// by a mask flip (Note [mask flips]); paramTol for dweight/dbias (float32 sums), statTol for the
// running statistics (float32, from the same inputs).
const TOL = {
  float32: { tol: 2e-4, flips: 1e-5, paramTol: 1e-3, statTol: 1e-4 },
  float16: { tol: 1e-2, flips: 5e-3, paramTol: 2e-2, statTol: 1e-3 },
  bfloat16: { tol: 3e-2, flips: 2e-2, paramTol: 4e-2, statTol: 1e-3 },
};

const host = (t) => t.to({ dtype: 'float32', memoryFormat: 'contiguous' }).toArraySync();

// Compares a (fused) with b (unfused). Returns the largest relative error over the agreeing
// elements and the number of elements beyond tol (the flips).
function compare(a, b, tol, allowFraction, label, { flipsAreZeros = false } = {}) {
  expect(a.shape, `${label} shape`).to.deep.equal(b.shape);
  const x = host(a);
  const y = host(b);
  let scale = 0;
  for (let i = 0; i < y.length; i++) scale = Math.max(scale, Math.abs(y[i]));
  scale = Math.max(scale, 1e-12);
  let bad = 0;
  let worst = 0;
  for (let i = 0; i < y.length; i++) {
    const d = Math.abs(x[i] - y[i]);
    if (!(d <= tol * scale)) {  // NaN counts as bad
      bad++;
      if (flipsAreZeros && x[i] !== 0 && y[i] !== 0) {
        throw new Error(`${label}: element ${i} differs (${x[i]} vs ${y[i]}) and is not a ReLU mask flip`);
      }
    } else {
      worst = Math.max(worst, d / scale);
    }
  }
  const allowed = Math.floor(allowFraction * y.length);
  if (bad > allowed) {
    throw new Error(`${label}: ${bad} of ${y.length} elements beyond ${tol} relative (allowed ${allowed}); first values fused ${x.slice(0, 4)}..., unfused ${y.slice(0, 4)}...`);
  }
  return { worst, bad };
}

function tailCase(c, h, { dtype, memoryFormat }) {
  const t = TOL[dtype];
  const shape = [N, c, h, h];
  manualSeed(c * 1000 + h);
  const x0 = randn(shape, { device: DEVICE });
  const z0 = randn(shape, { device: DEVICE });
  const dy0 = rand(shape, { device: DEVICE, low: -0.5, high: 1.5 });
  const w0 = rand([c], { device: DEVICE, low: 0.5, high: 1.5 });
  const b0 = rand([c], { device: DEVICE, low: -0.5, high: 0.5 });
  const rm0 = rand([c], { device: DEVICE, low: -0.5, high: 0.5 });
  const rv0 = rand([c], { device: DEVICE, low: 0.5, high: 2 });
  // A new leaf per path with the same values (`to` returns the tensor itself when nothing changes).
  const leaf = (t0, opts) => {
    const moved = t0.to(opts);
    return (moved === t0 ? t0.clone() : moved).requiresGrad_();
  };
  const copy = (t0) => t0.clone();
  const options = { training: true, momentum: 0.1, eps: 1e-5 };
  const run = (fused) => {
    const x = leaf(x0, { dtype, memoryFormat });
    const z = leaf(z0, { dtype, memoryFormat });
    const w = leaf(w0, {});
    const b = leaf(b0, {});
    const rm = copy(rm0);
    const rv = copy(rv0);
    const y = fused
      ? F.batchNormAddRelu(x, z, rm, rv, w, b, options)
      : F.relu(F.add(F.batchNorm(x, rm, rv, w, b, options), z));
    const how = y.gradFn ? y.gradFn.name : 'none';
    const dy = dy0.to({ dtype, memoryFormat });
    y.backward(dy);
    return { x, z, w, b, rm, rv, y, how };
  };
  const fused = run(true);
  const plain = run(false);
  expect(fused.y.dtype).to.equal(dtype);
  expect(fused.y.memoryFormat, 'output layout').to.equal(fused.x.memoryFormat);
  // Both paths must have updated the running statistics in place (else they agree trivially).
  const moved = (t1, t0) => { const before = host(t0); return host(t1).some((v, i) => v !== before[i]); };
  expect(moved(fused.rm, rm0) && moved(fused.rv, rv0), 'fused path updated the running stats').to.equal(true);
  expect(moved(plain.rm, rm0) && moved(plain.rv, rv0), 'unfused path updated the running stats').to.equal(true);
  const r = {
    y: compare(fused.y, plain.y, t.tol, 0, 'y'),
    runningMean: compare(fused.rm, plain.rm, t.statTol, 0, 'running mean'),
    runningVar: compare(fused.rv, plain.rv, t.statTol, 0, 'running var'),
    dz: compare(fused.z.grad, plain.z.grad, t.tol, t.flips, 'dz', { flipsAreZeros: true }),
    dx: compare(fused.x.grad, plain.x.grad, t.tol, t.flips, 'dx'),
    dweight: compare(fused.w.grad, plain.w.grad, t.paramTol, 0, 'dweight'),
    dbias: compare(fused.b.grad, plain.b.grad, t.paramTol, 0, 'dbias'),
  };
  const summary = Object.entries(r).map(([k, v]) => `${k} ${v.worst.toExponential(1)}${v.bad ? ` (${v.bad} flips)` : ''}`).join(', ');
  console.log(`      fused path: ${fused.how} (unfused: ${plain.how}); ${summary}`);
  for (const t0 of [x0, z0, dy0, w0, b0, rm0, rv0]) t0.dispose();
  for (const s of [fused, plain]) for (const k of ['x', 'z', 'w', 'b', 'rm', 'rv', 'y']) s[k].dispose();
}

const cudaInfo = backendInfo().cuda;

describe('CUDA fused batchNormAddRelu (training) vs batchNorm -> add -> relu, ResNet-18 shapes at N=256 @cuda', function () {
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

  before(function () {
    console.log(`      capabilities: ${JSON.stringify(capabilities(DEVICE))}`);
  });

  for (const config of CONFIGS) {
    for (const [c, h] of SHAPES) {
      it(`${config.dtype} ${config.memoryFormat} ${N}x${c}x${h}x${h}: forward, running stats, dx, dz, dweight, dbias`, function () {
        tailCase(c, h, config);
      });
    }
  }
});
