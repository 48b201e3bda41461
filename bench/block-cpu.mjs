// Benchmark (not a test): ResidualBlock forward on the CPU backend, beside PyTorch on the same
// machine when a Python with torch is found (see bench/helpers.mjs).
// Prints a table and writes bench/results/block-cpu.json.
import { createRequire } from 'node:module';
import { envNumber, median, runPython, torchNote, writeResult } from './helpers.mjs';

const require = createRequire(import.meta.url);
const lib = require('../dist/index.js');
const { ResidualBlock, randn, manualSeed, noGrad, backendInfo } = lib;

const threads = backendInfo().cpu.threads;
const CASES = [
  { name: 'seed (3->3), 1x3x224x224', n: 1, in: 3, out: 3, h: 224, w: 224, use1x1conv: false, strides: 1 },
  { name: 'seed (3->6, 1x1, s2), 1x3x224x224', n: 1, in: 3, out: 6, h: 224, w: 224, use1x1conv: true, strides: 2 },
  { name: 'N=32, 64->64, 56x56', n: 32, in: 64, out: 64, h: 56, w: 56, use1x1conv: false, strides: 1 },
];
const WARMUP = envNumber('BENCH_WARMUP', 2);
const ITERS = envNumber('BENCH_ITERS', 7);

function ours(c) {
  manualSeed(0);
  const blk = new ResidualBlock(c.in, c.out, { use1x1conv: c.use1x1conv, strides: c.strides, device: 'cpu' });
  const x = randn([c.n, c.in, c.h, c.w], { device: 'cpu' });
  const times = [];
  noGrad(() => {
    for (let i = 0; i < WARMUP + ITERS; i++) {
      const t0 = process.hrtime.bigint();
      const y = blk.forward(x);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      y.dispose();
      if (i >= WARMUP) times.push(ms);
    }
  });
  x.dispose();
  blk.dispose();
  return { median_ms: median(times), min_ms: Math.min(...times) };
}

const rows = CASES.map((c) => ({ case: c.name, ...ours(c) }));
const torchRun = runPython('torch_block.py', [threads, WARMUP, ITERS, JSON.stringify(CASES)]);
const torch = torchRun.result;
const table = rows.map((r) => {
  const t = torch?.results.filter((x) => x.name === r.case) ?? [];
  const nchw = t.find((x) => x.format === 'nchw');
  const cl = t.find((x) => x.format === 'channels_last');
  return {
    case: r.case,
    'ours ms': r.median_ms.toFixed(1),
    'torch NCHW ms': nchw ? nchw.median_ms.toFixed(1) : '-',
    'torch channels-last ms': cl ? cl.median_ms.toFixed(1) : '-',
    'speed vs torch NCHW': nchw ? `${(nchw.median_ms / r.median_ms).toFixed(2)}x` : '-',
  };
});
console.log(`ResidualBlock forward, CPU backend, ${threads} threads (${backendInfo().cpu.simd}), median of ${ITERS} after ${WARMUP} warm-up` +
  `; ${torchNote(torchRun)}`);
console.table(table);
writeResult('block-cpu', { threads, ours: rows, torch, torchMissing: torch ? undefined : torchRun.why });
