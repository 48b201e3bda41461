// Benchmark (not a test): data-loading throughput, images/s over whole epochs after a warm-up
// epoch, for an ImageFolder of JPEGs (bench/make-jpeg-folder.mjs: 10 classes x 50 of 224x224,
// quality 90, in a temp dir) with RandomResizedCrop(224), RandomHorizontalFlip and ImageNet
// Normalize into float32 [B, 3, 224, 224] batches, shuffled, at 0 and 2 workers: torchvision's
// ImageFolder + transforms.v2 + torch DataLoader (bench/torch_data.py) beside our ImageFolder +
// DataLoader({ numWorkers }) in the same run. Prints a table and writes
// bench/results/data-folder.json. Workers are persistent on both sides (torch's
// persistent_workers, our persistentWorkers), so their start-up falls in the warm-up epoch.
//
// BENCH_WORKERS=0,2  BENCH_DATA_BATCH=64  BENCH_EPOCHS=3 (timed, after 1 warm-up)
// BENCH_CLASSES=10 BENCH_PER_CLASS=50, or BENCH_DATA_DIR=an existing ImageFolder tree (kept)
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { envNumber, median, runPython, torchNote, writeResult } from './helpers.mjs';
import { makeJpegFolder } from './make-jpeg-folder.mjs';

const require = createRequire(import.meta.url);
const lib = require('../dist/index.js');

const WORKERS = (process.env.BENCH_WORKERS ?? '0,2').split(',').map(Number);
const BATCH = envNumber('BENCH_DATA_BATCH', 64);
const EPOCHS = envNumber('BENCH_EPOCHS', 3);
const WARMUP_EPOCHS = 1;
const threads = lib.backendInfo().cpu.threads;

async function ours(dir, numWorkers) {
  const { ImageFolder, transforms: T, DataLoader } = lib;
  const ds = new ImageFolder(dir, {
    transform: T.compose([T.randomResizedCrop(224), T.randomHorizontalFlip(), T.normalize(T.IMAGENET_MEAN, T.IMAGENET_STD)]),
  });
  const loader = new DataLoader(ds, { batchSize: BATCH, shuffle: true, numWorkers, persistentWorkers: numWorkers > 0 });
  const epochS = [];
  let images = 0;
  let shape = null;
  try {
    for (let e = 0; e < WARMUP_EPOCHS + EPOCHS; e++) {
      let n = 0;
      const t0 = process.hrtime.bigint();
      for await (const batch of loader) {
        n += batch.size;
        shape = batch.images.shape;
        batch.dispose();
      }
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      if (e >= WARMUP_EPOCHS) { epochS.push(s); images += n; }
    }
  } finally {
    await loader.close();
  }
  const total = epochS.reduce((a, b) => a + b, 0);
  return { workers: numWorkers, batch_shape: shape, epoch_s: epochS, images_per_s: images / total, images_per_s_median_epoch: images / EPOCHS / median(epochS) };
}

const dir = process.env.BENCH_DATA_DIR ?? mkdtempSync(path.join(os.tmpdir(), 'crb-data-bench-'));
const folder = process.env.BENCH_DATA_DIR
  ? { dir, given: true }
  : await makeJpegFolder(dir, { classes: envNumber('BENCH_CLASSES', 10), perClass: envNumber('BENCH_PER_CLASS', 50) });
try {
  const rows = [];
  for (const w of WORKERS) {
    const torch = runPython('torch_data.py', [dir, '--workers', w, '--batch-size', BATCH, '--epochs', EPOCHS, '--warmup-epochs', WARMUP_EPOCHS, '--threads', threads]);
    let our = null;
    let ourWhy = null;
    try { our = await ours(dir, w); } catch (e) { ourWhy = `failed: ${e.message.split('\n')[0]}`; }
    rows.push({ workers: w, torch, ours: our, oursWhy: ourWhy });
  }
  const t0 = rows.find((r) => r.torch.result)?.torch ?? rows[0].torch;
  console.log(`ImageFolder data loading, ${folder.files ?? '?'} JPEGs ${folder.size ?? '?'}x${folder.size ?? '?'} -> RandomResizedCrop(224), flip, ` +
    `Normalize -> float32 batches of ${BATCH}, shuffled; images/s over ${EPOCHS} epochs after ${WARMUP_EPOCHS} warm-up; ${torchNote(t0)}`);
  for (const r of rows) if (r.oursWhy) console.log(`cudnn-resblock, ${r.workers} workers: ${r.oursWhy}`);
  console.table(rows.map((r) => ({
    workers: r.workers,
    'torch images/s': r.torch.result ? r.torch.result.images_per_s.toFixed(0) : '-',
    'ours images/s': r.ours ? r.ours.images_per_s.toFixed(0) : 'failed',
    'ours vs torch': r.ours && r.torch.result ? `${(r.ours.images_per_s / r.torch.result.images_per_s).toFixed(2)}x` : '-',
  })));
  writeResult('data-folder', {
    folder, batch: BATCH, epochs: EPOCHS, warmup_epochs: WARMUP_EPOCHS, threads,
    results: rows.map((r) => ({ workers: r.workers, torch: r.torch.result, torchMissing: r.torch.result ? undefined : r.torch.why, ours: r.ours, oursMissing: r.oursWhy })),
  });
} finally {
  if (!process.env.BENCH_DATA_DIR) rmSync(dir, { recursive: true, force: true });
}
