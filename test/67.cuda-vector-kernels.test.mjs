// Issue #12 speed item: the CUDA element-wise kernels (fill, cast, add, axpby, sum), ReLU
// (bfloat16 forward, backward), the NCHW <-> NHWC conversion and the batch-norm inference
// kernels move 16-byte vectors (Note [vector loads] in native/cuda/kernels.cuh) with a scalar
// tail and a scalar fallback for misaligned pointers; the layout conversion is a tiled
// transpose. Each is compared with the CPU backend at sizes that exercise the vector body, the
// tail and both together (numel 1, 7, 8, 9, 4097, 2^20 + 3), in float32, float16 and bfloat16,
// and on odd shapes ([3, 5, 7, 9]) and ResNet ones ([2, 64, 56, 56]). Tensors from the
// allocator are always 16-byte aligned, so the scalar path (what a misaligned view gets) is
// forced in a child process with the test hook CRB_TEST_SCALAR_KERNELS=1, and its results must
// be bit-identical to the vector path's (sum excepted: its order of addition differs).
// Needs a GPU: skipped with the reason printed when CUDA is unavailable, failed instead when
// REQUIRE_CUDA=1 (`npm run test:gpu`).
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { expect } from 'chai';

const require = createRequire(import.meta.url);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const native = require('node-gyp-build')(root);
const { mulberry32 } = require('../dist/data/fashion-mnist.js');

const SIZES = [1, 7, 8, 9, 4097, (1 << 20) + 3];
const DTYPES = ['float32', 'float16', 'bfloat16'];
const SHAPES = [[3, 5, 7, 9], [2, 64, 56, 56]];

