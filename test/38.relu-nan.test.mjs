// ReLU at NaN, as PyTorch: forward keeps NaN; backward is threshold_backward on the output,
// dx = (y <= 0) ? 0 : dy, so the gradient passes through where y is NaN. CPU here; the CUDA
// backend's counterpart is in 63.cuda-numerics.test.mjs. Also the matmul TF32 switch's surface.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { expect } from 'chai';

const require = createRequire(import.meta.url);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const native = require('node-gyp-build')(root);
const lib = require('../dist/index.js');
const { tensor } = lib;

const x = [NaN, -1, 0, 2, -0, 3.5, NaN, -7];
const dy = [5, 6, 7, 8, 9, 10, -11, 12];
const want = [5, 0, 0, 8, 0, 10, -11, 0];

describe('relu at NaN (threshold_backward) and the matmul TF32 switch', function () {
  for (const dtype of ['float32', 'float64']) {
    it(`${dtype}: the native CPU backward passes dy where y is NaN`, function () {
      const y = native.reluForward(native.fromArray(Float64Array.from(x), [8], dtype, 'cpu'));
      const yv = Array.from(native.readSync(y));
      expect(Number.isNaN(yv[0]) && Number.isNaN(yv[6])).to.equal(true);
      expect(yv.slice(1, 6)).to.deep.equal([0, 0, 2, -0, 3.5]);
      const dx = native.reluBackward(native.fromArray(Float64Array.from(dy), [8], dtype, 'cpu'), y);
      expect(Array.from(native.readSync(dx))).to.deep.equal(want);
    });
  }

  it('autograd: d relu(x) / dx is 1 where x is NaN', function () {
    const t = tensor(Float32Array.from(x), [8], { requiresGrad: true, device: 'cpu' });
    t.relu().backward(tensor(Float32Array.from(dy), [8], { device: 'cpu' }));
    expect(Array.from(t.grad.toArraySync())).to.deep.equal(want);
  });

  it('matmulAllowTF32 is an option name; cuda.matmul.setAllowTF32 checks its argument', function () {
    native.setOption('cpu', 'matmulAllowTF32', 0);  // a GPU-only knob: accepted, nothing to do
    expect(() => lib.cuda.matmul.setAllowTF32('yes')).to.throw(TypeError, /enabled/);
    lib.cuda.matmul.setAllowTF32(false);  // the default; a no-op without CUDA
  });
});
