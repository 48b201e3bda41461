// Issue #12 speed paths on CUDA, checked against the CPU backend: max-pool forward keeping int32
// indices (PyTorch's tie and NaN rules, NCHW and NHWC), the SGD step whose parameter table
// travels as a kernel parameter (one launch, no per-step upload), and non-blocking host ->
// device uploads through the pinned staging ring (copy semantics: the JS array may be reused at
// once). Needs a GPU: skipped with the reason printed when CUDA is unavailable, failed instead
// when REQUIRE_CUDA=1 (`npm run test:gpu`).
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { expect } from 'chai';

const require = createRequire(import.meta.url);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const native = require('node-gyp-build')(root);
const { mulberry32 } = require('../dist/data/fashion-mnist.js');

let seed = 6800;
const numel = (shape) => shape.reduce((a, b) => a * b, 1);
function uniform(n, lo = -1, hi = 1) {
  const next = mulberry32(seed++);
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * next());
}
// Small integers make many ties, as after a ReLU.
function smallInts(n) {
  const next = mulberry32(seed++);
  return Float32Array.from({ length: n }, () => Math.floor(next() * 3));
}

// { cuda, cpu } handles of the same values; channelsLast only on the CUDA side (the CPU computes NCHW).
function both(data, shape, { dtype = 'float32', channelsLast = false } = {}) {
  const flat = native.fromArray(data, shape, 'float32', 'cuda');
  const cuda = native.to(flat, 'cuda', dtype, channelsLast);
  return { cuda, cpu: native.to(flat, 'cpu', 'float32', false) };
}
// The values of a handle in logical NCHW order, on the host.
const host = (h, dtype = h.dtype === 'int32' ? 'int32' : 'float32') => Array.from(native.readSync(native.to(h, 'cpu', dtype, false)));

function expectClose(a, b, tol, label) {
  expect(a.length, `${label} length`).to.equal(b.length);
  for (let i = 0; i < a.length; i++) {
    if (a[i] === b[i]) continue;  // also equal infinities
    if (Number.isNaN(a[i]) || Number.isNaN(b[i])) {
      if (Number.isNaN(a[i]) !== Number.isNaN(b[i])) throw new Error(`${label}: NaN mismatch at ${i}: ${a[i]} vs ${b[i]}`);
      continue;
    }
    const err = Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i]));
    if (!(err <= tol)) throw new Error(`${label}: at ${i} ${a[i]} vs ${b[i]} (relative error ${err})`);
  }
}

// Max pool on both backends: y, indices and dx must agree (indices and y exactly).
function poolBoth(x, p, label, tol = 1e-6) {
  const f = { cuda: native.maxPool2dForward(x.cuda, ...p), cpu: native.maxPool2dForward(x.cpu, ...p) };
  expect(f.cuda.indices, `${label} CUDA indices`).to.not.equal(null);
  expect(f.cuda.indices.dtype).to.equal('int32');
  expect(f.cuda.indices.shape).to.deep.equal(f.cpu.y.shape);
  expect(f.cuda.indices.channelsLast, `${label} indices layout`).to.equal(x.cuda.channelsLast);
  expect(host(f.cuda.indices), `${label} indices`).to.deep.equal(host(f.cpu.indices));
  expectClose(host(f.cuda.y), host(f.cpu.y), 0, `${label} y`);
  const g = uniform(numel(f.cpu.y.shape));
  const dy = both(g, f.cpu.y.shape, { dtype: x.cuda.dtype, channelsLast: x.cuda.channelsLast });
  const dx = {
    cuda: native.maxPool2dBackward(x.cuda, f.cuda.y, dy.cuda, f.cuda.indices, ...p),
    cpu: native.maxPool2dBackward(x.cpu, f.cpu.y, dy.cpu, f.cpu.indices, ...p),
  };
  expectClose(host(dx.cuda), host(dx.cpu), tol, `${label} dx`);
  return f;
}

const cudaInfo = native.backendInfo().cuda;

