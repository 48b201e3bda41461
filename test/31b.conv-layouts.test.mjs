// Convolution in channels-last against the contiguous layout, forward and all three gradients, on
// shapes large enough to reach the NHWC kernels' fast paths (the outer-product filter gradient
// needs 4096 output positions) and with every tail: input channels not a multiple of the tile's
// rows, output channels not a multiple of its width, groups, dilation, strides, one channel, and
// the strided data gradient's phases on maps of 2 and 3 pixels, the Winograd F(2x2, 3x3) passes
// (edge tiles of odd maps, padding 0 to 2), and the NCHW kernels that channels-last takes for
// at most 16 channels on a side (Note [few channels in NHWC]).
// The contiguous layout runs other kernels (im2col GEMMs), themselves checked against PyTorch.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { forEachDevice, maxRelErr } from './support/devices.mjs';

const require = createRequire(import.meta.url);
const lib = require('../dist/index.js');
const F = lib.functional;
const { randn, manualSeed } = lib;

const CASES = [
  { title: '3x3 padding 1, 10 -> 48 channels', x: [2, 10, 48, 48], w: [48, 10, 3, 3], opts: { padding: 1 } },
  { title: '3x3 stride 2, groups 2, dilation 2, 8 -> 96', x: [4, 8, 64, 64], w: [96, 4, 3, 3], opts: { stride: 2, padding: 2, dilation: 2, groups: 2 } },
  { title: '3x3 dilation 2, groups 2, 8 -> 32 (stride 1: flipped weights)', x: [2, 8, 48, 48], w: [32, 4, 3, 3], opts: { padding: 2, dilation: 2, groups: 2 } },
  { title: '1x1 stride 2, 16 -> 32', x: [4, 16, 64, 64], w: [32, 16, 1, 1], opts: { stride: 2 } },
  { title: '7x7 stride 2 padding 3, 1 -> 16 (the stem)', x: [4, 1, 64, 64], w: [16, 1, 7, 7], opts: { stride: 2, padding: 3 } },
  { title: '3x3 stride 2 on 3x3 maps, 16 -> 32 (phases of unequal size, across images)', x: [3, 16, 3, 3], w: [32, 16, 3, 3], opts: { stride: 2, padding: 1 } },
  { title: '1x1 stride 2 on 2x2 maps, 8 -> 16 (three phases get zeros)', x: [5, 8, 2, 2], w: [16, 8, 1, 1], opts: { stride: 2 } },
  { title: 'Winograd: 3x3 padding 1 on odd maps, 16 -> 32 (edge tiles)', x: [2, 16, 15, 13], w: [32, 16, 3, 3], opts: { padding: 1 } },
  { title: 'Winograd: 3x3 unpadded, 32 -> 16', x: [3, 32, 9, 10], w: [16, 32, 3, 3], opts: {} },
  { title: 'Winograd: 3x3 padding 2, 32 -> 48, 2x2 maps', x: [5, 32, 2, 2], w: [48, 32, 3, 3], opts: { padding: 2 } },
  { title: 'Winograd filter gradient: unpadded, odd output width, 32 -> 48', x: [5, 32, 34, 33], w: [48, 32, 3, 3], opts: {} },
  { title: 'Winograd filter gradient: padding 2, 16 -> 32', x: [2, 16, 46, 45], w: [32, 16, 3, 3], opts: { padding: 2 } },
  { title: 'Winograd: 320 -> 32 channels (the GEMMs\' inner size in two segments)', x: [2, 320, 6, 6], w: [32, 320, 3, 3], opts: { padding: 1 } },
  { title: 'Winograd: 3x3 padding 1, 64 -> 64, 56x56 (the block)', x: [2, 64, 56, 56], w: [64, 64, 3, 3], opts: { padding: 1 } },
  // wide enough for the NHWC kernels (at most 16 channels on a side take the NCHW kernels instead)
  { title: '3x3 stride 2, groups 2, dilation 2, 48 -> 96 (NHWC phases, grouped)', x: [2, 48, 40, 40], w: [96, 24, 3, 3], opts: { stride: 2, padding: 2, dilation: 2, groups: 2 } },
  { title: '3x3 stride 2 on 3x3 maps, 32 -> 32 (NHWC phases of unequal size)', x: [3, 32, 3, 3], w: [32, 32, 3, 3], opts: { stride: 2, padding: 1 } },
  { title: '1x1 stride 2 on 2x2 maps, 32 -> 24 (NHWC phases, three of zeros)', x: [5, 32, 2, 2], w: [24, 32, 1, 1], opts: { stride: 2 } },
  { title: '3x3 padding 1, 6 -> 40 (output channels off the vector width)', x: [2, 6, 48, 48], w: [40, 6, 3, 3], opts: { padding: 1 } },
];

forEachDevice('conv2d channels-last equals contiguous', (device) => {
  for (const dtype of ['float64', 'float32']) {
    for (const c of CASES) {
      it(`${c.title} (${dtype})`, function () {
        manualSeed(5);
        const x0 = randn(c.x, { device, dtype });
        const w0 = randn(c.w, { device, dtype });
        const b0 = randn([c.w[0]], { device, dtype });
        const run = (memoryFormat) => {
          // fresh leaves per run (x0 itself when the format already matches)
          const leaf = (t) => { const l = t.to({ memoryFormat }).clone(); l.requiresGrad = true; return l; };
          const x = leaf(x0), w = leaf(w0);
          const b = b0.clone();
          b.requiresGrad = true;
          const y = F.conv2d(x, w, b, c.opts);
          expect(y.memoryFormat).to.equal(memoryFormat);
          manualSeed(6);
          const gy = randn(y.shape.slice(), { device, dtype }).to({ memoryFormat });
          y.backward(gy);
          const flat = (t) => t.to({ memoryFormat: 'contiguous' }).toArraySync();
          return { y: flat(y), dx: flat(x.grad), dw: flat(w.grad), db: flat(b.grad) };
        };
        const ref = run('contiguous');
        const cl = run('channelsLast');
        const tol = dtype === 'float64' ? 1e-12 : 2e-5;
        for (const k of ['y', 'dx', 'dw', 'db']) expect(maxRelErr(cl[k], ref[k]), k).to.be.below(tol);
      });
    }
  }
});

// The AVX2 and SSE2 kernels (tile widths 16 and 8, Winograd and outer-product vectors of 8 and 4)
// run only where the CPU lacks AVX-512: force them in a child run of this file.
describe('conv2d channels-last equals contiguous under the lesser kernels (CRB_GEMM_ISA)', function () {
  if (process.env.CRB_GEMM_ISA) return;
  for (const isa of ['avx2', 'sse2']) {
    it(`${isa}`, function () {
      this.timeout(300000);
      const mocha = fileURLToPath(new URL('../node_modules/mocha/bin/mocha.js', import.meta.url));
      const r = spawnSync(process.execPath, [mocha, '--no-config', '--reporter', 'dot', '--timeout', '120000', '--grep', '\\[cpu\\]', fileURLToPath(import.meta.url)], {
        env: { ...process.env, CRB_GEMM_ISA: isa }, encoding: 'utf8',
      });
      expect(r.status, r.stdout + r.stderr).to.equal(0);
      expect(r.stdout).to.include(`${CASES.length * 2} passing`);  // every [cpu] case of this file
    });
  }
});
