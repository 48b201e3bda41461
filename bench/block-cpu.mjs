// Benchmark (not a test): ResidualBlock forward on the CPU backend, beside PyTorch on the same
// machine when a Python with torch is found (.venv-ref/bin/python, else python3).
// Prints a table and writes bench/results/block-cpu.json.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const lib = require('../dist/index.js');
const { ResidualBlock, randn, manualSeed, noGrad, backendInfo } = lib;

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const threads = backendInfo().cpu.threads;
const CASES = [
  { name: 'seed (3->3), 1x3x224x224', n: 1, in: 3, out: 3, h: 224, w: 224, use1x1conv: false, strides: 1 },
  { name: 'seed (3->6, 1x1, s2), 1x3x224x224', n: 1, in: 3, out: 6, h: 224, w: 224, use1x1conv: true, strides: 2 },
  { name: 'N=32, 64->64, 56x56', n: 32, in: 64, out: 64, h: 56, w: 56, use1x1conv: false, strides: 1 },
];
const WARMUP = Number(process.env.BENCH_WARMUP ?? 2);
const ITERS = Number(process.env.BENCH_ITERS ?? 7);

const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };

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

function torchResults() {
  const candidates = [path.join(root, '.venv-ref/bin/python'), 'python3'];
  for (const py of candidates) {
    if (py.includes('/') && !existsSync(py)) continue;
    try {
      const out = execFileSync(py, [path.join(root, 'bench/torch_block.py'), String(threads), String(WARMUP), String(ITERS), JSON.stringify(CASES)],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      return JSON.parse(out);
    } catch { /* no torch with this python */ }
  }
  return null;
}

const rows = CASES.map((c) => ({ case: c.name, ...ours(c) }));
const torch = torchResults();
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
  (torch ? `; PyTorch ${torch.torch}, ${torch.threads} threads` : '; PyTorch not found'));
console.table(table);
const result = { date: new Date().toISOString(), host: { cpus: os.cpus().length, model: os.cpus()[0]?.model }, threads, ours: rows, torch };
mkdirSync(path.join(root, 'bench/results'), { recursive: true });
writeFileSync(path.join(root, 'bench/results/block-cpu.json'), JSON.stringify(result, null, 2));
console.log('wrote bench/results/block-cpu.json');
