// npm run prebuild: the addon with prebuildify (N-API, stripped) into prebuilds/linux-x64/, and
// the CUDA backend library beside it when it can be built here (and libcrb_nccl.so, which the
// same CMake build makes where NCCL's headers are found), so one package serves CPU-only
// and GPU machines; the gloo library (libcrb_gloo.so) likewise when gloo is installed here. The
// addon targets baseline x86-64; faster CPU kernels are picked at run time.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const outDir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
const env = { ...process.env };
// Use this Node's own headers when it ships them, so node-gyp downloads nothing.
const nodeDir = path.dirname(path.dirname(process.execPath));
if (!env.npm_config_nodedir && existsSync(path.join(nodeDir, 'include', 'node', 'node_api.h'))) env.npm_config_nodedir = nodeDir;

const prebuildify = path.join(root, 'node_modules', 'prebuildify', 'bin.js');
const r = spawnSync(process.execPath, [prebuildify, '--napi', '--strip', '--tag-libc', '--target', process.versions.node], { cwd: root, stdio: 'inherit', env });
if (r.status !== 0) process.exit(r.status ?? 1);

const cudaLib = path.join(root, 'build', 'Release', 'libcrb_cuda.so');
if (process.env.CRB_BUILD_CUDA !== '0') {
  const c = spawnSync(process.execPath, [path.join(root, 'tools', 'build-cuda.mjs')], { cwd: root, stdio: 'inherit', env });
  if (c.status !== 0) console.warn('prebuild: the CUDA backend was not built; the prebuild will be CPU-only');
}
// prebuildify's node-gyp rebuild emptied build/Release; CMake relinks the gloo library there.
const glooLib = path.join(root, 'build', 'Release', 'libcrb_gloo.so');
if (process.env.CRB_BUILD_GLOO !== '0') {
  const g = spawnSync(process.execPath, [path.join(root, 'tools', 'build-gloo.mjs')], { cwd: root, stdio: 'inherit', env });
  if (g.status !== 0) console.warn('prebuild: the gloo library was not built; the prebuild will have no data-parallel support');
}
const ncclLib = path.join(root, 'build', 'Release', 'libcrb_nccl.so');
for (const lib of [cudaLib, ncclLib, glooLib]) {
  if (!existsSync(lib)) continue;
  mkdirSync(outDir, { recursive: true });
  const dest = path.join(outDir, path.basename(lib));
  copyFileSync(lib, dest);
  try { execFileSync('strip', ['--strip-unneeded', dest]); } catch { /* keep it unstripped */ }
}
for (const f of readdirSync(outDir)) {
  console.log(`prebuild: ${path.relative(root, path.join(outDir, f))} ${(statSync(path.join(outDir, f)).size / 1048576).toFixed(1)} MB`);
}
