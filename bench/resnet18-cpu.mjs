// Benchmark (not a test): one d2l ResNet-18 training step (forward, cross-entropy, backward, SGD)
// on the CPU backend in both memory formats, batch 256 of 1x28x28 and 64 of 1x96x96 by default
// (BENCH_BATCH and BENCH_SIZE pick one), beside PyTorch's NCHW and channels-last on the same
// machine when a Python with torch is found (see bench/helpers.mjs). GFLOP/s count the
// convolutions' direct multiply-adds (3x the forward's for the step; effective rates, see
// helpers.mjs convFlops), against the machine's FMA peak
// measured by bench/fma_peak.c. Writes bench/results/resnet18-cpu.json.
import { createRequire } from 'node:module';
import { convFlops, envNumber, fmaPeak, runPython, timeTrainStep, torchNote, writeResult } from './helpers.mjs';

const require = createRequire(import.meta.url);
const lib = require('../dist/index.js');
const { resnet18, rand, tensor, manualSeed, backendInfo } = lib;

const SHAPES = process.env.BENCH_BATCH || process.env.BENCH_SIZE
  ? [[envNumber('BENCH_BATCH', 256), envNumber('BENCH_SIZE', 28)]]
  : [[256, 28], [64, 96]];
const WARMUP = envNumber('BENCH_WARMUP', 2);
const ITERS = envNumber('BENCH_ITERS', 5);
const threads = backendInfo().cpu.threads;

// The convolutions of d2l's ResNet-18 (7x7/2 stem, 3x3/2 max pool, four stages of two residual
// blocks, the first block of stages 2-4 strided with a 1x1 shortcut), forward multiply-adds.
function stepFlops(batch, size) {
  const out = (h, k, st, p) => Math.floor((h + 2 * p - k) / st) + 1;
  let h = out(size, 7, 2, 3);
  let flops = convFlops({ n: batch, c: 1, k: 64, r: 7, s: 7, outH: h, outW: h });
  h = out(h, 3, 2, 1);
  let c = 64;
  for (const [k, first] of [[64, true], [128, false], [256, false], [512, false]]) {
    for (let b = 0; b < 2; b++) {
      const st = b === 0 && !first ? 2 : 1;
      const oh = out(h, 3, st, 1);
      flops += convFlops({ n: batch, c, k, r: 3, s: 3, outH: oh, outW: oh }) + convFlops({ n: batch, c: k, k, r: 3, s: 3, outH: oh, outW: oh });
      if (st === 2) flops += convFlops({ n: batch, c, k, r: 1, s: 1, outH: oh, outW: oh });
      h = oh;
      c = k;
    }
  }
  return 3 * flops;
}

function ours(batch, size, memoryFormat) {
  manualSeed(0);
  const model = resnet18({ numClasses: 10, inChannels: 1, device: 'cpu' }).to({ memoryFormat });
  const x0 = rand([batch, 1, size, size], { device: 'cpu' });
  const x = x0.to({ memoryFormat });  // one channels-last 1-channel input: the same memory either way
  const y = tensor(Int32Array.from({ length: batch }, (_, i) => i % 10), [batch], { device: 'cpu' });
  const r = timeTrainStep(lib, model, x, y, { warmup: WARMUP, iters: ITERS });
  for (const t of [x0, x, y]) t.dispose();
  model.dispose();
  return r;
}

const peak = fmaPeak(threads);
const rows = [];
for (const [batch, size] of SHAPES) {
  const nchw = ours(batch, size, 'contiguous');
  const cl = ours(batch, size, 'channelsLast');
  const torch = runPython('torch_train_step.py', [JSON.stringify({
    model: 'd2l-resnet18', threads, warmup: WARMUP, iters: ITERS, in_channels: 1, size, num_classes: 10,
    batches: [batch], formats: ['nchw', 'channels_last'],
  })]);
  const pick = (f) => torch.result?.results.find((t) => t.format === f) ?? null;
  rows.push({ batch, size, flops: stepFlops(batch, size), nchw, cl, torchNchw: pick('nchw'), torchCl: pick('channels_last'), torch });
}
const ms = (r) => (r ? r.median_ms.toFixed(0) : '-');
console.log(`d2l ResNet-18 training step, CPU backend ${threads} threads (${backendInfo().cpu.simd}), median of ${ITERS}` +
  `; ${torchNote(rows[0].torch)}; FMA peak ${peak.gflops ? `${peak.gflops} GFLOP/s (${peak.isa}, bench/fma_peak.c)` : `unknown: ${peak.why}`}`);
console.table(rows.map((r) => {
  const best = [r.torchNchw, r.torchCl].filter(Boolean).map((t) => t.median_ms);
  const mine = Math.min(r.nchw.median_ms, r.cl.median_ms);
  const gflops = r.flops / (mine * 1e6);
  return {
    shape: `${r.batch}x1x${r.size}x${r.size}`,
    'ours NCHW ms': ms(r.nchw),
    'ours CL ms': ms(r.cl),
    'torch NCHW ms': ms(r.torchNchw),
    'torch CL ms': ms(r.torchCl),
    'ours/best': best.length ? (mine / Math.min(...best)).toFixed(2) : '-',
    'eff. GFLOP/s': gflops.toFixed(0),
    '% peak': peak.gflops ? `${((100 * gflops) / peak.gflops).toFixed(0)}%` : '-',
  };
}));
writeResult('resnet18-cpu', {
  threads, peak,
  shapes: rows.map(({ torch, ...r }) => ({ ...r, torch: torch.result ? { torch: torch.result.torch, threads } : null, torchMissing: torch.result ? undefined : torch.why })),
});