// Every op under test on one set of inputs, as float32 (or float64) arrays of the CUDA results
// and the CPU's. The CPU gets the CUDA inputs' rounded values. Self-contained (its source runs
// again in the child process): `native` and `mulberry32` are its only inputs.
function runCases(native, mulberry32) {
  const sizes = [1, 7, 8, 9, 4097, (1 << 20) + 3];
  const dtypes = ['float32', 'float16', 'bfloat16'];
  const shapes = [[3, 5, 7, 9], [2, 64, 56, 56]];
  // Relative to the largest reference value; half types hold 11 (float16) or 8 (bfloat16) bits.
  const TOL = { float32: 1e-5, float16: 1e-2, bfloat16: 3e-2, float64: 1e-12 };
  const numel = (s) => s.reduce((a, b) => a * b, 1);
  let seed = 6700;
  const uniform = (n, lo = -1, hi = 1) => {
    const next = mulberry32(seed++);
    return Float32Array.from({ length: n }, () => lo + (hi - lo) * next());
  };
  const back = (h, dtype = 'float32') => native.readSync(native.to(h, 'cpu', dtype, false));
  // { cuda: `dtype` (channels-last if asked), cpu: float32 NCHW of the same rounded values }
  const input = (data, shape, dtype, channelsLast = false) => {
    const flat = native.fromArray(data, shape, dtype, 'cuda');
    return { cuda: channelsLast ? native.to(flat, 'cuda', dtype, true) : flat, cpu: native.to(flat, 'cpu', 'float32', false) };
  };
  const cases = [];
  const push = (label, cuda, cpu, tol, { exact = true } = {}) => cases.push({ label, cuda, cpu, tol, exact });
  for (const dtype of dtypes) {
    for (const n of sizes) {
      const tag = `${dtype} numel ${n}`;
      const data = uniform(n);
      if (n > 2) { data[1] = NaN; data[2] = -0; }
      const a = input(data, [n], dtype);
      const b = input(uniform(n), [n], dtype);
      // fill
      const f = native.full([n], dtype, 'cuda', 0);
      native.fill(f, -1.75);
      push(`fill ${tag}`, back(f), new Float32Array(n).fill(-1.75), 0);
      // cast to every other float type and to int32 (the CPU casts the same rounded values)
      for (const to of ['float32', 'float64', 'float16', 'bfloat16', 'int32']) {
        if (to === dtype) continue;
        const src = to === 'int32' ? input(uniform(n, -300, 300), [n], dtype) : b;
        push(`cast ${tag} -> ${to}`, back(native.to(src.cuda, 'cuda', to, false), 'float64'),
          back(native.to(src.cpu, 'cpu', to, false), 'float64'), to === 'float32' || to === 'float64' || to === 'int32' ? 0 : TOL[to]);
      }
      // add (NaN propagates)
      push(`add ${tag}`, back(native.add(a.cuda, b.cuda)), back(native.add(a.cpu, b.cpu)), TOL[dtype]);
      // axpby with beta != 0 and beta == 0 (y not read)
      const y1 = input(uniform(n), [n], dtype);
      native.axpby(y1.cuda, b.cuda, 0.5, -2);
      native.axpby(y1.cpu, b.cpu, 0.5, -2);
      push(`axpby ${tag}`, back(y1.cuda), back(y1.cpu), TOL[dtype]);
      const y0 = input(uniform(n), [n], dtype);
      native.axpby(y0.cuda, b.cuda, 3, 0);
      native.axpby(y0.cpu, b.cpu, 3, 0);
      push(`axpby beta 0 ${tag}`, back(y0.cuda), back(y0.cpu), TOL[dtype]);
      // sum of positive values (accumulated in double on the GPU: agrees to the output's rounding)
      const s = input(uniform(n, 0, 1), [n], dtype);
      push(`sum ${tag}`, back(native.sum(s.cuda)), back(native.sum(s.cpu)), Math.max(TOL[dtype], 1e-4), { exact: false });
      // relu forward (NaN and -0 included) and backward
      const y = { cuda: native.reluForward(a.cuda), cpu: native.reluForward(a.cpu) };
      push(`relu forward ${tag}`, back(y.cuda), back(y.cpu), TOL[dtype]);
      push(`relu backward ${tag}`, back(native.reluBackward(b.cuda, y.cuda)), back(native.reluBackward(b.cpu, y.cpu)), TOL[dtype]);
    }
    for (const shape of shapes) {
      for (const channelsLast of [false, true]) {
        const tag = `${dtype} ${JSON.stringify(shape)} ${channelsLast ? 'NHWC' : 'NCHW'}`;
        const c = shape[1];
        const x = input(uniform(numel(shape), -2, 3), shape, dtype, channelsLast);
        const dy = input(uniform(numel(shape)), shape, dtype, channelsLast);
        const p = (lo, hi) => input(uniform(c, lo, hi), [c], 'float32');
        const gamma = p(0.5, 1.5), beta = p(-1, 1), rm = p(-1, 1), rv = p(0.5, 2);
        // eps 1e-6 < CUDNN_BN_MIN_EPSILON: the inference forward runs our kernel for every dtype
        for (const eps of [1e-6, 1e-5]) {
          push(`bn eval forward eps ${eps} ${tag}`,
            back(native.batchNormForwardEval(x.cuda, gamma.cuda, beta.cuda, rm.cuda, rv.cuda, eps)),
            back(native.batchNormForwardEval(x.cpu, gamma.cpu, beta.cpu, rm.cpu, rv.cpu, eps)), TOL[dtype]);
        }
        const g = {
          cuda: native.batchNormBackwardEval(x.cuda, dy.cuda, gamma.cuda, rm.cuda, rv.cuda, 1e-5),
          cpu: native.batchNormBackwardEval(x.cpu, dy.cpu, gamma.cpu, rm.cpu, rv.cpu, 1e-5),
        };
        push(`bn eval backward dx ${tag}`, back(g.cuda.dx), back(g.cpu.dx), TOL[dtype]);
        push(`bn eval backward dgamma ${tag}`, back(g.cuda.dgamma), back(g.cpu.dgamma), Math.max(TOL[dtype], 1e-4));
        push(`bn eval backward dbeta ${tag}`, back(g.cuda.dbeta), back(g.cpu.dbeta), Math.max(TOL[dtype], 1e-4));
      }
      // layout conversion, exact. Moving a channels-last CUDA tensor to the CPU copies its NHWC
      // bytes and converts them with the CPU's kernel, so the first check is the CUDA NCHW -> NHWC
      // kernel against the CPU's inverse; the second is the CUDA NHWC -> NCHW kernel.
      for (const dt of [dtype, 'float64', 'int32']) {
        const tag = `${dt} ${JSON.stringify(shape)}`;
        const data = dt === 'int32' ? Int32Array.from(uniform(numel(shape), -1000, 1000), Math.round) : uniform(numel(shape));
        const nchw = native.fromArray(data, shape, dt, 'cuda');
        const nhwc = native.to(nchw, 'cuda', dt, true);
        const ref = back(native.to(nchw, 'cpu', dt, false), 'float64');
        push(`layout NCHW -> NHWC ${tag}`, back(nhwc, 'float64'), ref, 0);
        push(`layout NHWC -> NCHW ${tag}`, back(native.to(nhwc, 'cuda', dt, false), 'float64'), ref, 0);
      }
    }
  }
  return cases;
}