describe('CUDA max-pool indices, multi-tensor SGD and non-blocking uploads @cuda', function () {
  this.timeout(120000);
  if (!cudaInfo.available) {
    if (process.env.REQUIRE_CUDA === '1') {
      it('has a usable CUDA device (REQUIRE_CUDA=1)', function () {
        throw new Error(`CUDA required but unavailable: ${cudaInfo.reason}`);
      });
      return;
    }
    before(function () {
      console.log(`      skipped: CUDA unavailable: ${cudaInfo.reason}`);
      this.skip();
    });
  }

  it('reports maxPoolKeepsIndices for CUDA', function () {
    expect(native.backendInfo().cuda.capabilities.maxPoolKeepsIndices).to.equal(true);
  });

  it('max pool indices equal the CPU backend\'s (NCHW, overlapping and plain windows)', function () {
    for (const [shape, p] of [
      [[2, 4, 9, 8], [[3, 3], [2, 2], [1, 1]]],
      [[3, 2, 10, 10], [[2, 2], [2, 2], [0, 0]]],
      [[1, 3, 7, 11], [[3, 2], [1, 2], [1, 0]]],
    ]) {
      poolBoth(both(smallInts(numel(shape)), shape), p, `ties ${shape}`);
      poolBoth(both(uniform(numel(shape)), shape), p, `random ${shape}`);
    }
  });

  it('ties go to the first maximum in window order', function () {
    const x = both(new Float32Array(16), [1, 1, 4, 4]);  // all zeros
    const f = poolBoth(x, [[2, 2], [2, 2], [0, 0]], 'zeros 2x2');
    expect(host(f.cuda.indices)).to.deep.equal([0, 2, 8, 10]);
    // 3x3 stride 2 pad 1 over zeros: each window's first in-bounds element.
    const g = poolBoth(both(new Float32Array(16), [1, 1, 4, 4]), [[3, 3], [2, 2], [1, 1]], 'zeros 3x3');
    expect(host(g.cuda.indices)).to.deep.equal([0, 1, 4, 5]);
  });

  it('NaN wins, as in PyTorch (and the later NaN of two, as the CPU backend)', function () {
    const data = Float32Array.from([1, 2, 3, 4, 5, NaN, 7, 8, 9, 10, NaN, 12, NaN, 14, 15, 16]);
    const f = poolBoth(both(data, [1, 1, 4, 4]), [[2, 2], [2, 2], [0, 0]], 'NaN');
    const y = host(f.cuda.y);
    expect(Number.isNaN(y[0])).to.equal(true);
    expect(y[1]).to.equal(8);
    expect(Number.isNaN(y[2])).to.equal(true);
    expect(Number.isNaN(y[3])).to.equal(true);
    expect(host(f.cuda.indices)).to.deep.equal(host(f.cpu.indices));
    expect(host(f.cuda.indices).slice(0, 2)).to.deep.equal([5, 7]);
    const inf = Float32Array.from([-Infinity, -Infinity, -Infinity, -Infinity]);
    const g = poolBoth(both(inf, [1, 1, 2, 2]), [[2, 2], [2, 2], [0, 0]], '-inf');
    expect(host(g.cuda.indices)).to.deep.equal([0]);
    expect(host(g.cuda.y)).to.deep.equal([-Infinity]);
  });

  for (const dtype of ['float32', 'float16']) {
    it(`NHWC (${dtype}): indices, y and dx equal the CPU's`, function () {
      for (const [shape, p] of [[[2, 4, 9, 8], [[3, 3], [2, 2], [1, 1]]], [[3, 5, 10, 10], [[2, 2], [2, 2], [0, 0]]]]) {
        const x = both(smallInts(numel(shape)), shape, { dtype, channelsLast: true });
        poolBoth(x, p, `${dtype} NHWC ${shape}`, dtype === 'float16' ? 1e-2 : 1e-6);
      }
    });
  }

  it('SGD: one table per step for many parameters, many consecutive steps equal the CPU', function () {
    // 700 parameters (more than one launch's 640-entry table) of varied sizes, momentum and
    // weight decay, 40 steps with fresh gradients uploaded each step.
    const sizes = Array.from({ length: 700 }, (_, i) => [1, 7, 300, 2048, 5000][i % 5] + (i % 3));
    const opts = { lr: 0.05, momentum: 0.9, dampening: 0.1, weightDecay: 1e-3, nesterov: false, maximize: false };
    const params = sizes.map((n) => both(uniform(n), [n]));
    const bufs = sizes.map((n) => both(new Float32Array(n), [n]));
    for (let step = 0; step < 40; step++) {
      const grads = sizes.map((n) => both(uniform(n), [n]));
      const init = sizes.map(() => step === 0);
      native.sgdStep(params.map((p) => p.cuda), grads.map((g) => g.cuda), bufs.map((b) => b.cuda), init, opts);
      native.sgdStep(params.map((p) => p.cpu), grads.map((g) => g.cpu), bufs.map((b) => b.cpu), init, opts);
      if (step % 13 === 0) expectClose(host(params[step].cuda), host(params[step].cpu), 1e-5, `step ${step} param ${step}`);
    }
    params.forEach((p, i) => expectClose(host(p.cuda), host(p.cpu), 1e-4, `param ${i}`));
    bufs.forEach((b, i) => expectClose(host(b.cuda), host(b.cpu), 1e-4, `momentum ${i}`));
  });

  it('SGD: nesterov and maximize over steps that reuse the same parameter list', function () {
    const sizes = [3, 4096, 17, 1];
    const opts = { lr: 0.1, momentum: 0.5, dampening: 0, weightDecay: 0.01, nesterov: true, maximize: true };
    const params = sizes.map((n) => both(uniform(n), [n]));
    const bufs = sizes.map((n) => both(new Float32Array(n), [n]));
    const grads = sizes.map((n) => both(uniform(n), [n]));
    for (let step = 0; step < 100; step++) {
      const init = sizes.map(() => step === 0);
      native.sgdStep(params.map((p) => p.cuda), grads.map((g) => g.cuda), bufs.map((b) => b.cuda), init, opts);
      native.sgdStep(params.map((p) => p.cpu), grads.map((g) => g.cpu), bufs.map((b) => b.cpu), init, opts);
    }
    params.forEach((p, i) => expectClose(host(p.cuda), host(p.cpu), 1e-4, `param ${i}`));
  });

  it('uploads: a reused JS array, overwritten right after each call, uploads each value it held', function () {
    // Small uploads (each through its own ring slot) and large ones (several 8 MiB chunks,
    // more than the whole ring), all queued before any is read back.
    for (const n of [5, 1000, 3 << 20, 10 << 20]) {
      const src = new Float32Array(n);
      const handles = [];
      for (let k = 0; k < 12; k++) {
        src.fill(k + 1);
        src[0] = -k;
        handles.push(native.fromArray(src, [n], 'float32', 'cuda'));
        src.fill(-999);  // reused at once: the upload must already hold its own copy
      }
      handles.forEach((h, k) => {
        const a = native.readSync(h);
        expect(a[0], `n ${n} upload ${k} first`).to.equal(-k);
        expect(a[n - 1], `n ${n} upload ${k} last`).to.equal(k + 1);
        if (n < 2000) for (let i = 1; i < n; i++) expect(a[i]).to.equal(k + 1);
        else for (let i = 1; i < n; i += 9973) expect(a[i]).to.equal(k + 1);
      });
    }
  });

  it('uploads: uint8 batches each step feed kernels queued right after them', function () {
    const shape = [8, 1, 28, 28];
    const bytes = new Uint8Array(numel(shape));
    const acc = native.fromArray(new Float32Array(numel(shape)), shape, 'float32', 'cuda');
    let expected = new Float64Array(numel(shape));
    for (let step = 0; step < 200; step++) {
      for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + step * 13) & 255;
      const u8 = native.fromArray(bytes, shape, 'uint8', 'cuda');
      for (let i = 0; i < bytes.length; i++) expected[i] += bytes[i];
      bytes.fill(0);
      const f = native.to(u8, 'cuda', 'float32', false);
      native.copyInto(acc, native.add(acc, f));
    }
    expectClose(Array.from(native.readSync(acc)), Array.from(expected), 0, 'sum of 200 uploads');
  });
});
