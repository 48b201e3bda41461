// Benchmark (not a test) on CUDA: images/s for the ResidualBlock (N=256, 64->64, 56x56; and
// 128->256 stride 2), forward and forward+backward, and for the ResNet-18 training step (batch
// 256, 1x96x96) and a whole d2l epoch with data feeding (uint8 28x28 batches resized to 96x96 on
// the device; BENCH_EPOCH_IMAGES, default 60000), in fp32 (TF32) NCHW and bf16 channels-last. When `python3 -c 'import torch'`
// works with CUDA, PyTorch runs the same cases in the same call; the ratio and the floor (FLOPs
// at the measured tensor-core rate, bytes at the measured bandwidth) are printed beside ours.
// Writes bench/results/gpu.json.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const lib = require('../dist/index.js');
const { ResidualBlock, resnet18, randn, tensor, manualSeed, noGrad, backendInfo, cuda, SGD, crossEntropy, DataLoader } = lib;

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const WARMUP = Number(process.env.BENCH_WARMUP ?? 3);
const ITERS = Number(process.env.BENCH_ITERS ?? 10);
const EPOCH_IMAGES = Number(process.env.BENCH_EPOCH_IMAGES ?? 60000);
// BENCH_SHORT=1 (npm run check:gpu): only the block 64->64 training step and the ResNet-18 step.
const SHORT = process.env.BENCH_SHORT === '1';

const info = backendInfo();
if (!info.cuda.available) {
  console.error(`bench:gpu: CUDA is not available: ${info.cuda.reason}${info.cuda.hint ? ` (${info.cuda.hint})` : ''}`);
  process.exit(2);
}

const block = (name, n, cin, cout, h, strides, train, precision) =>
  ({ name, kind: 'block', n, in: cin, out: cout, h, w: h, strides, use1x1conv: cin !== cout || strides !== 1, train, precision });
const CASES = [];
for (const precision of ['fp32', 'bf16']) {
  if (!SHORT) CASES.push(block('block 64->64 56x56 N=256 fwd', 256, 64, 64, 56, 1, false, precision));
  CASES.push(block('block 64->64 56x56 N=256 fwd+bwd', 256, 64, 64, 56, 1, true, precision));
  if (!SHORT) CASES.push(block('block 128->256 s2 28x28 N=256 fwd+bwd', 256, 128, 256, 28, 2, true, precision));
  CASES.push({ name: 'resnet18 train step 256x1x96x96', kind: 'resnet18', n: 256, h: 96, w: 96, train: true, precision });
  if (!SHORT) CASES.push({ name: `d2l epoch (${EPOCH_IMAGES} uint8 28x28 -> 96x96, batch 256, data feeding included)`, kind: 'epoch',
    n: 256, images: EPOCH_IMAGES, h: 96, w: 96, train: true, precision });
}

// --- FLOPs and minimal bytes, for the floor
function convFlops(n, cin, cout, k, ho, wo) { return 2 * n * cin * cout * k * k * ho * wo; }
function blockFlops(c) {
  const ho = Math.floor((c.h - 1) / c.strides) + 1;
  let f = convFlops(c.n, c.in, c.out, 3, ho, ho) + convFlops(c.n, c.out, c.out, 3, ho, ho);
  if (c.use1x1conv) f += convFlops(c.n, c.in, c.out, 1, ho, ho);
  return { flops: c.train ? 3 * f : f, elemsOut: c.n * c.out * ho * ho, elemsIn: c.n * c.in * c.h * c.w };
}
function resnetFlops(n, h) {
  let s = Math.floor((h + 6 - 7) / 2) + 1;
  let f = convFlops(n, 1, 64, 7, s, s);
  s = Math.floor((s + 2 - 3) / 2) + 1;
  let cin = 64;
  for (const [cout, first] of [[64, true], [128, false], [256, false], [512, false]]) {
    for (let i = 0; i < 2; i++) {
      const down = i === 0 && !first;
      const c = { n, in: i === 0 ? cin : cout, out: cout, h: s, w: s, strides: down ? 2 : 1, use1x1conv: down, train: false };
      f += blockFlops(c).flops;
      if (down) s = Math.floor((s - 1) / 2) + 1;
    }
    cin = cout;
  }
  return { flops: 3 * (f + 2 * n * 512 * 10), elemsIn: n * h * h, elemsOut: n * 10 };
}

