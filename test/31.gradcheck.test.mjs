// Every op's backward against central finite differences, in float64.
import { expect } from 'chai';
import { createRequire } from 'node:module';
import { forEachDevice } from './support/devices.mjs';
import { gradcheck } from './support/gradcheck.mjs';

const require = createRequire(import.meta.url);
const lib = require('../dist/index.js');
const F = lib.functional;
const { tensor, manualSeed, ResidualBlock } = lib;

const TOL = 1e-6;

forEachDevice('gradients (finite differences, float64)', (device) => {
  const check = (fn, inputs, opts = {}) => {
    const errors = gradcheck(fn, inputs, { device, ...opts });
    for (const [name, err] of Object.entries(errors)) expect(err, `d/d${name}`).to.be.below(opts.tol ?? TOL);
  };

  // the channels-last variants: the op computes in NHWC, its inputs converted on the way in and
  // its output back (the harness pairs elements in logical order)
  const cl = (fn) => (t) => {
    const conv = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, v.ndim === 4 ? v.to({ memoryFormat: 'channelsLast' }) : v]));
    return fn(conv).to({ memoryFormat: 'contiguous' });
  };

  it('conv2d in channels-last: strided, dilated, grouped, the 7x7 stem, and 8 channels (Winograd)', () => {
    check(cl(({ x, w, b }) => F.conv2d(x, w, b, { stride: 2, padding: 1 })), {
      x: { shape: [2, 3, 7, 5] }, w: { shape: [4, 3, 3, 3] }, b: { shape: [4] },
    });
    check(cl(({ x, w, b }) => F.conv2d(x, w, b, { stride: 2, padding: 3 })), {
      x: { shape: [1, 2, 9, 8] }, w: { shape: [3, 2, 7, 7] }, b: { shape: [3] },
    });
    check(cl(({ x, w }) => F.conv2d(x, w, null, { stride: 2 })), { x: { shape: [2, 3, 5, 5] }, w: { shape: [2, 3, 1, 1] } });
    check(cl(({ x, w }) => F.conv2d(x, w, null, { groups: 2, padding: 2, dilation: 2 })), {
      x: { shape: [1, 4, 6, 6] }, w: { shape: [6, 2, 3, 3] },
    });
    check(cl(({ x, w, b }) => F.conv2d(x, w, b, { padding: 1 })), {
      x: { shape: [1, 8, 5, 6] }, w: { shape: [8, 8, 3, 3] }, b: { shape: [8] },
    });
  });

  it('max pool, adaptive average pool and batch norm (train and eval) in channels-last', () => {
    check(cl(({ x, g, b }) => F.batchNorm(x, null, null, g, b, { training: true })), {
      x: { shape: [3, 2, 4, 3] }, g: { shape: [2] }, b: { shape: [2] },
    }, { tol: 1e-5 });
    const rm = tensor(Float64Array.of(0.1, -0.2), [2], { dtype: 'float64', device });
    const rv = tensor(Float64Array.of(1.5, 0.7), [2], { dtype: 'float64', device });
    check(cl(({ x, g, b }) => F.batchNorm(x, rm, rv, g, b, { training: false })), {
      x: { shape: [2, 2, 3, 3] }, g: { shape: [2] }, b: { shape: [2] },
    });
    check(cl(({ x }) => F.maxPool2d(x, 3, { stride: 2, padding: 1 })), { x: { shape: [2, 2, 7, 6] } });
    check(cl(({ x }) => F.adaptiveAvgPool2d(x, [1, 1])), { x: { shape: [2, 3, 5, 4] } });
    check(cl(({ x }) => F.adaptiveAvgPool2d(x, [2, 3])), { x: { shape: [1, 2, 5, 7] } });
  });

  it('conv2d: input, weight and bias (odd shapes, stride 2, padding 1)', () => {
    check(({ x, w, b }) => F.conv2d(x, w, b, { stride: 2, padding: 1 }), {
      x: { shape: [2, 3, 7, 5] }, w: { shape: [4, 3, 3, 3] }, b: { shape: [4] },
    });
  });

  it('conv2d: 7x7 stride 2 padding 3, 1x1 stride 2, groups and dilation', () => {
    check(({ x, w, b }) => F.conv2d(x, w, b, { stride: 2, padding: 3 }), {
      x: { shape: [1, 2, 9, 8] }, w: { shape: [3, 2, 7, 7] }, b: { shape: [3] },
    });
    check(({ x, w }) => F.conv2d(x, w, null, { stride: 2 }), { x: { shape: [2, 3, 5, 5] }, w: { shape: [2, 3, 1, 1] } });
    check(({ x, w }) => F.conv2d(x, w, null, { groups: 2, padding: 2, dilation: 2 }), {
      x: { shape: [1, 4, 6, 6] }, w: { shape: [6, 2, 3, 3] },
    });
  });

  it('batch norm in training mode (through the batch statistics) and in eval mode', () => {
    check(({ x, g, b }) => F.batchNorm(x, null, null, g, b, { training: true }), {
      x: { shape: [3, 2, 4, 3] }, g: { shape: [2] }, b: { shape: [2] },
    }, { tol: 1e-5 });
    const rm = tensor(Float64Array.of(0.1, -0.2), [2], { dtype: 'float64', device });
    const rv = tensor(Float64Array.of(1.5, 0.7), [2], { dtype: 'float64', device });
    check(({ x, g, b }) => F.batchNorm(x, rm, rv, g, b, { training: false }), {
      x: { shape: [2, 2, 3, 3] }, g: { shape: [2] }, b: { shape: [2] },
    });
  });

  it('batchNormRelu in training mode, both memory formats (one fused op on the CPU)', () => {
    for (const memoryFormat of ['contiguous', 'channelsLast']) {
      const rm = lib.zeros([3], { dtype: 'float64', device });
      const rv = lib.ones([3], { dtype: 'float64', device });
      // back to contiguous: the harness pairs the output's elements with r in memory order
      const fused = ({ x, g, b }) => F.batchNormRelu(x.to({ memoryFormat }), rm, rv, g, b, { training: true });
      check((t) => fused(t).to({ memoryFormat: 'contiguous' }), {
        x: { shape: [3, 3, 4, 3] }, g: { shape: [3] }, b: { shape: [3] },
      }, { tol: 1e-5 });
    }
  });

  it('relu, add, sum and mean', () => {
    check(({ x }) => F.relu(x), { x: { shape: [3, 4] } });
    check(({ a, b }) => F.add(a, b), { a: { shape: [2, 3] }, b: { shape: [2, 3] } });
    check(({ x }) => x.sum(), { x: { shape: [5] } });
    check(({ x }) => x.mean(), { x: { shape: [2, 3] } });
  });

  it('max pool 3x3 stride 2 padding 1, adaptive average pool, flatten', () => {
    check(({ x }) => F.maxPool2d(x, 3, { stride: 2, padding: 1 }), { x: { shape: [2, 2, 7, 6] } });
    check(({ x }) => F.adaptiveAvgPool2d(x, [1, 1]), { x: { shape: [2, 3, 5, 4] } });
    check(({ x }) => F.adaptiveAvgPool2d(x, [2, 3]), { x: { shape: [1, 2, 5, 7] } });
    check(({ x }) => F.flatten(x), { x: { shape: [2, 3, 2, 2] } });
  });

  it('linear: input, weight and bias', () => {
    check(({ x, w, b }) => F.linear(x, w, b), { x: { shape: [4, 5] }, w: { shape: [3, 5] }, b: { shape: [3] } });
  });

  it('softmax cross-entropy from logits with integer labels', () => {
    const labels = tensor(Int32Array.of(2, 0, 1, 2), [4], { device });
    check(({ z }) => F.crossEntropy(z, labels), { z: { shape: [4, 3] } });
  });

  for (const [title, args, xShape] of [
    ['ResidualBlock(3, 3)', [3, 3, {}], [2, 3, 6, 6]],
    ['ResidualBlock(3, 6, use1x1conv, strides 2)', [3, 6, { use1x1conv: true, strides: 2 }], [2, 3, 6, 5]],
  ]) {
    for (const memoryFormat of ['contiguous', 'channelsLast']) it(`${title}: input and every parameter, training mode, ${memoryFormat}`, () => {
      manualSeed(3);
      const blk = new ResidualBlock(...args).to({ device, dtype: 'float64', memoryFormat });
      const errors = moduleGradcheck(blk, xShape, device, { memoryFormat });
      expect(Object.keys(errors)).to.include.members(['x', 'conv1.weight', 'bn2.bias']);
      for (const [name, { rel, abs, scale }] of Object.entries(errors)) {
        // A conv bias in front of a training-mode BN has an exactly zero gradient: there the
        // difference quotient is round-off, so compare absolutely.
        if (scale < 1e-6) expect(abs, `d/d${name} (zero gradient)`).to.be.below(1e-8);
        else expect(rel, `d/d${name}`).to.be.below(1e-5);
      }
      blk.dispose();
    });
  }
});

