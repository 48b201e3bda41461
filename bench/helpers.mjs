// What the CPU benchmarks share: the repository root, medians, timing a training step, running
// PyTorch's side (and saying why it is missing), and writing bench/results/*.json.
// Benchmarks, not tests: timings on shared machines compare only within one run.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');

export const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

export const envNumber = (name, fallback) => Number(process.env[name] ?? fallback);

export const host = () => ({ cpus: os.cpus().length, model: os.cpus()[0]?.model });

/**
 * Times `iters` SGD training steps (forward, cross-entropy, backward, step) of `model` on one
 * fixed batch `x`, `y`, after `warmup` untimed ones. Each step ends with a read of the loss, so
 * the time includes all of the step's work. Returns { median_ms, min_ms, images_per_s }.
 */
export function timeTrainStep(lib, model, x, y, { warmup, iters, lr = 0.05 }) {
  const opt = new lib.SGD(model.parameters(), { lr });
  const times = [];
  for (let i = 0; i < warmup + iters; i++) {
    const t0 = process.hrtime.bigint();
    const logits = model.forward(x);
    const loss = lib.crossEntropy(logits, y);
    opt.zeroGrad();
    loss.backward();
    opt.step();
    loss.itemSync();
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    logits.dispose();
    loss.dispose();
    if (i >= warmup) times.push(ms);
  }
  const m = median(times);
  return { median_ms: m, min_ms: Math.min(...times), images_per_s: (x.shape[0] / m) * 1000 };
}

/** Pythons to try, in order: $BENCH_PYTHON, <root>/.venv-ref/bin/python, python3. */
function pythons() {
  const list = [];
  if (process.env.BENCH_PYTHON) list.push(process.env.BENCH_PYTHON);
  list.push(path.join(root, '.venv-ref/bin/python'), 'python3');
  return list;
}

/**
 * Runs bench/<script> with `args` under the first Python that prints JSON, and returns
 * { result, python } or { result: null, why } where `why` says, for each Python tried, why it gave
 * nothing (not found, or the last line of its stderr). Never throws.
 */
export function runPython(script, args, { timeoutMs = 30 * 60 * 1000 } = {}) {
  const why = [];
  for (const py of pythons()) {
    if (py.includes('/') && !existsSync(py)) { why.push(`${py}: not found`); continue; }
    try {
      const out = execFileSync(py, [path.join(root, 'bench', script), ...args.map(String)],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, maxBuffer: 64 << 20 });
      try { return { result: JSON.parse(out), python: py }; } catch { why.push(`${py}: printed no JSON`); }
    } catch (e) {
      const last = String(e.stderr ?? '').trim().split('\n').filter(Boolean).pop();
      why.push(`${py}: ${e.code === 'ENOENT' ? 'not found' : (last ?? e.message.split('\n')[0])}`);
    }
  }
  return { result: null, why: why.join('; ') };
}

/** One line for the table's header: which PyTorch ran, or why its columns are missing. */
export function torchNote(torch) {
  return torch.result
    ? `PyTorch ${torch.result.torch}${torch.result.threads ? `, ${torch.result.threads} threads` : ''} (${torch.python})`
    : `PyTorch columns missing: ${torch.why}`;
}

/** Writes bench/results/<name>.json and says so. */
export function writeResult(name, result) {
  const dir = path.join(root, 'bench/results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, `${name}.json`), JSON.stringify({ date: new Date().toISOString(), host: host(), ...result }, null, 2));
  console.log(`wrote bench/results/${name}.json`);
}

/**
 * The machine's measured float32 FMA peak with `threads` threads, in GFLOP/s: bench/fma_peak.c
 * (independent FMA chains on the widest vectors the CPU has) built with the system's `cc` and run
 * here, the best of three runs. Returns { gflops, isa } or { gflops: null, why }.
 */
export function fmaPeak(threads) {
  const bin = path.join(os.tmpdir(), `crb-fma-peak-${process.getuid?.() ?? 0}`);
  try {
    execFileSync('cc', ['-O2', '-pthread', path.join(root, 'bench/fma_peak.c'), '-o', bin], { stdio: 'pipe' });
    const runs = [0, 1, 2].map(() => JSON.parse(execFileSync(bin, [String(threads), '0.3'], { encoding: 'utf8' })));
    return { gflops: Math.max(...runs.map((r) => r.gflops)), isa: runs[0].isa };  // a peak: the best run
  } catch (e) {
    return { gflops: null, why: String(e.message).split('\n')[0] };
  }
}

/** Multiply-add FLOPs of one conv forward: 2 * N * out_h * out_w * K * C/groups * R * S. */
// The direct algorithm's multiply-adds (x2): with Winograd F(2x2, 3x3) (the CPU backend's 3x3
// stride-1 channels-last convs) fewer are done, so GFLOP/s from this are effective rates and "%
// peak" may pass 100%.
export const convFlops = ({ n, c, k, r, s, outH, outW, groups = 1 }) => 2 * n * outH * outW * k * (c / groups) * r * s;
