// Benchmark (not a test): ResidualBlock on the CPU backend in both memory formats, forward
// (train-mode BN) and forward + backward (input gradient too), beside PyTorch's NCHW and
// channels-last on the same machine when a Python with torch is found (see bench/helpers.mjs).
// GFLOP/s count the convolutions' multiply-adds of the direct algorithm (backward: data and filter
// gradients, 3x the forward): effective rates, as Winograd does fewer (see helpers.mjs
// convFlops), against the machine's FMA peak measured by bench/fma_peak.c.
// Prints a table and writes bench/results/block-cpu.json.
import { createRequire } from 'node:module';
import { convFlops, envNumber, fmaPeak, median, runPython, torchNote, writeResult } from './helpers.mjs';

const require = createRequire(import.meta.url);
const lib = require('../dist/index.js');
const { ResidualBlock, randn, manualSeed, noGrad, backendInfo } = lib;

const threads = backendInfo().cpu.threads;
const CASES = [
  { name: 'seed (3->3), 1x3x224x224', n: 1, in: 3, out: 3, h: 224, w: 224, use1x1conv: false, strides: 1 },
  { name: 'seed (3->6, 1x1, s2), 1x3x224x224', n: 1, in: 3, out: 6, h: 224, w: 224, use1x1conv: true, strides: 2 },
  { name: 'N=32, 64->64, 56x56', n: 32, in: 64, out: 64, h: 56, w: 56, use1x1conv: false, strides: 1 },
  { name: 'N=32, 64->64, 56x56, fwd+bwd', n: 32, in: 64, out: 64, h: 56, w: 56, use1x1conv: false, strides: 1, backward: true },
  { name: 'N=32, 128->256, 1x1, s2, 28x28, fwd+bwd', n: 32, in: 128, out: 256, h: 28, w: 28, use1x1conv: true, strides: 2, backward: true },
];
const WARMUP = envNumber('BENCH_WARMUP', 2);
const ITERS = envNumber('BENCH_ITERS', 7);
const FORMATS = ['contiguous', 'channelsLast'];

function blockFlops(c) {
  const oh = Math.floor((c.h - 1) / c.strides) + 1, ow = Math.floor((c.w - 1) / c.strides) + 1;
  const at = { n: c.n, outH: oh, outW: ow, k: c.out };
  const fwd = convFlops({ ...at, c: c.in, r: 3, s: 3 }) + convFlops({ ...at, c: c.out, r: 3, s: 3 }) +
    (c.use1x1conv ? convFlops({ ...at, c: c.in, r: 1, s: 1 }) : 0);
  return c.backward ? 3 * fwd : fwd;
}

function ours(c, memoryFormat) {
  manualSeed(0);
  const blk = new ResidualBlock(c.in, c.out, { use1x1conv: c.use1x1conv, strides: c.strides, device: 'cpu' }).to({ memoryFormat });
  const x0 = randn([c.n, c.in, c.h, c.w], { device: 'cpu' });
  const x = x0.to({ memoryFormat });
  x.requiresGrad = !!c.backward;
  const times = [];
  let gy = null;
  for (let i = 0; i < WARMUP + ITERS; i++) {
    const t0 = process.hrtime.bigint();
    if (c.backward) {
      const y = blk.forward(x);
      if (!gy) {  // in y's memory format, so backward converts nothing
        const ones = lib.onesLike(y);
        gy = ones.to({ memoryFormat });
        if (gy !== ones) ones.dispose();
      }
      y.backward(gy);
      y.dispose();
    } else {
      noGrad(() => blk.forward(x)).dispose();
    }
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    blk.zeroGrad();
    x.zeroGrad();
    if (i >= WARMUP) times.push(ms);
  }
  for (const t of [x0, x, gy]) t?.dispose();
  blk.dispose();
  return { median_ms: median(times), min_ms: Math.min(...times) };
}

const peak = fmaPeak(threads);
const rows = CASES.map((c) => ({ case: c.name, flops: blockFlops(c), nchw: ours(c, 'contiguous'), cl: ours(c, 'channelsLast') }));
const torchRun = runPython('torch_block.py', [threads, WARMUP, ITERS, JSON.stringify(CASES)]);
const torch = torchRun.result;
const fmt = (r) => (r ? r.median_ms.toFixed(1) : '-');
const table = rows.map((r) => {
  const t = torch?.results.filter((x) => x.name === r.case) ?? [];
  const nchw = t.find((x) => x.format === 'nchw');
  const cl = t.find((x) => x.format === 'channels_last');
  const best = [nchw, cl].filter(Boolean).map((x) => x.median_ms);
  const mine = Math.min(r.nchw.median_ms, r.cl.median_ms);
  const gflops = r.flops / (r.cl.median_ms * 1e6);
  return {
    case: r.case,
    'ours NCHW ms': fmt(r.nchw),
    'ours CL ms': fmt(r.cl),
    'torch NCHW ms': fmt(nchw),
    'torch CL ms': fmt(cl),
    'ours/best': best.length ? (mine / Math.min(...best)).toFixed(2) : '-',
    'CL eff. GFLOP/s': gflops.toFixed(0),
    '% peak': peak.gflops ? `${((100 * gflops) / peak.gflops).toFixed(0)}%` : '-',
  };
});
console.log(`ResidualBlock, CPU backend, ${threads} threads (${backendInfo().cpu.simd}), median of ${ITERS} after ${WARMUP} warm-up` +
  `; ${torchNote(torchRun)}; FMA peak ${peak.gflops ? `${peak.gflops} GFLOP/s (${peak.isa}, bench/fma_peak.c)` : `unknown: ${peak.why}`}`);
console.table(table);
writeResult('block-cpu', { threads, peak, ours: rows, torch, torchMissing: torch ? undefined : torchRun.why });