/** Central differences of L = sum(module(x) * r) w.r.t. x and a sample of each parameter's elements. */
// memoryFormat: the module runs in it (its input converted on the way in); values are compared in
// logical (NCHW) order.
function moduleGradcheck(module, xShape, device, { eps = 1e-6, perTensor = 6, memoryFormat = 'contiguous' } = {}) {
  const logical = (t) => t.to({ memoryFormat: 'contiguous' }).toArraySync();
  const run = (input) => module.forward(input.to({ memoryFormat }));
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  const n = xShape.reduce((a, b) => a * b, 1);
  const xv = Float64Array.from({ length: n }, rnd);
  const x = tensor(xv, xShape, { dtype: 'float64', device, requiresGrad: true });
  module.train();
  const y = run(x);
  const r = Float64Array.from({ length: y.numel }, rnd);
  y.backward(tensor(r, y.shape.slice(), { dtype: 'float64', device }));
  const loss = (input) => lib.noGrad(() => {
    const out = run(input);
    const v = logical(out);
    out.dispose();
    return v.reduce((s, vi, i) => s + vi * r[i], 0);
  });
  const errors = {};
  const compare = (name, analytic, count, perturb) => {
    let num = 0;
    let den = 0;
    for (let k = 0; k < Math.min(perTensor, count); k++) {
      const i = Math.floor(((rnd() + 1) / 2) * count);
      const numeric = (perturb(i, eps) - perturb(i, -eps)) / (2 * eps);
      num = Math.max(num, Math.abs(analytic[i] - numeric));
      den = Math.max(den, Math.abs(numeric));
    }
    errors[name] = { rel: num / Math.max(den, 1e-12), abs: num, scale: den };
  };
  compare('x', x.grad.toArraySync(), n, (i, h) => {
    const v = Float64Array.from(xv);
    v[i] += h;
    const t = tensor(v, xShape, { dtype: 'float64', device });
    const l = loss(t);
    t.dispose();
    return l;
  });
  for (const [name, p] of module.namedParameters()) {
    const base = logical(p);
    compare(name, logical(p.grad), base.length, (i, h) => {
      const v = Float64Array.from(base);
      v[i] += h;
      const t = tensor(v, p.shape.slice(), { dtype: 'float64', device });
      module.loadStateDict({ [name]: t }, { strict: false });
      const l = loss(tensor(xv, xShape, { dtype: 'float64', device }));
      module.loadStateDict({ [name]: tensor(base, p.shape.slice(), { dtype: 'float64', device }) }, { strict: false });
      t.dispose();
      return l;
    });
  }
  return errors;
}
