// Packs the package and installs the tarball into a fresh project with an empty npm cache and compilers out of
// reach (PATH holds only node and sh), then runs the seed through require and import, and the
// CLI's --help and doctor. Used by test/70.install.test.mjs and `npm run release:check`.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
export const MAX_TARBALL_BYTES = 40 * 1024 * 1024;
const REQUIRED = ['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md', 'dist/index.js', 'dist/index.mjs', 'dist/index.d.ts',
  'dist/cli/main.js', 'tools/install.cjs', 'binding.gyp'];

function npmCli() {
  if (process.env.npm_execpath && process.env.npm_execpath.endsWith('.js')) return process.env.npm_execpath;
  const npm = execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim();
  return realpathSync(npm);
}

export function prebuiltAddon() {
  const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  if (!existsSync(dir)) return null;
  const f = readdirSync(dir).find((n) => n.endsWith('.node'));
  return f ? path.join(dir, f) : null;
}

/** npm pack into `dest`; returns { tarball, size, files }. */
export function pack(dest) {
  const out = execFileSync(process.execPath, [npmCli(), 'pack', '--json', '--pack-destination', dest], {
    cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'],
  });
  const info = JSON.parse(out.slice(out.indexOf('[')))[0];
  return { tarball: path.join(dest, info.filename), size: info.size, files: info.files.map((f) => f.path) };
}

export function checkContents({ size, files }) {
  const problems = [];
  for (const f of REQUIRED) if (!files.includes(f)) problems.push(`missing ${f}`);
  if (!files.some((f) => /^prebuilds\/linux-x64\/.+\.node$/.test(f))) problems.push('missing prebuilds/linux-x64/*.node');
  for (const f of files) if (/^(test|bench|native\/cpu\/test)\//.test(f) || f.includes('.venv')) problems.push(`should not ship ${f}`);
  if (size > MAX_TARBALL_BYTES) problems.push(`tarball is ${(size / 1048576).toFixed(1)} MB, over 40 MB`);
  return problems;
}

/** Installs `tarball` into a fresh project with only node and sh on PATH; returns the results of each check. */
export function installAndRun(tarball) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'crb-install-'));
  const bin = path.join(dir, 'bin');
  mkdirSync(bin);
  symlinkSync(process.execPath, path.join(bin, 'node'));
  symlinkSync('/bin/sh', path.join(bin, 'sh'));
  const project = path.join(dir, 'app');
  mkdirSync(project);
  writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
  // An npm cache of its own, empty, so the result never depends on what the machine's cache holds:
  // the dependencies come from the registry as they do for a new user. The machine's npm config
  // (registry, CA file) is kept.
  const env = { HOME: process.env.HOME, PATH: bin, npm_config_cache: path.join(dir, 'npm-cache'), npm_config_audit: 'false',
    npm_config_fund: 'false', npm_config_update_notifier: 'false', CUDNN_RESBLOCK_DEVICE: 'cpu' };
  for (const key of ['npm_config_userconfig', 'npm_config_globalconfig']) if (process.env[key]) env[key] = process.env[key];
  const run = (file, args, opts = {}) => spawnSync(file, args, { cwd: project, env, encoding: 'utf8', ...opts });
  const results = { dir, project };
  results.install = run(process.execPath, [npmCli(), 'install', '--foreground-scripts', tarball]);
  const pkgDir = path.join(project, 'node_modules', 'cudnn-resblock');
  results.compiled = existsSync(path.join(pkgDir, 'build'));
  const seed = `const X = m.Tensor.randn([1, 3, 224, 224]);
    const a = new m.ResidualBlock(3, 3).forward(X).shape, b = new m.ResidualBlock(3, 6, { use1x1conv: true, strides: 2 }).forward(X).shape;
    console.log(JSON.stringify([a, b, require.resolve ? 'cjs' : 'esm']));`;
  writeFileSync(path.join(project, 'seed.cjs'), `const m = require('cudnn-resblock');\n${seed}`);
  writeFileSync(path.join(project, 'seed.mjs'), `import * as m from 'cudnn-resblock';\nconst require = {};\n${seed}`);
  results.require = run(process.execPath, ['seed.cjs']);
  results.import = run(process.execPath, ['seed.mjs']);
  const cli = path.join(pkgDir, 'dist', 'cli', 'main.js');
  results.help = run(process.execPath, [cli, '--help']);
  results.doctor = run(process.execPath, [cli, 'doctor']);
  results.bin = existsSync(path.join(project, 'node_modules', '.bin', 'cudnn-resblock'));
  return results;
}

export function cleanup(results) {
  rmSync(results.dir, { recursive: true, force: true });
}

// CLI: npm run release:check
if (process.argv[1] && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))) {
  if (!prebuiltAddon()) {
    console.error('release:check: no prebuilt addon in prebuilds/; run `npm run prebuild` first');
    process.exit(1);
  }
  const dest = mkdtempSync(path.join(os.tmpdir(), 'crb-pack-'));
  const p = pack(dest);
  console.log(`tarball ${path.basename(p.tarball)}: ${(p.size / 1048576).toFixed(2)} MB, ${p.files.length} files`);
  const problems = checkContents(p);
  const r = installAndRun(p.tarball);
  const expectShapes = JSON.stringify([[1, 3, 224, 224], [1, 6, 112, 112]]);
  if (r.install.status !== 0) problems.push(`install failed:\n${r.install.stdout}${r.install.stderr}`);
  if (r.compiled) problems.push('something was compiled during install (build/ exists)');
  if (!r.require.stdout.startsWith(expectShapes.slice(0, -1))) problems.push(`require seed: ${r.require.stdout}${r.require.stderr}`);
  if (!r.import.stdout.startsWith(expectShapes.slice(0, -1))) problems.push(`import seed: ${r.import.stdout}${r.import.stderr}`);
  if (r.help.status !== 0) problems.push(`--help: ${r.help.stderr}`);
  if (r.doctor.status !== 0) problems.push(`doctor: ${r.doctor.stderr}`);
  console.log(r.install.stdout.trim());
  console.log(r.doctor.stdout.trim());
  cleanup(r);
  rmSync(dest, { recursive: true, force: true });
  if (problems.length) {
    console.error(`release:check failed:\n- ${problems.join('\n- ')}`);
    process.exit(1);
  }
  console.log('release:check passed');
}
