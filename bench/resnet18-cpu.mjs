// Benchmark (not a test): one ResNet-18 training step (forward, cross-entropy, backward, SGD) on
// the CPU backend, batch 256 of 1x28x28 by default, beside PyTorch's on the same machine when a
// Python with torch is found (see bench/helpers.mjs). Writes bench/results/resnet18-cpu.json.
import { createRequire } from 'node:module';
import { envNumber, runPython, timeTrainStep, torchNote, writeResult } from './helpers.mjs';

const require = createRequire(import.meta.url);
const lib = require('../dist/index.js');
const { resnet18, rand, tensor, manualSeed, backendInfo } = lib;

const BATCH = envNumber('BENCH_BATCH', 256);
const SIZE = envNumber('BENCH_SIZE', 28);
const WARMUP = envNumber('BENCH_WARMUP', 2);
const ITERS = envNumber('BENCH_ITERS', 5);
const threads = backendInfo().cpu.threads;

manualSeed(0);
const model = resnet18({ numClasses: 10, inChannels: 1, device: 'cpu' });
const x = rand([BATCH, 1, SIZE, SIZE], { device: 'cpu' });
const y = tensor(Int32Array.from({ length: BATCH }, (_, i) => i % 10), [BATCH], { device: 'cpu' });
const ours = timeTrainStep(lib, model, x, y, { warmup: WARMUP, iters: ITERS });

const torch = runPython('torch_train_step.py', [JSON.stringify({
  model: 'd2l-resnet18', threads, warmup: WARMUP, iters: ITERS, in_channels: 1, size: SIZE, num_classes: 10,
  batches: [BATCH], formats: ['nchw'],
})]);
const t = torch.result?.results[0];
console.log(`d2l ResNet-18 training step, batch ${BATCH}x1x${SIZE}x${SIZE}, CPU backend ${threads} threads (${backendInfo().cpu.simd}), median of ${ITERS}; ${torchNote(torch)}`);
console.table([
  { impl: 'cudnn-resblock', 'ms/step': ours.median_ms.toFixed(0), 'images/s': ours.images_per_s.toFixed(0) },
  ...(t ? [{ impl: `PyTorch ${torch.result.torch} (${torch.result.threads} threads)`, 'ms/step': t.median_ms.toFixed(0), 'images/s': t.images_per_s.toFixed(0) }] : []),
]);
writeResult('resnet18-cpu', { batch: BATCH, size: SIZE, threads, ours, torch: t ? { torch: torch.result.torch, threads, ...t } : null, torchMissing: t ? undefined : torch.why });
