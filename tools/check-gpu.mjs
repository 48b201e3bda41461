#!/usr/bin/env node
// npm run check:gpu: everything a lent GPU machine should tell us, in one command, in at most
// 7 minutes on one H100/H200 (16 cores):
//   1. preflight  backendInfo() in a child process: with no CUDA driver or device, stop here,
//                 within seconds, and say why (exit 2);
//   2. build      npm run build:cuda against that machine's cuDNN (CRB_CUDA_ARCHITECTURES set to
//                 the card's compute capability unless given);
//   3. info       the card, driver, CUDA runtime and cuDNN versions, from backendInfo();
//   4. tests      REQUIRE_CUDA=1 mocha --grep @cuda, every test recorded (tools/check-gpu-reporter.cjs);
//   5. bench      bench/gpu.mjs with BENCH_SHORT=1: the block 64->64 N=256 56x56 training step and
//                 the d2l ResNet-18 step 256x1x96x96, fp32 NCHW and bf16 channels-last, beside
//                 PyTorch on the same card.
// Each step runs under its own time limit, cut to what the whole budget has left; a step that
// runs over is stopped (its process group killed), recorded as "timeout", and the next one runs.
// ONE report, $OUT/check-gpu.json (./check-gpu.json without OUT), rewritten after every step so
// that even a run stopped from outside leaves what it had. Exit 0 only when every step passed.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outDir = process.env.OUT || root;
mkdirSync(outDir, { recursive: true });
const reportFile = path.join(outDir, 'check-gpu.json');
const testsFile = path.join(outDir, 'check-gpu-tests.json');
const benchFile = path.join(outDir, 'check-gpu-bench.json');
// The whole run; 7 minutes less a margin for start-up and the report.
const BUDGET_S = Number(process.env.CHECK_GPU_BUDGET_S ?? 400);
// Per step: the most seconds it may take, and the share of the budget kept back for the steps
// after it (a step's limit is the smaller of its own and what the budget has left less that
// reserve): with 400 s, the build may use what is left less 160 s, the tests less 60 s.
const LIMITS = { preflight: 20, build: 180, info: 20, tests: 220, bench: 120 };
const KEEP_FOR_LATER = { preflight: 0.75, build: 0.4, info: 0.35, tests: 0.15, bench: 0 };
// CHECK_GPU_FORCE=1 goes on past a failed preflight: a rehearsal of every step on a machine
// without a GPU (the steps then fail, but each one runs and is recorded).
const FORCE = process.env.CHECK_GPU_FORCE === '1';

const t0 = Date.now();
const elapsed = () => (Date.now() - t0) / 1000;
const report = {
  schema: 'cudnn-resblock/check-gpu/1',
  ok: false,
  reason: 'running',
  startedAt: new Date(t0).toISOString(),
  finishedAt: null,
  totalSeconds: null,
  budgetSeconds: BUDGET_S,
  host: { hostname: os.hostname(), cpus: os.cpus().length, node: process.version, platform: `${process.platform}-${process.arch}` },
  device: null,
  backend: null,
  steps: [],
  tests: null,
  bench: null,
};
const save = () => {
  report.totalSeconds = Math.round(elapsed() * 10) / 10;
  writeFileSync(reportFile, `${JSON.stringify(report, null, 2)}\n`);
};

function finish(ok, reason, code) {
  report.ok = ok;
  report.reason = reason;
  report.finishedAt = new Date().toISOString();
  save();
  console.log(`check:gpu: ${ok ? 'passed' : `FAILED: ${reason}`} (${report.totalSeconds} s); report ${reportFile}`);
  process.exit(code);
}

// Runs one step in its own process group, output passed through and its tail kept.
function step(name, command, args, env = {}) {
  const limit = Math.max(1, Math.floor(Math.min(LIMITS[name], BUDGET_S * (1 - KEEP_FOR_LATER[name]) - elapsed())));
  const entry = { name, command: [command, ...args].join(' '), status: 'running', exitCode: null, seconds: null, limitSeconds: limit, tail: '' };
  report.steps.push(entry);
  save();
  console.log(`check:gpu: == ${name} (limit ${limit} s): ${entry.command}`);
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: root, env: { ...process.env, ...env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const keep = (chunk, stream) => {
      stream.write(chunk);
      tail = (tail + chunk.toString()).slice(-4000);
    };
    child.stdout.on('data', (c) => keep(c, process.stdout));
    child.stderr.on('data', (c) => keep(c, process.stderr));
    let timedOut = false;
    const kill = (signal) => { try { process.kill(-child.pid, signal); } catch { /* gone */ } };
    const timer = setTimeout(() => {
      timedOut = true;
      kill('SIGTERM');
      setTimeout(() => kill('SIGKILL'), 5000).unref();
    }, limit * 1000);
    const done = (code, error) => {
      clearTimeout(timer);
      entry.seconds = Math.round((Date.now() - started) / 100) / 10;
      entry.exitCode = code;
      entry.status = timedOut ? 'timeout' : code === 0 ? 'passed' : 'failed';
      if (timedOut) tail += `\n[check:gpu: stopped after its ${limit} s limit]`;
      if (error) tail += `\n[check:gpu: could not start: ${error.message}]`;
      entry.tail = tail.slice(-4000);
      save();
      console.log(`check:gpu: == ${name}: ${entry.status} after ${entry.seconds} s`);
      resolve(entry);
    };
    child.on('error', (e) => done(null, e));
    child.on('close', (code) => done(code));
  });
}

