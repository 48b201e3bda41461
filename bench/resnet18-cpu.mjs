// Benchmark (not a test): one ResNet-18 training step (forward, cross-entropy, backward, SGD) on
// the CPU backend, batch 256 of 1x28x28 by default, beside PyTorch's on the same machine when a
// Python with torch is found. Writes bench/results/resnet18-cpu.json.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const lib = require('../dist/index.js');
const { resnet18, rand, tensor, manualSeed, SGD, crossEntropy, backendInfo } = lib;

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const BATCH = Number(process.env.BENCH_BATCH ?? 256);
const SIZE = Number(process.env.BENCH_SIZE ?? 28);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 2);
const ITERS = Number(process.env.BENCH_ITERS ?? 5);
const threads = backendInfo().cpu.threads;

manualSeed(0);
const model = resnet18({ numClasses: 10, inChannels: 1, device: 'cpu' });
const opt = new SGD(model.parameters(), { lr: 0.05 });
const x = rand([BATCH, 1, SIZE, SIZE], { device: 'cpu' });
const y = tensor(Int32Array.from({ length: BATCH }, (_, i) => i % 10), [BATCH], { device: 'cpu' });
const times = [];
for (let i = 0; i < WARMUP + ITERS; i++) {
  const t0 = process.hrtime.bigint();
  const logits = model.forward(x);
  const loss = crossEntropy(logits, y);
  opt.zeroGrad();
  loss.backward();
  opt.step();
  loss.itemSync();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  logits.dispose();
  loss.dispose();
  if (i >= WARMUP) times.push(ms);
}
const sorted = [...times].sort((a, b) => a - b);
const ours = { median_ms: sorted[Math.floor(sorted.length / 2)] };
ours.images_per_s = (BATCH / ours.median_ms) * 1000;

let torch = null;
for (const py of [path.join(root, '.venv-ref/bin/python'), 'python3']) {
  if (py.includes('/') && !existsSync(py)) continue;
  try {
    torch = JSON.parse(execFileSync(py, [path.join(root, 'bench/torch_resnet18_step.py'), String(threads), String(BATCH), String(SIZE), String(WARMUP), String(ITERS)],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
    break;
  } catch { /* no torch here */ }
}
console.log(`ResNet-18 training step, batch ${BATCH}x1x${SIZE}x${SIZE}, CPU backend ${threads} threads (${backendInfo().cpu.simd}), median of ${ITERS}`);
console.table([
  { impl: 'cudnn-resblock', 'ms/step': ours.median_ms.toFixed(0), 'images/s': ours.images_per_s.toFixed(0) },
  ...(torch ? [{ impl: `PyTorch ${torch.torch} (${torch.threads} threads)`, 'ms/step': torch.median_ms.toFixed(0), 'images/s': torch.images_per_s.toFixed(0) }] : []),
]);
mkdirSync(path.join(root, 'bench/results'), { recursive: true });
writeFileSync(path.join(root, 'bench/results/resnet18-cpu.json'), JSON.stringify({ date: new Date().toISOString(), batch: BATCH, size: SIZE, threads, ours, torch }, null, 2));
