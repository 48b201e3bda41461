// Benchmark (not a test): one training step (forward, cross-entropy, backward, SGD) of
// torchvision's ResNet-18 (models.resnet18, 10 classes) on CIFAR-10-shaped float32 input
// [B, 3, 32, 32], B = 128 and 32 by default (BENCH_BATCHES=128,32), on the CPU backend in both
// memory formats, beside torchvision.models.resnet18 in PyTorch (NCHW and channels-last) in the
// same run.
// Prints a table and writes bench/results/resnet18-cifar-cpu.json.
import { createRequire } from 'node:module';
import { envNumber, runPython, timeTrainStep, torchNote, writeResult } from './helpers.mjs';

const require = createRequire(import.meta.url);
const lib = require('../dist/index.js');
const { models, rand, tensor, manualSeed, backendInfo } = lib;

const BATCHES = (process.env.BENCH_BATCHES ?? '128,32').split(',').map(Number);
const SIZE = 32;
const WARMUP = envNumber('BENCH_WARMUP', 2);
const ITERS = envNumber('BENCH_ITERS', 5);
const threads = backendInfo().cpu.threads;

function step(batch, memoryFormat) {
  manualSeed(0);
  const model = models.resnet18({ numClasses: 10, device: 'cpu' }).to({ memoryFormat });
  const x0 = rand([batch, 3, SIZE, SIZE], { device: 'cpu' });
  const x = x0.to({ memoryFormat });
  const y = tensor(Int32Array.from({ length: batch }, (_, i) => i % 10), [batch], { device: 'cpu' });
  const r = timeTrainStep(lib, model, x, y, { warmup: WARMUP, iters: ITERS });
  for (const t of new Set([x0, x, y])) t.dispose();
  model.dispose();
  return r;
}
const ours = BATCHES.map((batch) => ({ batch, nchw: step(batch, 'contiguous'), cl: step(batch, 'channelsLast') }));

const torch = runPython('torch_train_step.py', [JSON.stringify({
  model: 'torchvision-resnet18', threads, warmup: WARMUP, iters: ITERS, in_channels: 3, size: SIZE, num_classes: 10,
  batches: BATCHES, formats: ['nchw', 'channels_last'],
})]);
const pick = (batch, format) => torch.result?.results.find((t) => t.batch === batch && t.format === format);

console.log(`torchvision ResNet-18 training step (SGD), float32 Bx3x${SIZE}x${SIZE}, CPU backend ${threads} threads (${backendInfo().cpu.simd}), ` +
  `median of ${ITERS} after ${WARMUP} warm-up; ${torchNote(torch)}`);
console.table(ours.map((o) => {
  const nchw = pick(o.batch, 'nchw');
  const cl = pick(o.batch, 'channels_last');
  const ms = (t) => (t ? t.median_ms.toFixed(0) : '-');
  const mine = Math.min(o.nchw.median_ms, o.cl.median_ms);
  const best = [nchw, cl].filter(Boolean).map((t) => t.median_ms);
  return {
    batch: o.batch,
    'ours NCHW ms': ms(o.nchw),
    'ours CL ms': ms(o.cl),
    'ours images/s': ((o.batch * 1000) / mine).toFixed(0),
    'torch NCHW ms': ms(nchw),
    'torch CL ms': ms(cl),
    'ours/best': best.length ? (mine / Math.min(...best)).toFixed(2) : '-',
  };
}));
writeResult('resnet18-cifar-cpu', {
  model: 'torchvision resnet18, numClasses 10', size: SIZE, warmup: WARMUP, iters: ITERS, threads, simd: backendInfo().cpu.simd,
  ours, torch: torch.result, torchMissing: torch.result ? undefined : torch.why,
});