// backendInfo() of a fresh process (so a just-built backend is the one loaded), as JSON.
const INFO_SCRIPT = "process.stdout.write(JSON.stringify(require('./dist/index.js').backendInfo()) + '\\n')";
function readInfo(entry) {
  try {
    const info = JSON.parse(entry.tail.trim().split('\n').at(-1).replace(/^[^{]*/, ''));
    entry.tail = 'backendInfo(): see "backend" and "device"';
    return info;
  } catch {
    return null;
  }
}

function nvidiaSmi() {
  const r = spawnSync('nvidia-smi', ['--query-gpu=name,driver_version,compute_cap,memory.total', '--format=csv,noheader'],
    { encoding: 'utf8', timeout: 10000 });
  if (r.status !== 0 || !r.stdout) return null;
  const [name, driver, computeCap, memory] = r.stdout.trim().split('\n')[0].split(',').map((s) => s.trim());
  return { name, driver, computeCap, memory };
}

function describeDevice(info, smi) {
  const d = info?.cuda?.devices?.[0];
  return {
    card: d?.name ?? smi?.name ?? null,
    computeCapability: d?.computeCapability ?? smi?.computeCap ?? null,
    totalMemoryGiB: d ? Math.round((d.totalMemory / 2 ** 30) * 10) / 10 : null,
    driver: smi?.driver ?? null,
    cudaDriverApi: d?.driverVersion ?? null,
    cudaRuntime: d?.runtimeVersion ?? null,
    cudnn: d?.cudnnVersion ?? null,
    cudnnCompiled: d?.cudnnCompiledVersion ?? null,
    nvidiaSmi: smi,
  };
}

function readJson(file) {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}

function benchRows(b) {
  if (!b) return null;
  const rows = b.rows.map(({ case: c, ours }) => {
    const t = b.torch?.results?.find((x) => x.name === c.name && x.precision === c.precision);
    return {
      case: c.name,
      precision: c.precision === 'bf16' ? 'bf16 channels-last' : 'fp32 (TF32) NCHW',
      oursMs: ours.ms ?? null,
      oursImagesPerS: ours.images_per_s ?? null,
      torchMs: t?.ms ?? null,
      torchImagesPerS: t?.images_per_s ?? null,
      // ours over PyTorch's throughput: above 1 is faster than PyTorch
      ratio: t && ours.images_per_s ? Math.round((ours.images_per_s / t.images_per_s) * 1000) / 1000 : null,
      error: ours.error ?? null,
    };
  });
  return {
    torch: b.torch ? { version: b.torch.torch, cudnn: b.torch.cudnn, device: b.torch.device, rates: b.torch.rates } : null,
    rows,
  };
}

// --- 1. preflight: is there a CUDA driver and a device at all?
const pre = await step('preflight', process.execPath, ['-e', INFO_SCRIPT]);
const info0 = readInfo(pre);
const smi = nvidiaSmi();
report.backend = info0?.cuda ?? null;
report.device = describeDevice(info0, smi);
if (!info0) finish(false, `preflight: backendInfo() failed (is dist/ built? npm run build:ts): ${pre.tail.slice(-300)}`, 2);
const why = info0.cuda.available ? null : info0.cuda.reason;
if (why && /no CUDA driver|no CUDA device|cudaErrorNoDevice|no NVIDIA/i.test(why)) {
  pre.status = 'failed';
  const reason = `${why}${info0.cuda.hint ? ` (${info0.cuda.hint})` : ''}`;
  if (!FORCE) finish(false, reason, 2);
  report.reason = `preflight: ${reason}; going on (CHECK_GPU_FORCE=1)`;
}

// --- 2. build the backend against this machine's cuDNN, for this card only (faster)
const archEnv = {};
if (!process.env.CRB_CUDA_ARCHITECTURES && smi?.computeCap) archEnv.CRB_CUDA_ARCHITECTURES = `${smi.computeCap.replace('.', '')}-real`;
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
await step('build', npm, ['run', 'build:cuda'], archEnv);

// --- 3. what loaded
const info = readInfo(await step('info', process.execPath, ['-e', INFO_SCRIPT]));
if (info) {
  report.backend = info.cuda;
  report.device = describeDevice(info, smi);
}
save();

// --- 4. every @cuda test, required to run
const mocha = path.join(root, 'node_modules', 'mocha', 'bin', 'mocha.js');
const tests = await step('tests', process.execPath, [mocha, '--grep', '@cuda', '--reporter', path.join(root, 'tools', 'check-gpu-reporter.cjs')],
  { REQUIRE_CUDA: '1', CHECK_GPU_TESTS_JSON: testsFile });
report.tests = readJson(testsFile);
save();

// --- 5. the short benchmark beside PyTorch
const bench = await step('bench', process.execPath, [path.join(root, 'bench', 'gpu.mjs')],
  { BENCH_SHORT: '1', BENCH_WARMUP: process.env.BENCH_WARMUP ?? '3', BENCH_ITERS: process.env.BENCH_ITERS ?? '10', BENCH_OUT: benchFile });
report.bench = existsSync(benchFile) ? benchRows(readJson(benchFile)) : null;

const problems = report.steps.filter((s) => s.status !== 'passed').map((s) => `${s.name} ${s.status}`);
if (report.tests && report.tests.failed) problems.push(`${report.tests.failed} CUDA tests failed`);
if (!report.tests || !report.tests.done) problems.push('the test record is incomplete');
if (bench.status === 'passed' && !report.bench?.rows?.some((r) => r.torchMs !== null)) problems.push('no PyTorch figures');
finish(problems.length === 0, problems.length ? problems.join('; ') : null, problems.length ? 1 : 0);