// --- our side
function median(a) { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; }
function time(fn) {
  for (let i = 0; i < WARMUP; i++) fn();
  cuda.synchronize();
  const times = [];
  for (let i = 0; i < ITERS; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    cuda.synchronize();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return median(times);
}

// A whole epoch as d2l runs it: uint8 images batched on the host, converted and resized to
// 96x96 on the device, one training step per batch. Random pixels (never zeros), one timing.
function oursEpoch(c) {
  manualSeed(0);
  const bf16 = c.precision === 'bf16';
  let seed = 1;
  const images = new Uint8Array(c.images * 28 * 28);
  for (let i = 0; i < images.length; i++) images[i] = (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
  const labels = Uint8Array.from({ length: c.images }, (_, i) => i % 10);
  const loader = new DataLoader({ images, labels, n: c.images, height: 28, width: 28 },
    { batchSize: c.n, device: 'cuda', resize: c.h, dropLast: true });
  const model = resnet18({ numClasses: 10, inChannels: 1, device: 'cuda' });
  if (bf16) model.to({ dtype: 'bfloat16', memoryFormat: 'channelsLast' });
  const opt = new SGD(model.parameters(), { lr: 0.05 });
  const stepOn = (batch) => {
    const logits = model.forward(batch.images);
    const loss = crossEntropy(logits, batch.labels);
    opt.zeroGrad();
    loss.backward();
    opt.step();
    logits.dispose();
    loss.dispose();
    batch.dispose();
  };
  let warm = 0;
  for (const batch of loader.epoch(1)) { stepOn(batch); if (++warm === WARMUP) break; }
  cuda.synchronize();
  const t0 = process.hrtime.bigint();
  let seen = 0;
  for (const batch of loader.epoch(0)) { seen += batch.size; stepOn(batch); }
  cuda.synchronize();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  model.dispose(); opt.dispose();
  return { ms, images_per_s: (seen / ms) * 1000 };
}

function ours(c) {
  if (c.kind === 'epoch') return oursEpoch(c);
  manualSeed(0);
  const bf16 = c.precision === 'bf16';
  const layout = bf16 ? { device: 'cuda', memoryFormat: 'channelsLast' } : { device: 'cuda' };
  const model = c.kind === 'block'
    ? new ResidualBlock(c.in, c.out, { use1x1conv: c.use1x1conv, strides: c.strides, device: 'cuda' })
    : resnet18({ numClasses: 10, inChannels: 1, device: 'cuda' });
  model.to(layout);
  const x = randn([c.n, c.kind === 'block' ? c.in : 1, c.h, c.w], { device: 'cuda' }).to(layout);
  const labels = tensor(Int32Array.from({ length: c.n }, (_, i) => i % 10), [c.n], { device: 'cuda' });
  const opt = new SGD(model.parameters(), { lr: 0.05 });
  const run = () => lib.autocast({ enabled: bf16, dtype: 'bfloat16' }, () => {
    const y = model.forward(x);
    if (!c.train) { y.dispose(); return; }
    const loss = c.kind === 'resnet18' ? crossEntropy(y, labels) : y.sum();
    opt.zeroGrad();
    loss.backward();
    if (c.kind === 'resnet18') opt.step();
    loss.dispose();
    y.dispose();
  });
  const ms = c.train ? time(run) : noGrad(() => time(run));
  model.dispose(); x.dispose(); labels.dispose(); opt.dispose();
  return { ms, images_per_s: (c.n / ms) * 1000 };
}

function torchSide() {
  try {
    execFileSync('python3', ['-c', 'import torch; assert torch.cuda.is_available()'], { stdio: 'ignore' });
  } catch { return null; }
  try {
    const out = execFileSync('python3', [path.join(root, 'bench/torch_gpu.py'), JSON.stringify(CASES), String(WARMUP), String(ITERS)], { encoding: 'utf8', maxBuffer: 1 << 24 });
    return JSON.parse(out.trim().split('\n').at(-1));
  } catch (e) { console.error(`PyTorch side failed: ${e.message}`); return null; }
}

const rows = [];
for (const c of CASES) {
  let r;
  try { r = ours(c); } catch (e) { r = { error: e.message.split('\n')[0] }; }
  rows.push({ case: c, ours: r });
  console.error(`${c.name} ${c.precision}: ${r.error ?? `${r.ms.toFixed(2)} ms`}`);
}
const torch = torchSide();
const table = rows.map(({ case: c, ours: r }) => {
  const t = torch?.results.find((x) => x.name === c.name && x.precision === c.precision);
  const work = c.kind === 'block' ? blockFlops(c) : resnetFlops(c.kind === 'epoch' ? Math.floor(c.images / c.n) * c.n : c.n, c.h);
  const bytesPerElem = c.precision === 'bf16' ? 2 : 4;
  const bytes = (work.elemsIn + work.elemsOut) * bytesPerElem * (c.train ? 3 : 1);
  const floorMs = torch ? Math.max(work.flops / (torch.rates.bf16_tflops * 1e12), bytes / (torch.rates.bandwidth_gbps * 1e9)) * 1000 : null;
  return {
    case: c.name,
    precision: c.precision === 'bf16' ? 'bf16 NHWC' : 'fp32 (TF32) NCHW',
    'ours img/s': r.error ? `error: ${r.error.slice(0, 40)}` : r.images_per_s.toFixed(0),
    'torch img/s': t ? t.images_per_s.toFixed(0) : '-',
    ratio: t && !r.error ? `${(r.images_per_s / t.images_per_s).toFixed(2)}x` : '-',
    'floor ms': floorMs ? floorMs.toFixed(3) : '-',
    '% of floor': floorMs && !r.error ? `${((floorMs / r.ms) * 100).toFixed(1)}%` : '-',
  };
});
const dev = info.cuda.devices[0];
console.log(`GPU: ${dev.name} (sm_${dev.computeCapability.replace('.', '')}), driver ${dev.driverVersion}, runtime ${dev.runtimeVersion}, cuDNN ${dev.cudnnVersion}` +
  (torch ? `; PyTorch ${torch.torch} (cuDNN ${torch.cudnn}); measured ${torch.rates.bf16_tflops.toFixed(0)} TFLOP/s bf16, ${torch.rates.bandwidth_gbps.toFixed(0)} GB/s` : '; PyTorch with CUDA not found'));
console.table(table);
mkdirSync(path.join(root, 'bench/results'), { recursive: true });
const outFile = process.env.BENCH_OUT
  || path.join(process.env.OUT && existsSync(process.env.OUT) ? process.env.OUT : path.join(root, 'bench/results'), 'gpu.json');
writeFileSync(outFile, JSON.stringify({ date: new Date().toISOString(), device: dev, rows, torch, table }, null, 2));
console.log(`wrote ${outFile}`);