// NaN positions are compared on their own (the caller), so they are skipped here.
function maxRelErr(a, b) {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    if (Number.isNaN(Number(a[i])) || Number.isNaN(Number(b[i]))) continue;
    num = Math.max(num, Math.abs(Number(a[i]) - Number(b[i])));
    den = Math.max(den, Math.abs(Number(b[i])));
  }
  return num / Math.max(den, 1e-12);
}

// FNV-1a over the bytes of a result (for the bit-identity check between the two paths).
function hashOf(arr) {
  const bytes = new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength);
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193) >>> 0;
  return h.toString(16);
}

const cudaInfo = native.backendInfo().cuda;

describe('CUDA vector kernels vs CPU: body, tail, scalar fallback @cuda', function () {
  this.timeout(600000);
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

  let cases;
  before(function () {
    cases = runCases(native, mulberry32);
  });

  it(`covers numel ${SIZES.join(', ')} in ${DTYPES.join(', ')} and shapes ${SHAPES.map((s) => JSON.stringify(s)).join(', ')}`, function () {
    expect(cases.length).to.be.above(100);
  });

  it('every op agrees with the CPU (vector path)', function () {
    const failures = [];
    for (const { label, cuda, cpu, tol } of cases) {
      expect(cuda.length, `${label} length`).to.equal(cpu.length);
      for (let i = 0; i < cpu.length; i++) {
        if (Number.isNaN(Number(cuda[i])) !== Number.isNaN(Number(cpu[i]))) {
          failures.push(`${label}: NaN mismatch at ${i}: ${cuda[i]} vs ${cpu[i]}`);
          break;
        }
      }
      const err = maxRelErr(cuda, cpu);
      if (!(err <= tol)) failures.push(`${label}: relative error ${err.toExponential(3)} > ${tol}`);
    }
    expect(failures, failures.join('\n')).to.deep.equal([]);
  });

  it('the scalar path (CRB_TEST_SCALAR_KERNELS=1, as for misaligned pointers) is bit-identical to the vector path', function () {
    const code = `const native = require('node-gyp-build')(${JSON.stringify(root)});\n` +
      `const { mulberry32 } = require(${JSON.stringify(join(root, 'dist', 'data', 'fashion-mnist.js'))});\n` +
      `const hashOf = ${hashOf.toString()};\n` +
      `const runCases = ${runCases.toString()};\n` +
      `const out = runCases(native, mulberry32).map((c) => ({ label: c.label, exact: c.exact, hash: hashOf(c.cuda), ` +
      `cuda: c.exact ? null : Array.from(c.cuda) }));\n` +
      `process.stdout.write(JSON.stringify(out) + '\\n');\n`;
    const r = spawnSync(process.execPath, ['-e', code], {
      encoding: 'utf8', timeout: 540000, maxBuffer: 1 << 28, env: { ...process.env, CRB_TEST_SCALAR_KERNELS: '1' },
    });
    if (r.status !== 0) throw new Error(`child exited ${r.status}: ${r.stderr}`);
    const scalar = JSON.parse(r.stdout.trim().split('\n').pop());
    expect(scalar.map((c) => c.label)).to.deep.equal(cases.map((c) => c.label));
    const differ = [];
    scalar.forEach((s, i) => {
      const v = cases[i];
      if (s.exact) {
        if (s.hash !== hashOf(v.cuda)) differ.push(s.label);
      } else if (!(maxRelErr(s.cuda, v.cuda) <= 1e-6)) {
        differ.push(`${s.label} (sum: ${maxRelErr(s.cuda, v.cuda).toExponential(3)})`);
      }
    });
    expect(differ, `scalar and vector paths differ: ${differ.join(', ')}`).to.deep.equal([]);
  });
});
